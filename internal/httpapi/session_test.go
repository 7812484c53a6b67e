package httpapi_test

import (
	"strings"
	"testing"
	"time"

	"carbroker/internal/dev/caremu"
)

func TestFirstStartReturnsServerSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, nil)
	r := e.start("alice")
	if r.Status != 200 || r.str("ServerSession") == "" || r.str("UserId") != "alice" || r.str("RequestId") == "" {
		t.Fatalf("start: %d %s", r.Status, r.Raw)
	}
	if s := e.slot("alice"); s.State != caremu.Session {
		t.Errorf("alice's concurrency is %s, want session", s.State)
	}
	calls := e.emu.Calls()
	if len(calls) != 2 || calls[0].Action != "ApplyConcurrent" || calls[1].Action != "CreateSession" {
		t.Fatalf("CAR calls: %+v", calls)
	}
	if ip := calls[0].Params["UserIp"]; ip != "203.0.113.7" {
		t.Errorf("UserIp sent to CAR = %q, want the peer address", ip)
	}
	if p := calls[0].Params["ProjectId"]; p != testProject {
		t.Errorf("ProjectId = %q, want the configured default", p)
	}
	if got := r.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q", got)
	}
}

func TestReconnectSemantics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{Concurrency: 2, Retention: 90 * time.Second}, nil)
	if r := e.start("alice"); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	first := e.slot("alice").ID

	// Reconnect while still connected: same concurrency, old device taken over.
	r := e.start("alice")
	if r.Status != 200 || e.slot("alice").ID != first {
		t.Fatalf("reconnect while connected: %d, slot %d want %d", r.Status, e.slot("alice").ID, first)
	}
	if n := e.emu.Takeovers("alice"); n != 1 {
		t.Errorf("takeovers = %d, want 1", n)
	}

	// Disconnect, reconnect within retention: same concurrency.
	e.emu.Disconnect("alice")
	e.emu.Advance(60 * time.Second)
	if r := e.start("alice"); r.Status != 200 || e.slot("alice").ID != first {
		t.Fatalf("reconnect within retention: %d, slot %d want %d", r.Status, e.slot("alice").ID, first)
	}

	// Disconnect, wait past retention: the concurrency was reclaimed, so
	// another user can take it and alice gets a new one.
	e.emu.Disconnect("alice")
	e.emu.Advance(91 * time.Second)
	if r := e.start("bob"); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	if e.slot("bob").ID != first {
		t.Fatalf("bob got slot %d; alice's reclaimed slot %d should have been first free", e.slot("bob").ID, first)
	}
	if r := e.start("alice"); r.Status != 200 || e.slot("alice").ID == first {
		t.Fatalf("after retention alice should get a new concurrency: %d %s", r.Status, r.Raw)
	}
}

func TestRetainedConcurrencyIsNotGivenAway(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{Concurrency: 1}, nil)
	if r := e.start("alice"); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	e.emu.Disconnect("alice")
	e.emu.Advance(89 * time.Second)
	r := e.start("bob")
	if r.Status != 503 || r.code() != "NoIdleConcurrency" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("bob during alice's retention: %d %s (Retry-After %q)", r.Status, r.Raw, r.Header.Get("Retry-After"))
	}
	if r := e.start("alice"); r.Status != 200 {
		t.Fatalf("alice's reconnect: %s", r.Raw)
	}
}

func TestStopFreesConcurrencyForAnotherUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{Concurrency: 1, StopTime: 2 * time.Second}, nil)
	if r := e.start("alice"); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	if r := e.start("bob"); r.Status != 503 {
		t.Fatalf("pool exhausted: got %d", r.Status)
	}
	r := e.do("DELETE", "/session", `{"UserId":"alice"}`)
	if r.Status != 200 || r.str("UserId") != "alice" {
		t.Fatalf("stop: %d %s", r.Status, r.Raw)
	}
	e.emu.Advance(3 * time.Second)
	if r := e.start("bob"); r.Status != 200 {
		t.Fatalf("bob after alice stopped: %d %s", r.Status, r.Raw)
	}
}

func TestStopWithoutSessionSucceeds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, nil)
	if r := e.do("DELETE", "/session?UserId=nobody", ""); r.Status != 200 || r.str("UserId") != "nobody" {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
}

func TestBodyFormats(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{Concurrency: 8}, nil)
	cases := []struct{ name, contentType, body string }{
		{"JSON without Content-Type", "", `{"UserId":"u1","ClientSession":"cs"}`},
		{"JSON as text/plain", "text/plain;charset=UTF-8", `{"UserId":"u2","ClientSession":"cs"}`},
		{"JSON labelled as a form (curl -d)", "application/x-www-form-urlencoded", `{"UserId":"u3","ClientSession":"cs"}`},
		{"form", "application/x-www-form-urlencoded", `UserId=u4&ClientSession=cs%2B%2F%3D`},
		{"JSON with a number and null", "application/json", `{"UserId":"u5","ClientSession":"cs","ProjectId":null,"RequestId":12}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := []string{}
			if c.contentType != "" {
				h = []string{"Content-Type", c.contentType}
			}
			if r := e.do("POST", "/session", c.body, h...); r.Status != 200 {
				t.Fatalf("%d %s", r.Status, r.Raw)
			}
		})
	}
	for _, c := range e.emu.Calls() {
		if c.Action == "CreateSession" && c.UserID == "u4" && c.ClientSessionLen != len("cs+/=") {
			t.Errorf("form ClientSession length %d, want %d", c.ClientSessionLen, len("cs+/="))
		}
	}
}

func TestBasePathAndRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, nil)
	if r := e.do("POST", "/release/car/session", `{"UserId":"u1","ClientSession":"cs"}`); r.Status != 200 {
		t.Fatalf("base path: %d %s", r.Status, r.Raw)
	}
	if r := e.do("GET", "/release/healthz", ""); r.Status != 200 || r.str("Version") != "test" {
		t.Fatalf("healthz: %d %s", r.Status, r.Raw)
	}
	before := e.carCalls("")
	for _, c := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/session", 405, "MethodNotAllowed"},
		{"PUT", "/session", 405, "MethodNotAllowed"},
		{"POST", "/nothing", 404, "NotFound"},
		{"POST", "/xsession", 404, "NotFound"},
		{"GET", "/StartProject", 405, "MethodNotAllowed"},
	} {
		if r := e.do(c.method, c.path, ""); r.Status != c.status || r.code() != c.code {
			t.Errorf("%s %s: %d %s", c.method, c.path, r.Status, r.Raw)
		}
	}
	if e.carCalls("") != before {
		t.Error("a refused route called CAR")
	}
}

func TestRequestIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, nil)
	r1 := e.do("POST", "/session", `{"UserId":"u1","ClientSession":"cs","RequestId":"client-42"}`)
	r2 := e.start("u2")
	if r1.str("RequestId") == "" || r1.str("RequestId") == "client-42" || r1.str("RequestId") == r2.str("RequestId") {
		t.Errorf("our RequestIds: %q %q", r1.str("RequestId"), r2.str("RequestId"))
	}
	if !strings.Contains(e.logs.String(), `"client_request_id":"client-42"`) {
		t.Error("the client's RequestId is not logged")
	}
	if r := e.do("POST", "/session", `{"UserId":"u1","ClientSession":"cs","RequestId":"<script>"}`); r.Status != 400 {
		t.Errorf("unsafe client RequestId: %d", r.Status)
	}
}
