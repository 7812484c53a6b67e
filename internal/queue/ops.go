package queue

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"carbroker/internal/resp"
)

// Verdict is what the line says a caller should do now.
type Verdict int

// Verdicts (the values line.lua returns).
const (
	Holder  Verdict = 1 // the user was handed a ServerSession through us and its mark holds: straight to CAR
	Go      Verdict = 2 // call CAR now: the line is empty with idle concurrencies, the user's turn has come, or the store lost its data (the rebuild window)
	Wait    Verdict = 3 // keep the place and poll again
	Full    Verdict = 4 // the client IP already has QUEUE_MAX_PER_IP places
	Refresh Verdict = 5 // the count is stale and this caller holds the lease to refresh it: Describe, then ask again with the Count
	Stale   Verdict = 6 // the count is stale and another caller is refreshing it
	OK      Verdict = 7
	Locked  Verdict = 8 // a lock-only grant (the demo's 10101) is within CAR_LOCK_WINDOW: the user may start now; a lock is not asked for again
)

// Decision is the line's answer to a poll.
type Decision struct {
	Verdict  Verdict
	Position int           // 1 is next; 0 when not in line
	Waiting  int           // places in the line
	ETA      time.Duration // estimate for Position; meaningful only when ETAKnown
	ETAKnown bool
	Idle     int // idle concurrencies as the line counts them; -1 when unknown
	Total    int // the cached DescribeConcurrentCount; -1 when none
	Running  int
}

// Count is a DescribeConcurrentCount answer and when the call started.
type Count struct {
	Total, Running int
	At             time.Time
}

// Outcome is the result of a CAR attempt the line allowed.
type Outcome string

// Outcomes.
const (
	Granted Outcome = "granted" // the user was handed a ServerSession: leave the line, mark the holder
	Lock    Outcome = "locked"  // ApplyConcurrent succeeded without a session: leave the line, the right to start for CAR_LOCK_WINDOW
	NoIdle  Outcome = "noidle"  // CAR had no idle concurrency: keep (or take) a place
	Failed  Outcome = "failed"  // anything else: keep the place, release a newcomer's try
)

// Poll joins the project's line or refreshes the user's place in it, and
// says whether the user may call CAR now; a Refresh verdict hands this
// caller the lease to refresh the project's count (then Repoll). It is one
// Redis round trip.
func (s *Store) Poll(ctx context.Context, project, user, ip string) (Decision, error) {
	return s.run(ctx, "poll", project, user, ip, "", nil)
}

// Repoll is the poll after a Refresh verdict: it stores count first (nil:
// the refresh failed) and never hands out the lease, so that a count that
// went stale while it was read (a slow CAR) cannot send the caller to CAR
// past the line. One Redis round trip.
func (s *Store) Repoll(ctx context.Context, project, user, ip string, count *Count) (Decision, error) {
	return s.run(ctx, "poll", project, user, ip, "nolease", count)
}

// Done records the outcome of a CAR attempt. Every grant counts against
// the idle figure (a holder's too); Granted marks the holder for
// QUEUE_HOLD_TTL, Lock gives the right to start for CAR_LOCK_WINDOW from
// the first lock (never extended); NoIdle drops both, gives (or keeps) the
// user a place and answers it.
func (s *Store) Done(ctx context.Context, project, user, ip string, o Outcome) (Decision, error) {
	return s.run(ctx, string(o), project, user, ip, "", nil)
}

// Mark records a grant made while the store did not answer (the start was
// served without the line): the user becomes a holder for QUEUE_HOLD_TTL,
// unless it holds a mark already or has since taken a place in the line.
// It counts no grant (the count has seen that concurrency since). One
// Redis round trip.
func (s *Store) Mark(ctx context.Context, project, user string) error {
	_, err := s.run(ctx, "held", project, user, "", "", nil)
	return err
}

// Alive is a holder's heartbeat: its mark then lasts CAR's retention plus
// two heartbeat intervals from now. It reports whether the user holds a
// mark; it never makes one. One Redis round trip.
func (s *Store) Alive(ctx context.Context, project, user string) (bool, error) {
	d, err := s.run(ctx, "alive", project, user, "", "", nil)
	return d.Verdict == Holder, err
}

// Leave removes the user's place in the project's line (the compat
// /Dequeue); a holder keeps its mark.
func (s *Store) Leave(ctx context.Context, project, user string) error {
	_, err := s.run(ctx, "leave", project, user, "", "", nil)
	return err
}

