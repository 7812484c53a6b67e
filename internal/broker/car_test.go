package broker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"carbroker/internal/broker"
	"carbroker/internal/car"
	"carbroker/internal/fault"
)

// fakeCAR answers each action from a script of error codes ("" = success)
// and counts the calls.
type fakeCAR struct {
	broker.CAR // DescribeConcurrentCount: not called
	mu         sync.Mutex
	script     map[string][]string
	calls      []string
	destroy    int
}

func (f *fakeCAR) next(action string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, action)
	s := f.script[action]
	if len(s) == 0 {
		return nil
	}
	code := s[0]
	if len(s) > 1 {
		f.script[action] = s[1:]
	}
	if code == "" {
		return nil
	}
	return car.Classify(action, code)
}

func (f *fakeCAR) ApplyConcurrent(ctx context.Context, in car.ApplyConcurrentInput) (string, error) {
	return "rid", f.next("ApplyConcurrent")
}

func (f *fakeCAR) CreateSession(ctx context.Context, in car.CreateSessionInput) (car.CreateSessionOutput, error) {
	if err := f.next("CreateSession"); err != nil {
		return car.CreateSessionOutput{}, err
	}
	return car.CreateSessionOutput{ServerSession: "ss-" + in.UserID}, nil
}

func (f *fakeCAR) DestroySession(ctx context.Context, userID string) (string, error) {
	f.mu.Lock()
	f.destroy++
	f.mu.Unlock()
	return "rid", f.next("DestroySession")
}

func (f *fakeCAR) count(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == action {
			n++
		}
	}
	return n
}

var fast = broker.Options{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}

func TestStartRetryPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		script        map[string][]string
		opt           broker.Options
		wantCode      string // "" = success
		apply, create int
	}{
		{"first try", nil, fast, "", 1, 1},
		{"SlowDown then ok", map[string][]string{"ApplyConcurrent": {"FailedOperation.SlowDown", ""}}, fast, "", 2, 1},
		{"Stopping then ok", map[string][]string{"ApplyConcurrent": {"UnsupportedOperation.Stopping", "UnsupportedOperation.Stopping", ""}}, fast, "", 3, 1},
		{"Initialization on create", map[string][]string{"CreateSession": {"ResourceUnavailable.Initialization", ""}}, fast, "", 1, 2},
		{"rate limited", map[string][]string{"ApplyConcurrent": {"RequestLimitExceeded.UinLimitExceeded", ""}}, fast, "", 2, 1},
		{"rate limited twice: one retry only", map[string][]string{"ApplyConcurrent": {"RequestLimitExceeded"}}, fast, "RequestLimitExceeded", 2, 0},
		{"rate limit retry is not renewed by SlowDown", map[string][]string{"ApplyConcurrent": {"RequestLimitExceeded", "FailedOperation.SlowDown", "RequestLimitExceeded", ""}}, fast, "RequestLimitExceeded", 3, 0},
		{"ProcessTimeout on ApplyConcurrent is retried", map[string][]string{"ApplyConcurrent": {"FailedOperation.ProcessTimeout", "FailedOperation.ProcessTimeout", ""}}, fast, "", 3, 1},
		{"ProcessTimeout on CreateSession is not", map[string][]string{"CreateSession": {"FailedOperation.ProcessTimeout", ""}}, fast, "FailedOperation.ProcessTimeout", 1, 1},
		{"PathNotFound is final", map[string][]string{"CreateSession": {"FailedOperation.PathNotFound", ""}}, fast, "FailedOperation.PathNotFound", 1, 1},
		{"a failed connection gets one more attempt", map[string][]string{"ApplyConcurrent": {"ClientError.NetworkError", ""}}, fast, "", 2, 1},
		{"and only one", map[string][]string{"ApplyConcurrent": {"ClientError.NetworkError"}}, fast, "ClientError.NetworkError", 2, 0},
		{"the rate limit's one retry is the request's, relock included", map[string][]string{"ApplyConcurrent": {"RequestLimitExceeded", "", "RequestLimitExceeded"},
			"CreateSession": {"FailedOperation.LockTimeout", ""}}, fast, "RequestLimitExceeded", 3, 1},
		{"a failed connection does not use up the rate limit's retry", map[string][]string{"ApplyConcurrent": {"ClientError.NetworkError", "RequestLimitExceeded", ""}}, fast, "", 3, 1},
		{"JsonParseError is not retried", map[string][]string{"ApplyConcurrent": {"InvalidParameter.JsonParseError", ""}}, fast, "InvalidParameter.JsonParseError", 1, 0},
		{"SlowDown forever stops at MaxAttempts", map[string][]string{"ApplyConcurrent": {"FailedOperation.SlowDown"}}, fast, "FailedOperation.SlowDown", 6, 0},
		{"LockTimeout: apply again, create once more", map[string][]string{"CreateSession": {"FailedOperation.LockTimeout", ""}}, fast, "", 2, 2},
		{"LockTimeout twice is final", map[string][]string{"CreateSession": {"FailedOperation.LockTimeout"}}, fast, "FailedOperation.LockTimeout", 2, 2},
		{"NoIdle without wait", map[string][]string{"ApplyConcurrent": {"ResourceNotFound.NoIdle", ""}}, fast, "ResourceNotFound.NoIdle", 1, 0},
		{"NoIdle with wait", map[string][]string{"ApplyConcurrent": {"ResourceNotFound.NoIdle", "ResourceNotFound.NoIdle", ""}},
			broker.Options{NoIdleWait: time.Second, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}, "", 3, 1},
		// CreateSession cannot lock a concurrency: repeating it on NoIdle
		// only spends the request's budget (CAR_NOIDLE_WAIT is for
		// ApplyConcurrent).
		{"NoIdle on CreateSession is final, wait or not", map[string][]string{"CreateSession": {"ResourceNotFound.NoIdle", ""}},
			broker.Options{NoIdleWait: time.Second, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}, "ResourceNotFound.NoIdle", 1, 1},
		{"InternalError is not retried", map[string][]string{"CreateSession": {"InternalError"}}, fast, "InternalError", 1, 1},
		{"InvalidParameter is not retried", map[string][]string{"CreateSession": {"InvalidParameterValue"}}, fast, "InvalidParameterValue", 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeCAR{script: tt.script}
			if f.script == nil {
				f.script = map[string][]string{}
			}
			s := broker.New(f, tt.opt)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := s.Start(ctx, broker.StartInput{UserID: "u1", UserIP: "1.2.3.4", ProjectID: "cap-1", ClientSession: "cs"})
			ss := res.ServerSession
			if got := fault.As(err).Code; tt.wantCode != "" && got != tt.wantCode || tt.wantCode == "" && err != nil {
				t.Fatalf("err = %v, want code %q", err, tt.wantCode)
			}
			if err == nil && ss != "ss-u1" {
				t.Errorf("ServerSession = %q", ss)
			}
			if a, c := f.count("ApplyConcurrent"), f.count("CreateSession"); a != tt.apply || c != tt.create {
				t.Errorf("calls: ApplyConcurrent %d, CreateSession %d; want %d, %d", a, c, tt.apply, tt.create)
			}
			if f.destroy != 0 {
				t.Errorf("DestroySession called %d times on a start", f.destroy)
			}
		})
	}
}

