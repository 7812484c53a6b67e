package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"carbroker/internal/auth"
	"carbroker/internal/dev/caremu"
)

// enqueue is the demo's /Enqueue for user from its own address.
func (e *lineEnv) enqueue(user, extra string) reply {
	e.t.Helper()
	return e.do(ipOf(user), "POST", "/Enqueue", `{"UserId":"`+user+`","RequestId":"q-`+user+`"`+extra+`}`)
}

// /Enqueue locks a concurrency for the caller's own session: with another
// user's HostUserId it is refused (the demo's 10001) without calling CAR,
// with the line on or off. A guest takes no concurrency outside the line.
func TestEnqueueRefusesGuests(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 2, caremu.Options{Concurrency: 1}, nil)
	wantStarted(t, e.start("a"))
	wantWait(t, e.start("c"), 1)
	e.free("a")
	before := e.applies()
	for range 3 {
		r := e.enqueue("g", `,"HostUserId":"a"`)
		if r.Status != 200 || r.str("Code") != "10001" || r.str("RequestId") != "q-g" || !strings.Contains(r.str("Msg"), "HostUserId") {
			t.Fatalf("a guest's Enqueue: %s, want 10001", r.Raw)
		}
	}
	if n := e.applies() - before; n != 0 {
		t.Fatalf("a guest's Enqueue called ApplyConcurrent %d times while c waited", n)
	}
	if r := e.enqueue("h", `,"HostUserId":"h"`); r.str("Code") != "10100" || r.str("Data", "Index") != "1" {
		t.Fatalf("Enqueue naming the caller itself as host: %s, want a place (10100 at 1)", r.Raw)
	}
	wantStarted(t, e.start("c")) // the head gets the freed concurrency

	off := newEnv(t, caremu.Options{Concurrency: 1}, nil)
	r := off.do("POST", "/Enqueue", `{"UserId":"g","HostUserId":"a","RequestId":"q"}`)
	if r.str("Code") != "10001" || off.carCalls("") != 0 {
		t.Fatalf("a guest's Enqueue with the line off: %s (%d CAR calls)", r.Raw, off.carCalls(""))
	}
}

// With CAR_GUEST_APPLY=true a guest's start takes a concurrency of its
// own: it waits its turn like any start.
func TestGuestApplyWaitsItsTurn(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 2, caremu.Options{Concurrency: 2}, map[string]string{"CAR_GUEST_APPLY": "true"})
	wantStarted(t, e.start("a"))
	wantStarted(t, e.start("b"))
	wantWait(t, e.start("c"), 1)
	e.free("b")
	before := e.applies()
	guest := func() reply {
		return e.do(ipOf("g"), "POST", "/session", `{"UserId":"g","ClientSession":"cs-g","HostUserId":"a"}`)
	}
	wantWait(t, guest(), 2)
	if n := e.applies() - before; n != 0 {
		t.Fatalf("a guest called ApplyConcurrent %d times while c waited", n)
	}
	wantStarted(t, e.start("c"))
	wantWait(t, guest(), 1)
}

// A guest that takes no concurrency (the default) joins its host's room at
// once, line or no line, and calls no ApplyConcurrent.
func TestGuestWithoutApplySkipsTheLine(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 2, caremu.Options{Concurrency: 1}, nil)
	wantStarted(t, e.start("a"))
	wantWait(t, e.start("c"), 1)
	before := e.applies()
	wantStarted(t, e.do(ipOf("g"), "POST", "/session", `{"UserId":"g","ClientSession":"cs-g","HostUserId":"a"}`))
	if e.applies() != before {
		t.Fatal("a guest without CAR_GUEST_APPLY called ApplyConcurrent")
	}
}

// A lock without a session (10101) is the right to start for
// CAR_LOCK_WINDOW: /Enqueue within it answers 10101 again without locking
// again; after it the user is a newcomer, never a holder, and the head
// gets the concurrency CAR's lapsed lock gave back.
func TestLockOnlyIsNoHolder(t *testing.T) {
	t.Parallel() // its own emulator and Redis; mostly waiting
	e := newLineEnv(t, 2, caremu.Options{Concurrency: 1, LockTime: 10 * time.Second},
		map[string]string{"CAR_LOCK_WINDOW": "1s", "QUEUE_ABANDON": "30s"})
	wantStarted(t, e.start("a"))
	if r := e.enqueue("ghost", ""); r.str("Code") != "10100" || r.str("Data", "Index") != "0" {
		t.Fatalf("ghost: %s", r.Raw)
	}
	wantWait(t, e.start("next"), 2)
	e.free("a")
	if r := e.enqueue("ghost", ""); r.str("Code") != "10101" {
		t.Fatalf("the head's lock: %s", r.Raw)
	}
	locked := time.Now()
	before := e.applies()
	if r := e.enqueue("ghost", ""); r.str("Code") != "10101" || e.applies() != before {
		t.Errorf("Enqueue within the lock window: %s (%d ApplyConcurrent), want 10101 without a CAR call", r.Raw, e.applies()-before)
	}
	wantWait(t, e.start("next"), 1)
	time.Sleep(time.Until(locked.Add(1100 * time.Millisecond))) // CAR_LOCK_WINDOW lapses (Redis's clock)
	e.emu.Advance(11 * time.Second)                             // and CAR's lock; the ghost never started
	e.tick(1100 * time.Millisecond)
	before = e.applies()
	r := e.do(ipOf("ghost"), "POST", "/StartProject", `{"UserId":"ghost","ClientSession":"cs","RequestId":"r"}`)
	if r.str("Code") != "10202" || e.applies() != before {
		t.Fatalf("the ghost's StartProject after the lock window: %s (%d ApplyConcurrent), want 10202 (in line) without a CAR call", r.Raw, e.applies()-before)
	}
	wantStarted(t, e.start("next"))
	if r := e.enqueue("ghost", ""); r.str("Code") != "10100" || r.str("Data", "Index") != "0" {
		t.Fatalf("the ghost after next started: %s, want 10100 at 0", r.Raw)
	}
}

