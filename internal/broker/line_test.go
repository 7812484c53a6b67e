package broker_test

import (
	"testing"
	"time"

	"carbroker/internal/broker"
)

// Retry-After is whole seconds from 1 to 5, grows with the position, is
// jittered, and never exceeds a third of QUEUE_ABANDON (1 s, the header's
// unit, at least).
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	prev := time.Duration(0)
	for _, p := range []int{1, 2, 10, 26, 51, 76, 101, 1000} {
		lo := broker.RetryAfter(p, 30*time.Second, 0)
		hi := broker.RetryAfter(p, 30*time.Second, 0.999)
		if lo < time.Second || hi > 5*time.Second || lo%time.Second != 0 || hi%time.Second != 0 || hi < lo {
			t.Fatalf("position %d: %v..%v", p, lo, hi)
		}
		if lo < prev {
			t.Fatalf("position %d: %v, less than %v for a position ahead", p, lo, prev)
		}
		prev = lo
	}
	if broker.RetryAfter(1, 30*time.Second, 0.999) != time.Second {
		t.Error("the head polls every second")
	}
	if broker.RetryAfter(13, 30*time.Second, 0) == broker.RetryAfter(13, 30*time.Second, 0.9) {
		t.Error("no jitter at position 13")
	}
	if broker.RetryAfter(1000, 30*time.Second, 0) != 5*time.Second {
		t.Error("far back: 5 s")
	}
	for abandon, ceiling := range map[time.Duration]time.Duration{
		6 * time.Second: 2 * time.Second, 9 * time.Second: 3 * time.Second, time.Second: time.Second,
	} {
		if got := broker.RetryAfter(1000, abandon, 0.999); got != ceiling {
			t.Errorf("QUEUE_ABANDON %v: %v, want %v", abandon, got, ceiling)
		}
	}
}
