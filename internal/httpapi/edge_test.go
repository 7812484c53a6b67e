package httpapi_test

import (
	"net/http/httptest"
	"strings"
	"testing"

	"carbroker/internal/dev/caremu"
)

func TestCORS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, map[string]string{"CORS_ALLOW_ORIGINS": "https://app.example.com"})
	pre := e.do("OPTIONS", "/session", "", "Origin", "https://app.example.com", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization,content-type")
	if pre.Status != 204 || pre.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("preflight: %d %v", pre.Status, pre.Header)
	}
	for _, want := range []string{"Authorization", "Content-Type"} {
		if !strings.Contains(pre.Header.Get("Access-Control-Allow-Headers"), want) {
			t.Errorf("Allow-Headers %q lacks %s", pre.Header.Get("Access-Control-Allow-Headers"), want)
		}
	}
	if !strings.Contains(pre.Header.Get("Access-Control-Allow-Methods"), "DELETE") {
		t.Errorf("Allow-Methods %q", pre.Header.Get("Access-Control-Allow-Methods"))
	}
	r := e.do("POST", "/session", `{"UserId":"u1","ClientSession":"cs"}`, "Origin", "https://app.example.com")
	if r.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || r.Header.Get("Vary") != "Origin" {
		t.Errorf("simple request headers: %v", r.Header)
	}
	evil := e.do("OPTIONS", "/session", "", "Origin", "https://evil.example", "Access-Control-Request-Method", "POST")
	if evil.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("disallowed origin got %q", evil.Header.Get("Access-Control-Allow-Origin"))
	}
	if e.carCalls("") != 2 {
		t.Errorf("preflights must not call CAR: %d calls", e.carCalls(""))
	}

	star := newEnv(t, caremu.Options{}, map[string]string{"CORS_ALLOW_ORIGINS": "*"})
	if r := star.do("GET", "/healthz", "", "Origin", "https://any.example"); r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("wildcard: %v", r.Header)
	}
	none := newEnv(t, caremu.Options{}, nil)
	if r := none.do("GET", "/healthz", "", "Origin", "https://any.example"); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS without CORS_ALLOW_ORIGINS: %v", r.Header)
	}
	for _, h := range []string{"Cache-Control", "X-Content-Type-Options"} {
		if evil.Header.Get(h) == "" {
			t.Errorf("%s missing on a preflight", h)
		}
	}
}

func TestClientIPRule(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, trusted, peer string
		xff                 []string
		want                string
	}{
		{"no proxy trusted: peer", "", "198.51.100.1:1", []string{"203.0.113.9"}, "198.51.100.1"},
		{"trusted peer: right-most untrusted XFF", "10.0.0.0/8", "10.0.0.2:1", []string{"1.1.1.1, 203.0.113.9, 10.0.0.5"}, "203.0.113.9"},
		{"trusted peer, several headers", "10.0.0.0/8", "10.0.0.2:1", []string{"1.1.1.1", "203.0.113.9"}, "203.0.113.9"},
		{"trusted peer, no XFF", "10.0.0.0/8", "10.0.0.2:1", nil, "10.0.0.2"},
		{"trusted peer, garbage XFF", "10.0.0.0/8", "10.0.0.2:1", []string{"1.1.1.1, not-an-ip"}, "10.0.0.2"},
		{"IPv6 peer", "", "[2001:db8::1]:443", nil, "2001:db8::1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, caremu.Options{}, map[string]string{"TRUSTED_PROXY_CIDRS": c.trusted})
			req := httptest.NewRequest("POST", "/session", strings.NewReader(`{"UserId":"u1","ClientSession":"cs"}`))
			req.RemoteAddr = c.peer
			for _, v := range c.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if r := e.serve(req); r.Status != 200 {
				t.Fatalf("%d %s", r.Status, r.Raw)
			}
			if got := e.emu.Calls()[0].Params["UserIp"]; got != c.want {
				t.Errorf("UserIp = %q, want %q", got, c.want)
			}
		})
	}
	e := newEnv(t, caremu.Options{}, nil)
	req := httptest.NewRequest("POST", "/session", strings.NewReader(`{"UserId":"u1","ClientSession":"cs"}`))
	req.RemoteAddr = ""
	if r := e.serve(req); r.Status != 400 || e.carCalls("") != 0 {
		t.Errorf("unknown peer: %d %s", r.Status, r.Raw)
	}
}

// No ClientSession or ServerSession ever reaches a log line or an error body.
func TestLogsHoldNoSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{Concurrency: 1}, nil)
	const cs = "CLIENTSESSION-SENTINEL-123456"
	var served []string
	r := e.do("POST", "/session", `{"UserId":"u1","ClientSession":"`+cs+`"}`)
	served = append(served, r.str("ServerSession"))
	e.emu.Inject("CreateSession", caremu.Raw(500, "text/html", "<html>"+cs+"</html>"))
	e.do("POST", "/session", `{"UserId":"u1","ClientSession":"`+cs+`"}`)
	e.emu.Inject("CreateSession", caremu.Raw(200, "application/json", `{"Response":{"ServerSession":"`+cs+`"`))
	bad := e.do("POST", "/session", `{"UserId":"u1","ClientSession":"`+cs+`"}`)
	e.do("POST", "/StartProject", `{"UserId":"u1","ClientSession":"`+cs+`"}`)
	e.do("POST", "/session", `{"UserId":"u2","ClientSession":"`+cs+`"}`) // NoIdle
	logs := e.logs.String()
	for _, secret := range append(served, cs, testSecretKey) {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("log holds a secret %.12q…:\n%s", secret, logs)
		}
	}
	if strings.Contains(bad.Raw, cs) {
		t.Errorf("error body holds the upstream body: %s", bad.Raw)
	}
	if !strings.Contains(logs, "ClientError.ParseJsonError") {
		t.Errorf("the operator's log lacks the SDK error code:\n%s", logs)
	}
}

// A non-public client address is worth one warning, not one per request.
func TestNonPublicClientIPWarnsOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{Concurrency: 4}, nil)
	for _, user := range []string{"u1", "u2", "u3"} {
		req := httptest.NewRequest("POST", "/session", strings.NewReader(`{"UserId":"`+user+`","ClientSession":"cs"}`))
		req.RemoteAddr = "10.1.2.3:5555"
		if r := e.serve(req); r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
	}
	if n := strings.Count(e.logs.String(), "client IP is not public"); n != 1 {
		t.Errorf("%d warnings for three requests from a private address, want 1", n)
	}
	if r := e.start("u4"); r.Status != 200 || strings.Count(e.logs.String(), "client IP is not public") != 1 {
		t.Errorf("a public address must not warn")
	}
}
