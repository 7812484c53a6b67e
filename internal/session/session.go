// Package session is the broker's use case: start (or resume) a user's
// cloud-rendering session and stop it, by calling CAR ApplyConcurrent then
// CreateSession, with a retry policy that fits inside the request's deadline.
//
// It keeps no state. CAR's own retention decides whether a reconnecting user
// gets the same running app back. It never calls DestroySession on a failure
// path: a failed CreateSession on a reconnect must not kill the user's
// retained app.
package session

import (
	"context"
	"errors"
	"strings"
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
	if !in.Guest() || s.opt.GuestApply {
		if err := s.apply(ctx, in, s.opt.MinAttempt); err != nil {
			return "", err
		}
	}
	create := car.CreateSessionInput{UserID: in.UserID, UserIP: in.UserIP, ClientSession: in.ClientSession,
		RunMode: in.RunMode, ApplicationParameters: in.ApplicationParameters, HostUserID: in.HostUserID, Role: in.Role}
	relocked := false
	var out car.CreateSessionOutput
	err := s.retry(ctx, 0, func() error {
		var err error
		out, err = s.car.CreateSession(ctx, create)
		if code(err) == "FailedOperation.LockTimeout" && !relocked && (!in.Guest() || s.opt.GuestApply) {
			// The lock lapsed between the calls: lock again, then create once more.
			relocked = true
			if err := s.apply(ctx, in, s.opt.MinAttempt); err != nil {
				return permanent{err}
			}
			out, err = s.car.CreateSession(ctx, create)
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
func (s *Service) Apply(ctx context.Context, in StartInput) error { return s.apply(ctx, in, 0) }

// apply runs ApplyConcurrent with retries that leave reserve of the budget
// for what follows.
func (s *Service) apply(ctx context.Context, in StartInput, reserve time.Duration) error {
	apply := car.ApplyConcurrentInput{UserID: in.UserID, UserIP: in.UserIP, ProjectID: in.ProjectID,
		ApplicationID: in.ApplicationID, ApplicationVersionID: in.ApplicationVersionID}
	var noIdleUntil time.Time
	if s.opt.NoIdleWait > 0 {
		noIdleUntil = time.Now().Add(s.opt.NoIdleWait)
	}
	return s.retry(ctx, reserve, func() error {
		_, err := s.car.ApplyConcurrent(ctx, apply)
		if code(err) == "ResourceNotFound.NoIdle" {
			if time.Now().Before(noIdleUntil) {
				return waitable{err, noIdleUntil}
			}
			return permanent{err}
		}
		return err
	})
}

// Stop destroys the user's session. A user with no session, or one already
// stopping, is not an error.
func (s *Service) Stop(ctx context.Context, userID string) error {
	return s.retry(ctx, 0, func() error {
		_, err := s.car.DestroySession(ctx, userID)
		switch code(err) {
		case "ResourceNotFound.SessionNotFound", "UnsupportedOperation.Stopping":
			return nil
		}
		return err
	})
}

// permanent stops the retry loop with its error.
type permanent struct{ error }

// waitable is a NoIdle that may be retried until a point in time.
type waitable struct {
	error
	until time.Time
}

// retry runs call until it succeeds, fails permanently, runs out of
// attempts, or another attempt would not fit before the deadline (less
// reserve). When an attempt runs out of time after CAR gave a definite
// answer, that answer is returned: "no idle concurrency" tells the caller
// more than "timeout".
func (s *Service) retry(ctx context.Context, reserve time.Duration, call func() error) error {
	var prev error
	for attempt := 1; ; attempt++ {
		err := call()
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.error
		}
		if prev != nil && fault.KindOf(err) == fault.Timeout {
			return prev
		}
		limit := s.opt.MaxAttempts
		var w waitable
		if errors.As(err, &w) {
			err, limit = w.error, 1<<30 // bounded by w.until and the deadline
		} else if !transient(err) {
			return err
		}
		prev = err
		if attempt >= limit {
			return err
		}
		remaining := time.Hour
		if dl, ok := ctx.Deadline(); ok {
			remaining = time.Until(dl) - reserve
		}
		if !w.until.IsZero() {
			remaining = min(remaining, time.Until(w.until)+s.opt.MinAttempt)
		}
		delay, cerr := waiter.ComputeDelay(int64(attempt), s.opt.MinBackoff, s.opt.MaxBackoff, remaining)
		if cerr != nil || delay < 0 || remaining-delay < s.opt.MinAttempt {
			return err // no time for another attempt: the last answer stands
		}
		if serr := smithytime.SleepWithContext(ctx, delay); serr != nil {
			return err
		}
	}
}

// transient reports whether a CAR error is worth a short backoff and retry.
func transient(err error) bool {
	c := code(err)
	switch {
	case c == "FailedOperation.SlowDown", c == "UnsupportedOperation.Stopping",
		c == "ResourceUnavailable.Initialization", strings.HasPrefix(c, "RequestLimitExceeded"):
		return true
	}
	return false
}

// code is the CAR error code of err, "" for success or non-CAR errors.
func code(err error) string {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return ""
}