// Quit removes the user's place and drops its holder mark and lock window
// (at a stop, or once its lease ended): from then on it is a newcomer.
func (s *Store) Quit(ctx context.Context, project, user string) error {
	_, err := s.run(ctx, "quit", project, user, "", "", nil)
	return err
}

// Capacity reads the project's cached count and its line's length. A
// Refresh verdict hands this caller the lease: Describe, then call again
// with the Count. Stale means another caller is refreshing it.
func (s *Store) Capacity(ctx context.Context, project string, count *Count) (Decision, error) {
	return s.run(ctx, "capacity", project, "", "", "", count)
}

func (s *Store) run(ctx context.Context, op, project, user, ip, flag string, count *Count) (Decision, error) {
	args := []any{op, s.o.Now().UnixMilli(), user, ipKey(ip), s.o.Abandon.Milliseconds(), s.o.MaxPerIP,
		s.o.HoldTTL.Milliseconds(), s.keyTTL().Milliseconds(), flag, "", "", "",
		s.o.LockWindow.Milliseconds(), s.o.Retention.Milliseconds(), s.aliveTTL().Milliseconds(),
		s.epochs.known(project), newEpoch()}
	if count != nil {
		args[9], args[10], args[11] = count.Total, count.Running, count.At.UnixMilli()
	}
	var vals []int64
	err := s.do(ctx, func(ctx context.Context) error {
		var err error
		vals, err = resp.Int64s(lineScript.Run(ctx, s.rdb, s.keys(project, user), args...))
		return err
	})
	if err != nil {
		return Decision{}, err
	}
	if len(vals) != 8 {
		return Decision{}, errors.New("queue: unexpected script reply of " + strconv.Itoa(len(vals)) + " values")
	}
	s.epochs.saw(project, vals[7])
	d := Decision{Verdict: Verdict(vals[0]), Position: int(vals[1]), Waiting: int(vals[2]),
		Idle: int(vals[4]), Total: int(vals[5]), Running: int(vals[6])}
	if vals[3] >= 0 {
		d.ETA, d.ETAKnown = time.Duration(vals[3])*time.Millisecond, true
	}
	return d, nil
}

// Heartbeat is how often a client that runs its app says so
// (POST /session/alive).
const Heartbeat = 30 * time.Second

// aliveTTL is how long a holder's mark lasts after its last heartbeat:
// CAR's retention after a disconnect, plus two heartbeat intervals (the
// last heartbeat came up to one interval before the disconnect, and one may
// be lost).
func (s *Store) aliveTTL() time.Duration { return s.o.Retention + 2*Heartbeat }

// epochs remembers, per project, the epoch of the store this instance last
// saw (a cache: an instance that knows none detects no loss, which is right
// for a new line, and only delays detection for a cold instance).
type epochs struct {
	mu sync.Mutex
	m  map[string]string
}

func (e *epochs) known(project string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.m[project]
}

func (e *epochs) saw(project string, id int64) {
	if id <= 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[string]string{}
	}
	e.m[project] = strconv.FormatInt(id, 10)
}

// newEpoch is a fresh epoch id: random, below 2^53 so that Lua's numbers
// carry it exactly.
func newEpoch() string { return strconv.FormatInt(rand.Int64N(1<<53-1)+1, 10) }

// keyTTL is how long a line's keys outlive their last poll.
func (s *Store) keyTTL() time.Duration { return 2*s.o.Abandon + 10*time.Second }

// ipKey is what QUEUE_MAX_PER_IP counts places by: an IPv4 address, or the
// /64 of an IPv6 one (a single IPv6 client usually holds a whole /64, so
// counting its addresses one by one would not cap it).
//
// A non-public address (loopback, private, link-local: what the function
// sees when no trusted proxy told it the client's) is not capped: its key is
// "", which the script does not count, since a proxy's address would put
// every user under one cap.
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !Public(a) {
		return ""
	}
	if !a.Is6() || a.Is4In6() {
		return ip
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

// Public reports whether an address can be a client's own on the Internet
// (what CAR schedules by, what QUEUE_MAX_PER_IP counts): global unicast,
// not private (RFC 1918, fc00::/7), and not in the ranges that are never
// globally reachable although net/netip does not call them private: the
// shared address space of carrier NATs and cloud load balancers
// (100.64.0.0/10, RFC 6598), benchmarking (198.18.0.0/15), "this network"
// (0.0.0.0/8) and the reserved 240.0.0.0/4. Such an address is a proxy's.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range nonGlobal {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

var nonGlobal = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("240.0.0.0/4"),
}
