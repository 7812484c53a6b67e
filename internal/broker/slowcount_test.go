package broker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"carbroker/internal/broker"
	"carbroker/internal/car"
	"carbroker/internal/fault"
	"carbroker/internal/queue"
	"carbroker/internal/testing/redistest"
)

// clock is the test's time, shared by the Store and the Service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// slowCounter answers DescribeConcurrentCount, taking `took` of the clock.
type slowCounter struct {
	broker.CAR     // the session actions: not called
	clk            *clock
	took           time.Duration
	total, running uint64
}

func (c *slowCounter) DescribeConcurrentCount(context.Context, string, string) (car.ConcurrentCount, error) {
	c.clk.Add(c.took)
	return car.ConcurrentCount{Total: c.total, Running: c.running}, nil
}

// noIdleCAR refuses every lock (so every start) with NoIdle and counts who
// asked; its CAR answers DescribeConcurrentCount.
type noIdleCAR struct {
	broker.CAR
	mu    sync.Mutex
	asked []string
}

func (s *noIdleCAR) ApplyConcurrent(_ context.Context, in car.ApplyConcurrentInput) (string, error) {
	s.mu.Lock()
	s.asked = append(s.asked, in.UserID)
	s.mu.Unlock()
	return "", car.Classify("ApplyConcurrent", "ResourceNotFound.NoIdle")
}
func (s *noIdleCAR) CreateSession(context.Context, car.CreateSessionInput) (car.CreateSessionOutput, error) {
	return car.CreateSessionOutput{}, fault.New(fault.Internal, "CreateSession without a lock")
}
func (s *noIdleCAR) DestroySession(context.Context, string) (string, error) { return "rid", nil }

// newSlowLine is a line on a Redis of its own, with the test's clock, a
// CAR that refuses every start, and a count of 1 concurrency, all busy.
func newSlowLine(t *testing.T) (*broker.Service, *clock, *slowCounter, *noIdleCAR) {
	t.Helper()
	rs := redistest.Start(t)
	clk := &clock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	st, err := queue.Open(queue.Options{URL: rs.URL(), Abandon: 30 * time.Second, MaxPerIP: 4, HoldTTL: time.Hour,
		CallTimeout: 2 * time.Second, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	counter := &slowCounter{clk: clk, total: 1, running: 1}
	cars := &noIdleCAR{CAR: counter}
	svc := broker.New(cars, broker.Options{Line: st, Projects: []string{"cap-p"},
		Jitter: func() float64 { return 0 }, Now: clk.Now})
	return svc, clk, counter, cars
}

// A count refresh that takes longer than the count stays fresh must not
// hand its caller a way past the line: a newcomer who refreshed the count
// still joins behind the user already waiting, without touching CAR.
func TestSlowCountRefreshDoesNotJumpTheLine(t *testing.T) {
	t.Parallel()
	svc, clk, counter, cars := newSlowLine(t)
	start := func(user string) broker.Result {
		t.Helper()
		res, err := svc.Start(context.Background(), broker.StartInput{UserID: user, UserIP: "198.51.100.1", ProjectID: "cap-p"})
		if err != nil {
			t.Fatalf("start %s: %v", user, err)
		}
		return res
	}

	// alice is the head of the line: CAR had nothing idle for her.
	if res := start("alice"); res.Place == nil || res.Place.Position != 1 {
		t.Fatalf("alice: %+v, want Position 1", res)
	}
	// The count goes stale; bob arrives and gets the refresh, which is slow
	// (the count is stale again by the time it is stored) and shows an idle
	// concurrency.
	clk.Add(1100 * time.Millisecond)
	counter.took, counter.running = 1500*time.Millisecond, 0
	res := start("bob")
	if res.Place == nil || res.Place.Position != 2 {
		t.Errorf("bob: %+v, want a place behind alice (Position 2)", res)
	}
	if len(cars.asked) != 1 || cars.asked[0] != "alice" {
		t.Errorf("CAR was asked for %v, want only alice's first try: bob jumped the line", cars.asked)
	}
}

// A capacity read whose count refresh is slow still counts who waits.
func TestSlowCountRefreshKeepsCapacityWaiting(t *testing.T) {
	t.Parallel()
	svc, clk, counter, _ := newSlowLine(t)
	for _, u := range []string{"alice", "bob"} {
		if _, err := svc.Start(context.Background(), broker.StartInput{UserID: u, UserIP: "198.51.100.1", ProjectID: "cap-p"}); err != nil {
			t.Fatal(err)
		}
	}
	clk.Add(1100 * time.Millisecond)
	counter.took = 1500 * time.Millisecond
	c, err := svc.Capacity(context.Background(), "cap-p")
	if err != nil || c.Waiting != 2 || c.Total != 1 {
		t.Errorf("capacity with a slow count: %+v, %v; want Total 1 and Waiting 2", c, err)
	}
}
