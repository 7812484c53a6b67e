package broker

// Leases end sessions when the operator says (SESSION_MAX, docs/lease.md):
//
//   - a start that hands a ServerSession creates the user's lease, or reads
//     it (a reconnect keeps its end), and the reply carries its end;
//   - a start by a user whose lease ended is refused (403 SessionEnded,
//     with Retry-After while SESSION_COOLDOWN runs); after the cooldown the
//     user is a newcomer: it waits its turn like anyone;
//   - a guest's session ends with its host's: CAR ends a room with its
//     host's session, and the guest's reply carries the host's end;
//   - a stop ends the lease; the owner may renew it (SESSION_RENEW);
//   - sweeps destroy (CAR DestroySession) the sessions of ended leases: on
//     the timer trigger (Sweep, every project, up to the invocation's
//     deadline) and inside starts and capacity reads (a few, finished
//     before the reply). No goroutine outlives the call that started it.
//
// Each ended lease is claimed in Redis by its generation before it is
// destroyed, so that sweeps on several instances destroy it once, a claim
// whose sweep died is retaken after ClaimTTL, and a stale claim never
// destroys a newer session of the same user: no new session can be leased
// while an ended lease is not destroyed, and a claim outlives its destroy
// call (a sweep's call is bounded by DestroyTimeout, well inside ClaimTTL;
// a stop claims until ClaimTTL past its request's deadline).
//
// With Redis unreachable nothing is lost: a sweep that cannot read skips
// (the next catches up), and starts go on without a lease (no ExpiresAt).

import (
	"context"
	"strconv"
	"sync"
	"time"

	"carbroker/internal/fault"
	"carbroker/internal/queue"
)

// LeaseStore keeps the session leases (queue.Store).
type LeaseStore interface {
	LeaseCheck(ctx context.Context, project, user string, cooldown time.Duration) (queue.Lease, error)
	LeaseCreate(ctx context.Context, project, user string, d, cooldown time.Duration) (queue.Lease, error)
	LeaseRenew(ctx context.Context, project, user string, d time.Duration, max int, cooldown time.Duration) (queue.Lease, error)
	LeaseEnd(ctx context.Context, project, user string, claim, cooldown time.Duration) (queue.Lease, error)
	LeaseClaimOne(ctx context.Context, project, user string, claim time.Duration) (queue.Lease, error)
	LeaseDone(ctx context.Context, project, user string, gen int64, cooldown time.Duration) (bool, error)
	LeaseRelease(ctx context.Context, project, user string, gen int64, backoff time.Duration) error
	LeaseClaim(ctx context.Context, project string, limit int, claim time.Duration, perSecond int) (queue.Claims, error)
	// Quit drops the user's holder mark: after its lease the user is a
	// newcomer.
	Quit(ctx context.Context, project, user string) error
}

var _ LeaseStore = (*queue.Store)(nil)

// Tuning. The claim outlives any destroy call by far, so a sweep whose call
// is still in flight never sees its lease retaken.
const (
	ClaimTTL       = 60 * time.Second
	DestroyTimeout = 10 * time.Second
	// FailBackoff is how long a lease whose destroy failed waits before a
	// sweep tries again.
	FailBackoff = 5 * time.Second
	// PerSecond is the sweeps' share of CAR's 100 DestroySession requests a
	// second (the account's), across every project and instance, split
	// evenly between the projects; the rest is left to stops.
	PerSecond = 50
	// Workers is how many destroys one sweep runs at once.
	Workers = 8
	// InRequestLeases and InRequestTime bound the sweep inside a start or
	// a capacity read.
	InRequestLeases = 2
	InRequestTime   = time.Second
	// TimerMargin is kept back from the invocation's deadline.
	TimerMargin = time.Second
	// DefaultTimerBudget bounds a sweep whose context has no deadline.
	DefaultTimerBudget = 30 * time.Second
)

// Ended is the refusal of a start whose lease ended: Retry-After is the
// cooldown left (none for a guest: its host's lease is not its own).
func Ended(retry time.Duration, guest bool) error {
	msg := "this session reached its time limit (SESSION_MAX)"
	switch {
	case guest:
		msg = "the host's session reached its time limit (SESSION_MAX): the room is closed"
	case retry > 0:
		msg += "; you may start again (and wait your turn) after " + strconv.Itoa(int((retry+time.Second-1)/time.Second)) + " s"
	default:
		msg += "; it is being ended: try again in a moment"
		retry = 2 * time.Second
	}
	return &fault.Error{Kind: fault.SessionEnded, Message: msg, RetryAfter: retry}
}

