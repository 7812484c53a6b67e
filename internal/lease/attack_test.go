package lease

import (
	"context"
	"sync"
	"testing"
	"time"

	"carbroker/internal/line"
	"carbroker/internal/queue"
	"carbroker/internal/resp"
	"carbroker/internal/session"
	"carbroker/internal/testing/redistest"
	"carbroker/internal/testing/testkit"
)

// slowInner is the inner use case with a CAR whose DestroySession for a
// stop is in flight until release is closed: it then destroys whatever
// session the user has by then (CAR takes only a UserId).
type slowInner struct {
	Inner
	entered chan struct{}
	release chan struct{}

	mu      sync.Mutex
	handed  int // sessions handed
	stopped int // DestroySession calls that reached CAR
}

func (f *slowInner) Start(context.Context, session.StartInput, bool) (line.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handed++
	return line.Result{ServerSession: "ss"}, nil
}

func (f *slowInner) Stop(context.Context, string) error {
	close(f.entered)
	<-f.release
	f.mu.Lock()
	f.stopped++
	f.mu.Unlock()
	return nil
}

type nopDestroy struct{}

func (nopDestroy) Stop(context.Context, string) error { return nil }

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
	srv := redistest.Start(t)
	clock := testkit.NewClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	const p = "cap-test0001"
	inner := &slowInner{entered: make(chan struct{}), release: make(chan struct{})}
	mk := func() *Service {
		return New(Options{Inner: inner, Store: openStore(t, srv.URL(), clock), Destroy: nopDestroy{},
			Projects: []string{p}, Max: 10 * time.Minute})
	}
	a, b := mk(), mk()
	in := session.StartInput{UserID: "alice", ProjectID: p}
	if r, err := a.Start(context.Background(), in, false); err != nil || r.ExpiresAt.IsZero() {
		t.Fatalf("start: %+v %v", r, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // REQUEST_TIMEOUT=5m
	defer cancel()
	stopped := make(chan error)
	go func() { stopped <- a.Stop(ctx, "alice") }()
	<-inner.entered
	clock.Advance(ClaimTTL + time.Second) // the stop's call is still in flight
	b.Sweep(context.Background())
	_, err := b.Start(context.Background(), in, false)
	handedBefore := inner.handed
	close(inner.release) // the stop's DestroySession reaches CAR now
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if err == nil && handedBefore == 2 {
		t.Errorf("a newer session was handed (and leased) while the stop's DestroySession was in flight: that call ended it")
	}
}

// blockingDestroy is a CAR whose DestroySession is in flight until release
// is closed.
type blockingDestroy struct {
	entered chan struct{}
	release chan struct{}
	mu      sync.Mutex
	calls   int
}

func (d *blockingDestroy) Stop(context.Context, string) error {
	d.mu.Lock()
	d.calls++
	first := d.calls == 1
	d.mu.Unlock()
	if first {
		close(d.entered)
		<-d.release
	}
	return nil
}

// Generations are "a number no other lease ever had", so that a claim
// never marks another lease done. The store lost its data (FLUSHALL, a
// failover to an empty replica) while a sweep's destroy was in flight; the
// user then started again, and its new lease must still be enforced when
// it ends: the old claim's done must not take the new lease for its own.
func TestLeaseReproGenerationReusedAfterTheStoreLostItsData(t *testing.T) {
	srv := redistest.Start(t)
	clock := testkit.NewClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	const p = "cap-test0001"
	d := &blockingDestroy{entered: make(chan struct{}), release: make(chan struct{})}
	inner := &slowInner{}
	mk := func() *Service {
		return New(Options{Inner: inner, Store: openStore(t, srv.URL(), clock), Destroy: d,
			Projects: []string{p}, Max: 10 * time.Minute})
	}
	a, b := mk(), mk()
	in := session.StartInput{UserID: "alice", ProjectID: p}
	if _, err := a.Start(context.Background(), in, false); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10*time.Minute + time.Second)
	swept := make(chan Report)
	go func() { swept <- b.Sweep(context.Background()) }()
	<-d.entered
	raw := resp.New(resp.Options{Addr: srv.Addr()})
	defer raw.Close()
	if _, err := raw.Do(context.Background(), "FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	r, err := a.Start(context.Background(), in, false)
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
	srv := redistest.Start(t)
	clock := testkit.NewClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	const p = "cap-test0001"
	st := openStore(t, srv.URL(), clock)
	inner := &slowInner{}
	in := session.StartInput{UserID: "alice", ProjectID: p}
	first, err := New(Options{Inner: inner, Store: st, Destroy: nopDestroy{}, Projects: []string{p}, Max: 10 * time.Minute}).
		Start(context.Background(), in, false)
	if err != nil || first.ExpiresAt.IsZero() {
		t.Fatalf("start: %+v %v", first, err)
	}
	clock.Advance(time.Minute)
	again, err := New(Options{Inner: inner, Store: failingCreate{st}, Destroy: nopDestroy{}, Projects: []string{p}, Max: 10 * time.Minute}).
		Start(context.Background(), in, false)
	if err != nil || !again.ExpiresAt.Equal(first.ExpiresAt) {
		t.Errorf("reconnect with the record failing: %+v %v, want the lease's end %v", again, err, first.ExpiresAt)
	}
}
