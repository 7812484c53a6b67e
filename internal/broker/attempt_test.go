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

// stallCAR stands for a CAR reached through connections that may be dead:
// the calls listed in stall[action] (1-based) never answer, or answer after
// slow[action]; the others answer at once. Each call's deadline is recorded.
type stallCAR struct {
	broker.CAR // DescribeConcurrentCount: not called
	mu         sync.Mutex
	stall      map[string]map[int]bool
	slow       map[string]time.Duration
	calls      map[string]int
	deadlines  map[string][]time.Duration // time left at each call's start
	attempts   map[string][]int           // the call log's attempt number of each call
}

func newStallCAR() *stallCAR {
	return &stallCAR{stall: map[string]map[int]bool{}, slow: map[string]time.Duration{}, calls: map[string]int{},
		deadlines: map[string][]time.Duration{}, attempts: map[string][]int{}}
}

func (f *stallCAR) do(ctx context.Context, action string) error {
	f.mu.Lock()
	f.calls[action]++
	n := f.calls[action]
	left := time.Duration(-1)
	if dl, ok := ctx.Deadline(); ok {
		left = time.Until(dl)
	}
	f.deadlines[action] = append(f.deadlines[action], left)
	f.attempts[action] = append(f.attempts[action], car.AttemptOf(ctx))
	stall, slow := f.stall[action][n], f.slow[action]
	f.mu.Unlock()
	wait := slow
	if stall {
		wait = time.Hour
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		// The deadline wins when both are due: a loaded machine may run this
		// goroutine, or the context's own timer, late.
		if dl, ok := ctx.Deadline(); ctx.Err() != nil || ok && !time.Now().Before(dl) {
			<-ctx.Done()
			// what the CAR client returns when the deadline cuts a call
			return &fault.Error{Kind: fault.Timeout, Retry: fault.Reconnect, Action: action, Code: "ClientError.NetworkError", Err: ctx.Err()}
		}
	}
	return nil
}

func (f *stallCAR) count(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[action]
}

func (f *stallCAR) ApplyConcurrent(ctx context.Context, in car.ApplyConcurrentInput) (string, error) {
	return "rid", f.do(ctx, "ApplyConcurrent")
}

func (f *stallCAR) CreateSession(ctx context.Context, in car.CreateSessionInput) (car.CreateSessionOutput, error) {
	if err := f.do(ctx, "CreateSession"); err != nil {
		return car.CreateSessionOutput{}, err
	}
	return car.CreateSessionOutput{ServerSession: "ss"}, nil
}

func (f *stallCAR) DestroySession(ctx context.Context, userID string) (string, error) {
	return "rid", f.do(ctx, "DestroySession")
}

var attemptOpts = broker.Options{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
	AttemptTimeout: 100 * time.Millisecond, MinAttempt: 50 * time.Millisecond}

// reserve is what a start keeps of its budget for CreateSession after
// ApplyConcurrent: MinAttempt.
const reserve = 50 * time.Millisecond

var startIn = broker.StartInput{UserID: "u1", UserIP: "203.0.113.1", ProjectID: "cap-1", ClientSession: "cs"}

// A first attempt that never answers costs AttemptTimeout, not the budget:
// the call is repeated (on a fresh connection) and succeeds. The fake
// clock makes the cost exact: the attempt timeout and nothing else (the
// retry after an attempt cut short goes at once).
func TestDeadFirstAttemptCostsAttemptTimeout(t *testing.T) {
	t.Parallel()
	for _, action := range []string{"ApplyConcurrent", "DestroySession"} {
		t.Run(action, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newStallCAR()
				f.stall[action] = map[int]bool{1: true}
				s := broker.New(f, attemptOpts)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				start := time.Now()
				var err error
				if action == "DestroySession" {
					err = s.Stop(ctx, "u1")
				} else {
					_, err = s.Start(ctx, startIn)
				}
				el := time.Since(start)
				if err != nil {
					t.Fatal(err)
				}
				if el != 100*time.Millisecond {
					t.Errorf("took %v with a 100ms attempt timeout and a 20s budget, want 100ms", el)
				}
				if n := f.count(action); n != 2 {
					t.Errorf("%s called %d times, want 2", action, n)
				}
				if got := f.attempts[action]; got[0] != 0 || got[1] != 2 {
					t.Errorf("attempt numbers in the call log: %v", got)
				}
				// The retry had the rest of the budget (a start's less the
				// reserve), not another short share.
				rest := 20*time.Second - 100*time.Millisecond
				if action == "ApplyConcurrent" {
					rest -= reserve
				}
				if got := f.deadlines[action]; got[0] != 100*time.Millisecond || got[1] != rest {
					t.Errorf("time left at each attempt: %v", got)
				}
			})
		})
	}
}

// A CAR that never answers still gets a timeout, within the budget: the
// attempt after the short one gets the rest of it, less CreateSession's
// reserve.
func TestHangingCARTimesOutAtTheBudget(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newStallCAR()
		f.stall["ApplyConcurrent"] = map[int]bool{1: true, 2: true, 3: true}
		s := broker.New(f, attemptOpts)
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := s.Start(ctx, startIn)
		el := time.Since(start)
		if fault.KindOf(err) != fault.Timeout {
			t.Fatalf("err = %v, want a timeout", err)
		}
		if n := f.count("ApplyConcurrent"); n != 2 {
			t.Errorf("ApplyConcurrent called %d times, want 2", n)
		}
		// The second attempt got the rest of the budget less the reserve,
		// not another short share; the answer came when it ran out.
		left := f.deadlines["ApplyConcurrent"]
		if len(left) != 2 || left[0] != 100*time.Millisecond || left[1] != 1400*time.Millisecond-reserve {
			t.Errorf("time left at each attempt: %v, want [100ms %v]", left, 1400*time.Millisecond-reserve)
		}
		if el != 1500*time.Millisecond-reserve {
			t.Errorf("took %v with a 1.5s budget, want %v", el, 1500*time.Millisecond-reserve)
		}
	})
}

// A slow but live CAR is cut short once at most: the retry, and every call
// after a success, get the rest of the budget.
func TestSlowCARIsCutShortOnceAtMost(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newStallCAR()
		f.slow["ApplyConcurrent"] = 200 * time.Millisecond
		f.slow["CreateSession"] = 200 * time.Millisecond
		s := broker.New(f, attemptOpts)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		if _, err := s.Start(ctx, startIn); err != nil {
			t.Fatal(err)
		}
		if a, c := f.count("ApplyConcurrent"), f.count("CreateSession"); a != 2 || c != 1 {
			t.Errorf("ApplyConcurrent %d, CreateSession %d; want 2, 1", a, c)
		}
		// 100ms cut short, then 200ms and 200ms in full.
		if el := time.Since(start); el != 500*time.Millisecond {
			t.Errorf("took %v, want 500ms", el)
		}
	})
}

// With a budget too small for a retry after a short attempt, the only
// attempt gets all of it.
func TestSmallBudgetGoesToOneAttempt(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newStallCAR()
		f.slow["ApplyConcurrent"] = 120 * time.Millisecond
		s := broker.New(f, attemptOpts)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		short, cancel2 := context.WithTimeout(ctx, 140*time.Millisecond)
		defer cancel2()
		if _, err := s.Lock(short, startIn); err != nil {
			t.Fatal(err) // 120ms fits in the 140ms it has: no AttemptTimeout cut
		}
		if n := f.count("ApplyConcurrent"); n != 1 {
			t.Errorf("ApplyConcurrent called %d times, want 1", n)
		}
	})
}
