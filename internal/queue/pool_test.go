package queue_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"carbroker/internal/queue"
	"carbroker/internal/resp"
	"carbroker/internal/testing/redistest"
)

// The Store keeps its connection between polls, each with its 100 ms
// budget, when they come further apart than that budget: a poll is one
// round trip, not a new connection (and login) each time.
func TestPollsReuseTheConnection(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	if !rs.IsReal() {
		t.Skip("needs redis-server (INFO stats)")
	}
	st, err := queue.Open(queue.Options{URL: rs.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	admin := resp.New(resp.Options{Addr: rs.Addr()})
	defer admin.Close()
	ctx := context.Background()
	received := func() int {
		r, err := admin.Do(ctx, "INFO", "stats")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(r.([]byte)), "\r\n") {
			if v, ok := strings.CutPrefix(l, "total_connections_received:"); ok {
				n, _ := strconv.Atoi(v)
				return n
			}
		}
		t.Fatal("no total_connections_received")
		return 0
	}
	if _, err := st.Poll(ctx, "p", "u", "198.51.100.1"); err != nil {
		t.Fatal(err)
	}
	before := received()
	for range 4 {
		time.Sleep(150 * time.Millisecond)
		if _, err := st.Poll(ctx, "p", "u", "198.51.100.1"); err != nil {
			t.Fatal(err)
		}
	}
	if n := received() - before; n != 0 {
		t.Fatalf("4 polls 150 ms apart opened %d new connections, want 0", n)
	}
}
