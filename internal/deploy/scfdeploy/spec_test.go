package scfdeploy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"carbroker/internal/config"
)

const minimal = `app: carbroker
stage: dev
component: scf
name: carbroker
inputs:
  name: ${name}-${stage}
  region: ${env:TENCENT_REGION}
  description: CAR broker ${app}, v2.
  runtime: Go1
  handler: main
  memorySize: ${env:MEM}
  timeout: 15
  initTimeout: 10
  role: ${env:SCF_ROLE}
  environment:
    variables:
      A: ${env:A}
      B: ${env:B}
      C: literal
  events:
    - http:
        parameters:
          qualifier: $DEFAULT
          authType: NONE
          netConfig:
            enableExtranet: true
`

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadResolves(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "serverless.yml", minimal)
	writeFile(t, dir, ".env", "# comment\nexport A=from-dotenv\nB=\"two\\nlines\"\nMEM=128 # MB\nSCF_ROLE=role-from-dotenv\nTENCENT_REGION=ap-shanghai\n")
	writeFile(t, dir, ".env.prod", "A='from prod # not a comment'\n")
	env := map[string]string{"SCF_ROLE": "role-from-env"}
	s, err := Load(file, LoadOptions{Getenv: func(k string) string { return env[k] }, DotenvDirs: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Function != "carbroker-dev" || s.Region != "ap-shanghai" || s.MemorySize != 128 || s.Role != "role-from-env" ||
		s.Description != "CAR broker carbroker, v2." || s.Type != "Event" || s.URL == nil || !s.URL.EnableExtranet || s.URL.EnableIntranet {
		t.Errorf("%+v", s)
	}
	if got := s.Variables; len(got) != 3 || got[0] != (Variable{"A", "from-dotenv"}) || got[1] != (Variable{"B", "two\nlines"}) || got[2] != (Variable{"C", "literal"}) {
		t.Errorf("variables %v", got)
	}
	s, err = Load(file, LoadOptions{Stage: "prod", Getenv: func(k string) string { return env[k] }, DotenvDirs: []string{dir}})
	if err != nil || s.Function != "carbroker-prod" || s.Variables[0].Value != "from prod # not a comment" {
		t.Errorf("stage prod: %v %+v", err, s)
	}
	delete(env, "SCF_ROLE")
	if err := os.Remove(filepath.Join(dir, ".env")); err != nil {
		t.Fatal(err)
	}
	s, err = Load(file, LoadOptions{Getenv: func(k string) string { return env[k] }, DotenvDirs: []string{dir}})
	if err != nil || s.Region != DefaultRegion || s.MemorySize != 128 || s.Role != "" || len(s.Variables) != 1 {
		t.Errorf("nothing set: %v %+v", err, s)
	}
}

func TestLoadErrorsNameTheLine(t *testing.T) {
	for _, c := range []struct{ old, new, want string }{
		{"handler: main", "handler: ${self:custom.handler}", ":10: ${self:custom.handler} cannot be resolved"},
		{"handler: main", "handler: ${opt:stage}", ":10: ${opt:stage} cannot be resolved"},
		{"region: ${env:TENCENT_REGION}", "region: ap-${env:ZONE}", ":7: ZONE is not set"},
		{"  timeout: 15", "  timeout: 15\n  layers: [x]", ":13: inputs.layers is not a setting make deploy supports"},
		{"            enableExtranet: true", "            enableExtranet: true\n          corsConfig: {enable: true}", "corsConfig"},
		{"component: scf", "component: express", "component \"express\""},
		{"authType: NONE", "authType: OPEN", "authType \"OPEN\""},
	} {
		dir := t.TempDir()
		file := writeFile(t, dir, "serverless.yml", strings.Replace(minimal, c.old, c.new, 1))
		_, err := Load(file, LoadOptions{Getenv: func(string) string { return "" }, DotenvDirs: []string{}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.new, err, c.want)
		}
	}
	dir := t.TempDir()
	file := writeFile(t, dir, "serverless.yml", strings.Replace(minimal, "region: ${env:TENCENT_REGION}", "region: ap-${env:ZONE}", 1))
	if s, err := Load(file, LoadOptions{Getenv: func(k string) string { return map[string]string{"ZONE": "beijing"}[k] }, DotenvDirs: []string{}}); err != nil || s.Region != "ap-beijing" {
		t.Errorf("set inside a string: %v", err)
	}
}

// TestAPIGWIsLeftToTheComponent: make deploy leaves an API Gateway trigger
// to Tencent's tools, so Load accepts any of the component's keys under
// apigw; Decode, which checks the repository's files, accepts only the
// schema's.
func TestAPIGWIsLeftToTheComponent(t *testing.T) {
	file := strings.Replace(minimal, "    - http:", "    - apigw:\n        parameters:\n          serviceId: service-1\n          apiName: broker\n    - http:", 1)
	s, err := Load(writeFile(t, t.TempDir(), "serverless.yml", file), LoadOptions{Getenv: func(string) string { return "" }, DotenvDirs: []string{}})
	if err != nil || !s.APIGW {
		t.Errorf("Load: %v %+v", err, s)
	}
	var f File
	if err := Decode("serverless.yml", []byte(file), &f); err == nil || !strings.Contains(err.Error(), ":24: inputs.events[].apigw.parameters.apiName is not a setting") {
		t.Errorf("Decode: %v", err)
	}
}

func TestMasked(t *testing.T) {
	for _, c := range []struct{ key, value, want string }{
		{"AUTH_SECRET", "s3cret", "<secret>"},
		{"JWT_SECRET", "s3cret", "<secret>"},
		{"COMPAT_SIGN_SALT", "s3cret", "<secret>"},
		{"SMS_API_KEY", "s3cret", "<secret>"},
		{"QUEUE_REDIS_URL", "redis://user:s3cret@host:6379/0", "redis://user:<secret>@host:6379/0"},
		{"QUEUE_REDIS_URL", "rediss://:s3cret@host:6380", "rediss://:<secret>@host:6380"},
		{"QUEUE_REDIS_URL", "redis://host:6379", "redis://host:6379"},
		// The credentials are everything between :// and the LAST @: a
		// password may hold an unescaped /, ?, # or @ (TencentDB's
		// account@password), and is masked whole.
		{"QUEUE_REDIS_URL", "redis://:s3cret/#x@host:6379", "redis://:<secret>@host:6379"},
		{"QUEUE_REDIS_URL", "redis://:acct@s3c/ret@10.0.0.5:6379/0", "redis://:<secret>@10.0.0.5:6379/0"},
		{"QUEUE_REDIS_URL", "redis://broker:s3c?ret#x@10.0.0.5:6379", "redis://broker:<secret>@10.0.0.5:6379"},
		{"QUEUE_REDIS_URL", "redis://s3cret@host:6379", "redis://<secret>@host:6379"},
		// Options after the host are masked whole, as in the broker's logs
		// (resp.RedactURL); a value that is no URL is shown as it is.
		{"QUEUE_REDIS_URL", "redis://10.0.0.5:6379/0?password=s3cret&db=0", "redis://10.0.0.5:6379/0?<secret>"},
		{"ALERT_EMAIL", "ops@example.com", "ops@example.com"},
		{"CAR_PROJECT_ID", "cap-1", "cap-1"},
	} {
		if got := Masked(c.key, c.value); got != c.want || strings.Contains(got, "s3c") || strings.Contains(got, "ret#") {
			t.Errorf("Masked(%s, %s) = %s, want %s", c.key, c.value, got, c.want)
		}
	}
	// Every setting the broker declares secret, whatever its name.
	for _, k := range config.Keys {
		if config.Secret(k) && Masked(k, "s3cret") != "<secret>" {
			t.Errorf("%s, a secret setting (config), is printed: %s", k, Masked(k, "s3cret"))
		}
	}
}

// TestDescriptionCharset: SCF accepts letters, digits, spaces, commas,
// periods, newlines and Chinese; anything else stops the load, naming the
// line, before any write.
func TestDescriptionCharset(t *testing.T) {
	for desc, want := range map[string]string{
		"CAR session broker, carbroker":       "",
		"会话 broker.":                          "",
		"CAR broker (carbroker)":              `:8: description "CAR broker (carbroker)": SCF accepts only letters, digits, spaces, commas, periods, newlines and Chinese; remove ["(" ")"]`,
		"broker - v2":                         `remove ["-"]`,
		"'broker: web/api'":                   `remove [":" "/"]`,
		"'" + strings.Repeat("x", 1001) + "'": "1001 characters",
	} {
		file := writeFile(t, t.TempDir(), "serverless.yml", strings.Replace(minimal, "description: CAR broker ${app}, v2.", "description: "+desc, 1))
		_, err := Load(file, LoadOptions{Getenv: func(string) string { return "" }, DotenvDirs: []string{}})
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", desc, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", desc, err, want)
		}
	}
}

