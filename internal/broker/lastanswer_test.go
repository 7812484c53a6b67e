package broker_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"carbroker/internal/broker"
	"carbroker/internal/car"
	"carbroker/internal/fault"
)

// scriptCAR answers ApplyConcurrent from a script: a CAR code, "" for
// success, or "stall" for a call that never answers (it ends with its
// context, as the CAR client's calls do). Past the script, success.
type scriptCAR struct {
	broker.CAR // the other actions: not called
	mu         sync.Mutex
	script     []string
	calls      int
}

func (f *scriptCAR) ApplyConcurrent(ctx context.Context, _ car.ApplyConcurrentInput) (string, error) {
	f.mu.Lock()
	code := ""
	if f.calls < len(f.script) {
		code = f.script[f.calls]
	}
	f.calls++
	f.mu.Unlock()
	switch code {
	case "":
		return "rid", nil
	case "stall":
		<-ctx.Done()
		return "", &fault.Error{Kind: fault.Timeout, Retry: fault.Reconnect, Action: "ApplyConcurrent", Code: "ClientError", Err: ctx.Err()}
	}
	return "", car.Classify("ApplyConcurrent", code)
}

// When the attempts or the request's time run out after CAR gave a
// definite answer, that answer is the request's, also when a later
// attempt was cut short by CAR_ATTEMPT_TIMEOUT (docs/reference.md, the
// retry policy); a CAR that never answered is a timeout. 5a76942 answered
// 504 UpstreamTimeout in the first two cases: the cut attempt's timeout
// took the place of the definite answer.
func TestLastDefiniteAnswerStands(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name        string
		script      []string
		maxAttempts int
		want        fault.Kind
		calls       int
	}{
		{"attempts run out on a cut attempt", []string{"RequestLimitExceeded", "stall"}, 2, fault.RateLimited, 2},
		{"the deadline after a cut attempt", []string{"FailedOperation.SlowDown", "stall", "stall"}, 0, fault.RateLimited, 3},
		{"CAR never answered", []string{"stall", "stall"}, 0, fault.Timeout, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &scriptCAR{script: tt.script}
				s := broker.New(f, broker.Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
					AttemptTimeout: 300 * time.Millisecond, MaxAttempts: tt.maxAttempts})
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				_, err := s.Lock(ctx, startIn)
				if got := fault.KindOf(err); got != tt.want {
					t.Errorf("err = %v, want kind %v", err, tt.want)
				}
				if f.calls != tt.calls {
					t.Errorf("%d calls, want %d", f.calls, tt.calls)
				}
			})
		})
	}
}
