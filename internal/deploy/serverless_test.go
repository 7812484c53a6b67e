package deploy

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"gopkg.in/yaml.v3"

	"carbroker/internal/config"
	"carbroker/internal/deploy/pack"
	"carbroker/internal/deploy/scfdeploy"
)

// root is the repository root, seen from this package.
var root = filepath.Join("..", "..")

// The files under test: where each lives, and what kind of function it deploys.
var files = []struct {
	path    string // relative to root
	kind    string // "event" or "web"
	trigger string // "http" or "apigw"
	timer   bool   // a timer trigger follows (the event variant's lease sweep)
}{
	{"serverless.yml", "event", "http", true},
	{"docs/deploy/apigw/serverless.yml", "event", "apigw", false},
	{"docs/deploy/web/serverless.yml", "web", "http", false},
}

// load reads a file, every key checked against make deploy's schema
// (scfdeploy.File): a typo the CLI would silently ignore is an error.
func load(t *testing.T, rel string) ([]byte, scfdeploy.File) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	var inst scfdeploy.File
	if err := scfdeploy.Decode(rel, b, &inst); err != nil {
		t.Fatal(err)
	}
	return b, inst
}

func TestServerlessFiles(t *testing.T) {
	seen := map[string]string{}
	for _, f := range files {
		t.Run(f.path, func(t *testing.T) {
			raw, inst := load(t, f.path)
			for _, p := range checkFile(f.path, raw, f.kind, f.trigger, f.timer) {
				t.Error(p)
			}
			id := inst.App + "/" + inst.Stage + "/" + inst.Name
			if other, ok := seen[id]; ok {
				t.Errorf("instance %s is also %s's: deploying one would replace the other", id, other)
			}
			seen[id] = f.path
		})
	}
}

// problems collects what is wrong with a file, one sentence each.
type problems []string

func (p *problems) add(format string, a ...any) { *p = append(*p, fmt.Sprintf(format, a...)) }

// checkFile checks one file, found at rel (relative to the repository root),
// which must deploy a function of type kind with one trigger (and, with
// timer, the lease sweep's timer after it).
func checkFile(rel string, raw []byte, kind, trigger string, timer bool) problems {
	var p problems
	var inst scfdeploy.File
	if err := scfdeploy.Decode(rel, raw, &inst); err != nil {
		p.add("%v", err)
		return p
	}
	checkVariableSyntax(&p, raw)
	checkInstance(&p, rel, inst, kind)
	checkEnvironment(&p, inst.Inputs.Environment.Variables)
	want := 1
	if timer {
		want = 2
	}
	if len(inst.Inputs.Events) != want {
		p.add("%d events, want %d: the %s trigger (and the sweep's timer on the event variant)", len(inst.Inputs.Events), want, trigger)
		return p
	}
	var timeout int64
	if inst.Inputs.Timeout != nil {
		timeout = *inst.Inputs.Timeout
	}
	checkEvent(&p, inst.Inputs.Events[0], trigger, timeout)
	if timer {
		checkTimer(&p, inst.Inputs.Events[1])
	}
	return p
}

// checkTimer checks the lease sweep's timer: every minute, enabled (the
// component's default is disabled), named, on $DEFAULT.
func checkTimer(p *problems, ev scfdeploy.Event) {
	if ev.Timer == nil || ev.HTTP != nil || ev.APIGW != nil {
		p.add("the second event must be the sweep's timer, alone")
		return
	}
	t := ev.Timer.Parameters
	if t.Name == "" {
		p.add("timer: parameters.name is not set (make deploy and the component find the trigger by it)")
	}
	if t.Qualifier != "$DEFAULT" {
		p.add("timer qualifier %q, want $DEFAULT", t.Qualifier)
	}
	if t.CronExpression != "0 */1 * * * * *" {
		p.add("timer cronExpression %q, want '0 */1 * * * * *' (every minute; seven fields: second minute hour day month weekday year)", t.CronExpression)
	}
	if t.Enable == nil || !*t.Enable {
		p.add("timer enable must be true (the component's default is false)")
	}
}

var (
	envRef       = regexp.MustCompile(`^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$`)
	anyRef       = regexp.MustCompile(`\$\{([^}]*)\}`)
	functionName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z0-9]$`)
	variableKey  = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]*$`)
)

