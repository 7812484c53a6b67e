package httpapi_test

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"carbroker/internal/dev/caremu"
)

// TestErrorTable walks every row of the error table (docs/reference.md) through the
// real SDK and the emulator.
func TestErrorTable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		action     string
		faults     []caremu.Fault
		status     int
		code       string
		retryAfter bool
		attempts   int // calls of action
	}{
		{"NoIdle", "ApplyConcurrent", []caremu.Fault{caremu.Fail("ResourceNotFound.NoIdle", "")}, 503, "NoIdleConcurrency", true, 1},
		{"RequestLimitExceeded after one retry", "ApplyConcurrent", repeat(caremu.Fail("RequestLimitExceeded", ""), 2), 429, "TooManyRequests", true, 2},
		{"RequestLimitExceeded.UinLimitExceeded", "CreateSession", repeat(caremu.Fail("RequestLimitExceeded.UinLimitExceeded", ""), 2), 429, "TooManyRequests", true, 2},
		{"RequestLimitExceeded once", "ApplyConcurrent", []caremu.Fault{caremu.Fail("RequestLimitExceeded.IPLimitExceeded", "")}, 200, "", false, 2},
		{"SlowDown after retries", "ApplyConcurrent", repeat(caremu.Fail("FailedOperation.SlowDown", ""), 6), 429, "TooManyRequests", true, 6},
		{"SlowDown then success", "ApplyConcurrent", repeat(caremu.Fail("FailedOperation.SlowDown", ""), 2), 200, "", false, 3},
		{"Stopping after retries", "ApplyConcurrent", repeat(caremu.Fail("UnsupportedOperation.Stopping", ""), 6), 503, "Unavailable", true, 6},
		{"Initialization after retries", "CreateSession", repeat(caremu.Fail("ResourceUnavailable.Initialization", ""), 6), 503, "Unavailable", true, 6},
		{"LimitExceeded.Role", "CreateSession", []caremu.Fault{caremu.Fail("LimitExceeded.Role", "")}, 409, "RoleFull", false, 1},
		{"InternalError", "CreateSession", []caremu.Fault{caremu.Fail("InternalError", "")}, 502, "UpstreamError", false, 1},
		{"FailedOperation", "ApplyConcurrent", []caremu.Fault{caremu.Fail("FailedOperation", "")}, 502, "UpstreamError", false, 1},
		{"ProcessTimeout", "CreateSession", []caremu.Fault{caremu.Fail("FailedOperation.ProcessTimeout", "")}, 502, "UpstreamError", false, 1},
		{"ProcessTimeout on ApplyConcurrent is retried", "ApplyConcurrent", repeat(caremu.Fail("FailedOperation.ProcessTimeout", ""), 2), 200, "", false, 3},
		{"PathNotFound", "CreateSession", []caremu.Fault{caremu.Fail("FailedOperation.PathNotFound", "")}, 502, "UpstreamError", false, 1},
		{"JsonParseError (our bug)", "ApplyConcurrent", []caremu.Fault{caremu.Fail("InvalidParameter.JsonParseError", "")}, 500, "InternalError", false, 1},
		{"AccessFailed", "CreateSession", []caremu.Fault{caremu.Fail("ResourceUnavailable.AccessFailed", "")}, 502, "UpstreamError", false, 1},
		{"unknown CAR code", "CreateSession", []caremu.Fault{caremu.Fail("FailedOperation.Something", "")}, 502, "UpstreamError", false, 1},
		{"HTML 500 (ParseJsonError)", "ApplyConcurrent", []caremu.Fault{caremu.Raw(500, "text/html", "<html>oops</html>")}, 502, "UpstreamError", false, 1},
		{"truncated JSON", "CreateSession", []caremu.Fault{caremu.Raw(200, "application/json", `{"Response":{"ServerSess`)}, 502, "UpstreamError", false, 1},
		{"empty body", "CreateSession", []caremu.Fault{caremu.Raw(200, "application/json", ``)}, 502, "UpstreamError", false, 1},
		{"HTTP 502 with an envelope (HttpStatusCodeError)", "CreateSession", []caremu.Fault{caremu.Raw(502, "application/json", `{"Response":{"RequestId":"r"}}`)}, 502, "UpstreamError", false, 1},
		{"success without ServerSession", "CreateSession", []caremu.Fault{caremu.Raw(200, "application/json", `{"Response":{"RequestId":"r"}}`)}, 502, "UpstreamError", false, 1},
		{"InvalidParameterValue on ApplyConcurrent", "ApplyConcurrent", []caremu.Fault{caremu.Fail("InvalidParameterValue", "")}, 400, "InvalidParameter", false, 1},
		{"InvalidParameter from CAR", "CreateSession", []caremu.Fault{caremu.Fail("InvalidParameter", "")}, 400, "InvalidParameter", false, 1},
		{"InvalidParameterValue from CAR", "CreateSession", []caremu.Fault{caremu.Fail("InvalidParameterValue.ClientSession", "")}, 400, "InvalidParameter", false, 1},
		{"OperationDenied", "ApplyConcurrent", []caremu.Fault{caremu.Fail("OperationDenied", "")}, 403, "Forbidden", false, 1},
		{"AuthFailure.SignatureExpire", "ApplyConcurrent", []caremu.Fault{caremu.Fail("AuthFailure.SignatureExpire", "")}, 500, "InternalError", false, 1},
		{"UnauthorizedOperation (role without CAR permissions)", "ApplyConcurrent", []caremu.Fault{caremu.Fail("UnauthorizedOperation", "")}, 500, "InternalError", false, 1},
		{"AuthFailure.UnauthorizedOperation", "CreateSession", []caremu.Fault{caremu.Fail("AuthFailure.UnauthorizedOperation", "")}, 500, "InternalError", false, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, caremu.Options{}, nil)
			e.emu.Inject(c.action, c.faults...)
			r := e.start("alice")
			if r.Status != c.status || r.code() != c.code {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Raw, c.status, c.code)
			}
			if got := r.Header.Get("Retry-After") != ""; got != c.retryAfter {
				t.Errorf("Retry-After %q, want present=%v", r.Header.Get("Retry-After"), c.retryAfter)
			}
			if n := e.carCalls(c.action); n != c.attempts {
				t.Errorf("%s called %d times, want %d", c.action, n, c.attempts)
			}
			if n := e.carCalls("DestroySession"); n != 0 {
				t.Errorf("DestroySession called on a failure path")
			}
			if r.Status == 500 && r.str("Error", "Message") != "internal error" {
				t.Errorf("500 message %q leaks details", r.str("Error", "Message"))
			}
			if r.Status != 200 && (strings.Contains(r.Raw, "oops") || strings.Contains(r.Raw, "ServerSess")) {
				t.Errorf("upstream body leaked: %s", r.Raw)
			}
			// The process stays healthy: the next request works.
			if r := e.start("bob"); r.Status != 200 {
				t.Errorf("next request: %d %s", r.Status, r.Raw)
			}
		})
	}
}

