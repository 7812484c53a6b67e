// Package line is the launch-day use case: it decides, for each start,
// whether the user goes to CAR now or waits in the project's line, and it
// answers the capacity of a project.
//
// The rules (docs/queue.md):
//   - a holder (a user who was handed a ServerSession through us and has
//     not stopped; its mark lapses with CAR's retention after its last
//     heartbeat) goes to CAR at once: CAR gives a reconnect its own
//     concurrency back;
//   - a user whose lock-only start (the demo's /Enqueue, 10101) is younger
//     than CAR_LOCK_WINDOW may start at once, and is not locked again;
//   - a newcomer goes to CAR only when the line is empty and the count shows
//     an idle concurrency nobody else is trying; otherwise it joins the end
//     without touching CAR;
//   - a user at Position p calls ApplyConcurrent only when p is within the
//     idle count (never more than 1 s old); the head always may, but
//     not within a second of CAR answering NoIdle;
//   - for CAR's retention after the store lost its data, a start goes to
//     CAR until CAR answers that user NoIdle (a reconnect gets its app
//     back; NoIdle places it in the rebuilt line);
//   - a guest joining another user's room takes no concurrency and skips the
//     line, unless guests call ApplyConcurrent (CAR_GUEST_APPLY): then its
//     start waits its turn like any other.
//
// With no Store the line is off and every start is today's stateless one.
// While the Store is degraded (Redis down or slow), starts are stateless
// too: the line never blocks a start or a stop, and never refuses what CAR
// would grant.
package line

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"carbroker/internal/car"
	"carbroker/internal/fault"
	"carbroker/internal/queue"
	"carbroker/internal/session"
)

// Sessions is the stateless use case that talks to CAR.
type Sessions interface {
	Start(ctx context.Context, in session.StartInput) (string, error)
	Apply(ctx context.Context, in session.StartInput) error
	Stop(ctx context.Context, userID string) error
}

var _ Sessions = (*session.Service)(nil)

// Store keeps the lines.
type Store interface {
	Poll(ctx context.Context, project, user, ip string, count *queue.Count, noLease bool) (queue.Decision, error)
	Done(ctx context.Context, project, user, ip string, o queue.Outcome) (queue.Decision, error)
	Alive(ctx context.Context, project, user string) (bool, error)
	Mark(ctx context.Context, project, user string) error
	Leave(ctx context.Context, project, user string, forget bool) error
	Capacity(ctx context.Context, project string, count *queue.Count) (queue.Decision, error)
	Check(ctx context.Context) bool
	Abandon() time.Duration
}

var _ Store = (*queue.Store)(nil)

// Counter reads a project's pool usage from CAR.
type Counter interface {
	DescribeConcurrentCount(ctx context.Context, projectID, category string) (car.ConcurrentCount, error)
}

var _ Counter = (*car.Client)(nil)

// Options wire a Service.
type Options struct {
	Sessions Sessions
	Store    Store // nil: the line is off
	Counter  Counter
	// Projects are the allowed ProjectIds: a stop leaves the line of each.
	Projects []string
	// GuestApply says guests call ApplyConcurrent (CAR_GUEST_APPLY): their
	// starts then take a concurrency, and wait their turn in the line.
	GuestApply bool
	// Jitter returns a number in [0, 1) for Retry-After; default math/rand.
	Jitter func() float64
	// Now stamps counts; it must be the Store's clock. Default time.Now.
	Now func() time.Time
}

// Service runs the use case.
type Service struct {
	o Options

	mu     sync.Mutex
	counts map[string]queue.Count // per-instance cache while the line is off or degraded
	held   []heldGrant            // sessions handed out while the store did not answer, not yet marked
}

// heldGrant is a session handed out while the store did not answer: its
// user is marked a holder once the store answers again.
type heldGrant struct {
	project, user string
	at            time.Time
}

