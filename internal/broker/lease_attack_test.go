package broker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"carbroker/internal/broker"
	"carbroker/internal/car"
	"carbroker/internal/queue"
	"carbroker/internal/resp"
	"carbroker/internal/testing/redistest"
	"carbroker/internal/testing/testkit"
)

// leaseCAR hands a session to every start (counting them) and destroys
// whatever session a user has (CAR takes only a UserId); when entered is
// set, its first DestroySession is in flight until release is closed.
type leaseCAR struct {
	broker.CAR // DescribeConcurrentCount: not called
	entered    chan struct{}
	release    chan struct{}

	mu       sync.Mutex
	handed   int // sessions handed
	destroys int // DestroySession calls
}

func (f *leaseCAR) ApplyConcurrent(context.Context, car.ApplyConcurrentInput) (string, error) {
	return "rid", nil
}

func (f *leaseCAR) CreateSession(context.Context, car.CreateSessionInput) (car.CreateSessionOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handed++
	return car.CreateSessionOutput{ServerSession: "ss"}, nil
}

func (f *leaseCAR) DestroySession(context.Context, string) (string, error) {
	f.mu.Lock()
	f.destroys++
	first := f.destroys == 1
	f.mu.Unlock()
	if first && f.entered != nil {
		close(f.entered)
		<-f.release
	}
	return "rid", nil
}

func (f *leaseCAR) sessions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.handed
}

func openStore(t *testing.T, url string, clock *testkit.Clock) *queue.Store {
	t.Helper()
	st, err := queue.Open(queue.Options{URL: url, Now: clock.Now, CallTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A user's stop claims its lease while its DestroySession is in flight. A
// request may last REQUEST_TIMEOUT (up to 15 min), far past ClaimTTL: the
// claim must not lapse while the stop's call can still reach CAR, or a
// sweep retakes it, the user starts a newer session, and the stop's late
// DestroySession ends that newer one.
func TestLeaseReproStopOutlivesItsClaim(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	clock := testkit.NewClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	const p = "cap-test0001"
	// The stop's DestroySession is the first: it is in flight until release.
	c := &leaseCAR{entered: make(chan struct{}), release: make(chan struct{})}
	mk := func() *broker.Service {
		return broker.New(c, broker.Options{Leases: openStore(t, srv.URL(), clock), Projects: []string{p}, SessionMax: 10 * time.Minute})
	}
	a, b := mk(), mk()
	in := broker.StartInput{UserID: "alice", ProjectID: p}
	if r, err := a.Start(context.Background(), in); err != nil || r.ExpiresAt.IsZero() {
		t.Fatalf("start: %+v %v", r, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // REQUEST_TIMEOUT=5m
	defer cancel()
	stopped := make(chan error)
	go func() { stopped <- a.Stop(ctx, "alice") }()
	<-c.entered
	clock.Advance(broker.ClaimTTL + time.Second) // the stop's call is still in flight
	b.Sweep(context.Background())
	_, err := b.Start(context.Background(), in)
	handedBefore := c.sessions()
	close(c.release) // the stop's DestroySession reaches CAR now
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if err == nil && handedBefore == 2 {
		t.Errorf("a newer session was handed (and leased) while the stop's DestroySession was in flight: that call ended it")
	}
}

// Generations are "a number no other lease ever had", so that a claim
// never marks another lease done. The store lost its data (FLUSHALL, a
// failover to an empty replica) while a sweep's destroy was in flight; the
// user then started again, and its new lease must still be enforced when
// it ends: the old claim's done must not take the new lease for its own.
func TestLeaseReproGenerationReusedAfterTheStoreLostItsData(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	clock := testkit.NewClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	const p = "cap-test0001"
	// The sweep's DestroySession is the first: it is in flight until release.
	d := &leaseCAR{entered: make(chan struct{}), release: make(chan struct{})}
	mk := func() *broker.Service {
		return broker.New(d, broker.Options{Leases: openStore(t, srv.URL(), clock), Projects: []string{p}, SessionMax: 10 * time.Minute})
	}
	a, b := mk(), mk()
	in := broker.StartInput{UserID: "alice", ProjectID: p}
	if _, err := a.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10*time.Minute + time.Second)
	swept := make(chan broker.Report)
	go func() { swept <- b.Sweep(context.Background()) }()
	<-d.entered
	raw := resp.New(resp.Options{Addr: srv.Addr()})
	defer raw.Close()
	if _, err := raw.Do(context.Background(), "FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	r, err := a.Start(context.Background(), in)
	if err != nil || r.ExpiresAt.IsZero() {
		t.Fatalf("start after the flush: %+v %v", r, err)
	}
	close(d.release)
	<-swept
	clock.Advance(10*time.Minute + time.Second) // the new lease ended
	if rep := a.Sweep(context.Background()); rep.Destroyed != 1 {
		t.Errorf("the lease handed after the flush (ending %s) was not ended: %+v", r.ExpiresAt.UTC().Format(time.RFC3339), rep)
	}
}

// failingCreate is the store with LeaseCreate failing (Redis went away
// between the start's check and its record).
type failingCreate struct{ *queue.Store }

func (failingCreate) LeaseCreate(context.Context, string, string, time.Duration, time.Duration) (queue.Lease, error) {
	return queue.Lease{}, queue.ErrDegraded
}

// A reconnect whose lease record could not be written (Redis failed in
// between) still has its live lease, which will end the session: its reply
// says when ("a reply without ExpiresAt has no lease").
func TestLeaseReproReconnectLosesItsExpiresAt(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	clock := testkit.NewClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	const p = "cap-test0001"
	st := openStore(t, srv.URL(), clock)
	c := &leaseCAR{}
	in := broker.StartInput{UserID: "alice", ProjectID: p}
	first, err := broker.New(c, broker.Options{Leases: st, Projects: []string{p}, SessionMax: 10 * time.Minute}).
		Start(context.Background(), in)
	if err != nil || first.ExpiresAt.IsZero() {
		t.Fatalf("start: %+v %v", first, err)
	}
	clock.Advance(time.Minute)
	again, err := broker.New(c, broker.Options{Leases: failingCreate{st}, Projects: []string{p}, SessionMax: 10 * time.Minute}).
		Start(context.Background(), in)
	if err != nil || !again.ExpiresAt.Equal(first.ExpiresAt) {
		t.Errorf("reconnect with the record failing: %+v %v, want the lease's end %v", again, err, first.ExpiresAt)
	}
}
