package fault_test

import (
	"testing"
	"time"

	"carbroker/internal/fault"
)

// Wait is the one home of the waits a caller is told (Retry-After): the
// kind's own, unless the failure names its own.
func TestWait(t *testing.T) {
	want := map[fault.Kind]time.Duration{fault.RateLimited: time.Second, fault.NoIdle: 5 * time.Second, fault.Unavailable: 2 * time.Second}
	for k := fault.Internal; k <= fault.SessionEnded; k++ {
		if got := (&fault.Error{Kind: k}).Wait(); got != want[k] {
			t.Errorf("%v: Wait %v, want %v", k, got, want[k])
		}
	}
	if got := (&fault.Error{Kind: fault.NoIdle, RetryAfter: 7 * time.Second}).Wait(); got != 7*time.Second {
		t.Errorf("an error's own RetryAfter: Wait %v", got)
	}
}
