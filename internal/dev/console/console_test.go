package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"carbroker/internal/car"
	"carbroker/internal/dev/caremu"
	"carbroker/internal/dev/console"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// api stands for the HTTP API: it names itself so tests see who answered.
var api = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Answered-By", "api")
	w.WriteHeader(http.StatusTeapot)
})

func serve(h http.Handler, method, path, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	h.ServeHTTP(rec, req)
	return rec
}

// pool puts users in every state through the emulator's own controls.
func pool(t *testing.T) *caremu.Emulator {
	t.Helper()
	emu := caremu.New(caremu.Options{Concurrency: 4, Retention: 90 * time.Second, ClientWait: 30 * time.Second})
	emu.SetNow(t0)
	return emu
}

type stateReply struct {
	AuthMode          string
	RetentionSeconds  int
	ClientWaitSeconds int
	Slots             []struct {
		Id          int
		State       string
		UserId      string
		Connected   bool
		SecondsLeft *int
		Guests      []struct{ UserId, Role string }
	}
	Line *struct {
		Waiting []console.Waiter
		Error   string
	}
}

func TestStateAndConnections(t *testing.T) {
	emu := pool(t)
	h := console.Handler(api, console.Options{Pool: emu, Retention: 90 * time.Second, ClientWait: 30 * time.Second, AuthMode: "none"})
	start := func(user string) { // what the broker does through CAR
		t.Helper()
		if err := startSession(emu, user); err != nil {
			t.Fatal(err)
		}
	}
	start("alice")
	start("bob")
	// What a page of another origin can send without a preflight: refused, nothing changes.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/dev/disconnect", strings.NewReader(`{"UserId":"bob"}`))
	req.Header.Set("Content-Type", "text/plain")
	h.ServeHTTP(rec, req)
	if s, _ := emu.SlotOf("bob"); rec.Code != 400 || s.State != caremu.Session {
		t.Fatalf("text/plain disconnect: %d, bob %s", rec.Code, s.State)
	}
	for path, user := range map[string]string{"/dev/connect": "alice", "/dev/disconnect": "bob"} {
		rec := serve(h, "POST", path, `{"UserId":"`+user+`"}`)
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"Changed":true`) {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
	if rec := serve(h, "POST", "/dev/connect", `{"UserId":"nobody"}`); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"Changed":false`) {
		t.Fatalf("connect nobody: %d %s", rec.Code, rec.Body)
	}
	emu.Advance(10 * time.Second)
	rec = serve(h, "GET", "/dev/state", "")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("state: %d %v", rec.Code, rec.Header())
	}
	var s stateReply
	if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	if s.AuthMode != "none" || s.RetentionSeconds != 90 || s.ClientWaitSeconds != 30 || len(s.Slots) != 4 || s.Line != nil {
		t.Fatalf("state %+v", s)
	}
	a, b := s.Slots[0], s.Slots[1]
	if a.UserId != "alice" || a.State != "session" || !a.Connected || a.SecondsLeft != nil {
		t.Errorf("alice %+v", a)
	}
	if b.UserId != "bob" || b.State != "retained" || b.SecondsLeft == nil || *b.SecondsLeft != 80 {
		t.Errorf("bob %+v", b)
	}
	if s.Slots[2].State != "idle" || s.Slots[2].UserId != "" {
		t.Errorf("idle %+v", s.Slots[2])
	}
}

func TestStateShowsTheLine(t *testing.T) {
	eta := 12
	h := console.Handler(api, console.Options{Pool: pool(t), Line: func(context.Context) ([]console.Waiter, error) {
		return []console.Waiter{{UserId: "carol", Position: 1, EtaSeconds: &eta}}, nil
	}})
	var s stateReply
	_ = json.Unmarshal(serve(h, "GET", "/dev/state", "").Body.Bytes(), &s)
	if s.Line == nil || len(s.Line.Waiting) != 1 || s.Line.Waiting[0].UserId != "carol" || *s.Line.Waiting[0].EtaSeconds != 12 {
		t.Fatalf("line %+v", s.Line)
	}
	// A line that cannot list its members here: the page lists its own.
	h = console.Handler(api, console.Options{Pool: pool(t), LineOn: true})
	if body := serve(h, "GET", "/dev/state", "").Body.String(); !strings.Contains(body, `"Line":{"Waiting":null}`) {
		t.Fatalf("line on, not listed: %s", body)
	}
	h = console.Handler(api, console.Options{Pool: pool(t), Line: func(context.Context) ([]console.Waiter, error) {
		return nil, errors.New("redis: connection refused")
	}})
	s = stateReply{}
	_ = json.Unmarshal(serve(h, "GET", "/dev/state", "").Body.Bytes(), &s)
	if s.Line == nil || s.Line.Error == "" || s.Line.Waiting != nil {
		t.Fatalf("line with an error %+v", s.Line)
	}
}