// Bounds on the grants remembered while the store does not answer: how
// many (an outage at launch hands out at most the pool), for how long
// (a mark recorded much later could make a holder of a user who has since
// stopped through another instance), and how many one request records.
const (
	maxHeld     = 1000
	heldFor     = 10 * time.Minute
	markPerCall = 8
)

// New returns a Service.
func New(o Options) *Service {
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o, counts: map[string]queue.Count{}}
}

// Place is a user's place in the line.
type Place struct {
	Position   int           // 1 is next
	ETA        time.Duration // an estimate; meaningful only when ETAKnown
	ETAKnown   bool
	RetryAfter time.Duration // when to poll again: whole seconds, 1 to 5, at most a third of QUEUE_ABANDON
}

// Result is a start's outcome: a ServerSession (or, for a lock, nothing),
// or a place in the line.
type Result struct {
	ServerSession string
	Place         *Place // not nil: the user waits
}

// Start starts the user's session (lockOnly: locks a concurrency only, the
// compat /Enqueue), or gives the user its place in the line.
func (s *Service) Start(ctx context.Context, in session.StartInput, lockOnly bool) (Result, error) {
	if s.o.Store == nil || (in.Guest() && !s.o.GuestApply) {
		// no line, or a guest that takes no concurrency of its own
		return s.attempt(ctx, in, lockOnly)
	}
	s.markHeld(ctx)
	d, err := s.poll(ctx, in)
	if err != nil { // degraded: today's stateless start
		res, err := s.attempt(ctx, in, lockOnly)
		if err == nil && !lockOnly {
			// handed a ServerSession: a holder once the store answers
			s.hold(in.ProjectID, in.UserID)
		}
		return res, err
	}
	switch d.Verdict {
	case queue.Go, queue.Holder:
	case queue.Locked:
		if lockOnly {
			// The user's lock is within CAR_LOCK_WINDOW: it may start now.
			// Locking again would stretch CAR's lock past the window.
			return Result{}, nil
		}
	case queue.Full:
		return Result{}, full()
	default: // Wait (and nothing else may reach CAR)
		return Result{Place: s.place(d)}, nil
	}
	res, err := s.attempt(ctx, in, lockOnly)
	var o queue.Outcome
	switch {
	case err == nil && !lockOnly:
		o = queue.Granted // handed a ServerSession: a holder
	case err == nil || applied(err, lockOnly):
		o = queue.Lock // a lock without a session: the right to start, for a while
	case fault.KindOf(err) == fault.NoIdle:
		o = queue.NoIdle
	default:
		o = queue.Failed
	}
	after, derr := s.o.Store.Done(ctx, in.ProjectID, in.UserID, in.UserIP, o)
	if o != queue.NoIdle || derr != nil {
		return res, err
	}
	if after.Verdict == queue.Full {
		return Result{}, full()
	}
	return Result{Place: s.place(after)}, nil
}

// Alive is a client's heartbeat while its app runs (POST /session/alive):
// a holder's mark then lasts CAR's retention plus two heartbeat intervals.
// It reports whether the user holds a mark in the project's line, and how
// often to heartbeat (0 with the line off: nothing to keep). One Redis
// call; no CAR call.
func (s *Service) Alive(ctx context.Context, project, userID string) (holding bool, every time.Duration, err error) {
	if s.o.Store == nil {
		return false, 0, nil
	}
	s.markHeld(ctx)
	holding, err = s.o.Store.Alive(ctx, project, userID)
	if err != nil {
		// Not an answer: the client keeps heartbeating.
		return false, 0, &fault.Error{Kind: fault.Unavailable, RetryAfter: queue.Heartbeat, Err: err,
			Message: "the waiting line's store did not answer; keep the app running and send the next heartbeat as usual"}
	}
	return holding, queue.Heartbeat, nil
}

// hold remembers a session handed out while the store did not answer.
func (s *Service) hold(project, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.held) < maxHeld {
		s.held = append(s.held, heldGrant{project: project, user: user, at: time.Now()})
	}
}

