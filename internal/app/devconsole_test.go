//go:build !scf

package app

import (
	"context"
	"testing"
	"time"

	"carbroker/internal/dev/memredis"
	"carbroker/internal/queue"
)

// The console's view of the line is the line as the store holds it: first
// first, with how long ago each place was polled.
func TestConsoleLineOf(t *testing.T) {
	t.Parallel()
	mem, err := memredis.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	t0 := time.Now()
	now := t0
	st, err := queue.Open(queue.Options{URL: mem.URL(), Abandon: 30 * time.Second, MaxPerIP: 4, HoldTTL: time.Hour, CallTimeout: 2 * time.Second, // a budget that holds under load
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	full := &queue.Count{Total: 1, Running: 1, At: t0} // no idle concurrency: everyone waits
	for i, u := range []string{"zed", "amy", "kim"} {
		now = t0.Add(time.Duration(i) * 4 * time.Second)
		full.At = now
		if d, err := st.Repoll(ctx, "cap-one", u, "203.0.113.9", full); err != nil || d.Position != i+1 {
			t.Fatalf("%s: %+v %v", u, d, err)
		}
	}
	list := lineOf(mem, "", []string{"cap-one", "cap-two"}, func() time.Time { return t0.Add(10 * time.Second) })
	ws, err := list(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 3 {
		t.Fatalf("%d waiters: %+v", len(ws), ws)
	}
	for i, want := range []struct {
		user  string
		since int
	}{{"zed", 10}, {"amy", 6}, {"kim", 2}} {
		w := ws[i]
		if w.UserId != want.user || w.Position != i+1 || w.ProjectId != "cap-one" || w.SincePollSeconds == nil || *w.SincePollSeconds != want.since {
			t.Errorf("waiter %d: %+v (since %v), want %s at %d, polled %d s ago", i, w, w.SincePollSeconds, want.user, i+1, want.since)
		}
	}
}
