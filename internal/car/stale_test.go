package car

import (
	"net/http"
	"testing"
	"time"
)

type countingTransport struct {
	http.RoundTripper
	closed int
}

func (c *countingTransport) CloseIdleConnections() { c.closed++ }

// Idle connections are dropped after a quiet spell, measured on the wall
// clock too, which jumps ahead when the instance was frozen; never on a
// busy client.
func TestDropStale(t *testing.T) {
	tr := &countingTransport{}
	c := New(Options{Host: "car.example.test", Transport: tr, StaleAfter: 30 * time.Second})
	t0 := time.Now()
	c.dropStale(t0)
	c.dropStale(t0.Add(time.Second))
	c.dropStale(t0.Add(20 * time.Second))
	if tr.closed != 0 {
		t.Fatalf("dropped %d times on a busy client", tr.closed)
	}
	c.dropStale(t0.Add(51 * time.Second)) // 31 s after the last call
	if tr.closed != 1 {
		t.Fatalf("not dropped after 31 s: %d", tr.closed)
	}
	// A reading without a monotonic clock (as after a wall-clock jump) is
	// compared on the wall clock.
	c.dropStale(time.Unix(0, t0.Add(52*time.Second).UnixNano()))
	if tr.closed != 1 {
		t.Fatalf("dropped one second later: %d", tr.closed)
	}
	c.dropStale(t0.Add(5 * time.Minute).Round(0))
	if tr.closed != 2 {
		t.Fatalf("not dropped after a wall-clock jump: %d", tr.closed)
	}
}
