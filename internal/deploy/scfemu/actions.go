package scfemu

import (
	"archive/zip"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"time"
	"unicode"
)

const (
	maxCreateZip = 50 << 20 // Code.ZipFile, decoded
	maxUpdateZip = 20 << 20 // UpdateFunctionCode's ZipFile, decoded
	maxEnvBytes  = 4 << 10  // all variables together
)

var (
	functionName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z0-9]$`)
	variableKey  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)
	triggerName  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)
)

type trigger struct {
	name, typ, qualifier string
	desc                 string // as answered
	enable               bool
	argument             string // CustomArgument (a timer's Message)
	urlID                string // an http trigger's part of its host name
	added, modified      time.Time
}

type function struct {
	Function
	until          time.Time // when the transitional status ends; zero when settled
	next           string    // the status after until
	nextReasons    []StatusReason
	triggers       []*trigger
	added, changed time.Time
}

func key(ns, name string) string { return namespace(&ns) + "/" + name }

func namespace(p *string) string {
	if p == nil || *p == "" {
		return "default"
	}
	return *p
}

// settle ends a transitional status whose time is up. It reports false when
// the function is gone (a deletion that ended).
func (f *function) settle(now time.Time) bool {
	if !f.until.IsZero() && !now.Before(f.until) {
		if f.next == "" {
			return false
		}
		f.Status, f.Reasons, f.until, f.nextReasons = f.next, f.nextReasons, time.Time{}, nil
	}
	return true
}

// busy reports whether status is transitional: a change is under way.
func busy(status string) bool {
	return status == Creating || status == Updating || status == Publishing || status == Deleting
}

// lookup returns the function, settled, or nil when there is none (or its
// deletion ended).
func (e *Emulator) lookup(ns, name string) *function {
	f := e.functions[key(ns, name)]
	if f != nil && !f.settle(time.Now()) {
		delete(e.functions, key(ns, name))
		return nil
	}
	return f
}

// transition starts a change that ends after d: in Active (or, for a
// deletion, with the function gone), or in failed with reasons.
func (e *Emulator) transition(f *function, during, failed string, d time.Duration, reasons []StatusReason) {
	if len(e.failNext) > 0 {
		reasons, e.failNext = append(reasons, e.failNext...), nil
	}
	next := Active
	if during == Deleting {
		next = "" // gone
	}
	if len(reasons) > 0 {
		next = failed
	}
	f.Status, f.Reasons, f.next, f.nextReasons = during, nil, next, reasons
	f.until = time.Now().Add(d)
	f.changed = time.Now()
	f.settle(time.Now())
}

func (f *function) snapshot(o Options) Function {
	s := f.Function
	s.Variables = append([]Variable(nil), f.Variables...)
	s.Reasons = append([]StatusReason(nil), f.Reasons...)
	s.Zip = append([]byte(nil), f.Zip...)
	for _, t := range f.triggers {
		s.Triggers = append(s.Triggers, Trigger{Name: t.name, Type: t.typ, Qualifier: t.qualifier, Desc: t.desc, Enable: t.enable})
	}
	return s
}

func (e *Emulator) run(action, region string, p params) (map[string]any, error) {
	name, ns := str(p.FunctionName), namespace(p.Namespace)
	if !functionName.MatchString(name) {
		return nil, errorf("InvalidParameterValue.FunctionName", "FunctionName must be 2-60 letters, digits, - and _, start with a letter and not end with - or _")
	}
	if q := str(p.Qualifier); q != "" && q != "$LATEST" && !strings.HasSuffix(action, "Trigger") {
		return nil, errorf("InvalidParameterValue.Qualifier", "only the $LATEST version is modelled")
	}
	if ns != "default" && !e.namespaces[ns] {
		return nil, errorf("ResourceNotFound.Namespace", "Namespace not found: %s", ns)
	}
	f := e.lookup(ns, name)
	if action == "CreateFunction" {
		if f != nil {
			return nil, errorf("ResourceInUse.Function", "the function %s already exists", name)
		}
		return e.createFunction(region, name, ns, p)
	}
	if f == nil {
		// GetFunction answers the code the live API gives (and the SDK and
		// Terraform list); the other actions answer ResourceNotFound.Function.
		if action == "GetFunction" || action == "GetFunctionAddress" {
			return nil, errorf("ResourceNotFound.FunctionName", "Function not found")
		}
		return nil, errorf("ResourceNotFound.Function", "the function %s does not exist", name)
	}
	if hold, ok := e.busyNext[action]; ok {
		delete(e.busyNext, action)
		f.Status, f.Reasons, f.next, f.nextReasons, f.until = Updating, nil, Active, nil, time.Now().Add(hold)
	}
	switch action {
	case "GetFunction":
		if f.Status == Deleting && e.opt.VersionGoneWhileDeleting {
			return nil, errorf("ResourceNotFound.Version", "Version not found")
		}
		return e.getFunction(f), nil
	case "GetFunctionAddress":
		if (f.Status == Creating || f.Status == Updating) && !e.opt.AddressWhileBusy {
			return nil, errorf("FailedOperation.FunctionStatusError", "the function is %s: try again when it is deployed", f.Status)
		}
		sum := sha256.Sum256(f.Zip)
		h := hex.EncodeToString(sum[:])
		if e.opt.Base64Sha256 {
			h = base64.StdEncoding.EncodeToString(sum[:])
		}
		return map[string]any{"Url": "https://scfemu.invalid/" + ns + "/" + name + "_LATEST.zip", "CodeSha256": h}, nil
	case "ListTriggers":
		return e.listTriggers(f, p), nil
	case "DeleteFunction":
		if busy(f.Status) {
			return nil, errorf("FailedOperation.DeleteFunction", "the function is %s: try again when its status is normal", f.Status)
		}
		e.transition(f, Deleting, DeleteFailed, e.opt.DeleteDelay, nil)
		return map[string]any{}, nil
	}
	// Updates and trigger changes need an Active function; UpdateFailed and
	// PublishFailed ones accept a function update (a retry).
	retry := (f.Status == UpdateFailed || f.Status == PublishFailed) && strings.HasPrefix(action, "UpdateFunction")
	if f.Status != Active && !retry {
		code := map[string]string{
			"UpdateFunctionCode": "FailedOperation.UpdateFunctionCode", "UpdateFunctionConfiguration": "FailedOperation.UpdateFunctionConfiguration",
			"CreateTrigger": "FailedOperation.CreateTrigger", "UpdateTrigger": "FailedOperation.UpdateTrigger", "DeleteTrigger": "FailedOperation.DeleteTrigger",
		}[action]
		return nil, errorf(code, "the function is %s: this operation needs it Active", f.Status)
	}
	switch action {
	case "UpdateFunctionCode":
		return e.updateCode(f, p)
	case "UpdateFunctionConfiguration":
		return e.updateConfiguration(f, p)
	case "CreateTrigger":
		return e.createTrigger(f, region, p)
	case "UpdateTrigger":
		return e.updateTrigger(f, region, p)
	default: // DeleteTrigger
		t, i := f.trigger(str(p.TriggerName), str(p.Type), qualifier(p.Qualifier))
		if t == nil {
			return nil, errorf("ResourceNotFound.Trigger", "the trigger %s does not exist", str(p.TriggerName))
		}
		f.triggers = append(f.triggers[:i], f.triggers[i+1:]...)
		return map[string]any{}, nil
	}
}

func (e *Emulator) createFunction(region, name, ns string, p params) (map[string]any, error) {
	f := &function{Function: Function{Name: name, Namespace: ns, Runtime: "Python2.7", Type: "Event",
		MemorySize: 128, Timeout: 3, InitTimeout: 65, PublicNetStatus: "ENABLE"}}
	if p.Code == nil {
		return nil, errorf("MissingParameter.Code", "Code is required")
	}
	if p.Code.CosBucketName != "" || p.Code.CosObjectName != "" || p.Code.DemoId != "" || p.Code.TempCosObjectName != "" {
		return nil, errorf("InvalidParameterValue.Code", "only Code.ZipFile is modelled")
	}
	zipData, err := decodeZip(p.Code.ZipFile, maxCreateZip)
	if err != nil {
		return nil, err
	}
	if t := str(p.Type); t != "" {
		if t != "Event" && t != "HTTP" {
			return nil, errorf("InvalidParameterValue.Type", "Type must be Event or HTTP")
		}
		f.Type = t
	}
	if p.Runtime != nil {
		f.Runtime = *p.Runtime
	}
	if !validRuntime(f.Runtime) {
		return nil, errorf("InvalidParameterValue.Runtime", "the runtime %q is not supported", f.Runtime)
	}
	f.Handler = str(p.Handler)
	if f.Type == "Event" && f.Handler == "" {
		return nil, errorf("InvalidParameterValue.Handler", "an event function needs a Handler")
	}
	if err := applyConfig(&f.Function, p); err != nil {
		return nil, err
	}
	f.Zip = zipData
	f.added = time.Now()
	e.functions[key(ns, name)] = f
	e.transition(f, Creating, CreateFailed, e.opt.CreateDelay, e.checkPackage(f))
	return map[string]any{}, nil
}

func validRuntime(r string) bool {
	for _, prefix := range []string{"Python", "Nodejs", "Go1", "Php", "Java", "CustomRuntime"} {
		if strings.HasPrefix(r, prefix) {
			return true
		}
	}
	return false
}

// applyConfig validates and applies the configuration parameters present in p.
func applyConfig(f *Function, p params) error {
	if p.Description != nil {
		if !validDescription(*p.Description) {
			return errorf("InvalidParameterValue.Description", "Description allows at most 1000 letters, digits, spaces, commas, periods, newlines and Chinese")
		}
		f.Description = *p.Description
	}
	if p.MemorySize != nil {
		m := *p.MemorySize
		if m != 64 && (m < 128 || m > 3072 || m%128 != 0) {
			return errorf("InvalidParameterValue.MemorySize", "MemorySize must be 64, or 128-3072 in steps of 128")
		}
		f.MemorySize = m
	}
	if p.Timeout != nil {
		if *p.Timeout < 1 || *p.Timeout > 900 {
			return errorf("InvalidParameterValue", "Timeout must be 1-900 seconds")
		}
		f.Timeout = *p.Timeout
	}
	if p.InitTimeout != nil {
		if *p.InitTimeout < 3 || *p.InitTimeout > 300 {
			return errorf("InvalidParameterValue", "InitTimeout must be 3-300 seconds")
		}
		f.InitTimeout = *p.InitTimeout
	}
	if p.Role != nil {
		f.Role = *p.Role
	}
	if p.Environment != nil {
		size := 0
		seen := map[string]bool{}
		for _, v := range p.Environment.Variables {
			switch {
			case !variableKey.MatchString(v.Key):
				return errorf("InvalidParameterValue.Environment", "the variable name %q is not valid", v.Key)
			case strings.HasPrefix(v.Key, "SCF_") || strings.HasPrefix(v.Key, "QCLOUD_") || strings.HasPrefix(v.Key, "TENCENTCLOUD_"):
				return errorf("InvalidParameterValue.EnvironmentSystemProtect", "the variable %s uses a reserved prefix", v.Key)
			case v.Value == "":
				return errorf("InvalidParameterValue.Environment", "the value of the variable %s must not be empty", v.Key)
			case seen[v.Key]:
				return errorf("InvalidParameterValue.Environment", "the variable %s is given twice", v.Key)
			}
			seen[v.Key] = true
			size += len(v.Key) + len(v.Value)
		}
		if size > maxEnvBytes {
			return errorf("InvalidParameterValue.EnvironmentExceededLimit", "the variables exceed 4 KB")
		}
		f.Variables = append([]Variable{}, p.Environment.Variables...)
	}
	if p.VpcConfig != nil {
		if (p.VpcConfig.VpcId == "") != (p.VpcConfig.SubnetId == "") {
			return errorf("InvalidParameterValue", "VpcConfig needs both VpcId and SubnetId, or neither")
		}
		f.VpcID, f.SubnetID = p.VpcConfig.VpcId, p.VpcConfig.SubnetId
	}
	if p.PublicNetConfig != nil {
		if s := p.PublicNetConfig.PublicNetStatus; s != "ENABLE" && s != "DISABLE" {
			return errorf("InvalidParameterValue.PublicNetConfig", "PublicNetStatus must be ENABLE or DISABLE")
		}
		f.PublicNetStatus = p.PublicNetConfig.PublicNetStatus
	}
	return nil
}

func validDescription(s string) bool {
	if len([]rune(s)) > 1000 {
		return false
	}
	for _, r := range s {
		ok := r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) ||
			r == ' ' || r == ',' || r == '.' || r == '\n' || unicode.Is(unicode.Han, r)
		if !ok {
			return false
		}
	}
	return true
}

func decodeZip(b64 string, limit int) ([]byte, error) {
	if b64 == "" {
		return nil, errorf("InvalidParameterValue.ZipFile", "the zip file is empty")
	}
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errorf("InvalidParameterValue.ZipFileBase64BinasciiError", "the zip file is not valid base64")
	}
	if len(data) > limit {
		return nil, errorf("InvalidParameterValue.ZipFile", "the zip file exceeds %d MB", limit>>20)
	}
	if _, err := zip.NewReader(bytes.NewReader(data), int64(len(data))); err != nil {
		return nil, errorf("InvalidParameterValue.ZipFile", "the code is not a standard zip file")
	}
	return data, nil
}

// checkPackage finds what would stop the function from starting.
func (e *Emulator) checkPackage(f *function) []StatusReason {
	if e.opt.SkipPackageCheck {
		return nil
	}
	zr, err := zip.NewReader(bytes.NewReader(f.Zip), int64(len(f.Zip)))
	if err != nil {
		return []StatusReason{{"InvalidZipFile", "the code package is not a zip file"}}
	}
	find := func(name string) *zip.File {
		for _, zf := range zr.File {
			if zf.Name == name {
				return zf
			}
		}
		return nil
	}
	var reasons []StatusReason
	if f.Type == "HTTP" {
		zf := find("scf_bootstrap")
		if zf == nil {
			reasons = append(reasons, StatusReason{"BootstrapNotFound", "a web function needs scf_bootstrap at the root of the package"})
		} else if m := zf.Mode().Perm(); m != 0o755 && m != 0o777 {
			reasons = append(reasons, StatusReason{"BootstrapNotExecutable", "scf_bootstrap must have mode 0755 or 0777, not " + m.String()})
		}
	}
	if f.Type == "Event" && f.Runtime == "Go1" {
		zf := find(f.Handler)
		if zf == nil {
			return append(reasons, StatusReason{"HandlerNotFound", "the handler " + f.Handler + " is not at the root of the package"})
		}
		if zf.Mode().Perm()&0o111 == 0 {
			reasons = append(reasons, StatusReason{"HandlerNotExecutable", "the handler " + f.Handler + " is not executable"})
		}
		if !isLinuxAMD64ELF(zf) {
			reasons = append(reasons, StatusReason{"HandlerNotLinuxAmd64", "the handler " + f.Handler + " is not a linux/amd64 ELF executable"})
		}
	}
	return reasons
}

func isLinuxAMD64ELF(zf *zip.File) bool {
	rc, err := zf.Open()
	if err != nil {
		return false
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(rc); err != nil {
		return false
	}
	ef, err := elf.NewFile(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return false
	}
	defer ef.Close()
	return ef.Machine == elf.EM_X86_64 && ef.Type == elf.ET_EXEC || ef.Machine == elf.EM_X86_64 && ef.Type == elf.ET_DYN
}

func (e *Emulator) updateCode(f *function, p params) (map[string]any, error) {
	b64 := str(p.ZipFile)
	if p.Code != nil && p.Code.ZipFile != "" {
		b64 = p.Code.ZipFile
	}
	if str(p.CosBucketName) != "" || str(p.CosObjectName) != "" {
		return nil, errorf("InvalidParameterValue.Code", "only ZipFile is modelled")
	}
	data, err := decodeZip(b64, maxUpdateZip)
	if err != nil {
		return nil, err
	}
	if p.Handler != nil && *p.Handler != "" {
		f.Handler = *p.Handler
	}
	f.Zip = data
	e.transition(f, Updating, UpdateFailed, e.opt.UpdateDelay, e.checkPackage(f))
	return map[string]any{}, nil
}

func (e *Emulator) updateConfiguration(f *function, p params) (map[string]any, error) {
	if p.Runtime != nil && *p.Runtime != f.Runtime {
		return nil, errorf("InvalidParameterValue.Runtime", "the runtime cannot be changed")
	}
	next := f.Function
	if err := applyConfig(&next, p); err != nil {
		return nil, err
	}
	f.Function = next
	e.transition(f, Updating, UpdateFailed, e.opt.UpdateDelay, nil)
	return map[string]any{}, nil
}

func (e *Emulator) getFunction(f *function) map[string]any {
	vars := []map[string]string{}
	for _, v := range f.Variables {
		vars = append(vars, map[string]string{"Key": v.Key, "Value": v.Value})
	}
	reasons := []map[string]string{}
	for _, r := range f.Reasons {
		reasons = append(reasons, map[string]string{"ErrorCode": r.ErrorCode, "ErrorMessage": r.ErrorMessage})
	}
	return map[string]any{
		"FunctionName": f.Name, "Namespace": f.Namespace, "Description": f.Description,
		"Runtime": f.Runtime, "Handler": f.Handler, "Role": f.Role, "Type": f.Type,
		"MemorySize": f.MemorySize, "Timeout": f.Timeout, "InitTimeout": f.InitTimeout,
		"Environment": map[string]any{"Variables": vars},
		"VpcConfig":   map[string]string{"VpcId": f.VpcID, "SubnetId": f.SubnetID},
		"PublicNetConfig": map[string]any{"PublicNetStatus": f.PublicNetStatus,
			"EipConfig": map[string]any{"EipStatus": "DISABLE", "EipAddress": []string{}}},
		"Status": f.Status, "StatusDesc": "", "StatusReasons": reasons,
		"CodeSize": len(f.Zip), "Qualifier": "$LATEST", "FunctionVersion": "$LATEST",
		"AvailableStatus": "Available", "Triggers": []any{},
		"AddTime": f.added.Format(time.DateTime), "ModTime": f.changed.Format(time.DateTime),
	}
}

func qualifier(p *string) string {
	if p == nil || *p == "" {
		return "$LATEST"
	}
	return *p
}

func (f *function) trigger(name, typ, q string) (*trigger, int) {
	for i, t := range f.triggers {
		if t.name == name && t.typ == typ && t.qualifier == q {
			return t, i
		}
	}
	return nil, -1
}

func (e *Emulator) listTriggers(f *function, p params) map[string]any {
	q := ""
	for _, flt := range p.Filters {
		if flt.Name == "Qualifier" && len(flt.Values) > 0 {
			q = flt.Values[0]
		}
	}
	out := []map[string]any{}
	for _, t := range f.triggers {
		if q != "" && t.qualifier != q {
			continue
		}
		out = append(out, triggerInfo(t))
	}
	return map[string]any{"TotalCount": len(out), "Triggers": out}
}

func triggerInfo(t *trigger) map[string]any {
	enable := 0
	if t.enable {
		enable = 1
	}
	return map[string]any{"Enable": enable, "Qualifier": t.qualifier, "TriggerName": t.name, "Type": t.typ,
		"TriggerDesc": t.desc, "AvailableStatus": "Available", "CustomArgument": t.argument, "Description": "",
		"AddTime": t.added.Format(time.DateTime), "ModTime": t.modified.Format(time.DateTime),
		"ResourceId": "", "BindStatus": "on", "TriggerAttribute": "single"}
}

// httpDesc is an http trigger's TriggerDesc as sent.
type httpDesc struct {
	AuthType  string
	NetConfig *struct {
		EnableIntranet *bool
		EnableExtranet *bool
	}
	CorsConfig json.RawMessage `json:",omitempty"`
}

// newURLID returns a url-id not handed out before: ten lowercase letters
// and digits, as in the reference's example host
// 1258888888-hulrzrbh9f.in.ap-chongqing.tencentscf.com.
func (e *Emulator) newURLID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	for {
		b := make([]byte, 10)
		_, _ = rand.Read(b)
		for i := range b {
			b[i] = alphabet[int(b[i])%len(alphabet)]
		}
		if id := string(b); !e.urlIDs[id] {
			e.urlIDs[id] = true
			return id
		}
	}
}

// cronField is one field of a timer's cron expression.
var cronField = regexp.MustCompile(`^[0-9A-Za-z*/,?#-]+$`)

// describeTimer validates a timer TriggerDesc, a cron expression of seven
// fields (second minute hour day month weekday year), and returns it as the
// API answers it: {"cron":"…"}. A desc already in that form is accepted.
func describeTimer(desc string) (string, error) {
	cron := desc
	if strings.HasPrefix(strings.TrimSpace(desc), "{") {
		var d struct{ Cron string }
		if json.Unmarshal([]byte(desc), &d) != nil {
			return "", errorf("InvalidParameterValue.TriggerDesc", "TriggerDesc is not a cron expression")
		}
		cron = d.Cron
	}
	fields := strings.Fields(cron)
	ok := len(fields) == 7
	for _, f := range fields {
		ok = ok && cronField.MatchString(f)
	}
	if !ok {
		return "", errorf("InvalidParameterValue.TriggerDesc", "TriggerDesc must be a cron expression of seven fields: second minute hour day month weekday year")
	}
	b, err := json.Marshal(map[string]string{"cron": strings.Join(fields, " ")})
	return string(b), err
}

// describeHTTP validates an http TriggerDesc and fills in the URLs, whose
// host carries the trigger's url-id.
func (e *Emulator) describeHTTP(region, urlID, desc string) (string, error) {
	var d httpDesc
	if err := json.Unmarshal([]byte(desc), &d); err != nil {
		return "", errorf("InvalidParameterValue.TriggerDesc", "TriggerDesc is not a JSON object")
	}
	if d.AuthType != "NONE" && d.AuthType != "CAM" {
		return "", errorf("InvalidParameterValue.TriggerDesc", "AuthType must be NONE or CAM")
	}
	intranet, extranet := false, false
	if d.NetConfig != nil {
		intranet = d.NetConfig.EnableIntranet != nil && *d.NetConfig.EnableIntranet
		extranet = d.NetConfig.EnableExtranet != nil && *d.NetConfig.EnableExtranet
	}
	host := e.opt.AppID + "-" + urlID + "." + region + ".tencentscf.com"
	inHost := e.opt.AppID + "-" + urlID + ".in." + region + ".tencentscf.com"
	if e.opt.URLHost != "" {
		host, inHost = e.opt.URLHost, e.opt.URLHost
	}
	url := func(on bool, scheme, h string) string {
		if !on {
			return ""
		}
		return scheme + "://" + h
	}
	nc := map[string]any{
		"EnableIntranet": intranet, "EnableExtranet": extranet,
		"IntranetUrl": url(intranet, e.opt.URLScheme, inHost), "IntranetHTTPUrl": url(intranet, "http", inHost),
		"ExtranetUrl": url(extranet, e.opt.URLScheme, host), "ExtranetHTTPUrl": url(extranet, "http", host),
		"WssIntranetUrl": "", "WsIntranetUrl": "", "WssExtranetUrl": "", "WsExtranetUrl": "",
	}
	out := map[string]any{"AuthType": d.AuthType, "NetConfig": nc}
	if len(d.CorsConfig) > 0 {
		out["CorsConfig"] = d.CorsConfig
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func enabled(p *string) (bool, error) {
	switch str(p) {
	case "", "OPEN":
		return true, nil
	case "CLOSE":
		return false, nil
	}
	return false, errorf("InvalidParameterValue.Enable", "Enable must be OPEN or CLOSE")
}

func (e *Emulator) createTrigger(f *function, region string, p params) (map[string]any, error) {
	name, typ, q := str(p.TriggerName), str(p.Type), qualifier(p.Qualifier)
	switch typ {
	case "http", "timer":
	case "apigw":
		return nil, errorf("UnsupportedOperation.Trigger", "API Gateway triggers can no longer be created")
	case "cos", "cls", "ckafka":
		return nil, errorf("UnsupportedOperation.Trigger", "trigger type %s is not modelled", typ)
	default:
		return nil, errorf("InvalidParameterValue.Type", "the trigger type %q is not supported", typ)
	}
	if !triggerName.MatchString(name) {
		return nil, errorf("InvalidParameterValue.TriggerName", "TriggerName must be 1-100 letters, digits, - and _")
	}
	if q != "$DEFAULT" && q != "$LATEST" {
		return nil, errorf("InvalidParameterValue.Qualifier", "only $DEFAULT and $LATEST are modelled")
	}
	for _, t := range f.triggers {
		if t.name == name && t.typ == typ {
			return nil, errorf("ResourceInUse.Trigger", "the trigger %s already exists", name)
		}
		if typ == "http" && t.typ == "http" && t.qualifier == q {
			return nil, errorf("ResourceInUse.Trigger", "the function already has a Function URL for %s", q)
		}
	}
	en, err := enabled(p.Enable)
	if err != nil {
		return nil, err
	}
	t := &trigger{name: name, typ: typ, qualifier: q, enable: en, argument: str(p.CustomArgument), added: time.Now(), modified: time.Now()}
	if typ == "http" {
		t.urlID = e.newURLID()
		t.desc, err = e.describeHTTP(region, t.urlID, str(p.TriggerDesc))
	} else {
		t.desc, err = describeTimer(str(p.TriggerDesc))
	}
	if err != nil {
		return nil, err
	}
	f.triggers = append(f.triggers, t)
	return map[string]any{"TriggerInfo": triggerInfo(t)}, nil
}

func (e *Emulator) updateTrigger(f *function, region string, p params) (map[string]any, error) {
	typ := str(p.Type)
	if typ != "timer" && typ != "ckafka" && typ != "http" {
		return nil, errorf("InvalidParameterValue.Type", "UpdateTrigger supports timer, ckafka and http only")
	}
	t, _ := f.trigger(str(p.TriggerName), typ, qualifier(p.Qualifier))
	if t == nil {
		return nil, errorf("ResourceNotFound.Trigger", "the trigger %s does not exist", str(p.TriggerName))
	}
	next := *t
	if p.Enable != nil {
		en, err := enabled(p.Enable)
		if err != nil {
			return nil, err
		}
		next.enable = en
	}
	if p.TriggerDesc != nil {
		var err error
		if typ == "http" {
			next.desc, err = e.describeHTTP(region, t.urlID, *p.TriggerDesc)
		} else {
			next.desc, err = describeTimer(*p.TriggerDesc)
		}
		if err != nil {
			return nil, err
		}
	}
	if p.CustomArgument != nil {
		next.argument = *p.CustomArgument
	}
	next.modified = time.Now()
	*t = next
	return map[string]any{}, nil
}
