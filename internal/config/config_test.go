package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, vars map[string]string, opt Options) (Config, error) {
	t.Helper()
	return Load(func(k string) string { return vars[k] }, opt)
}

func TestDefaults(t *testing.T) {
	c, err := load(t, map[string]string{"CAR_PROJECT_ID": "cap-1234", "AUTH_MODE": "none"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.RequestTimeout != 10*time.Second || c.NoIdleWait != 0 || c.AttemptTimeout != time.Second || c.Endpoint != defaultEndpoint ||
		len(c.AllowedProjectIDs) != 1 || c.AllowedProjectIDs[0] != "cap-1234" || c.LogLevel != "info" ||
		c.Auth.TicketTTL != 720*time.Hour || c.Auth.JWTUserClaim != "sub" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestDevDefaults(t *testing.T) {
	c, err := load(t, nil, Options{Dev: true})
	if err != nil || c.Auth.Mode != "none" || c.ProjectID != devProjectID {
		t.Fatalf("%v %+v", err, c)
	}
	// Dev mode answers CORS for any origin (it serves a fake CAR on
	// loopback); other modes only for CORS_ALLOW_ORIGINS.
	if len(c.CORSAllowOrigins) != 1 || c.CORSAllowOrigins[0] != "*" {
		t.Errorf("dev CORS origins %q, want *", c.CORSAllowOrigins)
	}
	if c, _ := load(t, map[string]string{"CORS_ALLOW_ORIGINS": "http://localhost:5173"}, Options{Dev: true}); len(c.CORSAllowOrigins) != 1 || c.CORSAllowOrigins[0] != "http://localhost:5173" {
		t.Errorf("dev CORS origins %q, want CORS_ALLOW_ORIGINS", c.CORSAllowOrigins)
	}
	if c, _ := load(t, map[string]string{"CAR_PROJECT_ID": "cap-1234", "AUTH_MODE": "none"}, Options{}); c.CORSAllowOrigins != nil {
		t.Errorf("CORS on by default outside dev mode: %q", c.CORSAllowOrigins)
	}
	if c.Dev != (Dev{Concurrency: 4, Retention: 90 * time.Second, ClientWait: 30 * time.Second, Queue: true}) {
		t.Errorf("dev pool %+v", c.Dev)
	}
	c, err = load(t, map[string]string{"AUTH_MODE": "ticket", "AUTH_SECRET": strings.Repeat("s", 32)}, Options{Dev: true})
	if err != nil || c.Auth.Mode != "ticket" {
		t.Fatalf("AUTH_MODE is honoured in dev mode: %v %+v", err, c.Auth.Mode)
	}
}

func TestDevSettings(t *testing.T) {
	c, err := load(t, map[string]string{"DEV_CONCURRENCY": "2", "DEV_RETENTION": "5s", "DEV_CLIENT_WAIT": "3"}, Options{Dev: true})
	if err != nil || c.Dev != (Dev{Concurrency: 2, Retention: 5 * time.Second, ClientWait: 3 * time.Second, Queue: true}) {
		t.Fatalf("%v %+v", err, c.Dev)
	}
	// Outside dev mode the DEV_* variables mean nothing and are not read.
	c, err = load(t, map[string]string{"CAR_PROJECT_ID": "cap-1234", "AUTH_MODE": "none", "DEV_CONCURRENCY": "x"}, Options{})
	if err != nil || c.Dev != (Dev{}) {
		t.Fatalf("outside dev mode: %v %+v", err, c.Dev)
	}
	_, err = load(t, map[string]string{"DEV_CONCURRENCY": "0", "DEV_RETENTION": "forever", "DEV_CLIENT_WAIT": "100ms"}, Options{Dev: true})
	for _, want := range []string{"DEV_CONCURRENCY", "DEV_RETENTION", "DEV_CLIENT_WAIT"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want a problem with %s: %v", want, err)
		}
	}
}

// Every problem is reported at once, one line each, without secret values.
func TestProblemsAreAllReported(t *testing.T) {
	vars := map[string]string{
		"CAR_ENDPOINT":                     "ftp://x",
		"REQUEST_TIMEOUT":                  "soon",
		"CAR_ATTEMPT_TIMEOUT":              "1ms",
		"TRUSTED_PROXY_CIDRS":              "10.0.0.0/8,nonsense",
		"CORS_ALLOW_ORIGINS":               "example.com",
		"CAR_ALLOW_APPLICATION_PARAMETERS": "(",
		"CAR_ALLOW_RUN_WITHOUT_CLIENT":     "yes please",
		"LOG_LEVEL":                        "loud",
		"AUTH_MODE":                        "ticket",
		"AUTH_SECRET":                      "short-secret-value",
		"JWT_SECRET":                       "tiny",
	}
	_, err := load(t, vars, Options{})
	if err == nil {
		t.Fatal("want errors")
	}
	msg := err.Error()
	for _, want := range []string{"CAR_PROJECT_ID", "CAR_ENDPOINT", "REQUEST_TIMEOUT", "CAR_ATTEMPT_TIMEOUT", "TRUSTED_PROXY_CIDRS", "CORS_ALLOW_ORIGINS",
		"CAR_ALLOW_APPLICATION_PARAMETERS", "CAR_ALLOW_RUN_WITHOUT_CLIENT", "LOG_LEVEL", "AUTH_SECRET", "JWT_SECRET"} {
		if !strings.Contains(msg, want) {
			t.Errorf("no problem reported for %s in:\n%s", want, msg)
		}
	}
	for _, secret := range []string{"short-secret-value", "tiny"} {
		if strings.Contains(msg, secret) {
			t.Errorf("the message echoes a secret: %s", msg)
		}
	}
	if n := strings.Count(msg, "\n") + 1; n < 10 {
		t.Errorf("%d lines for 11 problems:\n%s", n, msg)
	}
}

func TestAuthModes(t *testing.T) {
	base := map[string]string{"CAR_PROJECT_ID": "cap-1"}
	cases := []struct {
		vars map[string]string
		ok   bool
	}{
		{map[string]string{}, false}, // AUTH_MODE required outside dev mode
		{map[string]string{"AUTH_MODE": "none"}, true},
		{map[string]string{"AUTH_MODE": "NONE"}, true},
		{map[string]string{"AUTH_MODE": "ticket"}, false},
		{map[string]string{"AUTH_MODE": "ticket", "AUTH_SECRET": strings.Repeat("a", 32) + "," + strings.Repeat("b", 40)}, true},
		{map[string]string{"AUTH_MODE": "jwt"}, false},
		{map[string]string{"AUTH_MODE": "jwt", "JWT_SECRET": strings.Repeat("j", 32)}, true},
		{map[string]string{"AUTH_MODE": "jwt", "JWT_SECRET": strings.Repeat("j", 32), "JWT_JWKS_URL": "https://x/jwks"}, false},
		{map[string]string{"AUTH_MODE": "jwt", "JWT_JWKS_URL": "http://example.com/jwks"}, false},
		{map[string]string{"AUTH_MODE": "sign"}, false},
		{map[string]string{"AUTH_MODE": "sign", "COMPAT_SIGN_SALT": "salt"}, true},
		{map[string]string{"AUTH_MODE": "magic"}, false},
	}
	for _, c := range cases {
		vars := map[string]string{}
		for k, v := range base {
			vars[k] = v
		}
		for k, v := range c.vars {
			vars[k] = v
		}
		if _, err := load(t, vars, Options{}); (err == nil) != c.ok {
			t.Errorf("%v: err %v", c.vars, err)
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	cases := []struct {
		in           string
		host, scheme string
		ok           bool
	}{
		{"car.tencentcloudapi.com", "car.tencentcloudapi.com", "HTTPS", true},
		{"https://car.intl.tencentcloudapi.com", "car.intl.tencentcloudapi.com", "HTTPS", true},
		{"http://127.0.0.1:8080", "127.0.0.1:8080", "HTTP", true},
		{"HTTP://127.0.0.1:8080/", "127.0.0.1:8080", "HTTP", true},
		{"http://127.0.0.1:8080/path", "", "", false},
		{"ftp://x", "", "", false},
		{"", "", "", false},
	}
	for _, c := range cases {
		e, err := parseEndpoint(c.in)
		if (err == nil) != c.ok || c.ok && (e.Host != c.host || e.Scheme != c.scheme) {
			t.Errorf("%q: %+v %v", c.in, e, err)
		}
	}
}

// Keys lists exactly what Load reads.
func TestKeysAreWhatLoadReads(t *testing.T) {
	read := map[string]bool{}
	_, _ = Load(func(k string) string { read[k] = true; return "" }, Options{})
	for _, k := range Keys {
		if !read[k] {
			t.Errorf("Keys lists %s, which Load does not read", k)
		}
		delete(read, k)
	}
	for k := range read {
		t.Errorf("Load reads %s, missing from Keys", k)
	}
}

func problemsOf(t *testing.T, err error) []Problem {
	t.Helper()
	var cerr *Error
	if !errors.As(err, &cerr) {
		t.Fatalf("want an *Error, got %v", err)
	}
	return cerr.Problems
}

// Callers of a misconfigured function read the variables at fault, never
// their values; the operator's text has the values that are not secrets.
func TestPublicNamesVariablesNotValues(t *testing.T) {
	_, err := load(t, map[string]string{"CAR_PROJECT_ID": "cap-1", "AUTH_MODE": "ticket", "AUTH_SECRET": "short-secret-value",
		"REQUEST_TIMEOUT": "soon\x01ish", "CORS_ALLOW_ORIGINS": "https://a.example/path"}, Options{})
	cerr := &Error{Problems: problemsOf(t, err)}
	pub := cerr.Public()
	for _, want := range []string{"AUTH_SECRET", "REQUEST_TIMEOUT", "CORS_ALLOW_ORIGINS"} {
		if !strings.Contains(pub, want) {
			t.Errorf("public text does not name %s: %s", want, pub)
		}
	}
	for _, value := range []string{"soon", "a.example", "short-secret-value"} {
		if strings.Contains(pub, value) {
			t.Errorf("public text holds the value %q: %s", value, pub)
		}
	}
	if log := cerr.Error(); !strings.Contains(log, `"soon\x01ish"`) || !strings.Contains(log, "https://a.example/path") ||
		strings.Contains(log, "short-secret-value") {
		t.Errorf("operator text: %s", log)
	}
}

// A short AUTH_SECRET is one problem, not also a missing one.
func TestShortAuthSecretIsOneProblem(t *testing.T) {
	_, err := load(t, map[string]string{"CAR_PROJECT_ID": "cap-1", "AUTH_MODE": "ticket", "AUTH_SECRET": "short"}, Options{})
	ps := problemsOf(t, err)
	if len(ps) != 1 || ps[0].Var != "AUTH_SECRET" || !strings.Contains(ps[0].Message, "at least 32") {
		t.Errorf("problems: %+v", ps)
	}
}

// JWT_PUBLIC_KEY is read with the rest: its problem arrives in the same pass.
func TestJWTPublicKeyProblemInTheSamePass(t *testing.T) {
	_, err := load(t, map[string]string{"CAR_PROJECT_ID": "cap-1", "AUTH_MODE": "jwt", "JWT_PUBLIC_KEY": "MIIB-not-a-pem",
		"REQUEST_TIMEOUT": "soon"}, Options{})
	vars := map[string]bool{}
	for _, p := range problemsOf(t, err) {
		vars[p.Var] = true
		if strings.Contains(p.Message, "MIIB") || strings.Contains(p.Value, "MIIB") {
			t.Errorf("the key is echoed: %+v", p)
		}
	}
	if !vars["JWT_PUBLIC_KEY"] || !vars["REQUEST_TIMEOUT"] {
		t.Errorf("problems for %v", vars)
	}
}

func TestJWKSURLPlainHTTPOnlyToLoopback(t *testing.T) {
	for url, ok := range map[string]bool{
		"https://idp.example/.well-known/jwks.json":  true,
		"http://127.0.0.1:8080/jwks":                 true,
		"http://127.9.9.9/jwks":                      true,
		"http://localhost:5556/jwks":                 true,
		"http://[::1]:5556/jwks":                     true,
		"http://example.com/jwks":                    false,
		"http://127.0.0.1.evil.example/jwks":         false,
		"http://localhost@evil.example/jwks":         false,
		"http://localhost.evil.example/jwks":         false,
		"https://user:pass@idp.example/jwks":         false,
		"ftp://127.0.0.1/jwks":                       false,
		"https:///jwks":                              false,
		"http://127.0.0.1:8080@evil.example:80/jwks": false,
	} {
		_, err := load(t, map[string]string{"CAR_PROJECT_ID": "cap-1", "AUTH_MODE": "jwt", "JWT_JWKS_URL": url}, Options{})
		if (err == nil) != ok {
			t.Errorf("%s: err %v, want ok=%v", url, err, ok)
		}
	}
}

func TestApplicationParametersPatternIsAnchored(t *testing.T) {
	if _, err := load(t, map[string]string{"CAR_PROJECT_ID": "cap-1", "AUTH_MODE": "none",
		"CAR_ALLOW_APPLICATION_PARAMETERS": "a)|(.*"}, Options{}); err == nil {
		t.Error(`"a)|(.*" accepted: it would match anything once anchored`)
	}
	c, err := load(t, map[string]string{"CAR_PROJECT_ID": "cap-1", "AUTH_MODE": "none",
		"CAR_ALLOW_APPLICATION_PARAMETERS": "mode=(easy|hard)|level=[0-9]"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for v, want := range map[string]bool{"mode=easy": true, "level=3": true, "mode=easyX": false, "xlevel=3": false, "mode=easy|level=3": false} {
		if got := c.AppParamsPattern.MatchString(v); got != want {
			t.Errorf("%q: match %v, want %v", v, got, want)
		}
	}
}

func TestProjectIDs(t *testing.T) {
	cases := []struct {
		project, allowed string
		ok               bool
	}{
		{"cap-abc123", "", true},
		{"cap-abc123", "cap-abc123,cap-other1", true},
		{"cap-abc123", "cap-other1", false}, // every request would be refused
		{"CAP-abc123", "", false},
		{"cap-ABC", "", false},
		{"cap-", "", false},
		{"cap-a_b", "", false},
		{"app-abc123", "", false},
		{"cap-abc123", "cap-abc123,Cap-x", false},
	}
	for _, c := range cases {
		_, err := load(t, map[string]string{"CAR_PROJECT_ID": c.project, "CAR_ALLOWED_PROJECT_IDS": c.allowed, "AUTH_MODE": "none"}, Options{})
		if (err == nil) != c.ok {
			t.Errorf("%q allowed %q: err %v", c.project, c.allowed, err)
		}
	}
}

// CORS origins are kept as browsers send Origin.
func TestCORSOriginsNormalised(t *testing.T) {
	c, err := load(t, map[string]string{"CAR_PROJECT_ID": "cap-1", "AUTH_MODE": "none",
		"CORS_ALLOW_ORIGINS": "https://a.example/, HTTPS://B.Example:443, http://localhost:5173, *, http://[::1]:80/"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://a.example", "https://b.example", "http://localhost:5173", "*", "http://[::1]"}
	if !slices.Equal(c.CORSAllowOrigins, want) {
		t.Errorf("got %q, want %q", c.CORSAllowOrigins, want)
	}
	for _, bad := range []string{"example.com", "https://a.example/app", "https://a.example?x", "https://u@a.example", "ftp://a.example", "https://a.example#x"} {
		if _, err := load(t, map[string]string{"CAR_PROJECT_ID": "cap-1", "AUTH_MODE": "none", "CORS_ALLOW_ORIGINS": bad}, Options{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
func TestQueueSettings(t *testing.T) {
	load := func(vars map[string]string, dev bool) (Config, error) {
		base := map[string]string{"CAR_PROJECT_ID": "cap-1", "AUTH_MODE": "none"}
		for k, v := range vars {
			base[k] = v
		}
		return Load(func(k string) string { return base[k] }, Options{Dev: dev})
	}
	c, err := load(nil, false)
	if err != nil || c.Queue.RedisURL != "" || c.Queue.Abandon != 30*time.Second || c.Queue.MaxPerIP != 4 ||
		c.Queue.KeyPrefix != "{carbroker}:" || c.Queue.HoldTTL != 2*time.Hour {
		t.Fatalf("defaults: %+v %v", c.Queue, err)
	}
	c, err = load(map[string]string{"QUEUE_REDIS_URL": "rediss://:acct@pw@10.0.0.5:6379/1", "QUEUE_ABANDON": "10s",
		"QUEUE_MAX_PER_IP": "2", "QUEUE_KEY_PREFIX": "app:", "QUEUE_HOLD_TTL": "5m"}, false)
	if err != nil || c.Queue.Abandon != 10*time.Second || c.Queue.MaxPerIP != 2 || c.Queue.KeyPrefix != "app:" {
		t.Fatalf("set: %+v %v", c.Queue, err)
	}
	for _, kv := range [][2]string{{"QUEUE_REDIS_URL", "http://:hunter2secret@x:1"}, {"QUEUE_ABANDON", "500ms"},
		{"QUEUE_ABANDON", "2s"}, {"QUEUE_ABANDON", "2999ms"}, {"QUEUE_MAX_PER_IP", "0"}, {"QUEUE_HOLD_TTL", "1s"}} {
		k, v := kv[0], kv[1]
		_, err := load(map[string]string{k: v}, false)
		if err == nil || !strings.Contains(err.Error(), k) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
	if c, err := load(nil, false); err != nil || c.LockWindow != 30*time.Second || c.Retention != 90*time.Second {
		t.Fatalf("CAR_LOCK_WINDOW, CAR_RETENTION defaults: %v %v %v", c.LockWindow, c.Retention, err)
	}
	c, err = load(map[string]string{"CAR_LOCK_WINDOW": "10s", "CAR_RETENTION": "2m"}, false)
	if err != nil || c.LockWindow != 10*time.Second || c.Retention != 2*time.Minute {
		t.Fatalf("CAR_LOCK_WINDOW, CAR_RETENTION set: %v %v %v", c.LockWindow, c.Retention, err)
	}
	for k, v := range map[string]string{"CAR_LOCK_WINDOW": "0", "CAR_RETENTION": "500ms"} {
		if _, err := load(map[string]string{k: v}, false); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
	if c, err := load(map[string]string{"DEV_RETENTION": "5s"}, true); err != nil || c.Retention != 5*time.Second {
		t.Fatalf("dev mode: CAR_RETENTION follows the emulator's DEV_RETENTION: %v %v", c.Retention, err)
	}
	// QUEUE_ABANDON's floor: Retry-After's 1 s is then a third of it, so a
	// client that follows Retry-After exactly is never pruned.
	if c, err := load(map[string]string{"QUEUE_ABANDON": "3s"}, false); err != nil || c.Queue.Abandon != 3*time.Second {
		t.Errorf("QUEUE_ABANDON=3s: %v %v", c.Queue.Abandon, err)
	}
	c, err = load(nil, true)
	if err != nil || !c.Dev.Queue {
		t.Fatalf("dev default: the line is on: %v %v", c.Dev.Queue, err)
	}
	c, err = load(map[string]string{"DEV_QUEUE": "false"}, true)
	if err != nil || c.Dev.Queue {
		t.Fatalf("DEV_QUEUE=false: %v %v", c.Dev.Queue, err)
	}
}

// The docs' example AUTH_SECRET values are refused, in the binary as in
// make deploy (which runs this check): anyone can read them and mint tickets.
func TestAuthSecretPlaceholderRefused(t *testing.T) {
	for _, secret := range []string{
		"replace-with-the-output-of-openssl-rand-base64-48",               // README
		"replace-with-48-random-bytes-in-base64",                          // docs/deploy.md
		"0123456789abcdefghijklmnopqrstuvwxyzABCDEF,replace-with-another", // a rotation list holding one
	} {
		_, err := load(t, map[string]string{"CAR_PROJECT_ID": "cap-1", "AUTH_MODE": "ticket", "AUTH_SECRET": secret}, Options{})
		ps := problemsOf(t, err)
		if len(ps) != 1 || ps[0].Var != "AUTH_SECRET" || !strings.Contains(ps[0].Message, "openssl rand -base64 48") || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: problems %+v", secret, ps)
		}
	}
}

// A Redis password may hold "/", "?", "#" and "@" unescaped: the
// credentials end at the last "@". Such URLs are accepted, and one that is
// wrong elsewhere is refused with the URL shown to the operator with its
// password masked whole, and to callers not at all.
func TestQueueRedisURLPasswordMaskedWhole(t *testing.T) {
	load := func(u string) error {
		vars := map[string]string{"CAR_PROJECT_ID": "cap-1", "AUTH_MODE": "none", "QUEUE_REDIS_URL": u}
		_, err := Load(func(k string) string { return vars[k] }, Options{})
		return err
	}
	for _, u := range []string{"redis://:2/Kx+9aBsecret@10.0.0.5:6379/0", "redis://:Kx?9a#Bsecret@10.0.0.5:6379",
		"rediss://:acct@Kx/9aBsecret@10.0.0.5:6379/1", "redis://broker:Kx%2F9aBsecret@10.0.0.5", "redis://:50%Kx9aBsecret@h"} {
		if err := load(u); err != nil {
			t.Errorf("refused: %v", err)
		}
	}
	for u, shown := range map[string]string{
		"redis://:2/Kx+9aBsecret@10.0.0.5:6379/x":   "redis://:xxxxx@10.0.0.5:6379/x",
		"redis://:Kx?9a#Bsecret@10.0.0.5:99999":     "redis://:xxxxx@10.0.0.5:99999",
		"http://:2/Kx+9aBsecret@10.0.0.5":           "http://:xxxxx@10.0.0.5",
		"redis://:2/Kx+9aBsecret@":                  "redis://:xxxxx@",
		"redis://broker:Kx#9aBsecret@h/0?timeout=1": "redis://broker:xxxxx@h/0?xxxxx",
		"redis://h:6379/0?password=9aBsecret":       "redis://h:6379/0?xxxxx",
		"redis://Kx/9aBsecret@h:x":                  "redis://xxxxx@h:x",
	} {
		err := load(u)
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%s: accepted (%v)", shown, err)
			continue
		}
		if msg := err.Error(); strings.Contains(msg, "9aBsecret") || !strings.Contains(msg, shown) || !strings.Contains(msg, "QUEUE_REDIS_URL") {
			t.Errorf("the operator's error: %s\nwant it to show %s and not the password", msg, shown)
		}
		if pub := ce.Public(); strings.Contains(pub, "9aBsecret") || strings.Contains(pub, "xxxxx") {
			t.Errorf("callers' error: %s", pub)
		}
	}
}

func TestLeaseSettings(t *testing.T) {
	load := func(vars map[string]string, dev bool) (Config, error) {
		base := map[string]string{"CAR_PROJECT_ID": "cap-1", "AUTH_MODE": "none", "QUEUE_REDIS_URL": "redis://127.0.0.1:6379"}
		for k, v := range vars {
			base[k] = v
		}
		return Load(func(k string) string { return base[k] }, Options{Dev: dev})
	}
	c, err := load(nil, false)
	if err != nil || c.Lease != (Lease{}) {
		t.Fatalf("default: leases off: %+v %v", c.Lease, err)
	}
	c, err = load(map[string]string{"SESSION_MAX": "10m", "SESSION_RENEW": "true", "SESSION_RENEW_MAX": "3", "SESSION_COOLDOWN": "1h"}, false)
	if err != nil || c.Lease != (Lease{Max: 10 * time.Minute, Renew: true, RenewMax: 3, Cooldown: time.Hour}) {
		t.Fatalf("set: %+v %v", c.Lease, err)
	}
	for _, bad := range []map[string]string{
		{"SESSION_MAX": "500ms"},
		{"SESSION_MAX": "soon"},
		{"SESSION_MAX": "10m", "SESSION_RENEW": "maybe"},
		{"SESSION_MAX": "10m", "SESSION_RENEW_MAX": "-1"},
		{"SESSION_MAX": "10m", "SESSION_COOLDOWN": "-5s"},
		{"SESSION_MAX": "10m", "SESSION_RENEW": "true"}, // renewals allowed zero times
		{"SESSION_RENEW": "true", "SESSION_RENEW_MAX": "2"},
		{"SESSION_COOLDOWN": "1m"},
	} {
		_, err := load(bad, false)
		var named bool
		for k := range bad {
			named = named || err != nil && strings.Contains(err.Error(), k)
		}
		if !named {
			t.Errorf("%v: %v, want a problem naming the setting", bad, err)
		}
	}
	// Leases live in the line's store: without one the function refuses to
	// start, naming both settings; dev mode has its embedded store.
	_, err = load(map[string]string{"SESSION_MAX": "10m", "QUEUE_REDIS_URL": ""}, false)
	if err == nil || !strings.Contains(err.Error(), "SESSION_MAX") || !strings.Contains(err.Error(), "QUEUE_REDIS_URL") {
		t.Errorf("SESSION_MAX without QUEUE_REDIS_URL: %v", err)
	}
	for _, vars := range []map[string]string{{"SESSION_MAX": "10m", "QUEUE_REDIS_URL": ""}, {"SESSION_MAX": "10m", "QUEUE_REDIS_URL": "", "DEV_QUEUE": "false"}} {
		if c, err := load(vars, true); err != nil || c.Lease.Max != 10*time.Minute {
			t.Errorf("dev mode %v: %+v %v", vars, c.Lease, err)
		}
	}
}

// Every default passes its own setting's check: an environment that sets
// nothing lacks only what has no default (dev mode: nothing), and
// Defaults is what it gets.
func TestDefaultsPassTheirChecks(t *testing.T) {
	c, err := Load(func(string) string { return "" }, Options{})
	var vars []string
	for _, p := range problemsOf(t, err) {
		vars = append(vars, p.Var)
	}
	if !slices.Equal(vars, []string{"CAR_PROJECT_ID", "AUTH_MODE"}) {
		t.Errorf("an empty environment: problems with %v, want CAR_PROJECT_ID and AUTH_MODE (required)", vars)
	}
	if d := Defaults(); d.Queue.Abandon != 30*time.Second || d.Queue.KeyPrefix != "{carbroker}:" || d.Retention != 90*time.Second ||
		d.Endpoint != defaultEndpoint || d.LogLevel != "info" || d.Auth.JWTUserClaim != "sub" || c.Queue != d.Queue {
		t.Errorf("Defaults: %+v", d)
	}
	if _, err := Load(func(string) string { return "" }, Options{Dev: true}); err != nil {
		t.Errorf("dev mode, an empty environment: %v", err)
	}
}
