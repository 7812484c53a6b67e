package scfdeploy

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// File is a serverless.yml of the scf component: every key make deploy
// reads, and no other. It is the schema's one declaration: Load checks a
// file's keys against it (any other key is an error naming its line: a
// deploy that silently ignored a setting would not be what the file says)
// and decodes the inputs into it; internal/deploy's tests check the
// repository's files with Decode. To use a new key, check it in the scf
// component's docs/configure.md, then add it here.
//
// A field tagged deploy:"ignored" is what make deploy leaves to Tencent's
// tools (the API Gateway trigger): Load neither checks the keys under it nor
// decodes its values (only that it is there), Decode does both.
type File struct {
	App       string `yaml:"app"`
	Stage     string `yaml:"stage"`
	Component string `yaml:"component"`
	Name      string `yaml:"name"`
	Org       string `yaml:"org"`
	Inputs    Inputs `yaml:"inputs"`
}

// Inputs are a File's inputs.
type Inputs struct {
	Src         yaml.Node `yaml:"src"` // a folder, or {src, exclude}: the CLI zips it, make deploy takes make package's zip
	Type        string    `yaml:"type"`
	Name        string    `yaml:"name"`
	Namespace   string    `yaml:"namespace"`
	Region      string    `yaml:"region"`
	Description string    `yaml:"description"`
	Runtime     string    `yaml:"runtime"`
	Handler     string    `yaml:"handler"`
	MemorySize  *int64    `yaml:"memorySize"`
	Timeout     *int64    `yaml:"timeout"`
	InitTimeout *int64    `yaml:"initTimeout"`
	Role        string    `yaml:"role"`
	Environment struct {
		Variables map[string]yaml.Node `yaml:"variables"`
	} `yaml:"environment"`
	VpcConfig struct {
		VpcID    string `yaml:"vpcId"`
		SubnetID string `yaml:"subnetId"`
	} `yaml:"vpcConfig"`
	PublicAccess *bool   `yaml:"publicAccess"`
	Events       []Event `yaml:"events"`
}

// Event is one item of inputs.events: one trigger.
type Event struct {
	HTTP  *HTTPEvent  `yaml:"http"`
	Timer *TimerEvent `yaml:"timer"`
	APIGW *APIGWEvent `yaml:"apigw" deploy:"ignored"`
}

// HTTPEvent is a Function URL.
type HTTPEvent struct {
	Name       string `yaml:"name"`
	Parameters struct {
		Name      string `yaml:"name"`
		Qualifier string `yaml:"qualifier"`
		AuthType  string `yaml:"authType"`
		NetConfig struct {
			EnableIntranet *bool `yaml:"enableIntranet"`
			EnableExtranet *bool `yaml:"enableExtranet"`
		} `yaml:"netConfig"`
		CorsConfig map[string]any `yaml:"corsConfig"`
	} `yaml:"parameters"`
}

// TimerEvent is a timer trigger.
type TimerEvent struct {
	Name       string `yaml:"name"`
	Parameters struct {
		Name           string `yaml:"name"`
		Qualifier      string `yaml:"qualifier"`
		CronExpression string `yaml:"cronExpression"`
		Enable         *bool  `yaml:"enable"`
		Argument       string `yaml:"argument"`
	} `yaml:"parameters"`
}

// APIGWEvent is an API Gateway trigger, as the docs/deploy/apigw variant
// writes it.
type APIGWEvent struct {
	Name       string `yaml:"name"`
	Parameters struct {
		ServiceID   string          `yaml:"serviceId"`
		ServiceName string          `yaml:"serviceName"`
		Protocols   []string        `yaml:"protocols"`
		Environment string          `yaml:"environment"`
		Description string          `yaml:"description"`
		Endpoints   []APIGWEndpoint `yaml:"endpoints"`
	} `yaml:"parameters"`
}

// APIGWEndpoint is one API of an API Gateway trigger.
type APIGWEndpoint struct {
	Path           string `yaml:"path"`
	Method         string `yaml:"method"`
	Description    string `yaml:"description"`
	EnableCORS     *bool  `yaml:"enableCORS"`
	ServiceTimeout *int64 `yaml:"serviceTimeout"`
	Function       struct {
		IsIntegratedResponse *bool  `yaml:"isIntegratedResponse"`
		FunctionQualifier    string `yaml:"functionQualifier"`
	} `yaml:"function"`
}

// Decode parses YAML text as written (no variable resolved) into v, a
// *File or a part of one (*Inputs for an inputs block): every key is
// checked, the ignored ones' too, and the first one the schema lacks is
// an error naming its line.
func Decode(name string, raw []byte, v any) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(doc.Content) != 1 {
		return fmt.Errorf("%s: not one YAML document", name)
	}
	if err := checkKeys(name, doc.Content[0], reflect.TypeOf(v), "", true); err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

var nodeType = reflect.TypeFor[yaml.Node]()

// checkKeys reports the first key of n that t does not declare, with its
// line; at is n's path in the file. Below a field tagged deploy:"ignored"
// it checks only with all.
func checkKeys(file string, n *yaml.Node, t reflect.Type, at string, all bool) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == nodeType:
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Value == "" {
				return nil
			}
			return fmt.Errorf("%s:%d: %s must be a mapping", file, n.Line, at)
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			f, ok := fields[k.Value]
			if !ok {
				return fmt.Errorf("%s:%d: %s%s is not a setting make deploy supports (supported: %s)", file, k.Line, prefix(at), k.Value, strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
			}
			if !all && f.Tag.Get("deploy") == "ignored" {
				continue
			}
			if err := checkKeys(file, n.Content[i+1], f.Type, prefix(at)+k.Value, all); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return fmt.Errorf("%s:%d: %s must be a list", file, n.Line, at)
		}
		for _, c := range n.Content {
			if err := checkKeys(file, c, t.Elem(), at+"[]", all); err != nil {
				return err
			}
		}
	}
	return nil
}

// yamlFields maps the keys of struct type t to its fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	fields := map[string]reflect.StructField{}
	for f := range t.Fields() {
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" && name != "-" {
			fields[name] = f
		}
	}
	return fields
}

// withoutIgnored returns n, a value of type t, with the value of every
// field tagged deploy:"ignored" replaced by an empty mapping, for Load to
// decode: make deploy reads only that such a block is there and leaves its
// values to Tencent's tools, which accept more than the schema's types
// (the component toolkit takes apigw's protocols as a list or a string).
// n itself is not changed.
func withoutIgnored(n *yaml.Node, t reflect.Type) *yaml.Node {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == nodeType:
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		c := *n
		c.Content = slices.Clone(n.Content)
		fields := yamlFields(t)
		for i := 0; i+1 < len(c.Content); i += 2 {
			f, ok := fields[c.Content[i].Value]
			switch {
			case !ok:
			case f.Tag.Get("deploy") == "ignored":
				c.Content[i+1] = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: c.Content[i+1].Line, Column: c.Content[i+1].Column}
			default:
				c.Content[i+1] = withoutIgnored(c.Content[i+1], f.Type)
			}
		}
		return &c
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		c := *n
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, e := range n.Content {
			c.Content[i] = withoutIgnored(e, t.Elem())
		}
		return &c
	}
	return n
}
