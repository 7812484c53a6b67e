package httpapi_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"carbroker/internal/broker"
	"carbroker/internal/dev/caremu"
	"carbroker/internal/queue"
	"carbroker/internal/testing/redistest"
)

// newLeaseEnv is several instances on one real Redis reached through a
// proxy that can cut them off (the data stays), with the emulator's
// sessions connected from the start (they never free themselves).
func newLeaseEnv(t *testing.T, instances int, emuOpt caremu.Options, vars map[string]string) (*lineEnv, *redisProxy) {
	t.Helper()
	srv := redistest.Start(t)
	px := newRedisProxy(t, srv.Addr())
	if emuOpt.ClientWait == 0 {
		emuOpt.ClientWait = -1
	}
	e := buildLineEnv(t, srv, map[string]string{"QUEUE_REDIS_URL": "redis://" + px.addr(), "SESSION_MAX": "10m"}, vars,
		instances, emuOpt, time.Second, time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	return e, px
}

// pass moves the line's clock and the emulator's together.
func (e *lineEnv) pass(d time.Duration) {
	e.clock.Advance(d)
	e.emu.Advance(d)
}

// sweep runs the timer's work on instance i.
func (e *lineEnv) sweep(i int) broker.Report {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return e.svcs[i%len(e.svcs)].Sweep(ctx)
}

// destroys counts the DestroySession calls for user ("" = all).
func (e *lineEnv) destroys(user string) int {
	n := 0
	for _, c := range e.emu.Calls() {
		if c.Action == "DestroySession" && (user == "" || c.UserID == user) {
			n++
		}
	}
	return n
}

func wantExpires(t *testing.T, r reply, want time.Time) {
	t.Helper()
	if r.Status != 200 || r.str("ExpiresAt") != want.UTC().Format(time.RFC3339) {
		t.Fatalf("want 200 expiring at %s: %d %s", want.UTC().Format(time.RFC3339), r.Status, r.Raw)
	}
}

func wantEnded(t *testing.T, r reply, retryAfter int) {
	t.Helper()
	if r.Status != http.StatusForbidden || r.code() != "SessionEnded" || r.str("Error", "Message") == "" {
		t.Fatalf("want 403 SessionEnded: %d %s", r.Status, r.Raw)
	}
	if got := r.Header.Get("Retry-After"); retryAfter >= 0 && got != strconv.Itoa(retryAfter) {
		t.Errorf("Retry-After %q, want %d", got, retryAfter)
	}
}

// A start carries its lease's end; a reconnect on another instance keeps
// it; the demo's /StartProject carries it as an extra field.
func TestLeaseExpiresAtAndReconnect(t *testing.T) {
	t.Parallel()
	e, _ := newLeaseEnv(t, 2, caremu.Options{}, nil)
	t0 := e.clock.Now()
	wantExpires(t, e.start("alice"), t0.Add(10*time.Minute))
	e.pass(4 * time.Minute)
	wantExpires(t, e.start("alice"), t0.Add(10*time.Minute)) // the other instance
	r := e.do(ipOf("bob"), "POST", "/StartProject", `{"UserId":"bob","ClientSession":"cs","RequestId":"r1"}`)
	if r.str("Code") != "0" || r.str("ExpiresAt") != e.clock.Now().Add(10*time.Minute).UTC().Format(time.RFC3339) {
		t.Fatalf("StartProject: %s", r.Raw)
	}
	if n := e.destroys(""); n != 0 {
		t.Errorf("%d DestroySession calls while every lease is live", n)
	}
}

// With SESSION_MAX off nothing changes: no ExpiresAt, and no renewal.
func TestLeaseOff(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 1, caremu.Options{}, nil)
	if r := e.start("alice"); r.Status != 200 || r.str("ExpiresAt") != "" {
		t.Fatalf("start: %d %s", r.Status, r.Raw)
	}
	if r := e.do(ipOf("alice"), "POST", "/session/renew", `{"UserId":"alice"}`); r.Status != 403 || r.code() != "Forbidden" {
		t.Fatalf("renew with leases off: %d %s", r.Status, r.Raw)
	}
	if rep := e.svcs[0].Sweep(context.Background()); rep != (broker.Report{}) {
		t.Errorf("sweep with leases off: %+v", rep)
	}
}

