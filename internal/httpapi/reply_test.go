package httpapi_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"carbroker/internal/fault"
	"carbroker/internal/httpapi"
)

func TestEveryKindHasAStatus(t *testing.T) {
	for k := fault.Internal; k <= fault.SessionEnded; k++ {
		if s := httpapi.Status(k); s < 400 || s > 599 {
			t.Errorf("%v: status %d", k, s)
		}
	}
	if s := httpapi.Status(fault.Kind(99)); s != http.StatusInternalServerError {
		t.Errorf("unknown kind: %d", s)
	}
}

// The reply is valid JSON whatever the message holds, and never carries the
// cause.
func TestWriteRendersOnlyWhatTheCallerMayRead(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
		msg    string
	}{
		{fault.Wrap(fault.Invalid, "bad \x01 \"value\" </script>", errors.New("cause-secret")), 400, "InvalidParameter", "bad \x01 \"value\" </script>"},
		{errors.New("raw cause-secret"), 500, "InternalError", "internal error"},
		{fault.New(fault.NoIdle, "busy"), 503, "NoIdleConcurrency", "busy"},
		{fault.New(fault.SessionEnded, "time is up"), 403, "SessionEnded", "time is up"},
	}
	for _, c := range cases {
		w := httptest.NewRecorder()
		httpapi.WriteError(w, c.err, "req-1")
		var got httpapi.Reply
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("not JSON: %q", w.Body)
		}
		if w.Code != c.status || got.Error.Code != c.code || got.Error.Message != c.msg || got.RequestId != "req-1" {
			t.Errorf("%v: %d %s", c.err, w.Code, w.Body)
		}
		if strings.Contains(w.Body.String(), "cause-secret") {
			t.Errorf("the cause is rendered: %s", w.Body)
		}
		h := w.Header()
		if h.Get("Content-Type") != "application/json; charset=utf-8" || h.Get("Cache-Control") != "no-store" || h.Get("X-Request-Id") != "req-1" {
			t.Errorf("headers %v", h)
		}
	}
}

// A message with <, > or & reads as written: the replies are JSON, not HTML.
func TestWriteJSONDoesNotEscapeHTML(t *testing.T) {
	rec := httptest.NewRecorder()
	httpapi.WriteError(rec, fault.New(fault.Unauthenticated, "missing ticket: send Authorization: Bearer <ticket> & retry"), "r1")
	if got := rec.Body.String(); got != `{"Error":{"Code":"Unauthorized","Message":"missing ticket: send Authorization: Bearer <ticket> & retry"},"RequestId":"r1"}` {
		t.Fatalf("body %s", got)
	}
}