// checkVariableSyntax walks every string of the file. The CLI resolves only
// ${env:NAME}, and inside a longer string an unset one becomes "undefined";
// the engine resolves ${name}, ${stage}, ${app} and ${org}; the CLI rejects
// Serverless Framework v1 variables (${self:…}, ${opt:…}, ${file:…}).
func checkVariableSyntax(p *problems, raw []byte) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		p.add("%v", err)
		return
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			for _, m := range anyRef.FindAllStringSubmatch(n.Value, -1) {
				switch ref := m[1]; {
				case ref == "name" || ref == "stage" || ref == "app" || ref == "org":
				case strings.HasPrefix(ref, "env:"):
					if !envRef.MatchString(n.Value) {
						p.add("line %d: %q: use ${env:NAME} only as the whole value", n.Line, n.Value)
					}
				default:
					p.add("line %d: %q: ${%s} is not a variable the scf component resolves", n.Line, n.Value, ref)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
}

func checkInstance(p *problems, rel string, inst scfdeploy.File, kind string) {
	in := inst.Inputs
	if inst.Component != "scf" {
		p.add("component %q, want scf", inst.Component)
	}
	if inst.App == "" || inst.Stage == "" || inst.Name == "" {
		p.add("app %q, stage %q, name %q: set all three", inst.App, inst.Stage, inst.Name)
	}
	name := strings.NewReplacer("${name}", inst.Name, "${stage}", inst.Stage, "${app}", inst.App).Replace(in.Name)
	if !functionName.MatchString(name) {
		p.add("function name %q (%q): 2-60 letters, digits, - and _, starting with a letter, not ending in - or _", in.Name, name)
	}
	if in.Type != kind {
		p.add("type %q, want %q", in.Type, kind)
	}
	for _, r := range in.Description {
		if !(r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') || r == ' ' || r == ',' || r == '.' || r == '\n' || unicode.Is(unicode.Han, r)) {
			p.add("description %q: SCF accepts only letters, digits, spaces, commas, periods, newlines and Chinese, not %q", in.Description, r)
			break
		}
	}
	switch kind {
	case "event":
		if in.Runtime != "Go1" {
			p.add("runtime %q: a Go event function runs on Go1", in.Runtime)
		}
		if in.Handler != pack.Binary {
			p.add("handler %q, want %q, the binary at the root of the package", in.Handler, pack.Binary)
		}
	case "web":
		if in.Runtime != "Go1" && in.Runtime != "CustomRuntime" {
			p.add("runtime %q: a Go web function runs on Go1 or CustomRuntime", in.Runtime)
		}
		if in.Handler != "" {
			p.add("handler %q: a web function has none, SCF runs %s", in.Handler, pack.Bootstrap)
		}
	}
	switch m := in.MemorySize; {
	case m == nil:
		p.add("memorySize unset (the component's default is 128)")
	case *m != 64 && (*m < 128 || *m > 3072 || *m%128 != 0):
		p.add("memorySize %d: 64, or 128-3072 in steps of 128", *m)
	}
	if t := in.Timeout; t == nil || *t < 1 || *t > 900 {
		p.add("timeout %v: set it, 1-900 s", deref(t))
	}
	if t := in.InitTimeout; t == nil || *t < 3 || *t > 300 {
		p.add("initTimeout %v: set it, 3-300 s", deref(t))
	}
	for _, kv := range [][2]string{{"region", in.Region}, {"namespace", in.Namespace}, {"role", in.Role}} {
		if !envRef.MatchString(kv[1]) {
			p.add("%s %q: want ${env:NAME}, so that each deployment chooses its own", kv[0], kv[1])
		}
	}

	// src is the folder the packer stages, relative to the file's own folder
	// (scf deploy --target <folder> resolves it there).
	var src string
	switch in.Src.Kind {
	case yaml.ScalarNode:
		src = in.Src.Value
	case yaml.MappingNode:
		var obj struct {
			Src     string   `yaml:"src"`
			Exclude []string `yaml:"exclude"`
		}
		if err := in.Src.Decode(&obj); err != nil {
			p.add("src: %v", err)
		}
		src = obj.Src
	}
	got := filepath.Clean(filepath.Join(root, filepath.Dir(rel), src))
	if want := filepath.Join(root, "dist", "function"); src == "" || got != want {
		p.add("src %q resolves to %s, want the staged folder %s", src, got, want)
	}
}

func deref(p *int64) any {
	if p == nil {
		return "unset"
	}
	return *p
}

func checkEnvironment(p *problems, vars map[string]yaml.Node) {
	for _, key := range slices.Sorted(maps.Keys(vars)) {
		if !variableKey.MatchString(key) {
			p.add("variable %q: SCF keys match [a-zA-Z][a-zA-Z0-9_]*", key)
		}
		for _, prefix := range []string{"SCF_", "QCLOUD_", "TENCENTCLOUD_"} {
			if strings.HasPrefix(key, prefix) {
				p.add("variable %q: the prefix %s is reserved by SCF", key, prefix)
			}
		}
		v := vars[key]
		if m := envRef.FindStringSubmatch(v.Value); v.Kind != yaml.ScalarNode || m == nil || m[1] != key {
			p.add("variable %s: %q, want ${env:%s}: settings and secrets come from the deploying environment", key, v.Value, key)
		}
		if !slices.Contains(config.Keys, key) {
			p.add("variable %s is not one of the broker's settings (config.Keys)", key)
		}
	}
	// Every setting the function reads outside dev mode, as ${env:NAME}.
	for _, key := range config.Keys {
		if _, ok := vars[key]; !ok {
			p.add("environment.variables lacks %s: ${env:%s}", key, key)
		}
	}
}

func checkEvent(pr *problems, ev scfdeploy.Event, trigger string, timeout int64) {
	switch {
	case ev.HTTP != nil && ev.APIGW != nil:
		pr.add("one event item holds two triggers")
		return
	case trigger == "http" && ev.HTTP == nil, trigger == "apigw" && ev.APIGW == nil:
		pr.add("want an %s trigger", trigger)
		return
	}
	if h := ev.HTTP; h != nil {
		p := h.Parameters
		if p.Qualifier != "$DEFAULT" {
			pr.add("http qualifier %q, want $DEFAULT (the default traffic)", p.Qualifier)
		}
		if p.AuthType != "NONE" && p.AuthType != "CAM" {
			pr.add("http authType %q: NONE or CAM", p.AuthType)
		}
		if e := p.NetConfig.EnableExtranet; e == nil || !*e {
			pr.add("http netConfig.enableExtranet must be true (the component's default is false)")
		}
		if e := p.NetConfig.EnableIntranet; e != nil && *e {
			pr.add("http netConfig.enableIntranet: the broker is reached from the internet only")
		}
		if c := p.CorsConfig; c != nil && c["enable"] != false {
			pr.add("http corsConfig enabled: the broker answers CORS, two Access-Control-Allow-Origin headers break browsers")
		}
	}
	if a := ev.APIGW; a != nil {
		p := a.Parameters
		if !envRef.MatchString(p.ServiceID) {
			pr.add("apigw serviceId %q: want ${env:NAME}; without it the component creates a service, and new API Gateway triggers are refused since 2024-07-01", p.ServiceID)
		}
		if !slices.Contains(p.Protocols, "https") || slices.ContainsFunc(p.Protocols, func(s string) bool { return s != "http" && s != "https" }) {
			pr.add("apigw protocols %q: https (and http)", p.Protocols)
		}
		if !slices.Contains([]string{"release", "prepub", "test"}, p.Environment) {
			pr.add("apigw environment %q: release, prepub or test", p.Environment)
		}
		if len(p.Endpoints) == 0 {
			pr.add("apigw: no endpoints")
		}
		for i, e := range p.Endpoints {
			if !strings.HasPrefix(e.Path, "/") || e.Method == "" {
				pr.add("apigw endpoint %d: path %q, method %q", i, e.Path, e.Method)
			}
			if r := e.Function.IsIntegratedResponse; r == nil || !*r {
				pr.add("apigw endpoint %s: function.isIntegratedResponse must be true (the component's default is false)", e.Path)
			}
			if c := e.EnableCORS; c != nil && *c {
				pr.add("apigw endpoint %s: enableCORS: the broker answers CORS", e.Path)
			}
			if s := e.ServiceTimeout; s != nil && (*s < timeout || *s > 1800) {
				pr.add("apigw endpoint %s: serviceTimeout %d, want %d (the function's timeout) to 1800", e.Path, *s, timeout)
			}
		}
	}
}

// TestCommentedVariants checks that the variants shown as comments in
// serverless.yml are valid and say what the variant files say.
func TestCommentedVariants(t *testing.T) {
	raw, _ := load(t, "serverless.yml")
	blocks := commentedBlocks(string(raw))
	if len(blocks) != 2 {
		t.Fatalf("found variants %v, want apigw and web", slices.Sorted(maps.Keys(blocks)))
	}

	var apigw scfdeploy.Inputs
	if err := scfdeploy.Decode("the apigw block", []byte(blocks["apigw"]), &apigw); err != nil {
		t.Fatalf("%v\n%s", err, blocks["apigw"])
	}
	_, file := load(t, "docs/deploy/apigw/serverless.yml")
	if len(apigw.Events) != 1 {
		t.Fatalf("apigw block: %d events, want 1", len(apigw.Events))
	}
	var p problems
	checkEvent(&p, apigw.Events[0], "apigw", *file.Inputs.Timeout)
	for _, msg := range p {
		t.Error("apigw block: " + msg)
	}
	if !reflect.DeepEqual(apigw.Events, file.Inputs.Events) {
		t.Error("the apigw block in serverless.yml and docs/deploy/apigw/serverless.yml differ")
	}

	var web scfdeploy.Inputs
	if err := scfdeploy.Decode("the web block", []byte(blocks["web"]), &web); err != nil {
		t.Fatalf("%v\n%s", err, blocks["web"])
	}
	_, file = load(t, "docs/deploy/web/serverless.yml")
	if web.Type != "web" || web.Type != file.Inputs.Type || web.Runtime != file.Inputs.Runtime {
		t.Errorf("web block: type %q runtime %q; docs/deploy/web/serverless.yml: type %q runtime %q",
			web.Type, web.Runtime, file.Inputs.Type, file.Inputs.Runtime)
	}
}

// commentedBlocks returns the YAML of each "# >>> variant NAME" … "# <<<"
// block: its comment lines uncommented, from the first that starts with a key.
var keyLine = regexp.MustCompile(`^[A-Za-z]+:( |$)`)

func commentedBlocks(s string) map[string]string {
	blocks := map[string]string{}
	var name string
	var yamlStarted bool
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "# >>> variant "):
			name = strings.TrimSuffix(strings.Fields(trimmed)[3], ":")
			yamlStarted = false
			b.Reset()
		case name != "" && trimmed == "# <<<":
			blocks[name] = b.String()
			name = ""
		case name != "":
			text := strings.TrimPrefix(strings.TrimPrefix(trimmed, "#"), " ")
			if !yamlStarted && keyLine.MatchString(text) {
				yamlStarted = true
			}
			if yamlStarted {
				b.WriteString(text + "\n")
			}
		}
	}
	return blocks
}