func TestErrorsAreRedacted(t *testing.T) {
	s := &Spec{Variables: []Variable{{"AUTH_SECRET", "s3cret-value"}, {"QUEUE_REDIS_URL", "redis://u:pa55word@h:6379"}, {"LOG_LEVEL", "info"}}}
	err := redact(errors.New("InvalidParameterValue: s3cret-value and redis://u:pa55word@h:6379 at info"), s)
	if got := err.Error(); strings.Contains(got, "s3cret") || strings.Contains(got, "pa55word") || !strings.Contains(got, "at info") {
		t.Errorf("redacted: %q", got)
	}
	if redact(nil, s) != nil {
		t.Error("nil became an error")
	}
	// A percent-encoded password is redacted as written and decoded; one
	// with an unescaped / ? # or @ whole.
	s = &Spec{Variables: []Variable{{"QUEUE_REDIS_URL", "redis://u:p%40ss55@h:6379"}, {"OTHER_URL", "redis://:acct@s3c/r?e#t@h"}}}
	err = redact(errors.New("refused redis://u:p%40ss55@h:6379 (p@ss55) and redis://:acct@s3c/r?e#t@h (acct@s3c/r?e#t)"), s)
	if got := err.Error(); strings.Contains(got, "ss55") || strings.Contains(got, "s3c") {
		t.Errorf("redacted: %q", got)
	}
	// A password given as an option is redacted on its own too.
	s = &Spec{Variables: []Variable{{"QUEUE_REDIS_URL", "redis://h:6379/0?password=hunter2%2Bq&db=0"}}}
	err = redact(errors.New("refused hunter2%2Bq (hunter2+q) in db=0"), s)
	if got := err.Error(); strings.Contains(got, "hunter2") || !strings.Contains(got, "db=0") {
		t.Errorf("redacted: %q", got)
	}
}

