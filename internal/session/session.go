// Package session is the broker's use case: start (or resume) a user's
// cloud-rendering session and stop it, by calling CAR ApplyConcurrent then
// CreateSession, with a retry policy that fits inside the request's deadline.
//
// It keeps no state. CAR's own retention decides whether a reconnecting user
// gets the same running app back. It never calls DestroySession on a failure
// path: a failed CreateSession on a reconnect must not kill the user's
// retained app.
//
// Every action it calls is safe to repeat with the same input, so a call
// that failed without a definite answer (a dead connection, an attempt that
// ran out of its share of the budget) is repeated on a fresh connection:
// ApplyConcurrent is idempotent per UserId; DestroySession of a session
// already gone succeeds; and CAR documents that a second CreateSession for a
// UserId reuses the same concurrency and only disconnects the device
// connected with the earlier ServerSession, which no device holds, since
// the earlier reply never reached the client.
package session

import (
	"context"
	"errors"
	"time"

	smithytime "github.com/aws/smithy-go/time"
	"github.com/aws/smithy-go/waiter"

	"carbroker/internal/car"
	"carbroker/internal/fault"
)

// CAR is the part of the CAR client the use case needs.
type CAR interface {
	ApplyConcurrent(ctx context.Context, in car.ApplyConcurrentInput) (string, error)
	CreateSession(ctx context.Context, in car.CreateSessionInput) (car.CreateSessionOutput, error)
	DestroySession(ctx context.Context, userID string) (string, error)
}

var _ CAR = (*car.Client)(nil)

// Options tune the retry policy.
type Options struct {
	// NoIdleWait is how long to keep retrying while CAR has no idle
	// concurrency (CAR_NOIDLE_WAIT); zero answers NoIdle at once.
	NoIdleWait time.Duration
	// GuestApply makes a guest joining another user's room call
	// ApplyConcurrent for itself first (undocumented upstream; default off).
	GuestApply bool
	// MinBackoff and MaxBackoff bound the jittered backoff between retries
	// of transient CAR errors (defaults 50 ms and 1 s).
	MinBackoff, MaxBackoff time.Duration
	// MaxAttempts bounds the calls of one action for transient errors
	// (default 6); the deadline usually ends retries first.
	MaxAttempts int
	// MinAttempt is the least time worth starting another CAR call with
	// (default 250 ms): with less left, the last answer stands rather than
	// a timeout. Start also keeps this much for CreateSession when it
	// retries ApplyConcurrent.
	MinAttempt time.Duration
	// AttemptTimeout bounds a request's CAR attempts until one succeeds
	// (CAR_ATTEMPT_TIMEOUT; zero: no bound but the budget): a pooled
	// connection that died silently then costs this much, not the whole
	// budget, before the call is repeated on a fresh connection. Once an attempt succeeded or was cut short, later
	// attempts get the rest of the budget, so a CAR that never answers
	// still ends in a timeout at the deadline and a slow but live CAR is
	// cut short at most once.
	AttemptTimeout time.Duration
}

// Service runs the use case.
type Service struct {
	car CAR
	opt Options
}

// New returns a Service calling c.
func New(c CAR, o Options) *Service {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 50 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(time.Second, o.MinBackoff)
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.MinAttempt <= 0 {
		o.MinAttempt = 250 * time.Millisecond
	}
	return &Service{car: c, opt: o}
}

// StartInput is a validated, authorised start request.
type StartInput struct {
	UserID, UserIP                      string
	ProjectID                           string
	ApplicationID, ApplicationVersionID string
	ClientSession, RunMode              string
	ApplicationParameters               string
	HostUserID, Role                    string
}

// Guest reports whether the request joins another user's room.
func (in StartInput) Guest() bool { return in.HostUserID != "" && in.HostUserID != in.UserID }

// Start locks a concurrency for the user (the retained one if CAR still
// holds it) and creates a session on it, returning the ServerSession.
func (s *Service) Start(ctx context.Context, in StartInput) (string, error) {
	r := s.begin(ctx)
	canApply := !in.Guest() || s.opt.GuestApply
	if canApply {
		if err := r.apply(in, s.opt.MinAttempt); err != nil {
			return "", err
		}
	}
	create := car.CreateSessionInput{UserID: in.UserID, UserIP: in.UserIP, ClientSession: in.ClientSession,
		RunMode: in.RunMode, ApplicationParameters: in.ApplicationParameters, HostUserID: in.HostUserID, Role: in.Role}
	relocked := false
	var out car.CreateSessionOutput
	err := r.retry(0, func(ctx context.Context) error {
		var err error
		out, err = s.car.CreateSession(ctx, create)
		if code(err) == car.CodeLockTimeout && !relocked && canApply {
			// The lock lapsed between the calls: lock again, then create once more.
			relocked = true
			if err := r.apply(in, s.opt.MinAttempt); err != nil {
				return permanent{err}
			}
			return relock{err}
		}
		return err
	})
	if err != nil {
		return "", err
	}
	return out.ServerSession, nil
}

// Apply calls ApplyConcurrent alone (the compat /Enqueue), with the retry
// policy and the NoIdle wait.
func (s *Service) Apply(ctx context.Context, in StartInput) error { return s.begin(ctx).apply(in, 0) }

// Stop destroys the user's session. A user with no session, or one already
// stopping, is not an error.
func (s *Service) Stop(ctx context.Context, userID string) error {
	return s.begin(ctx).retry(0, func(ctx context.Context) error {
		_, err := s.car.DestroySession(ctx, userID)
		switch code(err) {
		case car.CodeSessionNotFound, car.CodeStopping:
			return nil
		}
		return err
	})
}

