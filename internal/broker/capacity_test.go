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
	"carbroker/internal/queue"
	"carbroker/internal/testing/redistest"
)

// failingCounter answers DescribeConcurrentCount after `took`, with a
// failure unless ok, and records when each call started.
type failingCounter struct {
	broker.CAR // the session actions: not called
	mu         sync.Mutex
	took       time.Duration
	ok         bool
	starts     []time.Time
}

func (c *failingCounter) DescribeConcurrentCount(ctx context.Context, _, _ string) (car.ConcurrentCount, error) {
	c.mu.Lock()
	c.starts = append(c.starts, time.Now())
	ok := c.ok
	c.mu.Unlock()
	t := time.NewTimer(c.took)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return car.ConcurrentCount{}, fault.Wrap(fault.Timeout, "DescribeConcurrentCount timed out", ctx.Err())
	case <-t.C:
	}
	if !ok {
		return car.ConcurrentCount{}, &fault.Error{Kind: fault.Upstream, Action: "DescribeConcurrentCount", Code: "InternalError", Message: "CAR failed"}
	}
	return car.ConcurrentCount{Total: 4, Running: 1}, nil
}

func (c *failingCounter) calls() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.starts...)
}

// capacityBurst runs n concurrent Capacity reads over the services and
// returns how many failed.
func capacityBurst(svcs []*broker.Service, n int) (failed int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range n {
		wg.Go(func() {
			if _, err := svcs[i%len(svcs)].Capacity(context.Background(), "cap-p"); err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return failed
}

// Without the line (or with it degraded), an instance asks CAR for a
// project's count at most once a second, also when the count fails or is
// slow: concurrent callers share one call, and a failure is remembered for
// the second its call began.
func TestLocalCapacityOneCallASecond(t *testing.T) {
	t.Parallel()
	for _, took := range []time.Duration{10 * time.Millisecond, 1500 * time.Millisecond} {
		synctest.Test(t, func(t *testing.T) {
			counter := &failingCounter{took: took}
			svc := broker.New(counter, broker.Options{})
			if failed := capacityBurst([]*broker.Service{svc}, 40); failed != 40 {
				t.Fatalf("took %v: %d of 40 failed, want all (CAR fails)", took, failed)
			}
			if n := len(counter.calls()); n != 1 {
				t.Fatalf("took %v: 40 concurrent reads made %d DescribeConcurrentCount calls, want 1", took, n)
			}
			if took < time.Second {
				time.Sleep(500 * time.Millisecond)
				if _, err := svc.Capacity(context.Background(), "cap-p"); fault.KindOf(err) != fault.Upstream {
					t.Fatalf("within the second: %v, want the remembered failure", err)
				}
				if n := len(counter.calls()); n != 1 {
					t.Fatalf("a failure was not remembered for its second: %d calls", n)
				}
			}
			time.Sleep(time.Second)
			counter.mu.Lock()
			counter.ok = true
			counter.mu.Unlock()
			c, err := svc.Capacity(context.Background(), "cap-p")
			if err != nil || c.Total != 4 || c.Idle != 3 || len(counter.calls()) != 2 {
				t.Fatalf("a second later: %+v %v after %d calls", c, err, len(counter.calls()))
			}
		})
	}
}

// With the line, the count is shared across instances: 40 concurrent
// reads on two instances with a failing or slow count still start at most
// one DescribeConcurrentCount a second.
func TestCapacityOneCallASecondAcrossInstances(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: real time: one CAR call a second across instances, measured on the wall clock (3 s); make test runs it")
	}
	for _, took := range []time.Duration{10 * time.Millisecond, 1200 * time.Millisecond} {
		rs := redistest.Start(t)
		counter := &failingCounter{took: took}
		var svcs []*broker.Service
		for range 2 {
			st, err := queue.Open(queue.Options{URL: rs.URL(), CallTimeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			svcs = append(svcs, broker.New(counter, broker.Options{Line: st}))
		}
		began := time.Now()
		capacityBurst(svcs, 40)
		calls := counter.calls()
		for i := 1; i < len(calls); i++ {
			if gap := calls[i].Sub(calls[i-1]); gap < 900*time.Millisecond {
				t.Fatalf("took %v: DescribeConcurrentCount calls %v apart (%d calls in %v)", took, gap, len(calls), time.Since(began))
			}
		}
		if len(calls) == 0 || len(calls) > 3 {
			t.Fatalf("took %v: %d calls in %v", took, len(calls), time.Since(began))
		}
	}
}

// A caller that goes away while CAR is asked for the count does not make
// the others sharing that call fail with its deadline, nor start another
// call within the second: they are told the count is not there yet.
func TestSharedCountOutlivesItsCaller(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		counter := &failingCounter{took: time.Second, ok: true}
		svc := broker.New(counter, broker.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		var leaderErr error
		var wg sync.WaitGroup
		wg.Go(func() { _, leaderErr = svc.Capacity(ctx, "cap-p") })
		time.Sleep(100 * time.Millisecond)
		var followerErr error
		wg.Go(func() { _, followerErr = svc.Capacity(context.Background(), "cap-p") })
		time.Sleep(100 * time.Millisecond)
		cancel()
		wg.Wait()
		if leaderErr == nil || fault.KindOf(followerErr) != fault.Unavailable {
			t.Fatalf("leader %v, follower %v; want the follower told the count is being refreshed", leaderErr, followerErr)
		}
		if _, err := svc.Capacity(context.Background(), "cap-p"); fault.KindOf(err) != fault.Unavailable || len(counter.calls()) != 1 {
			t.Fatalf("within the second: %v after %d calls", err, len(counter.calls()))
		}
		time.Sleep(time.Second)
		if c, err := svc.Capacity(context.Background(), "cap-p"); err != nil || c.Total != 4 || len(counter.calls()) != 2 {
			t.Fatalf("a second later: %+v %v after %d calls", c, err, len(counter.calls()))
		}
	})
}