// TestLoadTriggers: the Function URL's name is parameters.name, else
// http.name, else the component toolkit's url-trigger; timers are read as
// the toolkit reads them; what make deploy cannot honour names its line.
func TestLoadTriggers(t *testing.T) {
	load := func(body string) (*Spec, error) {
		file := writeFile(t, t.TempDir(), "serverless.yml", body)
		return Load(file, LoadOptions{Getenv: func(string) string { return "" }, DotenvDirs: []string{}})
	}
	s, err := load(minimal)
	if err != nil || s.URL.Name != DefaultURLTriggerName || len(s.Timers) != 0 {
		t.Fatalf("default name: %v %+v", err, s)
	}
	s, err = load(strings.Replace(minimal, "          qualifier: $DEFAULT", "          name: my-url\n          qualifier: $DEFAULT", 1))
	if err != nil || s.URL.Name != "my-url" {
		t.Errorf("parameters.name: %v %+v", err, s.URL)
	}
	s, err = load(strings.Replace(minimal, "    - http:\n", "    - http:\n        name: ev-url\n", 1))
	if err != nil || s.URL.Name != "ev-url" {
		t.Errorf("http.name: %v %+v", err, s.URL)
	}
	timer := minimal + "    - timer:\n        parameters:\n          name: sweep\n          cronExpression: '0 */1 * * * * *'\n          enable: true\n          argument: hi\n"
	s, err = load(timer)
	if err != nil || len(s.Timers) != 1 || s.Timers[0] != (TimerTrigger{Name: "sweep", Qualifier: "$DEFAULT", Cron: "0 */1 * * * * *", Enable: true, Argument: "hi", Line: 27}) {
		t.Errorf("timer: %v %+v", err, s)
	}
	if s, err := load(strings.Replace(timer, "          enable: true\n", "", 1)); err != nil || s.Timers[0].Enable {
		t.Errorf("timer without enable (the toolkit's default is CLOSE): %v %+v", err, s.Timers)
	}
	for _, c := range []struct{ old, new, want string }{
		{"enableExtranet: true", "enableExtranet: true\n          corsConfig: {enable: true}", ":21: http corsConfig"},
		{"cronExpression: '0 */1 * * * * *'", "cronExpression: '*/1 * * * *'", ":27: timer cronExpression"},
		{"          name: sweep\n", "", ":27: timer name"},
		{"          argument: hi", "          argument: hi\n          schedule: daily", ":33: inputs.events[].timer.parameters.schedule is not a setting make deploy supports"},
		{"  runtime: Go1", "  type: web\n  runtime: Go1", "a timer trigger on a web function"},
	} {
		if _, err := load(strings.Replace(timer, c.old, c.new, 1)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.new, err, c.want)
		}
	}
}
