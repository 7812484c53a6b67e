package httpapi_test

import (
	"strconv"
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

// In the rebuild window after a store loss, one address with many UserIds
// (none mode: any UserId) does not take every idle concurrency ahead of
// the rebuilt line's head, nor make an ApplyConcurrent per UserId: an
// address gets at most QUEUE_MAX_PER_IP window tries, then follows the
// line's rules like a newcomer.
func TestReproRebuildWindowOneAddressManyUserIds(t *testing.T) {
	e := newLineEnv(t, 1, caremu.Options{Concurrency: 4}, map[string]string{"QUEUE_MAX_PER_IP": "2"})
	for _, u := range []string{"a", "b", "c", "d"} {
		wantStarted(t, e.start(u))
	}
	wantWait(t, e.start("w"), 1)
	if err := e.redis.Restart(); err != nil { // the store lost its data
		t.Fatal(err)
	}
	e.tick(1100 * time.Millisecond)
	wantWait(t, e.start("w"), 1) // the window: w goes to CAR, NoIdle places it at the head of the rebuilt line
	for _, u := range []string{"a", "b", "c"} {
		e.free(u)
	}
	bot := map[string]bool{}
	started := 0
	for i := range 10 {
		u := "bot" + strconv.Itoa(i)
		bot[u] = true
		r := e.do("198.51.100.7", "POST", "/session", `{"UserId":"`+u+`","ClientSession":"cs"}`)
		if r.Status == 200 {
			started++
		}
	}
	if n := e.appliesBy(bot); n > 2 {
		t.Errorf("one address made %d ApplyConcurrent calls in the rebuild window with 10 UserIds (QUEUE_MAX_PER_IP 2)", n)
	}
	if started > 2 {
		t.Errorf("one address took %d concurrencies ahead of the rebuilt line's head", started)
	}
	wantStarted(t, e.start("w")) // the head gets the concurrency left
}

// A player whose UserId is "_" (a valid UserId) gets its app back in the
// rebuild window like any other: the window's own bookkeeping does not
// pass for that user's NoIdle.
func TestReproRebuildWindowUnderscoreUser(t *testing.T) {
	e := newLineEnv(t, 1, caremu.Options{Concurrency: 1}, nil)
	wantStarted(t, e.start("_"))
	e.emu.Connect("_")
	slot := e.slot("_")
	wantWait(t, e.start("w"), 1)
	if err := e.redis.Restart(); err != nil {
		t.Fatal(err)
	}
	e.emu.Disconnect("_")
	e.emu.Advance(30 * time.Second)
	e.tick(1100 * time.Millisecond)
	wantWait(t, e.start("w"), 1)
	wantStarted(t, e.start("_"))
	if s := e.slot("_"); s.ID != slot.ID {
		t.Fatalf("_'s reconnect within CAR's retention: slot %+v, want its own %+v", s, slot)
	}
}
