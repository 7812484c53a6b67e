package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"carbroker/internal/dev/caremu"
)

const (
	// requestTimeout bounds one request: longer than the function's own
	// budget (REQUEST_TIMEOUT, 10 s by default), so the function answers
	// first.
	requestTimeout = 15 * time.Second
	// maxSteps bounds each user's steps, whatever the clock does.
	maxSteps = 100_000
)

// pool is the part of the emulator the harness drives and reads.
type pool interface {
	SlotOf(userID string) (caremu.Slot, bool)
	State() []caremu.Slot
	Disconnect(userID string) bool
	Calls() []caremu.Call
	Takeovers(userID string) int
}

var _ pool = (*caremu.Emulator)(nil)

// phase is where a simulated user is.
type phase int

const (
	offline      phase = iota // holds nothing; its next step starts a session
	connected                 // its client holds a live session on user.slot
	disconnected              // its client closed; CAR retains user.slot until user.until
)

// kind is what a start is, which decides the checks its answer gets.
type kind int

const (
	fresh   kind = iota // from offline: any free slot, or 503 NoIdleConcurrency
	within              // a reconnect aimed well inside retention: its own slot back
	after               // a reconnect once retention has lapsed: like fresh
	refresh             // a start while connected (a page reload): its own slot, a takeover
)

func (k kind) String() string {
	return [...]string{"fresh start", "reconnect within retention", "reconnect after retention", "refresh"}[k]
}

// tally counts what the users did.
type tally struct {
	starts, ok, noIdle          int // POST /session: all, 200, 503 NoIdleConcurrency
	within, withinUnchecked     int // reconnects within retention: checked, answered too late to check
	after, refreshes            int
	disconnects, stops, dropped int
}

func (t *tally) add(o tally) {
	t.starts += o.starts
	t.ok += o.ok
	t.noIdle += o.noIdle
	t.within += o.within
	t.withinUnchecked += o.withinUnchecked
	t.after += o.after
	t.refreshes += o.refreshes
	t.disconnects += o.disconnects
	t.stops += o.stops
	t.dropped += o.dropped
}

// result is the outcome of a run.
type result struct {
	requests   int
	errors     []string        // unexpected answers: transport errors, 4xx, malformed bodies
	violations []string        // broken invariants, including 5xx other than NoIdle
	latencies  []time.Duration // of every answered request, sorted
	peakRSS    int64           // the function's VmHWM in bytes; 0 if unknown
	tally      tally
}

func (r result) failed() bool { return len(r.errors) > 0 || len(r.violations) > 0 }

// percentile returns the nearest-rank percentile p (0 < p ≤ 1) of the
// latencies.
func (r result) percentile(p float64) time.Duration {
	n := len(r.latencies)
	if n == 0 {
		return 0
	}
	i := int(float64(n)*p+0.999999) - 1
	return r.latencies[min(max(i, 0), n-1)]
}

// harness simulates users of one function against one emulator.
type harness struct {
	o             options
	pool          pool
	base          string // the function's URL
	client        *http.Client
	ledger        *ledger
	stopTime      time.Duration // the emulator's StopTime
	clientSession string

	mu         sync.Mutex
	errors     []string
	violations []string
	progress   map[string]tally // each user's tally after its last step
}

// user is one simulated user. Only its own goroutine touches it until the
// run ends, and only that goroutine acts on its UserId, so what the
// emulator shows for it changes only by its own steps and by CAR's timers.
type user struct {
	id        string
	rng       *rand.Rand
	phase     phase
	slot      int       // connected or disconnected: the slot it holds
	until     time.Time // disconnected: when CAR's retention of its slot ends
	reconnect kind      // disconnected: within or after
	next      time.Time // when its next step is due
	out       bool      // dropped out after an unexpected answer
	rec       record
	lat       []time.Duration
	n         tally
}

func newHarness(o options, p pool, base string, stopTime time.Duration) *harness {
	cs := make([]byte, 1536) // a ClientSession is an opaque base64 string of a few KB
	for i := range cs {
		cs[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i*7%64]
	}
	tr := &http.Transport{MaxIdleConns: o.users, MaxIdleConnsPerHost: o.users, IdleConnTimeout: 30 * time.Second}
	return &harness{o: o, pool: p, base: base, client: &http.Client{Transport: tr},
		ledger: newLedger(), stopTime: stopTime, clientSession: string(cs)}
}

