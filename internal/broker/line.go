package broker

// The waiting line decides, for each start, whether the user goes to CAR
// now or waits in the project's line. The rules (docs/queue.md):
//   - a holder (a user who was handed a ServerSession through us and has
//     not stopped; its mark lapses with CAR's retention after its last
//     heartbeat) goes to CAR at once: CAR gives a reconnect its own
//     concurrency back;
//   - a user whose lock (the demo's /Enqueue, 10101) is younger than
//     CAR_LOCK_WINDOW may start at once, and is not locked again;
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
// With the line off every start is the stateless one. While the store
// cannot be read or written (Redis refused, slow, paused, out of memory,
// read-only after a failover), no waiter is ejected: a start is answered
// "waiting, place unknown" (202 with Retry-After) and nobody goes to CAR
// for the first QUEUE_ABANDON of the trouble, so that a newcomer cannot
// take a freed concurrency ahead of the places Redis still holds; past that
// the start is the stateless one, and CAR's NoIdle is still a place
// unknown, never a refusal. A stop never waits for Redis.

import (
	"context"
	"slices"
	"time"

	"carbroker/internal/fault"
	"carbroker/internal/queue"
)

// LineStore keeps the waiting lines (queue.Store).
type LineStore interface {
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

var _ LineStore = (*queue.Store)(nil)

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

// admit sends the user to CAR for g, or gives it its place in the line.
func (s *Service) admit(ctx context.Context, in StartInput, g goal) (Result, error) {
	if s.o.Line == nil || (in.Guest() && !s.o.GuestApply) {
		// no line, or a guest that takes no concurrency of its own
		return s.reach(ctx, in, g)
	}
	s.markHeld(ctx)
	d, err := s.poll(ctx, in)
	if err != nil {
		return s.degraded(ctx, in, g)
	}
	s.answered()
	switch d.Verdict {
	case queue.Go, queue.Holder:
	case queue.Locked:
		if g == toLock {
			// The user's lock is within CAR_LOCK_WINDOW: it may start now.
			// Locking again would stretch CAR's lock past the window.
			return Result{}, nil
		}
	case queue.Full:
		return Result{}, full()
	default: // Wait (and nothing else may reach CAR)
		return Result{Place: s.place(d)}, nil
	}
	res, err := s.reach(ctx, in, g)
	var o queue.Outcome
	switch {
	case err == nil && g == toStart:
		o = queue.Granted // handed a ServerSession: a holder
	case err == nil || fault.As(err).Action == "CreateSession":
		// a lock without a session (a lock, or a start that got as far as
		// the lock): the right to start, for a while
		o = queue.Lock
	case fault.KindOf(err) == fault.NoIdle:
		o = queue.NoIdle
	default:
		o = queue.Failed
	}
	after, derr := s.o.Line.Done(ctx, in.ProjectID, in.UserID, in.UserIP, o)
	if o != queue.NoIdle {
		if derr != nil && o == queue.Granted {
			// handed a ServerSession the line could not record: recorded
			// once the store answers (the user leaves its place, a holder)
			s.hold(heldGrant{project: in.ProjectID, user: in.UserID, granted: true})
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
// call; no CAR call. Once a lease ended and its session was destroyed, the
// user holds nothing and the client stops.
func (s *Service) Alive(ctx context.Context, project, userID string) (holding bool, every time.Duration, err error) {
	if s.o.Line == nil {
		return false, 0, nil
	}
	s.markHeld(ctx)
	holding, err = s.o.Line.Alive(ctx, project, userID)
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
func (s *Service) degraded(ctx context.Context, in StartInput, g goal) (Result, error) {
	if ctx.Err() != nil {
		return Result{}, fault.Wrap(fault.Timeout, "the request's deadline ran out", ctx.Err())
	}
	if s.troubled() < s.o.Line.Abandon() {
		return Result{Place: s.unknown()}, nil
	}
	res, err := s.reach(ctx, in, g)
	if fault.KindOf(err) == fault.NoIdle {
		return Result{Place: s.unknown()}, nil
	}
	if err == nil && g == toStart {
		// handed a ServerSession: a holder once the store answers
		s.hold(heldGrant{project: in.ProjectID, user: in.UserID})
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
	if s.troubleAt.IsZero() || now.Sub(s.failedAt) > s.o.Line.Abandon() || now.Before(s.troubleAt) {
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
	ceiling := max(1, int(s.o.Line.Abandon()/(3*time.Second)))
	return &Place{RetryAfter: time.Duration(min(1+int(2*s.o.Jitter()), ceiling, 2)) * time.Second}
}

// hold remembers a session handed out while the store did not answer.
func (s *Service) hold(g heldGrant) {
	g.at = time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.held) < maxHeld {
		s.held = append(s.held, g)
	}
}

// markHeld records in the store (a few per request, inside the request:
// nothing runs in the background) the sessions this instance handed out
// while the store did not answer, or whose grant it could not record, so
// that their users' reconnects are a holder's, not a newcomer's. It stops
// at the first failure: the store is still away, the rest waits for a
// later request.
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
			_, err = s.o.Line.Done(ctx, g.project, g.user, "", queue.Granted)
		} else {
			err = s.o.Line.Mark(ctx, g.project, g.user)
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

func full() error {
	return &fault.Error{Kind: fault.RateLimited, RetryAfter: 5 * time.Second,
		Message: "this address already has the most places in line it may have (QUEUE_MAX_PER_IP); try again later"}
}

// poll asks the line, refreshing the shared count when the line hands this
// request the lease.
func (s *Service) poll(ctx context.Context, in StartInput) (queue.Decision, error) {
	st := s.o.Line
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

// place turns the line's answer into the user's Place.
func (s *Service) place(d queue.Decision) *Place {
	p := &Place{Position: max(d.Position, 1), ETA: d.ETA, ETAKnown: d.ETAKnown}
	p.RetryAfter = RetryAfter(p.Position, s.o.Line.Abandon(), s.o.Jitter())
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

// stopInLines stops the user's session and leaves every line; the holder
// mark is dropped only when CAR confirmed the stop. Redis trouble never
// fails it.
func (s *Service) stopInLines(ctx context.Context, userID string) error {
	err := s.destroyCAR(ctx, userID)
	if err == nil {
		s.forgetHeld(userID)
	}
	if s.o.Line == nil {
		return err
	}
	leave := s.o.Line.Leave
	if err == nil {
		leave = s.o.Line.Quit
	}
	s.everyLine(ctx, userID, leave)
	return err
}

// Leave gives up the user's places (the compat /Dequeue); a lock CAR holds
// for the user is not touched.
func (s *Service) Leave(ctx context.Context, userID string) {
	if s.o.Line != nil {
		s.everyLine(ctx, userID, s.o.Line.Leave)
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