// A holder's grant counts against the idle figure: a holder whose
// concurrency CAR reclaimed takes a new one, and position 2 does not try
// the one the count still shows.
func TestHolderGrantCountsAgainstIdle(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 2, caremu.Options{Concurrency: 3}, nil)
	for _, u := range []string{"a", "b", "h"} {
		wantStarted(t, e.start(u))
		e.emu.Connect(u)
	}
	wantWait(t, e.start("w1"), 1)
	wantWait(t, e.start("w2"), 2)
	e.emu.Disconnect("h")
	e.emu.Advance(91 * time.Second) // CAR reclaims h's concurrency; h keeps its mark
	e.free("b")
	if r := e.do("203.0.113.5", "GET", "/capacity", ""); r.str("Idle") != "2" {
		t.Fatalf("capacity: %s, want Idle 2", r.Raw)
	}
	wantStarted(t, e.start("h")) // a holder: straight to CAR, which gives it a new concurrency
	before := e.applies()
	wantWait(t, e.start("w2"), 2)
	if e.applies() != before {
		t.Fatal("position 2 tried the concurrency a holder had just taken")
	}
	wantStarted(t, e.start("w1"))
}

// POST /session/alive: owner-only like a stop, no CAR call; Holding says
// whether the user holds a mark (a heartbeat never makes one).
func TestAlive(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 2, caremu.Options{Concurrency: 1}, nil)
	wantStarted(t, e.start("h"))
	calls := len(e.emu.Calls())
	alive := func(user, body string) reply {
		return e.do(ipOf(user), "POST", "/session/alive", body)
	}
	r := alive("h", `{"UserId":"h"}`)
	if r.Status != 200 || r.Body["Holding"] != true || r.str("HeartbeatSeconds") != "30" || r.str("UserId") != "h" || r.str("RequestId") == "" {
		t.Fatalf("alive of a holder: %d %s", r.Status, r.Raw)
	}
	r = alive("x", `{"UserId":"x","ProjectId":"`+testProject+`"}`)
	if r.Status != 200 || r.Body["Holding"] != false {
		t.Fatalf("alive of a user holding nothing: %d %s", r.Status, r.Raw)
	}
	wantWait(t, e.start("x"), 1) // the heartbeat made no holder
	if n := len(e.emu.Calls()) - calls; n != 1 {
		t.Fatalf("heartbeats called CAR: %d calls besides x's one try", n-1)
	}
	if r := alive("h", `{"UserId":"h","ProjectId":"cap-other"}`); r.Status != 403 {
		t.Fatalf("a project not allowed: %d %s", r.Status, r.Raw)
	}
	if r := alive("h", `{}`); r.Status == 200 {
		t.Fatalf("alive without a UserId: %d %s", r.Status, r.Raw)
	}
	if r := alive("h", `{"UserId":"h","ClientSession":"cs"}`); r.Status != 400 {
		t.Fatalf("a field alive does not read: %d %s", r.Status, r.Raw)
	}
	if r := e.stop("h"); r.Status != 200 {
		t.Fatalf("stop: %d %s", r.Status, r.Raw)
	}
	if r := alive("h", `{"UserId":"h"}`); r.Status != 200 || r.Body["Holding"] != false {
		t.Fatalf("alive after a stop: %d %s", r.Status, r.Raw)
	}

	tk := newLineEnv(t, 1, caremu.Options{Concurrency: 2}, map[string]string{"AUTH_MODE": "ticket",
		"AUTH_SECRET": strings.Repeat("s", 40)})
	first := tk.do("203.0.113.1", "POST", "/session", `{"ClientSession":"cs"}`)
	wantStarted(t, first)
	user, ticket := first.str("UserId"), first.str("Ticket")
	other := tk.do("203.0.113.2", "POST", "/session", `{"ClientSession":"cs"}`)
	if r := tk.do("203.0.113.2", "POST", "/session/alive", `{"UserId":"`+user+`"}`); r.Status != 401 {
		t.Fatalf("alive without a ticket: %d %s", r.Status, r.Raw)
	}
	if r := tk.do("203.0.113.2", "POST", "/session/alive", `{"UserId":"`+user+`"}`, "Authorization", "Bearer "+other.str("Ticket")); r.Status != 403 {
		t.Fatalf("alive for another user: %d %s", r.Status, r.Raw)
	}
	if r := tk.do("203.0.113.1", "POST", "/session/alive", `{}`, "Authorization", "Bearer "+ticket); r.Status != 200 ||
		r.Body["Holding"] != true || r.str("UserId") != user {
		t.Fatalf("alive with the owner's ticket: %d %s", r.Status, r.Raw)
	}

	off := newEnv(t, caremu.Options{Concurrency: 1}, nil)
	if r := off.do("POST", "/session/alive", `{"UserId":"h"}`); r.Status != 200 || r.Body["Holding"] != false ||
		r.str("HeartbeatSeconds") != "0" || off.carCalls("") != 0 {
		t.Fatalf("alive with the line off: %d %s", r.Status, r.Raw)
	}
}

