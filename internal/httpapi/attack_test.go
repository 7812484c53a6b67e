package httpapi_test

import (
	"testing"
	"time"

	"carbroker/internal/caremu"
)

// appliesBy counts the ApplyConcurrent calls CAR received for the users
// in ids.
func (e *lineEnv) appliesBy(ids map[string]bool) int {
	n := 0
	for _, c := range e.emu.Calls() {
		if c.Action == "ApplyConcurrent" && ids[c.UserID] {
			n++
		}
	}
	return n
}

// A hostile head that polls as fast as it can does not turn each poll into
// an ApplyConcurrent: after CAR answered NoIdle the head waits like the
// others until a second has passed (or a fresh count shows an idle
// concurrency). Otherwise one client spends CAR's account-wide 100/s
// ApplyConcurrent limit, and every other start and reconnect of the
// account gets RequestLimitExceeded.
func TestReproHostileHeadHammersCAR(t *testing.T) {
	e := newLineEnv(t, 2, caremu.Options{Concurrency: 1}, nil)
	wantStarted(t, e.start("a"))
	wantWait(t, e.start("c"), 1) // the head tries CAR once: NoIdle
	before := e.applies()
	for range 50 {
		wantWait(t, e.start("c"), 1)
	}
	if n := e.applies() - before; n > 1 {
		t.Fatalf("50 polls of the head within one second of the line's clock made %d ApplyConcurrent calls (no concurrency was freed)", n)
	}
	e.tick(1100 * time.Millisecond)
	before = e.applies()
	wantWait(t, e.start("c"), 1)
	if e.applies()-before != 1 {
		t.Fatalf("a second later the head may try again: %d ApplyConcurrent", e.applies()-before)
	}
	e.free("a")
	wantStarted(t, e.start("c")) // a freed concurrency still goes to the head at its next poll
}
