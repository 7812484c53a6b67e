package queue

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"carbroker/internal/resp"
)

// Session leases (docs/lease.md) live beside each project's line, under
// the same hash tag, in keys of their own (sess*), changed only by their
// own script, lease.lua. They go through the Store's call budget and
// circuit (do) like the line's calls.

//go:embed lease.lua
var leaseSource string

var leaseScript = resp.NewScript(leaseSource)

// evalLease runs lease.lua: the one place the leases meet the Redis client.
func (s *Store) evalLease(ctx context.Context, keys []string, args ...any) ([]any, error) {
	var out []any
	err := s.do(ctx, func(ctx context.Context) error {
		r, err := leaseScript.Run(ctx, s.rdb, keys, args...)
		if err != nil {
			return err
		}
		arr, ok := r.([]any)
		if !ok {
			return fmt.Errorf("queue: lease.lua answered %T, not an array", r)
		}
		for i, v := range arr {
			if b, ok := v.([]byte); ok {
				arr[i] = string(b) // bulk strings read as strings (UserIds)
			}
		}
		out = arr
		return nil
	})
	return out, err
}

// leaseKeys are a project's lease keys.
func (s *Store) leaseKeys(project string) []string {
	base := s.base(project)
	return []string{base + "sess", base + "sess:ends", base + "sess:claims", base + "sess:gen",
		base + "sess:rate", base + "sess:cool"}
}

// LeaseState is where a user's lease stands.
type LeaseState int

// Lease states (the values lease.lua returns).
const (
	LeaseNone    LeaseState = 0 // no lease
	LeaseActive  LeaseState = 1 // it ends at End
	LeaseEnded   LeaseState = 2 // it ended; its session is not destroyed yet, and nobody is destroying it
	LeaseEnding  LeaseState = 3 // it ended; a sweep (or a stop) holds the claim and is destroying its session
	LeaseCooling LeaseState = 4 // its session was destroyed; the cooldown runs for Retry
	LeaseLimit   LeaseState = 5 // a renewal was refused: the renewals are used up
	LeaseMine    LeaseState = 6 // it ended and the caller holds the claim of Gen: destroy, then LeaseDone
)

// Lease is a user's lease as the store answered.
type Lease struct {
	State  LeaseState
	End    time.Time
	Gen    int64         // the lease's generation: a new one for every lease, and when a raced start re-arms one
	Renews int           // renewals used
	Retry  time.Duration // with Ended, Ending and Cooling: the cooldown left (from the lease's end)
}

// LeaseClaim is an ended lease a sweep claimed: destroy the user's
// session, then LeaseDone with Gen (or LeaseRelease on failure).
type LeaseClaim struct {
	User string
	Gen  int64
	End  time.Time
}

// Claims is a sweep's batch.
type Claims struct {
	Claimed []LeaseClaim
	Due     int           // ended leases still waiting (not claimed) after this batch
	Wait    time.Duration // > 0: the per-second rate is used up; more may be claimed after Wait
}

// LeaseCheck reads the user's lease (cooldown: SESSION_COOLDOWN).
func (s *Store) LeaseCheck(ctx context.Context, project, user string, cooldown time.Duration) (Lease, error) {
	return s.leaseOp(ctx, project, "check", user, cooldown.Milliseconds())
}

// LeaseCreate records a lease of length d for a user just handed a
// ServerSession, or returns the live lease it has (a reconnect keeps its
// end). A lease that ended (or was destroyed) meanwhile is re-armed as a
// new generation for the next sweep, and returned Ended: the session just
// handed is not the user's to keep.
func (s *Store) LeaseCreate(ctx context.Context, project, user string, d, cooldown time.Duration) (Lease, error) {
	return s.leaseOp(ctx, project, "create", user, d.Milliseconds(), cooldown.Milliseconds())
}

// LeaseRenew extends a live lease to d from now, at most max times; it
// answers LeaseLimit when they are used up, and the lease's state when it
// is not live.
func (s *Store) LeaseRenew(ctx context.Context, project, user string, d time.Duration, max int, cooldown time.Duration) (Lease, error) {
	return s.leaseOp(ctx, project, "renew", user, d.Milliseconds(), max, cooldown.Milliseconds())
}