// leased admits a start or lock with the lease rules above, then sweeps a
// few ended leases of the project.
func (s *Service) leased(ctx context.Context, in StartInput, g goal) (Result, error) {
	st := s.o.Leases
	if st == nil {
		return s.admit(ctx, in, g)
	}
	defer s.sweepInRequest(ctx, in.ProjectID)
	guest := in.Guest()
	owner := in.UserID
	if guest {
		owner = in.HostUserID
	}
	lp, l, err := s.lookup(ctx, in.ProjectID, owner)
	leased := err == nil // Redis trouble: a start without a lease
	if leased {
		switch l.State {
		case queue.LeaseEnded, queue.LeaseEnding, queue.LeaseCooling:
			if guest || l.Retry > 0 || l.State != queue.LeaseEnded {
				return Result{}, Ended(l.Retry, guest)
			}
			// The cooldown is over and no sweep ended the session yet: end
			// it now, then start as a newcomer.
			if err := s.endOwn(ctx, lp, owner); err != nil {
				return Result{}, err
			}
			lp, l = in.ProjectID, queue.Lease{}
		}
	}
	res, err := s.admit(ctx, in, g)
	if err != nil || !leased || g == toLock || res.ServerSession == "" {
		return res, err
	}
	if guest {
		if l.State == queue.LeaseActive {
			res.ExpiresAt = l.End
		}
		// A guest with a live lease of its own leaves the room when that
		// lease ends (DestroySession takes its UserId out of it).
		if _, own, err := s.lookup(ctx, in.ProjectID, in.UserID); err == nil && own.State == queue.LeaseActive &&
			(res.ExpiresAt.IsZero() || own.End.Before(res.ExpiresAt)) {
			res.ExpiresAt = own.End
		}
		return res, nil
	}
	// A user whose lease runs in another project gets its concurrency back
	// (one per UserId): that lease keeps its end.
	nl, err := st.LeaseCreate(ctx, lp, owner, s.o.SessionMax, s.o.Cooldown)
	switch {
	case err != nil:
		// Redis failed in between: a new session goes without a lease, as
		// in degraded mode; a reconnect's live lease still ends it.
		if l.State == queue.LeaseActive {
			res.ExpiresAt = l.End
		}
		return res, nil
	case nl.State != queue.LeaseActive:
		// The lease ended while this start ran: the session just handed is
		// the next sweep's to destroy.
		return Result{}, Ended(nl.Retry, false)
	}
	res.ExpiresAt = nl.End
	return res, nil
}

// lookup reads the user's lease in project or, when it has none there, in
// another allowed project: CAR keeps one session per UserId whatever the
// ProjectId, and DestroySession takes only the UserId, so a lease of
// another project (live, ended or cooling) is this user's session too. It
// returns the project holding the lease.
func (s *Service) lookup(ctx context.Context, project, user string) (string, queue.Lease, error) {
	l, err := s.o.Leases.LeaseCheck(ctx, project, user, s.o.Cooldown)
	if err != nil || l.State != queue.LeaseNone {
		return project, l, err
	}
	return s.elsewhere(ctx, project, user, l)
}

// elsewhere looks for the user's lease in the allowed projects other than
// project, where it has none (none is that answer); it returns the project
// holding it, or project and none.
func (s *Service) elsewhere(ctx context.Context, project, user string, none queue.Lease) (string, queue.Lease, error) {
	for _, p := range s.o.Projects {
		if p == project {
			continue
		}
		o, err := s.o.Leases.LeaseCheck(ctx, p, user, s.o.Cooldown)
		if err != nil {
			return project, o, err
		}
		if o.State != queue.LeaseNone {
			return p, o, nil
		}
	}
	return project, none, nil
}

// endOwn destroys the session of the user's own ended lease.
func (s *Service) endOwn(ctx context.Context, project, user string) error {
	st := s.o.Leases
	l, err := st.LeaseClaimOne(ctx, project, user, ClaimTTL)
	if err != nil || l.State != queue.LeaseMine {
		return Ended(0, false) // a sweep got there first
	}
	if !s.destroy(ctx, project, queue.LeaseClaim{User: user, Gen: l.Gen, End: l.End}) {
		return Ended(0, false)
	}
	return nil
}