// Sessions end within one sweep interval after their leases, each
// destroyed once, oldest first, whichever instance's timer fires.
func TestLeaseSweepEndsSessionsInTime(t *testing.T) {
	t.Parallel()
	e, _ := newLeaseEnv(t, 3, caremu.Options{Concurrency: 30}, map[string]string{"SESSION_MAX": "5m"})
	// Twenty users start 17 s apart; the timer fires every minute, on any
	// instance. Starts sweep too (a few each): either may end a session.
	const interval = time.Minute
	ends := map[string]time.Time{}
	destroyedAt := map[string]time.Time{}
	for sec := 1; sec <= 15*60; sec++ {
		e.pass(time.Second)
		if sec%17 == 0 && len(ends) < 20 {
			u := "u" + strconv.Itoa(len(ends))
			ends[u] = e.clock.Now().Add(5 * time.Minute)
			wantExpires(t, e.start(u), ends[u])
		}
		if sec%60 == 0 {
			e.sweep(sec / 60)
		}
		for u := range ends {
			if _, ok := destroyedAt[u]; !ok && e.destroys(u) > 0 {
				destroyedAt[u] = e.clock.Now()
			}
		}
	}
	for u, end := range ends {
		at, ok := destroyedAt[u]
		switch {
		case !ok:
			t.Errorf("%s never destroyed", u)
		case at.Before(end) || at.Sub(end) > interval:
			t.Errorf("%s destroyed at %v, lease ended at %v: not within one interval", u, at, end)
		}
		if n := e.destroys(u); n != 1 {
			t.Errorf("%s destroyed %d times", u, n)
		}
		if s, ok := e.emu.SlotOf(u); ok && s.State == caremu.Session {
			t.Errorf("%s still in session", u)
		}
	}
}

// Sweeps on several instances at once destroy each ended session once.
func TestLeaseConcurrentSweepsDestroyOnce(t *testing.T) {
	t.Parallel()
	e, _ := newLeaseEnv(t, 4, caremu.Options{Concurrency: 40}, map[string]string{"SESSION_MAX": "1m"})
	for i := range 30 {
		wantExpires(t, e.start("u"+strconv.Itoa(i)), e.clock.Now().Add(time.Minute))
	}
	e.pass(2 * time.Minute)
	var wg sync.WaitGroup
	reports := make([]broker.Report, 4)
	for i := range 4 {
		wg.Go(func() { reports[i] = e.sweep(i) })
	}
	wg.Wait()
	claimed := 0
	for _, r := range reports {
		claimed += r.Claimed
	}
	if n := e.destroys(""); n != 30 || claimed != 30 {
		t.Errorf("%d DestroySession calls, %d claims for 30 ended sessions: %+v", n, claimed, reports)
	}
	for i := range 30 {
		if n := e.destroys("u" + strconv.Itoa(i)); n != 1 {
			t.Errorf("u%d destroyed %d times", i, n)
		}
	}
	if r := e.sweep(0); r.Claimed != 0 {
		t.Errorf("a later sweep claimed %+v", r)
	}
}

