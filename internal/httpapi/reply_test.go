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

// Each kind has the status and code of the error table in docs/reference.md,
// exactly: a kind moved to another status (or another kind's code) fails here.
// A new kind fails here too until it is added to the table below.
func TestEveryKindHasAStatus(t *testing.T) {
	t.Parallel()
	want := []struct {
		kind   fault.Kind
		status int
		code   string
	}{
		{fault.Internal, 500, "InternalError"},
		{fault.Invalid, 400, "InvalidParameter"},
		{fault.TooLarge, 413, "RequestTooLarge"},
		{fault.Unauthenticated, 401, "Unauthorized"},
		{fault.Forbidden, 403, "Forbidden"},
		{fault.NotFound, 404, "NotFound"},
		{fault.MethodNotAllowed, 405, "MethodNotAllowed"},
		{fault.RoleFull, 409, "RoleFull"},
		{fault.RateLimited, 429, "TooManyRequests"},
		{fault.NoIdle, 503, "NoIdleConcurrency"},
		{fault.Unavailable, 503, "Unavailable"},
		{fault.Timeout, 504, "UpstreamTimeout"},
		{fault.Upstream, 502, "UpstreamError"},
		{fault.SessionEnded, 403, "SessionEnded"},
	}
	for i, w := range want {
		if int(w.kind) != i {
			t.Fatalf("%s: the table above is not in the kinds' order (kind %d at row %d)", w.code, w.kind, i)
		}
		if s := httpapi.Status(w.kind); s != w.status {
			t.Errorf("%v: status %d, want %d", w.kind, s, w.status)
		}
		if c := w.kind.String(); c != w.code {
			t.Errorf("kind %d: code %q, want %q", w.kind, c, w.code)
		}
	}
	// A kind after the last one in the table is not known to the function:
	// it is rendered as an internal error, never with another kind's status.
	next := want[len(want)-1].kind + 1
	if s, c := httpapi.Status(next), next.String(); s != http.StatusInternalServerError || c != "InternalError" {
		t.Errorf("kind %d is past the table but renders as %d %s: add it to this test", next, s, c)
	}
	for _, k := range []fault.Kind{-1, 99} {
		if s, c := httpapi.Status(k), k.String(); s != http.StatusInternalServerError || c != "InternalError" {
			t.Errorf("unknown kind %d: %d %s", k, s, c)
		}
	}
}

// The reply is valid JSON whatever the message holds, and never carries the
// cause.
func TestWriteRendersOnlyWhatTheCallerMayRead(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
	rec := httptest.NewRecorder()
	httpapi.WriteError(rec, fault.New(fault.Unauthenticated, "missing ticket: send Authorization: Bearer <ticket> & retry"), "r1")
	if got := rec.Body.String(); got != `{"Error":{"Code":"Unauthorized","Message":"missing ticket: send Authorization: Bearer <ticket> & retry"},"RequestId":"r1"}` {
		t.Fatalf("body %s", got)
	}
}