// roundTripCAR is a fakeCAR whose ApplyConcurrent answers after rtt, as a
// CAR across a network does.
type roundTripCAR struct {
	fakeCAR
	rtt time.Duration
}

func (f *roundTripCAR) ApplyConcurrent(ctx context.Context, in car.ApplyConcurrentInput) (string, error) {
	time.Sleep(f.rtt)
	return f.fakeCAR.ApplyConcurrent(ctx, in)
}

func TestRetriesStopAtDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		// CAR answers in 1ms. (With answers that take no time at all, the
		// last retries before the deadline go without backoff, up to
		// MaxAttempts: smithy's ComputeDelay shortens the last delay to
		// leave MinBackoff, and then to zero.)
		f := &roundTripCAR{fakeCAR: fakeCAR{script: map[string][]string{"ApplyConcurrent": {"FailedOperation.SlowDown"}}}, rtt: time.Millisecond}
		s := broker.New(f, broker.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
			MaxAttempts: 1000, MinAttempt: 20 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := s.Start(ctx, broker.StartInput{UserID: "u1", ClientSession: "cs"})
		// No attempt starts with less than MinAttempt (20ms) left of the
		// 150ms less CreateSession's reserve (MinAttempt): the last starts
		// by 110ms and is answered by 111ms, where a loop that ignored the
		// deadline would make 1000 attempts of 20-40ms.
		if el := time.Since(start); el > 111*time.Millisecond {
			t.Errorf("took %v with a 150ms deadline, want at most 111ms", el)
		}
		// The last answer stands: SlowDown, not a timeout.
		if code := fault.As(err).Code; code != "FailedOperation.SlowDown" {
			t.Errorf("err = %v, want the last CAR answer", err)
		}
		// Backoffs of 20-40ms in the 110ms (5 or 6 attempts seen).
		if n := f.count("ApplyConcurrent"); n < 4 || n > 7 {
			t.Errorf("%d attempts in 110ms with 20-40ms backoff, want 4 to 7", n)
		}
		if n := f.count("CreateSession"); n != 0 {
			t.Errorf("CreateSession called %d times after ApplyConcurrent failed", n)
		}
	})
}