// run lets every user act until the run's duration ends (a request in
// flight then still finishes), then checks the end state and audits the
// emulator's call log.
func (h *harness) run(ctx context.Context) result {
	defer h.client.CloseIdleConnections()
	steps, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	h.progress = map[string]tally{}
	var ender sync.WaitGroup
	ender.Go(func() { h.endSteps(steps, cancel, start) })
	defer ender.Wait()
	users := make([]*user, h.o.users)
	var wg sync.WaitGroup
	for i := range users {
		u := &user{id: fmt.Sprintf("load-%04d", i), rng: rand.New(rand.NewPCG(h.o.seed, uint64(i)))}
		u.next = start.Add(between(u.rng, 0, min(2*h.o.retention, h.o.duration/4))) // no thundering herd
		users[i] = u
		wg.Go(func() { h.runUser(steps, ctx, u) })
	}
	wg.Wait()
	cancel()

	var res result
	records := make(map[string]*record, len(users))
	for _, u := range users {
		h.finalCheck(u)
		records[u.id] = &u.rec
		res.requests += len(u.rec.starts) + len(u.rec.stops)
		res.latencies = append(res.latencies, u.lat...)
		res.tally.add(u.n)
	}
	for _, v := range audit(h.pool.Calls(), records, h.pool.Takeovers) {
		h.violate("%s", v)
	}
	slices.Sort(res.latencies)
	h.mu.Lock()
	res.errors, res.violations = h.errors, h.violations
	h.mu.Unlock()
	return res
}

// endSteps ends steps once the run's duration has passed and, when the
// options ask for it, the users have done enough (or maxDuration passed).
func (h *harness) endSteps(steps context.Context, cancel context.CancelFunc, start time.Time) {
	if !sleepUntil(steps, start.Add(h.o.duration)) {
		return
	}
	for h.o.enough != nil && time.Since(start) < h.o.maxDuration && !h.o.enough(h.tallySoFar()) {
		if !sleepUntil(steps, time.Now().Add(20*time.Millisecond)) {
			return
		}
	}
	cancel()
}

// tallySoFar sums the users' tallies as of their last steps.
func (h *harness) tallySoFar() tally {
	h.mu.Lock()
	defer h.mu.Unlock()
	var t tally
	for _, n := range h.progress {
		t.add(n)
	}
	return t
}

// runUser runs u's steps until steps ends; requests run under ctx.
func (h *harness) runUser(steps, ctx context.Context, u *user) {
	defer h.report(u)
	for i := 0; i < maxSteps && !u.out; i++ {
		h.report(u)
		if !sleepUntil(steps, u.next) {
			return
		}
		switch u.phase {
		case offline:
			h.start(ctx, u, fresh)
		case disconnected:
			h.start(ctx, u, u.reconnect)
		case connected:
			switch r := u.rng.Float64(); {
			case r < 0.45:
				h.disconnect(u)
			case r < 0.85:
				h.stop(ctx, u)
			default:
				h.start(ctx, u, refresh)
			}
		}
	}
}