func TestWrongCredentialsAre500(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, map[string]string{"TENCENTCLOUD_SECRETKEY": "not-the-key"})
	r := e.start("alice")
	if r.Status != 500 || r.code() != "InternalError" || r.str("Error", "Message") != "internal error" {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	if !strings.Contains(e.logs.String(), "AuthFailure.SignatureFailure") {
		t.Errorf("the operator's log lacks the CAR code:\n%s", e.logs.String())
	}
}

// A CAR call that never answers is cut at the request's budget: on the
// fake clock, the 504 comes when the 150ms are up, not later.
func TestDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, caremu.Options{}, map[string]string{"REQUEST_TIMEOUT": "150ms"})
		e.emu.Inject("CreateSession", caremu.Hang())
		start := time.Now()
		r := e.start("alice")
		if r.Status != 504 || r.code() != "UpstreamTimeout" {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
		if el := time.Since(start); el != 150*time.Millisecond {
			t.Errorf("took %v with a 150ms budget, want 150ms", el)
		}
	})
}

// Waiting for an idle concurrency stops within the budget, and the caller
// learns why (503 NoIdle), not a timeout.
func TestNoIdleWaitIsBoundedByTheBudget(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t, caremu.Options{Concurrency: 1}, map[string]string{"REQUEST_TIMEOUT": "1s", "CAR_NOIDLE_WAIT": "1m"})
		if r := e.start("alice"); r.Status != 200 {
			t.Fatal(r.Raw)
		}
		e.emu.SetLatency("ApplyConcurrent", 80*time.Millisecond)
		start := time.Now()
		r := e.start("bob")
		if r.Status != 503 || r.code() != "NoIdleConcurrency" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("%d %s", r.Status, r.Raw)
		}
		// The wait ends with the 1 s budget, not CAR_NOIDLE_WAIT's minute:
		// the last attempt starts while it leaves MinAttempt (250ms) besides
		// CreateSession's reserve (250ms), by 500ms, and takes 80ms.
		if el := time.Since(start); el > 580*time.Millisecond {
			t.Errorf("answered after %v with a 1s budget, want by 580ms", el)
		}
		if n := e.carCalls("ApplyConcurrent"); n < 3 {
			t.Errorf("bob's ApplyConcurrent was tried %d times in the wait", n-1)
		}
	})
}

func repeat(f caremu.Fault, n int) []caremu.Fault {
	out := make([]caremu.Fault, n)
	for i := range out {
		out[i] = f
	}
	return out
}