// destroy ends one claimed lease's session and records the outcome. It
// reports whether the session is gone. The CAR call is bounded by ctx and
// DestroyTimeout; the record is written even when ctx just ran out (the
// store's own call budget bounds it), so that a session destroyed is not
// destroyed again.
func (s *Service) destroy(ctx context.Context, project string, c queue.LeaseClaim) bool {
	dctx, cancel := context.WithTimeout(ctx, DestroyTimeout)
	err := s.destroyCAR(dctx, c.User)
	cancel()
	ctx = context.WithoutCancel(ctx)
	st := s.o.Leases
	if err != nil {
		s.o.Logger.Warn("lease: DestroySession failed; a later sweep tries again", "project", project, "user_id", c.User,
			"err", err.Error())
		_ = st.LeaseRelease(ctx, project, c.User, c.Gen, FailBackoff)
		return false
	}
	if _, err := st.LeaseDone(ctx, project, c.User, c.Gen, s.o.Cooldown); err != nil {
		// The claim lapses and a later sweep destroys it again: harmless.
		return true
	}
	_ = st.Quit(ctx, project, c.User) // a newcomer from now on
	return true
}

// Stop ends the user's leases, then stops its session (CAR
// DestroySession; no session is not an error) and leaves every line.
func (s *Service) Stop(ctx context.Context, userID string) error {
	st := s.o.Leases
	if st == nil {
		return s.stopInLines(ctx, userID)
	}
	type mine struct {
		project string
		gen     int64
	}
	var claimed []mine
	// The stop's DestroySession may be in flight until the request's
	// deadline (REQUEST_TIMEOUT may be far longer than ClaimTTL): its claim
	// lasts ClaimTTL past that, so that no sweep retakes it, and no newer
	// session is leased, while the call can still reach CAR.
	claim := ClaimTTL
	if dl, ok := ctx.Deadline(); ok {
		claim += max(0, time.Until(dl))
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ClaimTTL-DestroyTimeout)
		defer cancel()
	}
	for _, p := range s.o.Projects {
		l, err := st.LeaseEnd(ctx, p, userID, claim, s.o.Cooldown)
		if err != nil {
			break // degraded: a lease left live ends at its time
		}
		if l.State == queue.LeaseMine {
			claimed = append(claimed, mine{p, l.Gen})
		}
	}
	err := s.stopInLines(ctx, userID)
	for _, m := range claimed {
		if err != nil {
			_ = st.LeaseRelease(ctx, m.project, userID, m.gen, FailBackoff)
		} else {
			_, _ = st.LeaseDone(ctx, m.project, userID, m.gen, s.o.Cooldown)
		}
	}
	return err
}

// Renewal is a renewed lease.
type Renewal struct {
	ExpiresAt    time.Time
	RenewalsLeft int
}

// Renew extends the user's lease in project by SESSION_MAX from now.
func (s *Service) Renew(ctx context.Context, userID, project string) (Renewal, error) {
	switch {
	case s.o.Leases == nil:
		return Renewal{}, fault.New(fault.Forbidden, "sessions have no time limit here (SESSION_MAX is off): there is nothing to renew")
	case !s.o.Renew:
		return Renewal{}, fault.New(fault.Forbidden, "renewals are off (SESSION_RENEW)")
	}
	l, err := s.o.Leases.LeaseRenew(ctx, project, userID, s.o.SessionMax, s.o.RenewMax, s.o.Cooldown)
	if err == nil && l.State == queue.LeaseNone && len(s.o.Projects) > 1 {
		// The user's lease may run in another project (lookup).
		var lp string
		if lp, _, err = s.elsewhere(ctx, project, userID, l); err == nil && lp != project {
			l, err = s.o.Leases.LeaseRenew(ctx, lp, userID, s.o.SessionMax, s.o.RenewMax, s.o.Cooldown)
		}
	}
	if err != nil {
		return Renewal{}, &fault.Error{Kind: fault.Unavailable, Message: "the lease could not be renewed now; try again",
			RetryAfter: 2 * time.Second, Err: err}
	}
	switch l.State {
	case queue.LeaseActive:
		return Renewal{ExpiresAt: l.End, RenewalsLeft: max(0, s.o.RenewMax-l.Renews)}, nil
	case queue.LeaseLimit:
		return Renewal{}, fault.New(fault.Forbidden, "this lease was renewed "+strconv.Itoa(l.Renews)+" times, the most allowed (SESSION_RENEW_MAX)")
	case queue.LeaseNone:
		return Renewal{}, fault.New(fault.Forbidden, "this UserId has no session lease in this project: start a session first")
	}
	return Renewal{}, Ended(l.Retry, false)
}