// TestStagedFolder runs the packer on a fake binary and the boot file that
// ships, and checks the staged folder holds what the handler and a web
// function need, executable.
func TestStagedFolder(t *testing.T) {
	bin := make([]byte, 64)
	copy(bin, "\x7fELF\x02\x01")
	bin[18] = 0x3e
	binPath := filepath.Join(t.TempDir(), "main")
	if err := os.WriteFile(binPath, bin, 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := pack.Load(binPath, filepath.Join(root, "function", "scf_bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "dist", "function")
	if err := pack.Stage(dir, files); err != nil {
		t.Fatal(err)
	}
	_, inst := load(t, "serverless.yml")
	for _, name := range []string{inst.Inputs.Handler, pack.Bootstrap} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("the staged folder lacks %s: %v", name, err)
		}
		if !st.Mode().IsRegular() || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: mode %v, want -rwxr-xr-x", name, st.Mode())
		}
	}
}

// TestMakePackageStagesSrc checks that make package, with its defaults,
// stages the folder serverless.yml deploys (dist/function): make -n prints
// the commands make package would run, and the packer's is among them.
// (TestMakeDeploy in internal/cmd/deploy runs make package for real.)
func TestMakePackageStagesSrc(t *testing.T) {
	if testing.Short() {
		t.Skip("make-driven (-short)")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	for _, k := range []string{"DIST", "ZIP"} {
		if os.Getenv(k) != "" {
			t.Skipf("%s is set in this environment", k)
		}
	}
	out, err := exec.Command("make", "-n", "--no-print-directory", "-C", root, "package").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n package: %v\n%s", err, out)
	}
	var pack string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "./internal/cmd/pack") {
			pack = line
		}
	}
	if f := strings.Fields(pack); !slices.Contains(f, "-dir") || f[slices.Index(f, "-dir")+1] != filepath.Join("dist", "function") {
		t.Errorf("make package does not stage dist/function, the src of serverless.yml; it runs:\n%s", out)
	}
}

