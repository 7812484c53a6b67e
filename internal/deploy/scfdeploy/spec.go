package scfdeploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// Spec is a serverless.yml (component scf) with its variables resolved:
// what make deploy creates or updates.
type Spec struct {
	File        string // the file it was read from
	App, Stage  string
	Name        string // the instance name (${name})
	Function    string // the function's name
	Namespace   string // "" means default
	Region      string
	Description string // within SCF's character set (checked)
	Runtime     string
	Handler     string
	Type        string // the API's Type: Event or HTTP
	MemorySize  int64
	Timeout     int64
	InitTimeout int64
	Role        string
	Variables   []Variable // sorted by key; empty values left out
	VpcID       string
	SubnetID    string
	PublicNet   string // ENABLE, DISABLE, or "" when the file says nothing and there is no VPC
	URL         *URLTrigger
	Timers      []TimerTrigger
	APIGW       bool // the file has an apigw event: its triggers are left alone
	// Env looks a name up in the process environment, then in the .env files.
	Env func(string) string
}

// Variable is one environment variable of the function.
type Variable struct{ Key, Value string }

// URLTrigger is the Function URL (http trigger) the file asks for.
type URLTrigger struct {
	Name           string // http.parameters.name, else http.name, else DefaultURLTriggerName
	Qualifier      string
	AuthType       string
	EnableIntranet bool
	EnableExtranet bool
}

// DefaultURLTriggerName is the Function URL trigger's name when the file
// gives none: the component toolkit's (src/modules/triggers/http.ts,
// parameters.name || 'url-trigger'), so that Tencent's tools and make deploy
// manage the same trigger.
const DefaultURLTriggerName = "url-trigger"

// TimerTrigger is a timer trigger the file asks for (events: - timer).
type TimerTrigger struct {
	Name      string // timer.parameters.name, else timer.name
	Qualifier string // default $DEFAULT, as the toolkit's
	Cron      string // seven fields: second minute hour day month weekday year
	Enable    bool   // parameters.enable; unset means false, as in the toolkit
	Argument  string // parameters.argument: the event's Message
	Line      int
}

// DefaultRegion is the region when neither the file nor TENCENT_REGION names one.
const DefaultRegion = "ap-guangzhou"

var (
	refPattern = regexp.MustCompile(`\$\{([^}]*)\}`)
	envRef     = regexp.MustCompile(`^env:([A-Za-z_][A-Za-z0-9_]*)$`)
)

// LoadOptions say where a file's variables come from.
type LoadOptions struct {
	Stage  string              // overrides the file's stage when not ""
	Getenv func(string) string // the process environment (default os.Getenv)
	// DotenvDirs are searched, in order, for .env.<stage> and .env: the
	// first definition of a name wins, and the process environment wins over
	// all of them. Default: the file's folder, then the current folder.
	DotenvDirs []string
	// Fallback, when set, answers a name none of the above sets (the local
	// rehearsal's example values).
	Fallback func(string) string
}

// Load reads and resolves a serverless.yml.
func Load(path string, o LoadOptions) (*Spec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a YAML mapping", path)
	}
	root := doc.Content[0]
	if err := checkKeys(path, root, reflect.TypeFor[File](), "", false); err != nil {
		return nil, err
	}
	top := map[string]string{}
	for _, k := range []string{"app", "stage", "name", "org", "component"} {
		if n := lookup(root, k); n != nil {
			top[k] = n.Value
		}
	}
	if top["component"] != "scf" {
		return nil, fmt.Errorf("%s: component %q: make deploy deploys component scf", path, top["component"])
	}
	if o.Stage != "" {
		top["stage"] = o.Stage
	}
	if top["stage"] == "" {
		top["stage"] = "dev"
	}
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	dirs := o.DotenvDirs
	if dirs == nil {
		dirs = []string{filepath.Dir(path), "."}
	}
	env, err := dotenv(dirs, top["stage"])
	if err != nil {
		return nil, err
	}
	lookupEnv := func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		if v := env[name]; v != "" || o.Fallback == nil {
			return v
		}
		return o.Fallback(name)
	}
	r := resolver{file: path, top: top, env: lookupEnv}
	for _, k := range []string{"app", "name", "org"} { // the top-level values may use ${env:…} too
		if n := lookup(root, k); n != nil {
			v, err := r.scalar(n)
			if err != nil {
				return nil, err
			}
			top[k] = v
		}
	}
	inputs := lookup(root, "inputs")
	if inputs == nil {
		return nil, fmt.Errorf("%s: no inputs", path)
	}
	if err := r.walk(inputs); err != nil {
		return nil, err
	}
	s, err := fromInputs(path, top, inputs, lookupEnv)
	if err != nil {
		return nil, err
	}
	s.Env = lookupEnv
	return s, nil
}