// LeaseEnd ends the user's lease now (a stop) and claims it for claim
// unless a sweep holds it: LeaseMine then carries the Gen to mark done.
func (s *Store) LeaseEnd(ctx context.Context, project, user string, claim, cooldown time.Duration) (Lease, error) {
	return s.leaseOp(ctx, project, "end", user, claim.Milliseconds(), cooldown.Milliseconds())
}

// LeaseClaimOne claims the user's own ended lease (a start after the
// cooldown whose session no sweep destroyed yet): LeaseMine on success.
func (s *Store) LeaseClaimOne(ctx context.Context, project, user string, claim time.Duration) (Lease, error) {
	return s.leaseOp(ctx, project, "claimone", user, claim.Milliseconds())
}

// LeaseDone records that the session of generation gen was destroyed; it
// reports false when gen is no longer the user's lease (nothing changed).
func (s *Store) LeaseDone(ctx context.Context, project, user string, gen int64, cooldown time.Duration) (bool, error) {
	out, err := s.evalLease(ctx, s.leaseKeys(project), "done", s.o.Now().UnixMilli(), user, gen, cooldown.Milliseconds())
	if err != nil {
		return false, err
	}
	n, _ := intAt(out, 0)
	return n == 1, nil
}

// LeaseRelease keeps a failed destroy's claim for backoff more, after
// which the next sweep retakes it.
func (s *Store) LeaseRelease(ctx context.Context, project, user string, gen int64, backoff time.Duration) error {
	_, err := s.evalLease(ctx, s.leaseKeys(project), "release", s.o.Now().UnixMilli(), user, gen, backoff.Milliseconds())
	return err
}

// LeaseClaim claims up to limit ended leases of the project, oldest end
// first, each for claim, within perSecond claims a second across every
// instance.
func (s *Store) LeaseClaim(ctx context.Context, project string, limit int, claim time.Duration, perSecond int) (Claims, error) {
	out, err := s.evalLease(ctx, s.leaseKeys(project), "claim", s.o.Now().UnixMilli(), "", limit, claim.Milliseconds(), perSecond)
	if err != nil {
		return Claims{}, err
	}
	var c Claims
	n, ok1 := intAt(out, 0)
	due, ok2 := intAt(out, 1)
	wait, ok3 := intAt(out, 2)
	if !ok1 || !ok2 || !ok3 || len(out) != 3+3*int(n) {
		return Claims{}, errors.New("queue: unexpected lease claim reply")
	}
	c.Due, c.Wait = int(due), time.Duration(wait)*time.Millisecond
	for i := range int(n) {
		u, _ := out[3+3*i].(string)
		gen, _ := intAt(out, 4+3*i)
		end, _ := intAt(out, 5+3*i)
		c.Claimed = append(c.Claimed, LeaseClaim{User: u, Gen: gen, End: time.UnixMilli(end)})
	}
	return c, nil
}

func (s *Store) leaseOp(ctx context.Context, project, op, user string, args ...any) (Lease, error) {
	out, err := s.evalLease(ctx, s.leaseKeys(project), append([]any{op, s.o.Now().UnixMilli(), user}, args...)...)
	if err != nil {
		return Lease{}, err
	}
	var v [5]int64
	for i := range v {
		var ok bool
		if v[i], ok = intAt(out, i); !ok || len(out) != 5 {
			return Lease{}, fmt.Errorf("queue: unexpected lease reply of %d values", len(out))
		}
	}
	l := Lease{State: LeaseState(v[0]), Gen: v[2], Renews: int(v[3]), Retry: time.Duration(v[4]) * time.Millisecond}
	if v[1] > 0 {
		l.End = time.UnixMilli(v[1])
	}
	return l, nil
}

func intAt(out []any, i int) (int64, bool) {
	if i >= len(out) {
		return 0, false
	}
	n, ok := out[i].(int64)
	return n, ok
}