func TestRoutes(t *testing.T) {
	h := console.Handler(api, console.Options{Pool: pool(t)})
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string // in Content-Type, or "api"
	}{
		{"GET", "/", "", 200, "text/html"},
		{"HEAD", "/", "", 200, "text/html"},
		{"GET", "/console.js", "", 200, "text/javascript"},
		{"GET", "/console.css", "", 200, "text/css"},
		{"GET", "/carbroker.js", "", 200, "text/javascript"},
		{"GET", "/carbroker.d.ts", "", 200, "text/plain"},
		{"GET", "/dev/state", "", 200, "application/json"},
		{"POST", "/dev/connect", `{}`, 400, "application/json"},
		{"POST", "/dev/disconnect", `not json`, 400, "application/json"},
		{"GET", "/dev/connect", "", 404, "application/json"},
		{"GET", "/dev/other", "", 404, "application/json"},
		// everything else is the API's
		{"POST", "/", "", 418, "api"},
		{"POST", "/session", `{}`, 418, "api"},
		{"GET", "/healthz", "", 418, "api"},
		{"GET", "/index.html", "", 418, "api"},
		{"GET", "/release/console.js", "", 418, "api"},
	} {
		rec := serve(h, tc.method, tc.path, tc.body)
		got := rec.Header().Get("Content-Type")
		if rec.Header().Get("X-Answered-By") == "api" {
			got = "api"
		}
		if rec.Code != tc.status || !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, rec.Code, got, tc.status, tc.want)
		}
	}
	page := serve(h, "GET", "/", "")
	csp := page.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	// No outside resource in the page's assets: no scheme-qualified URL at all.
	for _, p := range []string{"/", "/console.js", "/console.css"} {
		body := serve(h, "GET", p, "").Body.String()
		for _, bad := range []string{"http://", "https://", "//cdn", "@import"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
	}
	// The client module depends on nothing.
	if m := serve(h, "GET", "/carbroker.js", "").Body.String(); strings.Contains(m, "\nimport ") || strings.Contains(m, "require(") {
		t.Error("carbroker.js imports something")
	}
}

// startSession does what the broker does: ApplyConcurrent then
// CreateSession, on the wire.
func startSession(emu *caremu.Emulator, user string) error {
	cl := emu.Client()
	c := car.New(car.Options{Host: "car.emulator.invalid", Scheme: "HTTP", Transport: cl.Transport, Getenv: cl.Getenv})
	ctx := context.Background()
	if _, err := c.ApplyConcurrent(ctx, car.ApplyConcurrentInput{UserID: user, UserIP: "203.0.113.7", ProjectID: "cap-test"}); err != nil {
		return err
	}
	_, err := c.CreateSession(ctx, car.CreateSessionInput{UserID: user, UserIP: "203.0.113.7", ClientSession: "cs"})
	return err
}

// POST /dev/stop stops anyone's session (the dev side's DELETE /session
// without the owner's credential), JSON only, and exists only with a Stop.
func TestDevStop(t *testing.T) {
	var stopped []string
	h := console.Handler(api, console.Options{Pool: pool(t), Abandon: 30 * time.Second, Stop: func(_ context.Context, user string) error {
		stopped = append(stopped, user)
		if user == "broken" {
			return errors.New("CAR unreachable")
		}
		return nil
	}})
	if rec := serve(h, "POST", "/dev/stop", `{"UserId":"alice"}`); rec.Code != 200 || rec.Body.String() != `{"UserId":"alice"}` {
		t.Fatalf("stop: %d %s", rec.Code, rec.Body)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/dev/stop", strings.NewReader(`{"UserId":"bob"}`))
	req.Header.Set("Content-Type", "text/plain") // what another origin can send without a preflight
	h.ServeHTTP(rec, req)
	if rec.Code != 400 {
		t.Fatalf("text/plain stop: %d", rec.Code)
	}
	if rec := serve(h, "POST", "/dev/stop", `{"UserId":"broken"}`); rec.Code != 500 || strings.Contains(rec.Body.String(), "unreachable") {
		t.Fatalf("failed stop: %d %s", rec.Code, rec.Body)
	}
	if len(stopped) != 2 || stopped[0] != "alice" {
		t.Fatalf("stopped %v", stopped)
	}
	body := serve(h, "GET", "/dev/state", "").Body.String()
	if !strings.Contains(body, `"AbandonSeconds":30`) || !strings.Contains(body, `"CanStop":true`) {
		t.Fatalf("state %s", body)
	}
	// Without a Stop there is no such endpoint, and the page shows no Stop.
	h = console.Handler(api, console.Options{Pool: pool(t)})
	if rec := serve(h, "POST", "/dev/stop", `{"UserId":"alice"}`); rec.Code != 404 {
		t.Fatalf("no Stop: %d", rec.Code)
	}
}