// Capacity reads the project's pool and line (count.go), then sweeps a
// few ended leases.
func (s *Service) Capacity(ctx context.Context, project string) (Capacity, error) {
	if s.o.Leases != nil {
		defer s.sweepInRequest(ctx, project)
	}
	return s.capacity(ctx, project)
}

// Report is what a sweep did.
type Report struct {
	Claimed   int  // ended leases claimed
	Destroyed int  // sessions destroyed (and their leases done)
	Failed    int  // destroys that failed (retried by a later sweep)
	Due       int  // ended leases left for a later sweep
	Skipped   bool // the store could not be read: a later sweep catches up
}

func (r *Report) add(o Report) {
	r.Claimed += o.Claimed
	r.Destroyed += o.Destroyed
	r.Failed += o.Failed
	r.Due += o.Due
	r.Skipped = r.Skipped || o.Skipped
}

// Sweep destroys the sessions of every ended lease of every project,
// oldest first, until none is due or the context's deadline (less
// TimerMargin) nears: the timer trigger's work.
func (s *Service) Sweep(ctx context.Context) Report {
	var r Report
	if s.o.Leases == nil {
		return r
	}
	until := time.Now().Add(DefaultTimerBudget)
	if dl, ok := ctx.Deadline(); ok {
		until = dl.Add(-TimerMargin)
	}
	for _, p := range s.o.Projects {
		r.add(s.sweep(ctx, p, 1<<30, until))
	}
	if r.Claimed > 0 || r.Skipped || r.Due > 0 {
		s.o.Logger.Info("lease sweep", "claimed", r.Claimed, "destroyed", r.Destroyed, "failed", r.Failed,
			"due", r.Due, "skipped", r.Skipped)
	}
	return r
}

// sweepInRequest sweeps a few ended leases of project within a small budget
// of the request's time.
func (s *Service) sweepInRequest(ctx context.Context, project string) {
	if ctx.Err() != nil {
		return
	}
	until := time.Now().Add(InRequestTime)
	if dl, ok := ctx.Deadline(); ok && dl.Add(-InRequestTime/2).Before(until) {
		until = dl.Add(-InRequestTime / 2)
	}
	// The caller hanging up does not abort the destroys it claimed (each
	// would burn a claim of the shared rate and leave its session running):
	// until bounds them, well inside the request's own deadline.
	r := s.sweep(context.WithoutCancel(ctx), project, InRequestLeases, until)
	if r.Claimed > 0 {
		s.o.Logger.Info("lease sweep in a request", "project", project, "claimed", r.Claimed, "destroyed", r.Destroyed,
			"failed", r.Failed)
	}
}

// perSecond is each project's share of PerSecond: CAR's rate limits are
// the account's, not a project's, and each project's claims are counted
// under its own keys.
func (s *Service) perSecond() int {
	return max(1, PerSecond/max(1, len(s.o.Projects)))
}

// minSweepTime is the least time worth claiming a lease with.
const minSweepTime = 200 * time.Millisecond

// sweep destroys up to limit ended leases of project before until.
func (s *Service) sweep(ctx context.Context, project string, limit int, until time.Time) Report {
	var r Report
	ctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	for r.Claimed < limit {
		if time.Until(until) < minSweepTime {
			break
		}
		c, err := s.o.Leases.LeaseClaim(ctx, project, min(limit-r.Claimed, Workers), ClaimTTL, s.perSecond())
		if err != nil {
			r.Skipped = true
			return r
		}
		r.Due = c.Due
		if len(c.Claimed) == 0 {
			if c.Wait <= 0 || c.Due == 0 || time.Until(until) < c.Wait+minSweepTime {
				break
			}
			t := time.NewTimer(c.Wait) // the rate's next second
			select {
			case <-ctx.Done():
				t.Stop()
				return r
			case <-t.C:
			}
			continue
		}
		r.Claimed += len(c.Claimed)
		var wg sync.WaitGroup
		var mu sync.Mutex
		for _, cl := range c.Claimed {
			wg.Go(func() {
				ok := s.destroy(ctx, project, cl)
				mu.Lock()
				if ok {
					r.Destroyed++
				} else {
					r.Failed++
				}
				mu.Unlock()
			})
		}
		wg.Wait() // every destroy ends before the sweep does
		if c.Due == 0 {
			break
		}
	}
	return r
}