// TestChecksCatchMistakes breaks the real files one way at a time and expects
// the checks to say so: a check that cannot fail proves nothing.
func TestChecksCatchMistakes(t *testing.T) {
	cases := []struct {
		file     int // index in files
		old, new string
		want     string
	}{
		{0, "component: scf", "component: express", "component"},
		{0, "runtime: Go1", "runtime: Nodejs12.16", "runtime"},
		{0, "handler: main", "handler: index.main_handler", "handler"},
		{0, "memorySize: 64", "memorySize: 100", "memorySize 100"},
		{0, "memorySize: 64", "memorySize: 3200", "memorySize 3200"},
		{0, "memorySize: 64", "memorysize: 64", "inputs.memorysize is not a setting"},
		{0, "timeout: 15", "timeout: 901", "timeout 901"},
		{0, "initTimeout: 10", "initTimeout: 1", "initTimeout 1"},
		{0, "src: ./dist/function", "src: ./dist", "staged folder"},
		{0, "src: ./dist/function", "src: {src: ./dist/function, exclude: ['*.md']}", ""},
		{0, "role: ${env:SCF_ROLE}", "role: SCF_QcsRole", "role"},
		{0, "region: ${env:TENCENT_REGION}", "region: ap-${env:TENCENT_REGION}", "whole value"},
		{0, "description: CAR session broker, carbroker", "description: ${self:custom.x}", "not a variable"},
		{0, "description: CAR session broker, carbroker", "description: CAR session broker (carbroker)", "description"},
		{2, "description: CAR session broker, carbroker, web function", "description: carbroker - web", "description"},
		{0, "cronExpression: '0 */1 * * * * *'", "cronExpression: '*/1 * * * *'", "cronExpression"},
		{0, "          enable: true # the component's default is false\n", "", "enable must be true"},
		{0, "          name: sweep\n", "", "parameters.name"},
		{0, "name: ${name}-${stage}", "name: ${name}-${stage}-", "function name"},
		{0, "CAR_ENDPOINT: ${env:CAR_ENDPOINT}", "CAR_ENDPOINT: car.tencentcloudapi.com", "variable CAR_ENDPOINT"},
		{0, "CAR_ENDPOINT: ${env:CAR_ENDPOINT}", "CAR_ENDPOINT: ${env:CAR_HOST}", "variable CAR_ENDPOINT"},
		{0, "      LOG_LEVEL: ${env:LOG_LEVEL}\n", "", "lacks LOG_LEVEL"},
		{0, "      LOG_LEVEL: ${env:LOG_LEVEL}\n", "      LOG_LEVEL: ${env:LOG_LEVEL}\n      SCF_DEBUG: ${env:SCF_DEBUG}\n", "reserved"},
		{0, "      LOG_LEVEL: ${env:LOG_LEVEL}\n", "      LOG_LEVEL: ${env:LOG_LEVEL}\n      1X: ${env:1X}\n", "SCF keys match"},
		{0, "enableExtranet: true", "enableExtranet: false", "enableExtranet"},
		{0, "enableIntranet: false", "enableIntranet: true", "enableIntranet"},
		{0, "authType: NONE", "authType: OPEN", "authType"},
		{0, "qualifier: $DEFAULT", "qualifier: ''", "qualifier"},
		{0, "            enableIntranet: false\n", "            enableIntranet: false\n          corsConfig: {enable: true, origins: '*'}\n", "corsConfig"},
		{0, "            enableIntranet: false\n", "            enableIntranet: false\n          corsConfig: {enable: false}\n", ""},
		{0, "    - http:", "    - cos:", "inputs.events[].cos is not a setting"},
		{1, "isIntegratedResponse: true", "isIntegratedResponse: false", "isIntegratedResponse"},
		{1, "serviceTimeout: 15", "serviceTimeout: 10", "serviceTimeout 10"},
		{1, "serviceId: ${env:APIGW_SERVICE_ID}", "serviceName: carbroker", "serviceId"},
		{1, "protocols: [https]", "protocols: [http]", "protocols"},
		{1, "enableCORS: false", "enableCORS: true", "enableCORS"},
		{1, "enableCORS: false", "enableCors: false", "endpoints[].enableCors is not a setting"},
		{1, "src: ../../../dist/function", "src: ./dist/function", "staged folder"},
		{2, "runtime: Go1", "runtime: Nodejs12.16", "runtime"},
		{2, "type: web", "type: event", "type"},
		{2, "  runtime: Go1\n", "  runtime: CustomRuntime\n", ""},
		{2, "  runtime: Go1\n", "  runtime: Go1\n  handler: main\n", "handler"},
	}
	for _, c := range cases {
		f := files[c.file]
		raw, err := os.ReadFile(filepath.Join(root, f.path))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(raw, []byte(c.old)) {
			t.Errorf("%s no longer contains %q: update this case", f.path, c.old)
			continue
		}
		broken := bytes.Replace(raw, []byte(c.old), []byte(c.new), 1)
		got := checkFile(f.path, broken, f.kind, f.trigger, f.timer)
		switch {
		case c.want == "" && len(got) > 0:
			t.Errorf("%s with %q: %q, want no problem", f.path, c.new, got)
		case c.want != "" && !slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, c.want) }):
			t.Errorf("%s with %q: %q, want a problem mentioning %q", f.path, c.new, got, c.want)
		}
	}
}