// start sends POST /session and checks the answer against the emulator.
//
// A reconnect counts as within retention when its answer arrived before the
// retention end the emulator reported right after the disconnect: both CAR
// calls were then served while the slot was still retained for this user,
// so it must be the same slot. Reconnects are aimed at least half a
// retention before that end; one answered later (a stall) is counted as
// unchecked, not guessed at.
func (h *harness) start(ctx context.Context, u *user, k kind) {
	R := h.o.retention
	if k == fresh || k == after {
		// Its last stop has finished, or its retention has lapsed: it holds nothing.
		if s, ok := h.pool.SlotOf(u.id); ok {
			h.violate("%s holds slot %d (%s) before a %s, which should find it holding nothing", u.id, s.ID, s.State, k)
		}
	}
	a := h.call(ctx, http.MethodPost, u, startBody{UserId: u.id, ClientSession: h.clientSession})
	u.rec.starts = append(u.rec.starts, a.window())
	inRetention := k == within && a.got.Before(u.until)
	u.n.starts++
	switch {
	case k == after:
		u.n.after++
	case k == refresh:
		u.n.refreshes++
	case inRetention:
		u.n.within++
	case k == within:
		u.n.withinUnchecked++
	}
	switch {
	case a.err != nil:
		h.dropOut(u, "%s: POST /session (%s): %v", u.id, k, a.err)
	case a.status == http.StatusOK:
		u.n.ok++
		if a.body.UserId != u.id || a.body.ServerSession == "" {
			h.dropOut(u, "%s: POST /session answered 200 without its UserId and a ServerSession", u.id)
			return
		}
		u.rec.created++
		if k == refresh {
			u.rec.refreshes++
		}
		s, ok := h.pool.SlotOf(u.id)
		if !ok || s.State != caremu.Session || s.UserID != u.id {
			h.violate("%s: a %s answered 200, but CAR shows %s", u.id, k, describe(s, ok))
			h.dropOut(u, "")
			return
		}
		if n := owned(h.pool.State(), u.id); n != 1 {
			h.violate("%s owns %d slots after a %s", u.id, n, k)
		}
		switch {
		case k == refresh && s.ID != u.slot:
			h.violate("%s refreshed its live session on slot %d but was given slot %d", u.id, u.slot, s.ID)
		case inRetention && s.ID != u.slot:
			h.violate("%s reconnected %s before its retention ended but got slot %d instead of its own slot %d",
				u.id, u.until.Sub(a.got).Round(time.Millisecond), s.ID, u.slot)
		}
		if v := h.ledger.claim(u.id, s.ID, a.got); v != "" {
			h.violate("%s", v)
		}
		if v := h.ledger.serverSession(u.id, a.body.ServerSession); v != "" {
			h.violate("%s", v)
		}
		u.phase, u.slot = connected, s.ID
		u.next = a.got.Add(between(u.rng, R/8, R/2)) // plays
	case a.status == http.StatusServiceUnavailable && a.body.code() == brokerNoIdle:
		u.n.noIdle++
		u.rec.noIdle = append(u.rec.noIdle, a.window())
		if k == refresh || inRetention {
			h.violate("%s was answered 503 %s to a %s while CAR held slot %d for it", u.id, brokerNoIdle, k, u.slot)
			h.dropOut(u, "")
			return
		}
		// CAR found nothing of this user's to reuse and nothing free: no lock was taken.
		if s, ok := h.pool.SlotOf(u.id); ok {
			h.violate("%s holds slot %d (%s) after a start answered %s", u.id, s.ID, s.State, brokerNoIdle)
		}
		u.phase = offline
		u.next = a.got.Add(between(u.rng, R/4, R)) // tries again
	case a.status >= 500:
		h.violate("%s: a %s answered %d %s", u.id, k, a.status, a.body.code())
		h.dropOut(u, "")
	default:
		h.dropOut(u, "%s: a %s answered %d %s", u.id, k, a.status, a.body.code())
	}
}

// report publishes u's tally for endSteps.
func (h *harness) report(u *user) {
	h.mu.Lock()
	h.progress[u.id] = u.n
	h.mu.Unlock()
}

// alive checks that u's session is still live on its slot: nothing but u
// itself may end it.
func (h *harness) alive(u *user) bool {
	s, ok := h.pool.SlotOf(u.id)
	if ok && s.ID == u.slot && s.State == caremu.Session && s.UserID == u.id {
		return true
	}
	h.violate("%s's live session on slot %d was lost, though it neither stopped nor disconnected: CAR shows %s",
		u.id, u.slot, describe(s, ok))
	h.dropOut(u, "")
	return false
}

// disconnect closes u's client (the emulator's Disconnect) and chooses when
// it comes back.
func (h *harness) disconnect(u *user) {
	if !h.alive(u) {
		return
	}
	R := h.o.retention
	// CAR keeps the slot at least R from now: retention starts at the
	// Disconnect, which comes after this.
	h.ledger.release(u.id, u.slot, time.Now().Add(R))
	if !h.pool.Disconnect(u.id) {
		h.violate("%s: Disconnect found no session to retain", u.id)
		h.dropOut(u, "")
		return
	}
	u.n.disconnects++
	s, ok := h.pool.SlotOf(u.id)
	if !ok || s.ID != u.slot || s.State != caremu.Retained {
		h.violate("%s: after Disconnect CAR shows %s, not slot %d retained", u.id, describe(s, ok), u.slot)
		h.dropOut(u, "")
		return
	}
	u.phase, u.until = disconnected, s.Until
	if u.rng.Float64() < 0.6 {
		u.reconnect, u.next = within, time.Now().Add(between(u.rng, R/20, R/2))
	} else {
		u.reconnect, u.next = after, s.Until.Add(between(u.rng, R/10, R/2))
	}
}

