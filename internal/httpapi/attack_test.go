package httpapi_test

import (
	"net"
	"strconv"
	"testing"
	"time"

	"carbroker/internal/dev/caremu"
	"carbroker/internal/queue"
	"carbroker/internal/testing/redistest"
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
	t.Parallel()
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
	t.Parallel()
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
	t.Parallel()
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

// pauseRedis sends CLIENT PAUSE to the test's Redis on a connection of its
// own: every client's commands wait for d, the data stays (a hiccup, a
// failover's pause), unlike Kill.
func (e *lineEnv) pauseRedis(d time.Duration) {
	e.t.Helper()
	c, err := net.Dial("tcp", e.redis.Addr())
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	ms := strconv.Itoa(int(d / time.Millisecond))
	if _, err := c.Write([]byte("*4\r\n$6\r\nCLIENT\r\n$5\r\nPAUSE\r\n$" + strconv.Itoa(len(ms)) + "\r\n" + ms + "\r\n$3\r\nALL\r\n")); err != nil {
		e.t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "+OK\r\n" {
		e.t.Fatalf("CLIENT PAUSE: %q %v", buf[:n], err)
	}
}

// A player handed a ServerSession while Redis did not answer (its start
// served without the line, once the trouble outlasted QUEUE_ABANDON) is a
// holder once Redis answers again: its reconnect within CAR's retention
// gets its own app back instead of waiting behind the line while CAR's
// retention runs out.
func TestReproStartDuringRedisHiccupEarnsNoMark(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: real time: pauses a real redis-server for 6 s; make test runs it")
	}
	if !e2eRedis(t) {
		return
	}
	e := newLineEnv(t, 1, caremu.Options{Concurrency: 1}, nil)
	wantStarted(t, e.start("q")) // the line is in use
	e.free("q")
	paused := time.Now()
	e.pauseRedis(6 * time.Second) // longer than two call budgets (2 s each here)
	// For QUEUE_ABANDON (30 s on the line's clock) nobody reaches CAR.
	if r := e.start("p"); r.Status != 202 {
		t.Fatalf("a start in the first QUEUE_ABANDON of trouble: %d %s", r.Status, r.Raw)
	}
	e.tick(20 * time.Second)
	if r := e.start("p"); r.Status != 202 {
		t.Fatalf("a start 20 s into the trouble: %d %s", r.Status, r.Raw)
	}
	e.tick(15 * time.Second)
	wantStarted(t, e.start("p")) // served without the line, by CAR
	e.emu.Connect("p")
	slot := e.slot("p")
	time.Sleep(time.Until(paused.Add(6100 * time.Millisecond))) // the pause ends
	e.tick(1100 * time.Millisecond)
	time.Sleep(queue.RetryAfterFailure) // the store's circuit closes
	wantWait(t, e.start("w"), 1)
	e.emu.Disconnect("p")
	e.emu.Advance(10 * time.Second)
	r := e.start("p")
	wantStarted(t, r)
	if s := e.slot("p"); s.ID != slot.ID {
		t.Fatalf("p's reconnect: slot %+v, want its own %+v", s, slot)
	}
}

// e2eRedis reports whether the test's Redis is a real redis-server (CLIENT
// PAUSE needs one); memredis runs say so.
func e2eRedis(t *testing.T) bool {
	t.Helper()
	if !redistest.Real() {
		t.Log("redis-server is not on PATH: CLIENT PAUSE is not available (memredis)")
		return false
	}
	return true
}

// A waiter in the rebuilt line keeps its place while the rebuild window
// sends it to CAR and CAR fails (a failing platform, not NoIdle): each
// such poll is a poll, so the waiter is not dropped as abandoned and its
// Position never increases.
func TestReproRebuildWindowFailuresLoseThePlace(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 2, caremu.Options{Concurrency: 1}, nil)
	on := func(i int) { e.next = i }
	on(0)
	wantStarted(t, e.start("a")) // instance 0 saw the store
	if err := e.redis.Restart(); err != nil {
		t.Fatal(err)
	}
	e.tick(1100 * time.Millisecond)
	on(1)
	wantWait(t, e.start("w"), 1) // a cold instance: the rebuilt line, no window yet
	on(1)
	wantWait(t, e.start("z"), 2)
	on(0)
	if r := e.do("203.0.113.5", "GET", "/capacity", ""); r.Status != 200 { // instance 0 notices the loss
		t.Fatalf("capacity: %d %s", r.Status, r.Raw)
	}
	for i := range 4 {
		e.tick(10 * time.Second)
		wantWait(t, e.start("z"), 2) // z: CAR answers NoIdle once, then z follows the line
		e.emu.Inject("ApplyConcurrent", caremu.Fail("InternalError", "internal error"))
		if r := e.start("w"); r.Status == 200 || r.Status == 202 {
			t.Fatalf("poll %d of w with CAR failing: %d %s", i, r.Status, r.Raw)
		}
	}
	wantWait(t, e.start("w"), 1) // CAR answers again (NoIdle): w still has its place
}

// What held under attack: a guest's start (no CAR_GUEST_APPLY) makes no
// holder, so the guest's own start later waits its turn; a lock-only user
// alternating /Enqueue and /Dequeue does not stretch its lock window; a
// heartbeat of a lock-only user says it holds nothing.
func TestAttackLineHolds(t *testing.T) {
	t.Parallel() // its own emulator and Redis; mostly waiting
	e := newLineEnv(t, 2, caremu.Options{Concurrency: 2, LockTime: 10 * time.Second},
		map[string]string{"CAR_LOCK_WINDOW": "1s"})
	wantStarted(t, e.start("a"))
	wantStarted(t, e.do(ipOf("g"), "POST", "/session", `{"UserId":"g","ClientSession":"cs","HostUserId":"a"}`))
	wantStarted(t, e.start("b"))
	wantWait(t, e.start("w"), 1)
	before := e.applies()
	wantWait(t, e.start("g"), 2) // the guest's own start: a newcomer, no CAR call
	if e.applies() != before {
		t.Fatal("a guest's own start went to CAR ahead of the line")
	}
	e.free("b")
	wantStarted(t, e.start("w"))
	e.free("a")
	if r := e.enqueue("g", ""); r.str("Code") != "10101" {
		t.Fatalf("g's lock at the head: %s", r.Raw)
	}
	locked := time.Now()
	if r := e.do(ipOf("g"), "POST", "/session/alive", `{"UserId":"g"}`); r.Body["Holding"] != false {
		t.Fatalf("a heartbeat of a lock-only user: %s", r.Raw)
	}
	wantWait(t, e.start("x"), 1) // someone waits: g's lock is no place in the line
	// alternate until past CAR_LOCK_WINDOW
	for time.Since(locked) < 1200*time.Millisecond {
		e.enqueue("g", "")
		e.do(ipOf("g"), "POST", "/Dequeue", `{"UserId":"g","RequestId":"d"}`)
		wantWait(t, e.start("x"), 1)
		time.Sleep(100 * time.Millisecond)
	}
	before = e.applies()
	if r := e.do(ipOf("g"), "POST", "/StartProject", `{"UserId":"g","ClientSession":"cs","RequestId":"r"}`); r.str("Code") != "10202" || e.applies() != before {
		t.Fatalf("g after its lock window, alternating Enqueue and Dequeue: %s (%d ApplyConcurrent), want in line without a CAR call", r.Raw, e.applies()-before)
	}
}
