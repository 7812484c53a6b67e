package broker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"carbroker/internal/broker"
	"carbroker/internal/queue"
	"carbroker/internal/testing/redistest"
)

// A count slower than a second, refreshed by polls on three instances,
// still starts at most one DescribeConcurrentCount a second across them.
// Reproduction: instance A refreshes (1.5 s); a second in, its lease
// lapses and instance B refreshes; A stores its count (already stale) and
// deletes B's lease with it, so instance C's poll takes a new lease at once
// and calls CAR half a second after B.
func TestReproSlowCountKeepsOneCallASecondAcrossInstances(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: real time: one CAR call a second with a 1.2 s count, on the wall clock (3 s); make test runs it")
	}
	rs := redistest.Start(t)
	counter := &failingCounter{took: 1500 * time.Millisecond, ok: true}
	var svcs []*broker.Service
	for range 3 {
		st, err := queue.Open(queue.Options{URL: rs.URL(), CallTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		svcs = append(svcs, broker.New(&noIdleCAR{CAR: counter}, broker.Options{Line: st, Projects: []string{"cap-p"}}))
	}
	start := func(svc *broker.Service, user string) {
		_, _ = svc.Start(context.Background(), broker.StartInput{ProjectID: "cap-p", UserID: user,
			ClientSession: "cs", UserIP: "127.0.0.1"})
	}
	var wg sync.WaitGroup
	wg.Go(func() { start(svcs[0], "a") }) // A refreshes: 1.5 s
	time.Sleep(1100 * time.Millisecond)
	wg.Go(func() { start(svcs[1], "b") }) // A's lease lapsed: B refreshes
	for len(counter.calls()) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // A has stored its count
	start(svcs[2], "c")
	wg.Wait()
	calls := counter.calls()
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].Sub(calls[i-1]); gap < 900*time.Millisecond {
			t.Fatalf("DescribeConcurrentCount calls %v apart (%d calls)", gap, len(calls))
		}
	}
}
