package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"carbroker/internal/dev/caremu"
)

// lastRequestLog is the last "request" log line, decoded.
func (e *env) lastRequestLog() map[string]any {
	e.t.Helper()
	var last map[string]any
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" {
			last = m
		}
	}
	if last == nil {
		e.t.Fatalf("no request log line in %s", e.logs)
	}
	return last
}

// CAR's codes are read per action: the caller's message says what to do
// about that action, and the log's level says whose problem it is.
func TestCARCodesPerAction(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, action, code string
		status             int
		level              string
		says, never        []string // in the caller's message
	}{
		{"PathNotFound: retrying will not help, a warning", "CreateSession", "FailedOperation.PathNotFound", 502, "WARN",
			[]string{"retrying will not help", "CAR console"}, []string{"try again"}},
		{"JsonParseError is our bug: an error", "ApplyConcurrent", "InvalidParameter.JsonParseError", 500, "ERROR",
			[]string{"internal error"}, []string{"ClientSession"}},
		{"a bad project on ApplyConcurrent names the project, not the ClientSession", "ApplyConcurrent", "InvalidParameterValue", 400, "WARN",
			[]string{"ProjectId", "CAR_PROJECT_ID"}, []string{"ClientSession"}},
		{"a bad parameter on CreateSession: a fresh ClientSession", "CreateSession", "InvalidParameter", 400, "WARN",
			[]string{"fresh ClientSession"}, nil},
		{"InternalError is CAR's failure: an error", "CreateSession", "InternalError", 502, "ERROR", []string{"try again"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, caremu.Options{}, nil)
			e.emu.Inject(c.action, caremu.Fail(c.code, "injected"))
			r := e.start("alice")
			msg := r.str("Error", "Message")
			if r.Status != c.status {
				t.Fatalf("%d %s, want %d", r.Status, r.Raw, c.status)
			}
			for _, s := range c.says {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q does not say %q", msg, s)
				}
			}
			for _, s := range c.never {
				if strings.Contains(msg, s) {
					t.Errorf("message %q says %q", msg, s)
				}
			}
			l := e.lastRequestLog()
			if l["level"] != c.level || l["car_code"] != c.code {
				t.Errorf("logged at %v with car_code %v, want %s %s", l["level"], l["car_code"], c.level, c.code)
			}
		})
	}
}

// Under rate limiting, one request makes at most two calls of an action,
// and the log line shows the retry.
func TestRateLimitRetryIsSingleAndLogged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, nil)
	e.emu.Inject("ApplyConcurrent", repeat(caremu.Fail("RequestLimitExceeded", ""), 10)...)
	r := e.start("alice")
	if r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	if n := e.carCalls("ApplyConcurrent"); n != 2 {
		t.Errorf("ApplyConcurrent called %d times under rate limiting, want 2", n)
	}
	calls, _ := e.lastRequestLog()["car"].([]any)
	if len(calls) != 2 {
		t.Fatalf("logged CAR calls: %v", calls)
	}
	second, _ := calls[1].(map[string]any)
	if second["attempt"] != 2.0 || second["code"] != "RequestLimitExceeded" {
		t.Errorf("the retry is not visible in the log: %v", calls)
	}
}
