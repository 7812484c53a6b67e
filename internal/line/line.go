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
// While the Store cannot be read or written (Redis refused, slow, paused,
// out of memory, read-only after a failover), no waiter is ejected: a start
// is answered "waiting, place unknown" (202 with Retry-After) and nobody
// goes to CAR for the first QUEUE_ABANDON of the trouble, so that a
// newcomer cannot take a freed concurrency ahead of the places Redis still
// holds; past that the start is the stateless one, and CAR's NoIdle is
// still a place unknown, never a refusal. A stop never waits for Redis.
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
	Poll(ctx context.Context, project, user, ip string) (queue.Decision, error)
	Repoll(ctx context.Context, project, user, ip string, count *queue.Count) (queue.Decision, error)
	Done(ctx context.Context, project, user, ip string, o queue.Outcome) (queue.Decision, error)
	Alive(ctx context.Context, project, user string) (bool, error)
	Mark(ctx context.Context, project, user string) error
	Leave(ctx context.Context, project, user string) error
	Quit(ctx context.Context, project, user string) error
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
	counts map[string]*counting // per-project DescribeConcurrentCount of this instance

	// This instance's current Redis trouble, on the line's clock: when it
	// began and when a call last failed; zero while the line answers.
	troubleAt, failedAt time.Time
	held                []heldGrant // sessions handed out while the store did not answer, not yet marked
}

// heldGrant is a session handed out while the store did not answer: its
// user is marked a holder once the store answers again. granted: the line
// sent the user to CAR and could not record the grant; it is recorded
// whole (the user leaves its place, the grant counts, a holder).
type heldGrant struct {
	project, user string
	at            time.Time
	granted       bool
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
	return &Service{o: o, counts: map[string]*counting{}}
}

// Place is a user's place in the line.
type Place struct {
	Position   int           // 1 is next; 0 when the place is unknown (Redis trouble: the start was not served)
	ETA        time.Duration // an estimate; meaningful only when ETAKnown
	ETAKnown   bool
	RetryAfter time.Duration // when to poll again: whole seconds, 1 to 5, at most a third of QUEUE_ABANDON
}