// stop sends DELETE /session for u.
func (h *harness) stop(ctx context.Context, u *user) {
	if !h.alive(u) {
		return
	}
	R := h.o.retention
	sent := time.Now()
	// The DestroySession comes after this, and the slot stays stopping for
	// StopTime after it.
	h.ledger.release(u.id, u.slot, sent.Add(h.stopTime))
	a := h.call(ctx, http.MethodDelete, u, stopBody{UserId: u.id})
	u.rec.stops = append(u.rec.stops, a.window())
	u.n.stops++
	switch {
	case a.err != nil:
		h.dropOut(u, "%s: DELETE /session: %v", u.id, a.err)
	case a.status == http.StatusOK:
		if a.body.UserId != u.id {
			h.dropOut(u, "%s: DELETE /session answered 200 for UserId %q", u.id, a.body.UserId)
			return
		}
		s, ok := h.pool.SlotOf(u.id)
		if time.Now().Before(sent.Add(h.stopTime)) && !(ok && s.ID == u.slot && s.State == caremu.Stopping) {
			h.violate("%s: right after its stop CAR shows %s, not slot %d stopping", u.id, describe(s, ok), u.slot)
		}
		// Stopping ends StopTime after the DestroySession, which came before the answer.
		u.phase = offline
		u.next = a.got.Add(h.stopTime + between(u.rng, R, 4*R)) // a break
	case a.status >= 500:
		h.violate("%s: DELETE /session answered %d %s", u.id, a.status, a.body.code())
		h.dropOut(u, "")
	default:
		h.dropOut(u, "%s: DELETE /session answered %d %s", u.id, a.status, a.body.code())
	}
}

// finalCheck checks, once every user has stopped, that what u should still
// hold is there.
func (h *harness) finalCheck(u *user) {
	switch {
	case u.out:
	case u.phase == connected:
		h.alive(u)
	case u.phase == disconnected:
		s, ok := h.pool.SlotOf(u.id)
		if time.Now().Before(u.until) && !(ok && s.ID == u.slot && s.State == caremu.Retained) {
			h.violate("%s's retained slot %d was lost before its retention ended: CAR shows %s", u.id, u.slot, describe(s, ok))
		}
	}
}

// dropOut ends u's run after an unexpected answer, recording it unless msg
// is "" (a violation already said why).
func (h *harness) dropOut(u *user, format string, args ...any) {
	if format != "" {
		h.mu.Lock()
		h.errors = append(h.errors, fmt.Sprintf(format, args...))
		h.mu.Unlock()
	}
	u.out, u.rec.unsure = true, true
	u.n.dropped++
	h.ledger.forget(u.id)
}

func (h *harness) violate(format string, args ...any) {
	h.mu.Lock()
	h.violations = append(h.violations, fmt.Sprintf(format, args...))
	h.mu.Unlock()
}

type startBody struct{ UserId, ClientSession string }

type stopBody struct{ UserId string }

// replyBody is any answer of the native API.
type replyBody struct {
	UserId, ServerSession, RequestId string
	Error                            *struct{ Code, Message string }
}

func (r replyBody) code() string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Code
}

// answer is one request's outcome.
type answer struct {
	status    int
	body      replyBody
	sent, got time.Time
	err       error // no answer, or one that is not the API's JSON
}

// window is when the request was in flight; without an answer, the
// function may have gone on calling CAR for it.
func (a answer) window() window {
	if a.err != nil {
		return window{a.sent, never}
	}
	return window{a.sent, a.got}
}

func (h *harness) call(ctx context.Context, method string, u *user, body any) answer {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, method, h.base+"/session", bytes.NewReader(b))
	if err != nil {
		return answer{sent: time.Now(), got: time.Now(), err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	a := answer{sent: time.Now()}
	resp, err := h.client.Do(req)
	if err != nil {
		a.got, a.err = time.Now(), err
		return a
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	a.got, a.status = time.Now(), resp.StatusCode
	if err != nil {
		a.err = err
		return a
	}
	u.lat = append(u.lat, a.got.Sub(a.sent))
	if err := json.Unmarshal(raw, &a.body); err != nil {
		a.err = fmt.Errorf("status %d with a body that is not JSON: %.80q", resp.StatusCode, raw)
	}
	return a
}

// describe renders what SlotOf returned.
func describe(s caremu.Slot, ok bool) string {
	if !ok {
		return "no slot"
	}
	return fmt.Sprintf("slot %d %s by %q", s.ID, s.State, s.UserID)
}

func owned(slots []caremu.Slot, userID string) int {
	n := 0
	for _, s := range slots {
		if s.UserID == userID {
			n++
		}
	}
	return n
}

// between returns a uniformly random duration in [lo, hi].
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

// sleepUntil waits until t; it reports false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