// run is one request's use of CAR.
type run struct {
	s   *Service
	ctx context.Context
	// settled: an attempt succeeded or one was cut short (and the pool
	// replaced), so attempts no longer get AttemptTimeout.
	settled bool
	// onceUsed: the one retry of each class (a rate limit; no answer, a
	// failed or silent connection) is the request's, across all its calls.
	onceUsed [2]bool
}

func (s *Service) begin(ctx context.Context) *run { return &run{s: s, ctx: ctx} }

// apply runs ApplyConcurrent with retries that leave reserve of the budget
// for what follows.
func (r *run) apply(in StartInput, reserve time.Duration) error {
	apply := car.ApplyConcurrentInput{UserID: in.UserID, UserIP: in.UserIP, ProjectID: in.ProjectID,
		ApplicationID: in.ApplicationID, ApplicationVersionID: in.ApplicationVersionID}
	var noIdleUntil time.Time
	if r.s.opt.NoIdleWait > 0 {
		noIdleUntil = time.Now().Add(r.s.opt.NoIdleWait)
	}
	return r.retry(reserve, func(ctx context.Context) error {
		_, err := r.s.car.ApplyConcurrent(ctx, apply)
		if err != nil && fault.KindOf(err) == fault.NoIdle {
			if time.Now().Before(noIdleUntil) {
				return waitable{err, noIdleUntil}
			}
			return permanent{err}
		}
		return err
	})
}

// permanent stops the retry loop with its error.
type permanent struct{ error }

// relock asks the retry loop for another attempt at once.
type relock struct{ error }

// waitable is a NoIdle that may be retried until a point in time.
type waitable struct {
	error
	until time.Time
}

// retry runs call until it succeeds, fails for good, runs out of attempts,
// or another attempt would not fit before the deadline (less reserve). How
// a failure may be retried is the CAR client's verdict (fault.Retry): a
// rate limit or a failed connection gets one more attempt, the transient
// codes a jittered backoff. When an attempt runs out of time after CAR gave
// a definite answer, that answer is returned: "no idle concurrency" tells
// the caller more than "timeout".
func (r *run) retry(reserve time.Duration, call func(context.Context) error) error {
	o := r.s.opt
	var prev error
	for attempt := 1; ; attempt++ {
		actx, cancel, short := r.attemptContext(attempt, reserve)
		err := call(actx)
		cut := short && actx.Err() != nil && r.ctx.Err() == nil && fault.KindOf(err) == fault.Timeout
		cancel()
		if err == nil {
			r.settled = true
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.error
		}
		limit := o.MaxAttempts
		var w waitable
		var rl relock
		retry := fault.As(err).Retry
		switch {
		case errors.As(err, &w):
			err, limit = w.error, 1<<30 // bounded by w.until and the deadline
		case errors.As(err, &rl):
			err, retry = rl.error, fault.Backoff
		case cut:
			// This attempt's share ran out, the request's budget did not:
			// the connection is presumed dead (the CAR client dropped the
			// idle ones), so the next attempt, on a fresh one, gets the rest.
			r.settled, retry = true, fault.Once
		case fault.KindOf(err) == fault.Timeout:
			if prev != nil {
				return prev
			}
			return err
		}
		if w.until.IsZero() {
			switch retry {
			case fault.Final:
				return err
			case fault.Once:
				class := 0
				if fault.KindOf(err) != fault.RateLimited {
					class = 1
				}
				if r.onceUsed[class] {
					if prev != nil && fault.KindOf(err) == fault.Timeout {
						return prev // a definite answer tells more than a timeout
					}
					return err
				}
				r.onceUsed[class] = true
			}
		}
		prev = err
		if attempt >= limit {
			return err
		}
		remaining := time.Hour
		if dl, ok := r.ctx.Deadline(); ok {
			remaining = time.Until(dl) - reserve
		}
		if !w.until.IsZero() {
			remaining = min(remaining, time.Until(w.until)+o.MinAttempt)
		}
		delay := time.Duration(0)
		if !cut && rl.error == nil {
			var cerr error
			delay, cerr = waiter.ComputeDelay(int64(attempt), o.MinBackoff, o.MaxBackoff, remaining)
			if cerr != nil || delay < 0 {
				return err
			}
		}
		if remaining-delay < o.MinAttempt {
			return err // no time for another attempt: the last answer stands
		}
		if serr := smithytime.SleepWithContext(r.ctx, delay); serr != nil {
			return err
		}
	}
}

// attemptContext is the context of one attempt: AttemptTimeout while the
// request's calls have not settled and another attempt would still fit
// after it, else the rest of the budget less reserve. short reports the
// former.
func (r *run) attemptContext(attempt int, reserve time.Duration) (ctx context.Context, cancel context.CancelFunc, short bool) {
	ctx = r.ctx
	if attempt > 1 {
		ctx = car.WithAttempt(ctx, attempt)
	}
	dl, ok := r.ctx.Deadline()
	if !ok {
		dl = time.Now().Add(time.Hour)
	}
	rest := time.Until(dl) - reserve
	if a := r.s.opt.AttemptTimeout; a > 0 && !r.settled && rest-a >= r.s.opt.MinAttempt {
		ctx, cancel = context.WithTimeout(ctx, r.s.opt.AttemptTimeout)
		return ctx, cancel, true
	}
	if reserve > 0 && rest > 0 {
		ctx, cancel = context.WithTimeout(ctx, rest)
		return ctx, cancel, false
	}
	ctx, cancel = context.WithCancel(ctx)
	return ctx, cancel, false
}

// code is the CAR error code of err, "" for success or non-CAR errors.
func code(err error) string {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return ""
}
