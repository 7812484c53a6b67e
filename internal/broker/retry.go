package broker

import (
	"context"
	"math"
	"time"

	smithytime "github.com/aws/smithy-go/time"
	"github.com/aws/smithy-go/waiter"

	"carbroker/internal/car"
	"carbroker/internal/fault"
)

// A rule is how a request repeats a CAR call that failed with one retry
// class.
type rule struct {
	retry   bool // the call may be repeated
	once    bool // at most once per request, across all its calls
	backoff bool // after a jittered backoff (MinBackoff to MaxBackoff); else at once
	idle    bool // bounded by the NoIdle wait (CAR_NOIDLE_WAIT), not by MaxAttempts
	relock  bool // ApplyConcurrent again first
}

// policy is the CAR retry policy: the rule of each retry class. Which
// answer has which class is the CAR client's verdict (car.Classify, the
// one reader of CAR's codes); retry is this table's one reader. Every
// retry also needs the request's budget to hold another attempt.
var policy = [...]rule{
	// InternalError, a bad parameter, PathNotFound, …: the same call
	// would fail the same way.
	fault.Final: {},
	// SlowDown, Stopping, Initialization, ProcessTimeout of an idempotent
	// action: up to MaxAttempts calls of the action.
	fault.Backoff: {retry: true, backoff: true},
	// RequestLimitExceeded: retrying harder multiplies the load that
	// caused the limit.
	fault.Throttled: {retry: true, once: true, backoff: true},
	// A failed connection (the client dropped its idle ones), or an
	// attempt cut short by AttemptTimeout (then at once: it spent its
	// share already); one retry of the two per request.
	fault.Reconnect: {retry: true, once: true, backoff: true},
	// NoIdle from ApplyConcurrent: while CAR_NOIDLE_WAIT lasts (zero: not
	// at all).
	fault.WaitIdle: {retry: true, backoff: true, idle: true},
	// LockTimeout: the lock lapsed between ApplyConcurrent and
	// CreateSession; lock again once, then create at once.
	fault.Relock: {retry: true, once: true, relock: true},
}

// run is one request's use of CAR.
type run struct {
	s   *Service
	ctx context.Context
	// settled: an attempt succeeded or one was cut short (and the pool
	// replaced), so attempts no longer get AttemptTimeout.
	settled bool
	// retried counts the request's retries of each once-per-request class.
	retried [len(policy)]int
}

func (s *Service) begin(ctx context.Context) *run { return &run{s: s, ctx: ctx} }

// retry runs call until it succeeds, policy says not to repeat it, it runs
// out of attempts, or another attempt would not fit before the deadline
// (less reserve). relock, if not nil, locks again before a call that
// failed with Relock is repeated. When the request's time runs out after
// CAR gave a definite answer, that answer is returned: "no idle
// concurrency" tells the caller more than "timeout".
func (r *run) retry(reserve time.Duration, relock func() error, call func(context.Context) error) error {
	o := r.s.o
	var idleUntil time.Time // the NoIdle wait's end
	if o.NoIdleWait > 0 {
		idleUntil = time.Now().Add(o.NoIdleWait)
	}
	var prev error // the last definite answer
	giveUp := func(err error) error {
		if prev != nil && fault.KindOf(err) == fault.Timeout {
			return prev
		}
		return err
	}
	for attempt := 1; ; attempt++ {
		actx, cancel, short := r.attemptContext(attempt, reserve)
		err := call(actx)
		cut := short && actx.Err() != nil && r.ctx.Err() == nil && fault.KindOf(err) == fault.Timeout
		cancel()
		if err == nil {
			r.settled = true
			return nil
		}
		class := fault.As(err).Retry
		switch {
		case cut:
			// This attempt's share ran out, the request's budget did not:
			// the connection is presumed dead (the CAR client dropped the
			// idle ones), so the next attempt, on a fresh one, gets the rest.
			r.settled, class = true, fault.Reconnect
		case fault.KindOf(err) == fault.Timeout:
			return giveUp(err) // the request's own deadline
		}
		p := policy[class]
		switch {
		case !p.retry, p.idle && !time.Now().Before(idleUntil), p.relock && relock == nil:
			return giveUp(err)
		case p.once:
			if r.retried[class] > 0 {
				return giveUp(err)
			}
			r.retried[class]++
		}
		if p.relock {
			if err := relock(); err != nil {
				return err
			}
		}
		if fault.KindOf(err) != fault.Timeout {
			prev = err
		}
		if !p.idle && attempt >= o.MaxAttempts {
			return giveUp(err)
		}
		remaining := time.Hour
		if dl, ok := r.ctx.Deadline(); ok {
			remaining = time.Until(dl) - reserve
		}
		if p.idle {
			remaining = min(remaining, time.Until(idleUntil)+o.MinAttempt)
		}
		delay := time.Duration(0)
		if p.backoff && !cut {
			var cerr error
			// The jittered backoff alone: whether an attempt still fits after
			// it is the check below, not ComputeDelay's own shrinking of the
			// last delay (to MinBackoff short of the deadline, then to
			// nothing), which repeated calls without a backoff.
			delay, cerr = waiter.ComputeDelay(int64(attempt), o.MinBackoff, o.MaxBackoff, math.MaxInt64)
			if cerr != nil {
				return giveUp(err)
			}
		}
		if remaining-delay < o.MinAttempt {
			return giveUp(err) // no time for another attempt: the last answer stands
		}
		if serr := smithytime.SleepWithContext(r.ctx, delay); serr != nil {
			return giveUp(err)
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
	if a := r.s.o.AttemptTimeout; a > 0 && !r.settled && rest-a >= r.s.o.MinAttempt {
		ctx, cancel = context.WithTimeout(ctx, a)
		return ctx, cancel, true
	}
	if reserve > 0 && rest > 0 {
		ctx, cancel = context.WithTimeout(ctx, rest)
		return ctx, cancel, false
	}
	ctx, cancel = context.WithCancel(ctx)
	return ctx, cancel, false
}