// Result is a start's outcome: a ServerSession (or, for a lock, nothing),
// or a place in the line.
type Result struct {
	ServerSession string
	Place         *Place // not nil: the user waits
	// ExpiresAt is when the session's lease ends (set by package lease,
	// which wraps this use case); zero: no lease applies.
	ExpiresAt time.Time
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
	if err != nil {
		return s.degraded(ctx, in, lockOnly)
	}
	s.answered()
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
	if o != queue.NoIdle {
		if derr != nil && o == queue.Granted {
			// handed a ServerSession the line could not record: recorded
			// once the store answers (the user leaves its place, a holder)
			s.hold(in.ProjectID, in.UserID, true)
		}
		return res, err
	}
	if derr != nil {
		// CAR had nothing and the line could not record it: the user keeps
		// the place it has (Redis answers its next poll), never a refusal.
		s.troubled()
		return Result{Place: s.unknown()}, nil
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

// degraded serves a start the line could not answer. For the first
// QUEUE_ABANDON of this instance's trouble nobody goes to CAR: the places
// Redis holds are still valid when it answers again (a waiter keeps its
// place if it polls within QUEUE_ABANDON), and a start sent to CAR now
// would let whoever polls at the right moment take a freed concurrency
// ahead of them. Past that, the places have lapsed and the line cannot keep
// any order: CAR decides (holders get their own concurrency back), and its
// NoIdle is still "waiting, place unknown", so a client keeps polling and
// joins the line when Redis returns.
func (s *Service) degraded(ctx context.Context, in session.StartInput, lockOnly bool) (Result, error) {
	if ctx.Err() != nil {
		return Result{}, fault.Wrap(fault.Timeout, "the request's deadline ran out", ctx.Err())
	}
	if s.troubled() < s.o.Store.Abandon() {
		return Result{Place: s.unknown()}, nil
	}
	res, err := s.attempt(ctx, in, lockOnly)
	if fault.KindOf(err) == fault.NoIdle {
		return Result{Place: s.unknown()}, nil
	}
	if err == nil && !lockOnly {
		// handed a ServerSession: a holder once the store answers
		s.hold(in.ProjectID, in.UserID, false)
	}
	return res, err
}

// troubled records a failed call to the line and says how long this
// instance's trouble has lasted. A failure more than QUEUE_ABANDON after
// the previous one (an instance thawed after a freeze, a new outage) begins
// a new trouble.
func (s *Service) troubled() time.Duration {
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.troubleAt.IsZero() || now.Sub(s.failedAt) > s.o.Store.Abandon() || now.Before(s.troubleAt) {
		s.troubleAt = now
	}
	s.failedAt = now
	return now.Sub(s.troubleAt)
}

// answered records that the line answered: the trouble, if any, is over.
func (s *Service) answered() {
	s.mu.Lock()
	s.troubleAt, s.failedAt = time.Time{}, time.Time{}
	s.mu.Unlock()
}

// unknown is the place of a start the line could not answer: Position 0,
// polled again after 1 or 2 s (jittered, at most a third of QUEUE_ABANDON),
// so a waiter's next poll reaches Redis well within QUEUE_ABANDON of its
// last one.
func (s *Service) unknown() *Place {
	ceiling := max(1, int(s.o.Store.Abandon()/(3*time.Second)))
	return &Place{RetryAfter: time.Duration(min(1+int(2*s.o.Jitter()), ceiling, 2)) * time.Second}
}

// hold remembers a session handed out while the store did not answer.
func (s *Service) hold(project, user string, granted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.held) < maxHeld {
		s.held = append(s.held, heldGrant{project: project, user: user, at: time.Now(), granted: granted})
	}
}

// markHeld records in the store (a few per request, inside the request:
// nothing runs in the background) the sessions this instance handed out
// while the store did not answer, or whose grant it could not record, so
// that their users' reconnects are a holder's, not a newcomer's. It stops at the first failure: the store is
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
		var err error
		if g.granted {
			_, err = s.o.Store.Done(ctx, g.project, g.user, "", queue.Granted)
		} else {
			err = s.o.Store.Mark(ctx, g.project, g.user)
		}
		if err != nil {
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
	d, err := st.Poll(ctx, in.ProjectID, in.UserID, in.UserIP)
	if err != nil || d.Verdict != queue.Refresh {
		return d, err
	}
	// Either way the second poll takes no lease: a count that went stale
	// while it was read (a slow CAR) must not answer Refresh again, which
	// would send this caller to CAR past the line.
	c, cerr := s.count(ctx, in.ProjectID)
	if cerr != nil {
		return st.Repoll(ctx, in.ProjectID, in.UserID, in.UserIP, nil)
	}
	return st.Repoll(ctx, in.ProjectID, in.UserID, in.UserIP, &c)
}

// counting is one project's DescribeConcurrentCount in this instance: the
// last answer (a count or a failure) and the call in flight.
type counting struct {
	at   time.Time // when the last call started, on the line's clock
	c    queue.Count
	err  error
	done chan struct{} // not nil while a call is in flight; closed when it ends
}

// count is the project's DescribeConcurrentCount as this instance knows
// it: an answer whose call started less than a second ago, a failure or a
// slow answer alike (CAR is asked at most once a second), else the answer
// of the call in flight (concurrent callers share one call), else a new
// call's.
func (s *Service) count(ctx context.Context, project string) (queue.Count, error) {
	if c, err, ok := s.recent(ctx, project); ok {
		return c, err
	}
	s.mu.Lock()
	k := s.counting(project)
	if k.done != nil { // another caller started one meanwhile
		s.mu.Unlock()
		c, err, _ := s.recent(ctx, project)
		return c, err
	}
	done := make(chan struct{})
	k.done = done
	s.mu.Unlock()

	at := s.o.Now()
	c, err := s.describe(ctx, project, at)
	shared := err
	if err != nil && ctx.Err() != nil {
		// This caller went away while CAR was asked: the others sharing
		// the call learn that the count is not there this second (the call
		// was made: CAR is not asked again before the second is out).
		shared = &fault.Error{Kind: fault.Unavailable, RetryAfter: time.Second, Err: err,
			Message: "the project's count is being refreshed; try again shortly"}
	}
	s.mu.Lock()
	k.at, k.c, k.err, k.done = at, c, shared, nil
	s.mu.Unlock()
	close(done)
	return c, err
}

// recent answers from this instance's last DescribeConcurrentCount if its
// call started less than a second ago, or waits for the call in flight; ok
// is false when neither is there.
func (s *Service) recent(ctx context.Context, project string) (c queue.Count, err error, ok bool) {
	s.mu.Lock()
	k := s.counting(project)
	if done := k.done; done != nil {
		s.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return queue.Count{}, fault.Wrap(fault.Timeout, "the capacity could not be read in time", ctx.Err()), true
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return k.c, k.err, true
	}
	defer s.mu.Unlock()
	if age := s.o.Now().Sub(k.at); k.at.IsZero() || age >= time.Second || age < 0 {
		return queue.Count{}, nil, false
	}
	return k.c, k.err, true
}

// counting returns the project's entry; s.mu must be held.
func (s *Service) counting(project string) *counting {
	k := s.counts[project]
	if k == nil {
		k = &counting{}
		s.counts[project] = k
	}
	return k
}

func (s *Service) describe(ctx context.Context, project string, at time.Time) (queue.Count, error) {
	ctx, cancel := context.WithTimeout(ctx, describeBudget)
	defer cancel()
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
	if s.o.Store == nil {
		return err
	}
	leave := s.o.Store.Leave
	if err == nil {
		leave = s.o.Store.Quit
	}
	s.everyLine(ctx, userID, leave)
	return err
}

// Leave gives up the user's places (the compat /Dequeue); a lock CAR holds
// for the user is not touched.
func (s *Service) Leave(ctx context.Context, userID string) {
	if s.o.Store != nil {
		s.everyLine(ctx, userID, s.o.Store.Leave)
	}
}

// everyLine runs leave (the store's Leave or Quit) in each project's line.
func (s *Service) everyLine(ctx context.Context, userID string, leave func(ctx context.Context, project, user string) error) {
	for _, p := range s.o.Projects {
		if err := leave(ctx, p, userID); err != nil {
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

// Capacity reads the project's count and the length of its line. CAR's
// DescribeConcurrentCount runs at most once a second per project across
// instances, also when it fails or is slow: the line's 1 s lease lets one
// caller refresh the shared count (a failed refresh keeps the lease for its
// second), and within an instance concurrent callers share one call and
// its answer, a failure included, for a second. With the line degraded the
// instance's own count is used (once a second per instance).
func (s *Service) Capacity(ctx context.Context, project string) (Capacity, error) {
	st := s.o.Store
	if st == nil {
		return s.localCapacity(ctx, project)
	}
	for deadline := time.Now().Add(describeBudget); time.Now().Before(deadline); {
		d, err := st.Capacity(ctx, project, nil)
		if err != nil {
			if ctx.Err() != nil {
				return Capacity{}, fault.Wrap(fault.Timeout, "the capacity could not be read in time", ctx.Err())
			}
			return s.localCapacity(ctx, project) // degraded
		}
		switch d.Verdict {
		case queue.OK:
			return Capacity{Total: d.Total, Running: d.Running, Idle: d.Idle, Waiting: d.Waiting}, nil
		case queue.Refresh:
			c, err := s.count(ctx, project)
			if err != nil {
				return Capacity{}, err // the lease stays for its second: nobody asks CAR again before
			}
			return s.store(ctx, project, c, d.Waiting), nil
		}
		// Another caller is refreshing: in this instance, share its call
		// (or its answer of this second); elsewhere, look again shortly.
		if c, err, ok := s.recent(ctx, project); ok {
			if err != nil {
				return Capacity{}, err
			}
			return Capacity{Total: c.Total, Running: c.Running, Idle: max(0, c.Total-c.Running), Waiting: d.Waiting}, nil
		}
		t := time.NewTimer(staleWait)
		select {
		case <-ctx.Done():
			t.Stop()
			return Capacity{}, fault.Wrap(fault.Timeout, "the capacity could not be read in time", ctx.Err())
		case <-t.C:
		}
	}
	// Other instances kept refreshing without storing a count: asking CAR
	// here would exceed the once a second.
	return Capacity{}, &fault.Error{Kind: fault.Unavailable, RetryAfter: time.Second,
		Message: "the project's count is being refreshed; try again shortly"}
}

// store writes a fresh count into the line and answers the line's view; if
// that fails, or the count went stale meanwhile (a slow CAR), the count as
// read and the line's length as first read.
func (s *Service) store(ctx context.Context, project string, c queue.Count, waiting int) Capacity {
	d, err := s.o.Store.Capacity(ctx, project, &c)
	if err != nil || d.Verdict != queue.OK {
		return Capacity{Total: c.Total, Running: c.Running, Idle: max(0, c.Total-c.Running), Waiting: waiting}
	}
	return Capacity{Total: d.Total, Running: d.Running, Idle: d.Idle, Waiting: d.Waiting}
}

// localCapacity is the instance's own count, without the line.
func (s *Service) localCapacity(ctx context.Context, project string) (Capacity, error) {
	c, err := s.count(ctx, project)
	if err != nil {
		return Capacity{}, err
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
