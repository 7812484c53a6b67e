package broker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"carbroker/internal/broker"
	"carbroker/internal/queue"
)

// fakeLeases hands out ended leases at perSecond a second, as lease.lua
// does, on the bubble's clock.
type fakeLeases struct {
	broker.LeaseStore // the methods the sweep does not call panic
	mu                sync.Mutex
	due               []string
	sec               int64
	used              int
	done              []string
	down              bool
}

func (f *fakeLeases) LeaseClaim(_ context.Context, _ string, limit int, _ time.Duration, perSecond int) (queue.Claims, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return queue.Claims{}, errors.New("down")
	}
	now := time.Now()
	if s := now.Unix(); s != f.sec {
		f.sec, f.used = s, 0
	}
	var c queue.Claims
	for len(f.due) > 0 && len(c.Claimed) < limit && f.used < perSecond {
		c.Claimed = append(c.Claimed, queue.LeaseClaim{User: f.due[0], Gen: 1})
		f.due, f.used = f.due[1:], f.used+1
	}
	c.Due = len(f.due)
	if c.Due > 0 && f.used >= perSecond {
		c.Wait = now.Truncate(time.Second).Add(time.Second).Sub(now)
	}
	return c, nil
}

func (f *fakeLeases) LeaseDone(_ context.Context, _, user string, _ int64, _ time.Duration) (bool, error) {
	f.mu.Lock()
	f.done = append(f.done, user)
	f.mu.Unlock()
	return true, nil
}

func (f *fakeLeases) Quit(context.Context, string, string) error { return nil }

// sweepCAR destroys in 20 ms and records when each call came.
type sweepCAR struct {
	broker.CAR // the other actions: not called
	mu         sync.Mutex
	calls      []time.Time
}

func (c *sweepCAR) DestroySession(ctx context.Context, _ string) (string, error) {
	c.mu.Lock()
	c.calls = append(c.calls, time.Now())
	c.mu.Unlock()
	select {
	case <-time.After(20 * time.Millisecond):
		return "rid", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// The timer's sweep keeps within the per-second rate, waiting for the next
// second while it has time, and stops before the invocation's deadline;
// every destroy it started has ended when it returns.
func TestSweepPacingAndDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		users := make([]string, 3*broker.PerSecond+10)
		for i := range users {
			users[i] = "u" + string(rune('A'+i%26)) + string(rune('A'+i/26))
		}
		st := &fakeLeases{due: users}
		c := &sweepCAR{}
		s := broker.New(c, broker.Options{Leases: st, Projects: []string{"cap-1"}, SessionMax: time.Minute})
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second+broker.TimerMargin+500*time.Millisecond)
		defer cancel()
		r := s.Sweep(ctx)
		took := time.Since(start)
		if took > 2*time.Second+500*time.Millisecond {
			t.Errorf("the sweep took %v, past the deadline less its margin", took)
		}
		perSecond := map[int64]int{}
		for _, at := range c.calls {
			perSecond[at.Unix()]++
		}
		for s, n := range perSecond {
			if n > broker.PerSecond {
				t.Errorf("%d DestroySession calls in second %d, more than %d", n, s, broker.PerSecond)
			}
		}
		if r.Destroyed != 3*broker.PerSecond || r.Due != 10 || len(st.done) != r.Destroyed {
			t.Errorf("report %+v, %d done; want %d destroyed within three seconds, 10 left", r, len(st.done), 3*broker.PerSecond)
		}
		synctest.Wait() // nothing left running
	})
}

// A sweep that cannot read the store skips: nothing destroyed, and it says so.
func TestSweepSkipsWhenTheStoreIsDown(t *testing.T) {
	t.Parallel()
	st := &fakeLeases{due: []string{"a"}, down: true}
	c := &sweepCAR{}
	r := broker.New(c, broker.Options{Leases: st, Projects: []string{"cap-1"}, SessionMax: time.Minute}).Sweep(context.Background())
	if !r.Skipped || len(c.calls) != 0 {
		t.Errorf("%+v, %d calls", r, len(c.calls))
	}
}