// markHeld records in the store (a few per request, inside the request:
// nothing runs in the background) the sessions this instance handed out
// while the store did not answer, so that their users' reconnects are a
// holder's, not a newcomer's. It stops at the first failure: the store is
// still away, the rest waits for a later request.
func (s *Service) markHeld(ctx context.Context) {
	s.mu.Lock()
	n := min(len(s.held), markPerCall)
	batch := append([]heldGrant(nil), s.held[:n]...)
	s.held = s.held[n:]
	s.mu.Unlock()
	for i, g := range batch {
		if time.Since(g.at) > heldFor {
			continue
		}
		if err := s.o.Store.Mark(ctx, g.project, g.user); err != nil {
			s.mu.Lock()
			s.held = append(batch[i:], s.held...)
			s.mu.Unlock()
			return
		}
	}
}

// forgetHeld drops a stopped user's remembered sessions.
func (s *Service) forgetHeld(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held = slices.DeleteFunc(s.held, func(g heldGrant) bool { return g.user == user })
}

// attempt is the stateless start (or lock).
func (s *Service) attempt(ctx context.Context, in session.StartInput, lockOnly bool) (Result, error) {
	if lockOnly {
		return Result{}, s.o.Sessions.Apply(ctx, in)
	}
	ss, err := s.o.Sessions.Start(ctx, in)
	return Result{ServerSession: ss}, err
}

// applied reports whether a failed start got as far as a lock: the user
// then holds a concurrency until CAR's lock expires, without a session.
func applied(err error, lockOnly bool) bool {
	if lockOnly {
		return false
	}
	fe := fault.As(err)
	return fe.Action == "CreateSession"
}

func full() error {
	return &fault.Error{Kind: fault.RateLimited, RetryAfter: 5 * time.Second,
		Message: "this address already has the most places in line it may have (QUEUE_MAX_PER_IP); try again later"}
}

// describeBudget bounds a count refresh inside a poll.
const describeBudget = 2 * time.Second

// poll asks the line, refreshing the shared count when the line hands this
// request the lease.
func (s *Service) poll(ctx context.Context, in session.StartInput) (queue.Decision, error) {
	st := s.o.Store
	d, err := st.Poll(ctx, in.ProjectID, in.UserID, in.UserIP, nil, false)
	if err != nil || d.Verdict != queue.Refresh {
		return d, err
	}
	// Either way the second poll takes no lease: a count that went stale
	// while it was read (a slow CAR) must not answer Refresh again, which
	// would send this caller to CAR past the line.
	c, cerr := s.describe(ctx, in.ProjectID)
	if cerr != nil {
		return st.Poll(ctx, in.ProjectID, in.UserID, in.UserIP, nil, true)
	}
	return st.Poll(ctx, in.ProjectID, in.UserID, in.UserIP, &c, true)
}

func (s *Service) describe(ctx context.Context, project string) (queue.Count, error) {
	ctx, cancel := context.WithTimeout(ctx, describeBudget)
	defer cancel()
	at := s.o.Now()
	cc, err := s.o.Counter.DescribeConcurrentCount(ctx, project, "")
	if err != nil {
		return queue.Count{}, err
	}
	return queue.Count{Total: int(cc.Total), Running: int(cc.Running), At: at}, nil
}

// place turns the line's answer into the user's Place.
func (s *Service) place(d queue.Decision) *Place {
	p := &Place{Position: max(d.Position, 1), ETA: d.ETA, ETAKnown: d.ETAKnown}
	p.RetryAfter = RetryAfter(p.Position, s.o.Store.Abandon(), s.o.Jitter())
	return p
}

// RetryAfter is when a user at position p should poll again: 1 s at the
// head, growing to 5 s from position 101, plus up to a second of jitter
// (j in [0, 1)), in whole seconds, and never more than a third of abandon
// (nor less than 1 s, the header's unit).
func RetryAfter(p int, abandon time.Duration, j float64) time.Duration {
	ceiling := min(5, int(abandon/(3*time.Second)))
	t := 1 + float64(max(p, 1)-1)/25
	v := int(t + j)
	return time.Duration(max(1, min(v, ceiling, 5))) * time.Second
}

