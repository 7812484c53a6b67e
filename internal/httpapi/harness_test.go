package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"carbroker/internal/auth"
	"carbroker/internal/broker"
	"carbroker/internal/car"
	"carbroker/internal/config"
	"carbroker/internal/dev/caremu"
	"carbroker/internal/httpapi"
	"carbroker/internal/testing/apitest"
	"carbroker/internal/testing/testkit"
)

// env is the real wiring under test: HTTP API → use case → CAR client →
// the real SDK's TC3 signing → the emulator's wire format.
type env struct {
	t    *testing.T
	emu  *caremu.Emulator
	api  http.Handler
	logs *testkit.Buffer
	cfg  config.Config

	clockMu sync.Mutex
	clock   time.Time // the authenticators' clock; zero means real time
}

// now is the authenticators' clock.
func (e *env) now() time.Time {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	if e.clock.IsZero() {
		return time.Now()
	}
	return e.clock
}

// travel moves the authenticators' clock by d from now.
func (e *env) travel(d time.Duration) {
	t := e.now().Add(d)
	e.clockMu.Lock()
	e.clock = t
	e.clockMu.Unlock()
}

const (
	testSecretID  = "AKIDtest0000000001"
	testSecretKey = "test-secret-key-000000000000001"
	testProject   = "cap-test0001"
)

// newEnv builds the wiring with the given environment variables on top of a
// minimal valid configuration.
func newEnv(t *testing.T, emuOpt caremu.Options, vars map[string]string) *env {
	t.Helper()
	base := map[string]string{"CAR_PROJECT_ID": testProject, "AUTH_MODE": "none"}
	for k, v := range vars {
		base[k] = v
	}
	cfg, err := config.Load(func(k string) string { return base[k] }, config.Options{})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if emuOpt.Credentials == nil {
		emuOpt.Credentials = map[string]caremu.Credential{testSecretID: {SecretKey: testSecretKey}}
	}
	emu := caremu.New(emuOpt)
	emu.SetNow(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	cl := emu.Client()
	if v, ok := vars["TENCENTCLOUD_SECRETKEY"]; ok {
		cl.SecretKey = v
	}
	c := car.New(car.Options{Host: "car.tencentcloudapi.com", Transport: cl.Transport, Getenv: cl.Getenv})
	e := &env{t: t, emu: emu, cfg: cfg, logs: &testkit.Buffer{}}
	// The production wiring, with a controllable clock and fast backoff.
	api, _, err := apitest.New(cfg, c, apitest.Options{
		HTTP: httpapi.Options{
			Logger:  slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			Version: "test",
		},
		Auth:   auth.Options{Now: e.now},
		Broker: broker.Options{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.api = api
	return e
}

// reply is a decoded response.
type reply struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (r reply) str(path ...string) string {
	var v any = r.Body
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[p]
	}
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

func (r reply) code() string { return r.str("Error", "Code") }

// do sends a request from a public client address.
func (e *env) do(method, target, body string, header ...string) reply {
	e.t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.RemoteAddr = "203.0.113.7:4321"
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return e.serve(req)
}

func (e *env) serve(req *http.Request) reply {
	e.t.Helper()
	return serveOn(e.t, e.api, req)
}

// serveOn serves req on h within 10 s and decodes the reply.
func serveOn(t *testing.T, h http.Handler, req *http.Request) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	defer cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req.WithContext(ctx))
	res := rec.Result()
	raw, _ := io.ReadAll(res.Body)
	r := reply{Status: res.StatusCode, Header: res.Header, Raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			t.Fatalf("reply is not JSON: %q", raw)
		}
	}
	return r
}

func (e *env) start(userID string) reply {
	e.t.Helper()
	return e.do("POST", "/session", `{"UserId":"`+userID+`","ClientSession":"cs-`+userID+`"}`)
}

func (e *env) slot(userID string) caremu.Slot {
	e.t.Helper()
	s, ok := e.emu.SlotOf(userID)
	if !ok {
		e.t.Fatalf("%s holds no concurrency", userID)
	}
	return s
}

// carCalls counts the emulator's calls of an action ("" = all).
func (e *env) carCalls(action string) int {
	n := 0
	for _, c := range e.emu.Calls() {
		if action == "" || c.Action == action {
			n++
		}
	}
	return n
}