// A renewal moves the end, at most SESSION_RENEW_MAX times; the lease must
// be live, and only its owner may renew (like a stop).
func TestLeaseRenewal(t *testing.T) {
	t.Parallel()
	e, _ := newLeaseEnv(t, 2, caremu.Options{}, map[string]string{"SESSION_RENEW": "true", "SESSION_RENEW_MAX": "1",
		"AUTH_MODE": "ticket", "AUTH_SECRET": "0123456789abcdef0123456789abcdef"})
	r := e.do(ipOf("x"), "POST", "/session", `{"ClientSession":"cs"}`)
	user, ticket := r.str("UserId"), r.str("Ticket")
	wantExpires(t, r, e.clock.Now().Add(10*time.Minute))
	other := e.do(ipOf("y"), "POST", "/session", `{"ClientSession":"cs"}`)
	renew := func(ticket string) reply {
		return e.do(ipOf("x"), "POST", "/session/renew", `{"UserId":"`+user+`"}`, "Authorization", "Bearer "+ticket)
	}
	if r := renew(other.str("Ticket")); r.Status != 403 || r.code() != "Forbidden" {
		t.Fatalf("renewal by another user: %d %s", r.Status, r.Raw)
	}
	e.pass(8 * time.Minute)
	r = renew(ticket)
	want := e.clock.Now().Add(10 * time.Minute)
	if r.Status != 200 || r.str("ExpiresAt") != want.UTC().Format(time.RFC3339) || r.str("RenewalsLeft") != "0" || r.str("UserId") != user {
		t.Fatalf("renewal: %d %s, want ExpiresAt %s", r.Status, r.Raw, want.UTC().Format(time.RFC3339))
	}
	e.pass(5 * time.Minute) // past the first end
	if r := e.sweep(0); r.Claimed != 1 {
		t.Errorf("sweep: %+v, want only the other user's lease", r)
	}
	if e.destroys(user) != 0 {
		t.Fatal("a renewed session was destroyed at its first end")
	}
	wantExpires(t, e.do(ipOf("x"), "POST", "/session", `{"ClientSession":"cs","UserId":"`+user+`"}`, "Authorization", "Bearer "+ticket), want)
	if r := renew(ticket); r.Status != 403 || r.code() != "Forbidden" {
		t.Errorf("a second renewal of 1: %d %s", r.Status, r.Raw)
	}
	e.pass(6 * time.Minute)
	if r := renew(ticket); r.Status != 403 || r.code() != "SessionEnded" {
		t.Errorf("renewal of an ended lease: %d %s", r.Status, r.Raw)
	}
}

// After its lease a user gets 403 SessionEnded with Retry-After until the
// cooldown is over, then is a newcomer: it waits its turn behind the line,
// whose head got the concurrency the sweep freed.
func TestLeaseCooldownAndTheLine(t *testing.T) {
	t.Parallel()
	e, _ := newLeaseEnv(t, 2, caremu.Options{Concurrency: 1, StopTime: 2 * time.Second},
		map[string]string{"SESSION_MAX": "1m", "SESSION_COOLDOWN": "30s"})
	wantExpires(t, e.start("alice"), e.clock.Now().Add(time.Minute))
	wantWait(t, e.start("bob"), 1)
	e.pass(61 * time.Second)
	wantEnded(t, e.start("alice"), 29) // ended, not swept yet: refused all the same
	e.sweep(1)                         // (the start's own sweep may have been first)
	if n := e.destroys("alice"); n != 1 {
		t.Fatalf("alice destroyed %d times", n)
	}
	e.pass(3 * time.Second) // CAR's stop completes
	r := e.start("bob")     // the head's next poll
	wantExpires(t, r, e.clock.Now().Add(time.Minute))
	wantEnded(t, e.start("alice"), 26)
	if s, _ := e.emu.SlotOf("alice"); s.State == caremu.Session {
		t.Error("alice still in session")
	}
	e.pass(25 * time.Second)
	wantEnded(t, e.start("alice"), 1)
	e.pass(2 * time.Second)
	wantWait(t, e.start("alice"), 1) // a newcomer: bob holds the only concurrency
}

// Stopping early ends the lease: the cooldown holds after it, and a sweep
// has nothing to destroy.
func TestLeaseStopEndsIt(t *testing.T) {
	t.Parallel()
	e, _ := newLeaseEnv(t, 2, caremu.Options{}, map[string]string{"SESSION_COOLDOWN": "30s"})
	wantExpires(t, e.start("alice"), e.clock.Now().Add(10*time.Minute))
	if r := e.stop("alice"); r.Status != 200 {
		t.Fatalf("stop: %d %s", r.Status, r.Raw)
	}
	wantEnded(t, e.start("alice"), 30)
	// The demo's routes refuse it in their own codes, with the reason.
	for path, code := range map[string]string{"/StartProject": "10200", "/Enqueue": "10202"} {
		r := e.do(ipOf("alice"), "POST", path, `{"UserId":"alice","ClientSession":"cs","RequestId":"q"}`)
		if r.str("Code") != code || !strings.Contains(r.str("Msg"), "SESSION_MAX") {
			t.Errorf("%s in the cooldown: %s, want code %s", path, r.Raw, code)
		}
	}
	if r := e.sweep(0); r.Claimed != 0 || e.destroys("alice") != 1 {
		t.Errorf("sweep after a stop: %+v, %d destroys", r, e.destroys("alice"))
	}
	e.pass(31 * time.Second)
	wantExpires(t, e.start("alice"), e.clock.Now().Add(10*time.Minute))
}