// A backoff class never repeats a call without its backoff: near the
// deadline smithy's ComputeDelay shrinks the last delay to leave MinBackoff,
// then to zero, and with MinAttempt no larger than MinBackoff an instant CAR
// was called until MaxAttempts ran out.
func TestNoRetryWithoutBackoffNearTheDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := &fakeCAR{script: map[string][]string{"ApplyConcurrent": {"FailedOperation.SlowDown"}}}
		s := broker.New(f, broker.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
			MaxAttempts: 1000, MinAttempt: 20 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		_, err := s.Start(ctx, broker.StartInput{UserID: "u1", ClientSession: "cs"})
		if code := fault.As(err).Code; code != "FailedOperation.SlowDown" {
			t.Errorf("err = %v, want the last CAR answer", err)
		}
		if n := f.count("ApplyConcurrent"); n > 7 {
			t.Errorf("%d attempts in 110ms with 20-40ms backoff, want at most 7", n)
		}
	})
}

// timeoutCAR answers ApplyConcurrent with NoIdle, then with a timeout.
type timeoutCAR struct{ fakeCAR }

func (f *timeoutCAR) ApplyConcurrent(ctx context.Context, in car.ApplyConcurrentInput) (string, error) {
	if f.count("ApplyConcurrent") == 0 {
		return f.fakeCAR.ApplyConcurrent(ctx, in)
	}
	f.next("ApplyConcurrent")
	return "", &fault.Error{Kind: fault.Timeout, Code: "ClientError.NetworkError", Action: "ApplyConcurrent"}
}

func TestTimeoutAfterADefiniteAnswerReturnsTheAnswer(t *testing.T) {
	t.Parallel()
	f := &timeoutCAR{fakeCAR{script: map[string][]string{"ApplyConcurrent": {"ResourceNotFound.NoIdle"}}}}
	s := broker.New(f, broker.Options{NoIdleWait: time.Minute, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	_, err := s.Start(context.Background(), broker.StartInput{UserID: "u1", ClientSession: "cs"})
	if code := fault.As(err).Code; code != "ResourceNotFound.NoIdle" {
		t.Fatalf("err = %v, want the NoIdle that came before the timeout", err)
	}
}

func TestGuestSkipsApplyUnlessConfigured(t *testing.T) {
	t.Parallel()
	for _, guestApply := range []bool{false, true} {
		f := &fakeCAR{script: map[string][]string{}}
		o := fast
		o.GuestApply = guestApply
		s := broker.New(f, o)
		_, err := s.Start(context.Background(), broker.StartInput{UserID: "guest", HostUserID: "host", Role: "Player", ClientSession: "cs"})
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if guestApply {
			want = 1
		}
		if n := f.count("ApplyConcurrent"); n != want {
			t.Errorf("GuestApply=%v: ApplyConcurrent called %d times, want %d", guestApply, n, want)
		}
	}
}

func TestStopToleratesMissingAndStopping(t *testing.T) {
	t.Parallel()
	for _, code := range []string{"", "ResourceNotFound.SessionNotFound", "UnsupportedOperation.Stopping"} {
		f := &fakeCAR{script: map[string][]string{"DestroySession": {code}}}
		if err := broker.New(f, fast).Stop(context.Background(), "u1"); err != nil {
			t.Errorf("code %q: %v", code, err)
		}
	}
	f := &fakeCAR{script: map[string][]string{"DestroySession": {"InternalError"}}}
	err := broker.New(f, fast).Stop(context.Background(), "u1")
	var fe *fault.Error
	if !errors.As(err, &fe) || fe.Code != "InternalError" {
		t.Errorf("err = %v", err)
	}
	if n := f.count("DestroySession"); n != 1 {
		t.Errorf("InternalError: DestroySession called %d times", n)
	}
	// CAR's spec lists these for DestroySession, which is idempotent: retried.
	for _, code := range []string{"ResourceUnavailable.AccessFailed", "FailedOperation.ProcessTimeout"} {
		f := &fakeCAR{script: map[string][]string{"DestroySession": {code, code, ""}}}
		if err := broker.New(f, fast).Stop(context.Background(), "u1"); err != nil {
			t.Errorf("%s then success: %v", code, err)
		}
		if n := f.count("DestroySession"); n != 3 {
			t.Errorf("%s: DestroySession called %d times, want 3", code, n)
		}
	}
}
