package queue

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
	"time"

	"carbroker/internal/resp"
)

// Verdict is what the line says a caller should do now.
type Verdict int

// Verdicts (the values line.lua returns).
const (
	Holder  Verdict = 1 // the user holds or retains a concurrency through us: straight to CAR
	Go      Verdict = 2 // call CAR now: the line is empty with idle concurrencies, or the user's turn has come
	Wait    Verdict = 3 // keep the place and poll again
	Full    Verdict = 4 // the client IP already has QUEUE_MAX_PER_IP places
	Refresh Verdict = 5 // the count is stale and this caller holds the lease to refresh it: Describe, then ask again with the Count
	Stale   Verdict = 6 // the count is stale and another caller is refreshing it
	OK      Verdict = 7
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
	Granted Outcome = "granted" // ApplyConcurrent succeeded: leave the line, remember the holder
	NoIdle  Outcome = "noidle"  // CAR had no idle concurrency: keep (or take) a place
	Failed  Outcome = "failed"  // anything else: keep the place, release a newcomer's try
)

// Poll joins the project's line or refreshes the user's place in it, and
// says whether the user may call CAR now. count, when not nil, is a fresh
// DescribeConcurrentCount to store first (after a Refresh verdict); noLease
// stops the Store from handing out the refresh lease (after a failed
// refresh). It is one Redis round trip.
func (s *Store) Poll(ctx context.Context, project, user, ip string, count *Count, noLease bool) (Decision, error) {
	flag := ""
	if noLease {
		flag = "nolease"
	}
	return s.run(ctx, "poll", project, user, ip, flag, count)
}

// Done records the outcome of a CAR attempt. A grant to a holder (holder
// true) renews its mark without counting as a grant; NoIdle gives (or
// keeps) the user a place and answers it.
func (s *Store) Done(ctx context.Context, project, user, ip string, o Outcome, holder bool) (Decision, error) {
	flag := ""
	if holder {
		flag = "holder"
	}
	return s.run(ctx, string(o), project, user, ip, flag, nil)
}

// Leave removes the user's place in the project's line; forget also drops
// its holder mark (at a stop).
func (s *Store) Leave(ctx context.Context, project, user string, forget bool) error {
	op := "leave"
	if forget {
		op = "quit"
	}
	_, err := s.run(ctx, op, project, user, "", "", nil)
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
		s.o.HoldTTL.Milliseconds(), s.keyTTL().Milliseconds(), flag, "", "", ""}
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
	if len(vals) != 7 {
		return Decision{}, errors.New("queue: unexpected script reply of " + strconv.Itoa(len(vals)) + " values")
	}
	d := Decision{Verdict: Verdict(vals[0]), Position: int(vals[1]), Waiting: int(vals[2]),
		Idle: int(vals[4]), Total: int(vals[5]), Running: int(vals[6])}
	if vals[3] >= 0 {
		d.ETA, d.ETAKnown = time.Duration(vals[3])*time.Millisecond, true
	}
	return d, nil
}

// keyTTL is how long a line's keys outlive their last poll.
func (s *Store) keyTTL() time.Duration { return 2*s.o.Abandon + 10*time.Second }

// ipKey is what QUEUE_MAX_PER_IP counts places by: an IPv4 address, or the
// /64 of an IPv6 one (a single IPv6 client usually holds a whole /64, so
// counting its addresses one by one would not cap it).
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Is4In6() {
		return ip
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