// Stop stops the user's session and leaves every line; the holder mark is
// dropped only when CAR confirmed the stop. Redis trouble never fails it.
func (s *Service) Stop(ctx context.Context, userID string) error {
	err := s.o.Sessions.Stop(ctx, userID)
	if err == nil {
		s.forgetHeld(userID)
	}
	s.leave(ctx, userID, err == nil)
	return err
}

// Leave gives up the user's places (the compat /Dequeue); a lock CAR holds
// for the user is not touched.
func (s *Service) Leave(ctx context.Context, userID string) {
	s.leave(ctx, userID, false)
}

func (s *Service) leave(ctx context.Context, userID string, forget bool) {
	if s.o.Store == nil {
		return
	}
	for _, p := range s.o.Projects {
		if err := s.o.Store.Leave(ctx, p, userID, forget); err != nil {
			return // degraded: the place lapses by itself (QUEUE_ABANDON)
		}
	}
}

// Capacity is a project's pool and line.
type Capacity struct {
	Total, Running int
	Idle           int // what the line can still hand out: Total - Running less grants since the count
	Waiting        int // places polled within QUEUE_ABANDON
}

// staleWait is how long a capacity read waits for another instance's
// refresh between looks.
const staleWait = 50 * time.Millisecond

// Capacity reads the project's count (never more than 1 s old: one
// DescribeConcurrentCount a second per project across instances) and the
// length of its line.
func (s *Service) Capacity(ctx context.Context, project string) (Capacity, error) {
	if st := s.o.Store; st != nil {
		for deadline := time.Now().Add(describeBudget); time.Now().Before(deadline); {
			d, err := st.Capacity(ctx, project, nil)
			if err != nil {
				break // degraded
			}
			switch d.Verdict {
			case queue.OK:
				return Capacity{Total: d.Total, Running: d.Running, Idle: d.Idle, Waiting: d.Waiting}, nil
			case queue.Refresh:
				c, err := s.describe(ctx, project)
				if err != nil {
					return Capacity{}, err
				}
				waiting := d.Waiting
				d, err := st.Capacity(ctx, project, &c)
				if err != nil || d.Verdict != queue.OK {
					// Not stored, or stale again once stored (a slow CAR):
					// the fresh count and the line's length as first read.
					return Capacity{Total: c.Total, Running: c.Running, Idle: max(0, c.Total-c.Running), Waiting: waiting}, nil
				}
				return Capacity{Total: d.Total, Running: d.Running, Idle: d.Idle, Waiting: d.Waiting}, nil
			}
			// another instance is refreshing: look again shortly
			t := time.NewTimer(staleWait)
			select {
			case <-ctx.Done():
				t.Stop()
				return Capacity{}, fault.Wrap(fault.Timeout, "the capacity could not be read in time", ctx.Err())
			case <-t.C:
			}
		}
	}
	return s.localCapacity(ctx, project)
}

// localCapacity is the per-instance 1 s cache used without the line.
func (s *Service) localCapacity(ctx context.Context, project string) (Capacity, error) {
	s.mu.Lock()
	c, ok := s.counts[project]
	s.mu.Unlock()
	if !ok || s.o.Now().Sub(c.At) >= time.Second {
		var err error
		if c, err = s.describe(ctx, project); err != nil {
			return Capacity{}, err
		}
		s.mu.Lock()
		s.counts[project] = c
		s.mu.Unlock()
	}
	return Capacity{Total: c.Total, Running: c.Running, Idle: max(0, c.Total-c.Running)}, nil
}

// Health is "" with the line off, else "ok" or "degraded".
func (s *Service) Health(ctx context.Context) string {
	switch {
	case s.o.Store == nil:
		return ""
	case s.o.Store.Check(ctx):
		return "ok"
	}
	return "degraded"
}