// A guest's session ends with its host's: its reply carries the host's
// end, and once that passed the guest is refused.
func TestLeaseGuestEndsWithItsHost(t *testing.T) {
	t.Parallel()
	e, _ := newLeaseEnv(t, 1, caremu.Options{}, nil)
	end := e.clock.Now().Add(10 * time.Minute)
	wantExpires(t, e.start("host"), end)
	e.pass(time.Minute)
	join := func() reply {
		return e.do(ipOf("guest"), "POST", "/session", `{"UserId":"guest","ClientSession":"cs","HostUserId":"host"}`)
	}
	wantExpires(t, join(), end)
	e.pass(10 * time.Minute)
	wantEnded(t, join(), -1)
	if r := join(); r.Header.Get("Retry-After") != "" {
		t.Errorf("a guest is told to retry: %s", r.Header.Get("Retry-After"))
	}
}

// With Redis unreachable no lease is lost: a sweep skips, starts carry no
// ExpiresAt (and are never leased); once Redis answers again the next
// sweep ends every lease that ended.
func TestLeaseRedisDownThenBack(t *testing.T) {
	t.Parallel() // its own emulator and Redis; mostly waiting
	e, px := newLeaseEnv(t, 2, caremu.Options{Concurrency: 10}, map[string]string{"SESSION_MAX": "1m"})
	for _, u := range []string{"a", "b", "c"} {
		wantExpires(t, e.start(u), e.clock.Now().Add(time.Minute))
	}
	e.pass(2 * time.Minute)
	px.down()
	if r := e.sweep(0); !r.Skipped || r.Destroyed != 0 {
		t.Errorf("sweep with Redis down: %+v", r)
	}
	// For QUEUE_ABANDON (30 s) of an instance's trouble the line holds
	// every start (202, place unknown); past that a start is CAR's, and
	// still never leased. Each of the two instances keeps its own count.
	for _, wait := range []time.Duration{0, 20 * time.Second} {
		e.pass(wait)
		for range 2 {
			if r := e.start("d"); r.Status != 202 || r.str("ExpiresAt") != "" {
				t.Errorf("degraded start: %d %s", r.Status, r.Raw)
			}
		}
	}
	e.pass(15 * time.Second)
	if r := e.start("d"); r.Status != 200 || r.str("ExpiresAt") != "" {
		t.Errorf("degraded start past QUEUE_ABANDON: %d %s", r.Status, r.Raw)
	}
	px.up()
	time.Sleep(queue.RetryAfterFailure + 100*time.Millisecond) // the store's circuit closes
	e.sweep(1)
	e.sweep(0)
	for _, u := range []string{"a", "b", "c"} {
		if e.destroys(u) != 1 {
			t.Errorf("%s destroyed %d times after Redis returned", u, e.destroys(u))
		}
	}
	if e.destroys("d") != 0 {
		t.Error("the degraded start was leased")
	}
	e.pass(time.Hour)
	e.sweep(0)
	if e.destroys("d") != 0 {
		t.Error("the degraded start was leased")
	}
}

// redisProxy forwards to Redis until down, which cuts every connection and
// refuses new ones; up restores it. Redis keeps its data throughout.
type redisProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	off   bool
	conns []net.Conn
}

func newRedisProxy(t *testing.T, target string) *redisProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &redisProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.down() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.off {
				p.mu.Unlock()
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *redisProxy) addr() string { return p.ln.Addr().String() }

func (p *redisProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.off = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *redisProxy) up() {
	p.mu.Lock()
	p.off = false
	p.mu.Unlock()
}