// The store lost its data: the first poll of an instance that saw the line
// opens the rebuild window, so a player reconnecting within CAR's retention
// gets its own app back, and a waiter that CAR answers NoIdle takes its
// place in the rebuilt line.
func TestStoreLossReconnectGetsItsApp(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 3, caremu.Options{Concurrency: 1}, nil)
	wantStarted(t, e.start("p"))
	e.emu.Connect("p")
	slot := e.slot("p")
	wantWait(t, e.start("w"), 1) // the head tries CAR once
	wantWait(t, e.start("w"), 1)
	wantWait(t, e.start("w"), 1)              // every instance saw the line
	if err := e.redis.Restart(); err != nil { // a restart without persistence
		t.Fatal(err)
	}
	e.emu.Disconnect("p")
	e.emu.Advance(30 * time.Second)
	e.tick(1100 * time.Millisecond)
	wantWait(t, e.start("w"), 1) // NoIdle from CAR: the head of the rebuilt line
	r := e.start("p")
	wantStarted(t, r)
	if s := e.slot("p"); s.ID != slot.ID || s.State != caremu.Session {
		t.Fatalf("p's reconnect within CAR's retention: slot %+v, want its own %+v back", s, slot)
	}
	wantWait(t, e.start("late"), 2)
}

func (e *lineEnv) slot(user string) caremu.Slot {
	e.t.Helper()
	s, ok := e.emu.SlotOf(user)
	if !ok {
		e.t.Fatalf("%s holds no concurrency", user)
	}
	return s
}

// A heartbeat Redis cannot answer is not an answer: 503 with Retry-After
// 30, so the client keeps heartbeating (a Holding:false would stop it).
func TestAliveWithRedisDown(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 1, caremu.Options{Concurrency: 1}, nil)
	wantStarted(t, e.start("h"))
	e.redis.Kill()
	calls := len(e.emu.Calls())
	r := e.do(ipOf("h"), "POST", "/session/alive", `{"UserId":"h"}`)
	if r.Status != 503 || r.code() != "Unavailable" || r.Header.Get("Retry-After") != "30" || r.Body["Holding"] != nil {
		t.Fatalf("alive with Redis down: %d %v %s", r.Status, r.Header, r.Raw)
	}
	if len(e.emu.Calls()) != calls {
		t.Fatalf("a heartbeat with Redis down called CAR")
	}
}

// In sign mode a heartbeat is signed like a stop, ProjectId included.
func TestAliveSignMode(t *testing.T) {
	t.Parallel()
	const salt = "demo-salt"
	e := newLineEnv(t, 1, caremu.Options{Concurrency: 1}, map[string]string{"AUTH_MODE": "sign", "COMPAT_SIGN_SALT": salt})
	signed := func(v map[string]string) string {
		v["Sign"] = auth.DemoSign(v, salt)
		b, _ := json.Marshal(v)
		return string(b)
	}
	wantStarted(t, e.do(ipOf("h"), "POST", "/session", signed(map[string]string{"UserId": "h", "ClientSession": "cs", "RequestId": "r1"})))
	r := e.do(ipOf("h"), "POST", "/session/alive", signed(map[string]string{"UserId": "h", "ProjectId": testProject, "RequestId": "r2"}))
	if r.Status != 200 || r.Body["Holding"] != true {
		t.Fatalf("a signed heartbeat: %d %s", r.Status, r.Raw)
	}
	if r := e.do(ipOf("h"), "POST", "/session/alive", `{"UserId":"h","Sign":"00"}`); r.Status != 401 {
		t.Fatalf("a badly signed heartbeat: %d %s", r.Status, r.Raw)
	}
}