func prefix(at string) string {
	if at == "" {
		return ""
	}
	return at + "."
}

func lookup(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// resolver replaces the variables of the scf component in place.
type resolver struct {
	file string
	top  map[string]string
	env  func(string) string
}

// walk resolves every scalar below n. A mapping entry whose value resolves
// to nothing is removed, as the CLI leaves such keys out.
func (r resolver) walk(n *yaml.Node) error {
	switch n.Kind {
	case yaml.MappingNode:
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if err := r.walk(v); err != nil {
				return err
			}
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" && v.Value == "" {
				continue
			}
			kept = append(kept, k, v)
		}
		n.Content = kept
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if err := r.walk(c); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		v, err := r.scalar(n)
		if err != nil {
			return err
		}
		if v != n.Value {
			n.Value, n.Style = v, 0
			n.Tag = "" // re-typed from the resolved text: 64 is an int, true a bool
			if v == "" {
				n.Tag = "!!null"
			}
		}
	}
	return nil
}

// scalar resolves one value: ${env:NAME}, ${name}, ${stage}, ${app}, ${org}.
func (r resolver) scalar(n *yaml.Node) (string, error) {
	var bad error
	out := refPattern.ReplaceAllStringFunc(n.Value, func(ref string) string {
		inner := ref[2 : len(ref)-1]
		if m := envRef.FindStringSubmatch(inner); m != nil {
			v := r.env(m[1])
			if v == "" && ref != n.Value && bad == nil {
				bad = fmt.Errorf("%s:%d: %s is not set, and inside %q it cannot be left out: set it, or use ${env:%s} as the whole value", r.file, n.Line, m[1], n.Value, m[1])
			}
			return v
		}
		switch inner {
		case "name", "stage", "app", "org":
			if v := r.top[inner]; v != "" {
				return v
			}
			if bad == nil {
				bad = fmt.Errorf("%s:%d: %s: the file sets no top-level %s", r.file, n.Line, ref, inner)
			}
			return ""
		}
		if bad == nil {
			bad = fmt.Errorf("%s:%d: %s cannot be resolved: make deploy (like the scf CLI) resolves only ${env:NAME}, ${name}, ${stage}, ${app} and ${org}", r.file, n.Line, ref)
		}
		return ""
	})
	return out, bad
}

// dotenv reads .env.<stage> then .env in each folder; the first definition wins.
func dotenv(dirs []string, stage string) (map[string]string, error) {
	env := map[string]string{}
	seen := map[string]bool{}
	for _, dir := range dirs {
		for _, name := range []string{".env." + stage, ".env"} {
			path := filepath.Join(dir, name)
			abs, _ := filepath.Abs(path)
			if seen[abs] {
				continue
			}
			seen[abs] = true
			b, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				return nil, err
			}
			vars, err := parseDotenv(path, b)
			if err != nil {
				return nil, err
			}
			for k, v := range vars {
				if _, ok := env[k]; !ok {
					env[k] = v
				}
			}
		}
	}
	return env, nil
}

var dotenvKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// parseDotenv reads KEY=VALUE lines: blank lines and # comments skipped, an
// optional "export ", values optionally quoted ('…' verbatim, "…" with \n
// escapes); an unquoted value ends at " #".
func parseDotenv(path string, b []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		text = strings.TrimPrefix(text, "export ")
		k, v, ok := strings.Cut(text, "=")
		k = strings.TrimSpace(k)
		if !ok || !dotenvKey.MatchString(k) {
			return nil, fmt.Errorf("%s:%d: not a NAME=value line", path, line)
		}
		v = strings.TrimSpace(v)
		switch {
		case len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'':
			v = v[1 : len(v)-1]
		case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
			v = strings.NewReplacer(`\n`, "\n", `\"`, `"`, `\\`, `\`).Replace(v[1 : len(v)-1])
		default:
			if i := strings.Index(v, " #"); i >= 0 {
				v = strings.TrimSpace(v[:i])
			}
		}
		out[k] = v
	}
	return out, sc.Err()
}

// fromInputs turns the resolved inputs into a Spec.
func fromInputs(path string, top map[string]string, inputs *yaml.Node, env func(string) string) (*Spec, error) {
	var in Inputs
	if err := withoutIgnored(inputs, reflect.TypeFor[Inputs]()).Decode(&in); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	line := func(keys ...string) int {
		n := inputs
		for _, k := range keys {
			if c := lookup(n, k); c != nil {
				n = c
			}
		}
		return n.Line
	}
	s := &Spec{File: path, App: top["app"], Stage: top["stage"], Name: top["name"],
		Function: in.Name, Namespace: in.Namespace, Region: in.Region,
		Description: in.Description, Runtime: in.Runtime, Handler: in.Handler, Role: in.Role,
		VpcID: in.VpcConfig.VpcID, SubnetID: in.VpcConfig.SubnetID}
	if s.Function == "" {
		s.Function = s.Name
	}
	if s.Function == "" {
		return nil, fmt.Errorf("%s: the function has no name (inputs.name or name)", path)
	}
	if !functionName.MatchString(s.Function) {
		return nil, fmt.Errorf("%s:%d: function name %q: SCF wants 2-60 letters, digits, - and _, starting with a letter and not ending in - or _", path, line("name"), s.Function)
	}
	if bad := descriptionProblem(s.Description); bad != "" {
		return nil, fmt.Errorf("%s:%d: description %q: %s", path, line("description"), s.Description, bad)
	}
	if s.Region == "" {
		s.Region = env("TENCENT_REGION")
	}
	if s.Region == "" {
		s.Region = DefaultRegion
	}
	switch in.Type {
	case "", "event":
		s.Type = "Event"
	case "web":
		s.Type = "HTTP"
	default:
		return nil, fmt.Errorf("%s: type %q: event or web", path, in.Type)
	}
	if s.Runtime == "" {
		return nil, fmt.Errorf("%s: inputs.runtime is not set (Go1 for this broker)", path)
	}
	if s.Type == "Event" && s.Handler == "" {
		return nil, fmt.Errorf("%s: inputs.handler is not set (main for this broker)", path)
	}
	def := func(p *int64, d int64) int64 {
		if p == nil {
			return d
		}
		return *p
	}
	// The API's defaults when a key is absent.
	s.MemorySize, s.Timeout, s.InitTimeout = def(in.MemorySize, 128), def(in.Timeout, 3), def(in.InitTimeout, 65)
	if (s.VpcID == "") != (s.SubnetID == "") {
		return nil, fmt.Errorf("%s: vpcConfig needs both vpcId and subnetId (one is empty)", path)
	}
	switch {
	case in.PublicAccess != nil && *in.PublicAccess:
		s.PublicNet = "ENABLE"
	case in.PublicAccess != nil:
		s.PublicNet = "DISABLE"
	case s.VpcID != "":
		s.PublicNet = "ENABLE" // CAR is a public API: a VPC keeps public egress unless the file says otherwise
	}
	for k, v := range in.Environment.Variables {
		if v.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s: variable %s must be a single value", path, k)
		}
		if v.Value == "" {
			continue // SCF refuses empty values: an unset variable is left out
		}
		s.Variables = append(s.Variables, Variable{k, v.Value})
	}
	slices.SortFunc(s.Variables, func(a, b Variable) int { return strings.Compare(a.Key, b.Key) })
	events := lookup(inputs, "events")
	for i, ev := range in.Events {
		evLine := line("events")
		if events != nil && i < len(events.Content) {
			item := events.Content[i]
			evLine = item.Line
			switch {
			case item.Kind == yaml.MappingNode && len(item.Content) > 2:
				k := item.Content[2]
				return nil, fmt.Errorf("%s:%d: %s is in the same events item as %s: one event per item (a dash missing before %s?)", path, k.Line, k.Value, item.Content[0].Value, k.Value)
			case item.Kind != yaml.MappingNode || len(item.Content) == 0:
				return nil, fmt.Errorf("%s:%d: an events item with no settings: make deploy cannot tell what to create (give the event its parameters, or remove the item)", path, evLine)
			}
		}
		switch {
		case ev.HTTP != nil:
			if s.URL != nil {
				return nil, fmt.Errorf("%s:%d: more than one http event: a function has one Function URL per alias", path, evLine)
			}
			p := ev.HTTP.Parameters
			u := &URLTrigger{Name: p.Name, Qualifier: p.Qualifier, AuthType: p.AuthType}
			if u.Name == "" {
				u.Name = ev.HTTP.Name
			}
			if u.Name == "" {
				u.Name = DefaultURLTriggerName
			}
			if !triggerName.MatchString(u.Name) {
				return nil, fmt.Errorf("%s:%d: http name %q: 1-100 letters, digits, - and _", path, evLine, u.Name)
			}
			if u.Qualifier == "" {
				u.Qualifier = "$DEFAULT"
			}
			if u.AuthType == "" {
				u.AuthType = "NONE"
			}
			if u.AuthType != "NONE" && u.AuthType != "CAM" {
				return nil, fmt.Errorf("%s:%d: http authType %q: NONE or CAM", path, evLine, u.AuthType)
			}
			if p.CorsConfig != nil && p.CorsConfig["enable"] != false {
				return nil, fmt.Errorf("%s:%d: http corsConfig is not supported by make deploy: the broker answers CORS itself (corsConfig: {enable: false}, or no corsConfig)", path, evLine)
			}
			u.EnableIntranet = p.NetConfig.EnableIntranet != nil && *p.NetConfig.EnableIntranet
			u.EnableExtranet = p.NetConfig.EnableExtranet != nil && *p.NetConfig.EnableExtranet
			s.URL = u
		case ev.Timer != nil:
			p := ev.Timer.Parameters
			t := TimerTrigger{Name: p.Name, Qualifier: p.Qualifier, Cron: strings.Join(strings.Fields(p.CronExpression), " "),
				Enable: p.Enable != nil && *p.Enable, Argument: p.Argument, Line: evLine}
			if t.Name == "" {
				t.Name = ev.Timer.Name
			}
			if t.Qualifier == "" {
				t.Qualifier = "$DEFAULT"
			}
			switch {
			case s.Type == "HTTP":
				return nil, fmt.Errorf("%s:%d: a timer trigger on a web function: SCF gives web functions HTTP triggers only", path, evLine)
			case !triggerName.MatchString(t.Name):
				return nil, fmt.Errorf("%s:%d: timer name %q: set parameters.name, 1-100 letters, digits, - and _", path, evLine, t.Name)
			case len(strings.Fields(t.Cron)) != 7:
				return nil, fmt.Errorf("%s:%d: timer cronExpression %q: seven fields, second minute hour day month weekday year (e.g. '0 */1 * * * * *')", path, evLine, p.CronExpression)
			case slices.ContainsFunc(s.Timers, func(o TimerTrigger) bool { return o.Name == t.Name }):
				return nil, fmt.Errorf("%s:%d: a second timer named %s", path, evLine, t.Name)
			}
			s.Timers = append(s.Timers, t)
		case ev.APIGW != nil:
			s.APIGW = true
		}
	}
	return s, nil
}

var (
	functionName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z0-9]$`)
	triggerName  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)
)

// descriptionProblem says what SCF would refuse in a description: it
// allows at most 1000 letters, digits, spaces, commas, periods, newlines
// and Chinese characters (the API reference's Description rule). "" when fine.
func descriptionProblem(d string) string {
	if n := len([]rune(d)); n > 1000 {
		return fmt.Sprintf("%d characters, SCF allows at most 1000", n)
	}
	var bad []string
	for _, r := range d {
		ok := r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') ||
			r == ' ' || r == ',' || r == '.' || r == '\n' || unicode.Is(unicode.Han, r)
		if !ok && !slices.Contains(bad, string(r)) {
			bad = append(bad, string(r))
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return fmt.Sprintf("SCF accepts only letters, digits, spaces, commas, periods, newlines and Chinese; remove %q", bad)
}
