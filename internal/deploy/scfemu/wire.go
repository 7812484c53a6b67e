package scfemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"carbroker/internal/dev/tc3"
)

// maxBody is the largest request body accepted (the TC3 API's 10 MB cap).
const maxBody = 10 << 20

func errorf(code, format string, a ...any) error {
	return &tc3.Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

// actions lists each action's parameters, from the reference: name → required.
// GetFunction's FunctionName is required here: its alternative, ResourceId,
// is not modelled.
var actions = map[string]map[string]bool{
	"GetFunction":        {"FunctionName": true, "Qualifier": false, "Namespace": false, "ShowCode": false},
	"GetFunctionAddress": {"FunctionName": true, "Qualifier": false, "Namespace": false},
	"CreateFunction": {"FunctionName": true, "Code": true, "Handler": false, "Description": false, "MemorySize": false,
		"Timeout": false, "Environment": false, "Runtime": false, "VpcConfig": false, "Namespace": false, "Role": false,
		"InstallDependency": false, "ClsLogsetId": false, "ClsTopicId": false, "Type": false, "CodeSource": false,
		"Layers": false, "DeadLetterConfig": false, "PublicNetConfig": false, "CfsConfig": false, "InitTimeout": false,
		"Tags": false, "AsyncRunEnable": false, "TraceEnable": false, "AutoDeployClsTopicIndex": false,
		"AutoCreateClsTopic": false, "ProtocolType": false, "ProtocolParams": false, "InstanceConcurrencyConfig": false,
		"DnsCache": false, "IntranetConfig": false},
	"UpdateFunctionCode": {"FunctionName": true, "Handler": false, "CosBucketName": false, "CosObjectName": false,
		"ZipFile": false, "Namespace": false, "CosBucketRegion": false, "InstallDependency": false, "EnvId": false,
		"Publish": false, "Code": false, "CodeSource": false},
	"UpdateFunctionConfiguration": {"FunctionName": true, "Description": false, "MemorySize": false, "Timeout": false,
		"Runtime": false, "Environment": false, "Namespace": false, "VpcConfig": false, "Role": false,
		"InstallDependency": false, "ClsLogsetId": false, "ClsTopicId": false, "Publish": false, "L5Enable": false,
		"Layers": false, "DeadLetterConfig": false, "PublicNetConfig": false, "CfsConfig": false, "InitTimeout": false,
		"ProtocolParams": false, "InstanceConcurrencyConfig": false, "DnsCache": false, "IntranetConfig": false,
		"IgnoreSysLog": false},
	"ListTriggers": {"FunctionName": true, "Namespace": false, "Offset": false, "Limit": false, "OrderBy": false,
		"Order": false, "Filters": false},
	"CreateTrigger": {"FunctionName": true, "TriggerName": true, "Type": true, "TriggerDesc": false, "Namespace": false,
		"Qualifier": false, "Enable": false, "CustomArgument": false, "Description": false},
	"UpdateTrigger": {"FunctionName": true, "TriggerName": true, "Type": true, "Enable": false, "Qualifier": false,
		"Namespace": false, "TriggerDesc": false, "Description": false, "CustomArgument": false},
	"DeleteTrigger": {"FunctionName": true, "TriggerName": true, "Type": true, "Namespace": false, "TriggerDesc": false,
		"Qualifier": false},
	"DeleteFunction": {"FunctionName": true, "Namespace": false, "Qualifier": false},
}

// params holds every modelled parameter of every action; absent ones are nil.
type params struct {
	FunctionName, Namespace, Qualifier, Description, Runtime, Handler, Role, Type *string
	ZipFile, CosBucketName, CosObjectName                                         *string
	TriggerName, TriggerDesc, Enable, CustomArgument                              *string
	MemorySize, Timeout, InitTimeout                                              *int64
	Environment                                                                   *struct{ Variables []Variable }
	VpcConfig                                                                     *struct{ VpcId, SubnetId string }
	PublicNetConfig                                                               *struct {
		PublicNetStatus string
		EipConfig       *struct{ EipStatus string }
	}
	Code *struct {
		ZipFile, CosBucketName, CosObjectName, CosBucketRegion, DemoId, TempCosObjectName string
	}
	Filters []struct {
		Name   string
		Values []string
	}
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// ServeHTTP answers one SCF API request: HTTP 200 with a JSON envelope.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := Call{Action: r.Header.Get("X-TC-Action"), Region: r.Header.Get("X-TC-Region"), RequestID: tc3.NewRequestID(), Time: time.Now()}
	out, err := e.serve(r, &c)
	var resp map[string]any
	if err != nil {
		var ae *tc3.Error
		if !errors.As(err, &ae) {
			ae = &tc3.Error{Code: "InternalError", Message: "internal error"}
		}
		c.Code = ae.Code
		resp = map[string]any{"Error": map[string]string{"Code": ae.Code, "Message": ae.Message}}
	} else {
		resp = out
	}
	resp["RequestId"] = c.RequestID
	b, merr := json.Marshal(map[string]any{"Response": resp})
	if merr != nil {
		b = []byte(`{"Response":{"Error":{"Code":"InternalError","Message":"internal error"},"RequestId":"` + c.RequestID + `"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	e.mu.Lock()
	e.calls = append(e.calls, c)
	e.mu.Unlock()
}

func (e *Emulator) serve(r *http.Request, c *Call) (map[string]any, error) {
	if r.Method != http.MethodPost {
		return nil, errorf("UnsupportedProtocol", "only POST with a JSON body is supported")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, errorf("InternalError", "the request body could not be read")
	}
	if len(body) > maxBody {
		return nil, errorf("RequestSizeLimitExceeded", "the request body exceeds 10 MB")
	}
	known := func(a string) bool { _, ok := actions[a]; return ok }
	if err := e.auth.CheckRequest(r, body, Version, known); err != nil {
		return nil, err
	}
	spec := actions[c.Action]
	if c.Region == "" {
		return nil, errorf("MissingParameter", "the request is missing the X-TC-Region header")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil, errorf("InvalidParameter.Payload", "the request body is not a JSON object")
	}
	c.Params = recordable(body)
	names := make([]string, 0, len(spec))
	for k := range spec {
		names = append(names, k)
	}
	slices.Sort(names)
	for k := range raw {
		if _, ok := spec[k]; !ok {
			return nil, errorf("UnknownParameter", "the parameter `%s` is not recognized", k)
		}
	}
	for _, k := range names {
		if _, ok := raw[k]; spec[k] && !ok {
			return nil, errorf("MissingParameter", "the request is missing the parameter `%s`", k)
		}
	}
	var p params
	if err := json.Unmarshal(body, &p); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, errorf("InvalidParameter", "the parameter `%s` has the wrong type", te.Field)
		}
		return nil, errorf("InvalidParameter", "the parameters could not be read")
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.throttle[c.Action] > 0 {
		e.throttle[c.Action]--
		return nil, errorf("RequestLimitExceeded", "your requests exceed the frequency limit of %s", c.Action)
	}
	if errs := e.errorNext[c.Action]; len(errs) > 0 {
		e.errorNext[c.Action] = errs[1:]
		return nil, errs[0]
	}
	for _, perm := range permissions(c.Action, p) {
		if e.denied[perm] {
			return nil, errorf("UnauthorizedOperation.CAM",
				"you are not authorized to perform operation (%s)\nresource (%s) has no permission", perm, e.resource(perm, c.Region, p))
		}
	}
	return e.run(c.Action, c.Region, p)
}

// permissions lists the CAM permissions a request needs.
func permissions(action string, p params) []string {
	perms := []string{"scf:" + action}
	if (action == "CreateFunction" || action == "UpdateFunctionConfiguration") && str(p.Role) != "" {
		perms = append(perms, "cam:PassRole")
	}
	return perms
}

func (e *Emulator) resource(perm, region string, p params) string {
	if perm == "cam:PassRole" {
		return "qcs::cam::uin/100000000001:roleName/" + str(p.Role)
	}
	return "qcs::scf:" + region + ":uin/100000000001:namespace/" + namespace(p.Namespace) + "/function/" + str(p.FunctionName)
}

// recordable decodes the body for Calls, with zip contents replaced by their length.
func recordable(body []byte) map[string]any {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	if z, ok := m["ZipFile"].(string); ok {
		m["ZipFile"] = len(z)
	}
	if code, ok := m["Code"].(map[string]any); ok {
		if z, ok := code["ZipFile"].(string); ok {
			code["ZipFile"] = len(z)
		}
	}
	return m
}