// Without a timer (a web function), starts and capacity reads each end a
// few ended leases before they answer.
func TestLeaseInRequestSweeps(t *testing.T) {
	t.Parallel()
	e, _ := newLeaseEnv(t, 2, caremu.Options{Concurrency: 10}, map[string]string{"SESSION_MAX": "1m"})
	for i := range 5 {
		wantExpires(t, e.start("u"+strconv.Itoa(i)), e.clock.Now().Add(time.Minute))
	}
	e.pass(2 * time.Minute)
	if r := e.do("203.0.113.5", "GET", "/capacity", ""); r.Status != 200 {
		t.Fatalf("capacity: %d %s", r.Status, r.Raw)
	}
	if n := e.destroys(""); n != broker.InRequestLeases {
		t.Fatalf("%d destroyed by a capacity read, want %d", n, broker.InRequestLeases)
	}
	wantExpires(t, e.start("late"), e.clock.Now().Add(time.Minute))
	if n := e.destroys(""); n != 2*broker.InRequestLeases {
		t.Fatalf("%d destroyed after a start, want %d", n, 2*broker.InRequestLeases)
	}
	e.start("late")
	for i := range 5 {
		if n := e.destroys("u" + strconv.Itoa(i)); n != 1 {
			t.Errorf("u%d destroyed %d times", i, n)
		}
	}
	if e.destroys("late") != 0 {
		t.Error("a live session was destroyed")
	}
}

// Without a cooldown, a start by a user whose ended lease no sweep reached
// yet ends that session itself, then starts as a newcomer; its new lease is
// never destroyed by the old one.
func TestLeaseStartAfterAnUnsweptEnd(t *testing.T) {
	t.Parallel()
	e, _ := newLeaseEnv(t, 2, caremu.Options{StopTime: 2 * time.Second}, map[string]string{"SESSION_MAX": "1m"})
	wantExpires(t, e.start("alice"), e.clock.Now().Add(time.Minute))
	e.pass(61 * time.Second)
	r := e.start("alice")
	if e.destroys("alice") != 1 {
		t.Fatalf("the ended session was not destroyed first: %d destroys (%d %s)", e.destroys("alice"), r.Status, r.Raw)
	}
	if r.Status != 200 { // CAR is still stopping the old session: Unavailable, then a retry
		if r.Status != 503 || r.code() != "Unavailable" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("start right after its own destroy: %d %s", r.Status, r.Raw)
		}
		e.pass(3 * time.Second)
		r = e.start("alice")
	}
	end := e.clock.Now().Add(time.Minute)
	wantExpires(t, r, end)
	e.pass(30 * time.Second)
	e.sweep(0)
	e.sweep(1)
	if n := e.destroys("alice"); n != 1 {
		t.Errorf("the new session was destroyed: %d destroys", n)
	}
	if s, _ := e.emu.SlotOf("alice"); s.State != caremu.Session {
		t.Errorf("alice's new session: %+v", s)
	}
}

// Redis goes away in the middle of a sweep (its destroys in flight): the
// leases it had claimed are retaken once their claims lapse, the rest wait
// for the next sweep; once Redis is back every ended lease gets destroyed.
func TestLeaseRedisDownDuringASweep(t *testing.T) {
	t.Parallel() // its own emulator and Redis; mostly waiting
	e, px := newLeaseEnv(t, 2, caremu.Options{Concurrency: 20}, map[string]string{"SESSION_MAX": "1m"})
	const n = 12
	for i := range n {
		wantExpires(t, e.start("u"+strconv.Itoa(i)), e.clock.Now().Add(time.Minute))
	}
	e.pass(2 * time.Minute)
	e.emu.SetLatency("DestroySession", 400*time.Millisecond)
	done := make(chan broker.Report)
	go func() { done <- e.svcs[0].Sweep(context.Background()) }()
	time.Sleep(150 * time.Millisecond) // the first batch's destroys are in flight
	px.down()
	if r := <-done; r.Claimed == 0 || r.Claimed == n || !r.Skipped {
		t.Fatalf("the interrupted sweep: %+v", r)
	}
	e.emu.SetLatency("DestroySession", 0)
	px.up()
	time.Sleep(queue.RetryAfterFailure + 100*time.Millisecond)
	e.sweep(1) // the unclaimed rest
	e.pass(broker.ClaimTTL + time.Second)
	e.sweep(0) // the claims the first sweep could not close
	for i := range n {
		if e.destroys("u"+strconv.Itoa(i)) == 0 {
			t.Errorf("u%d never destroyed", i)
		}
	}
	if r := e.sweep(1); r.Claimed != 0 || r.Due != 0 || r.Skipped {
		t.Errorf("leases left after Redis returned: %+v", r)
	}
}
