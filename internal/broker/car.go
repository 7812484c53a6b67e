package broker

import (
	"context"
	"errors"
	"time"

	"carbroker/internal/car"
	"carbroker/internal/fault"
)

// The CAR calls keep no state. CAR's own retention decides whether a
// reconnecting user gets the same running app back. A start never calls
// DestroySession on a failure path: a failed CreateSession on a reconnect
// must not kill the user's retained app.
//
// Every action called is safe to repeat with the same input, so a call
// that failed without a definite answer (a dead connection, an attempt
// that ran out of its share of the budget) is repeated on a fresh
// connection: ApplyConcurrent is idempotent per UserId; DestroySession of a
// session already gone succeeds; and CAR documents that a second
// CreateSession for a UserId reuses the same concurrency and only
// disconnects the device connected with the earlier ServerSession, which
// no device holds, since the earlier reply never reached the client.

// startCAR locks a concurrency for the user (the retained one if CAR still
// holds it) and creates a session on it, returning the ServerSession.
func (s *Service) startCAR(ctx context.Context, in StartInput) (string, error) {
	r := s.begin(ctx)
	var relock func() error // nil: a LockTimeout is final
	if !in.Guest() || s.o.GuestApply {
		if err := r.apply(in, s.o.MinAttempt); err != nil {
			return "", err
		}
		relock = func() error { return r.apply(in, s.o.MinAttempt) }
	}
	create := car.CreateSessionInput{UserID: in.UserID, UserIP: in.UserIP, ClientSession: in.ClientSession,
		RunMode: in.RunMode, ApplicationParameters: in.ApplicationParameters, HostUserID: in.HostUserID, Role: in.Role}
	var out car.CreateSessionOutput
	err := r.retry(0, relock, func(ctx context.Context) error {
		var err error
		out, err = s.car.CreateSession(ctx, create)
		return err
	})
	if err != nil {
		return "", err
	}
	return out.ServerSession, nil
}

// lockCAR calls ApplyConcurrent alone (the compat /Enqueue).
func (s *Service) lockCAR(ctx context.Context, in StartInput) error {
	return s.begin(ctx).apply(in, 0)
}

// reach asks CAR for what g wants.
func (s *Service) reach(ctx context.Context, in StartInput, g goal) (Result, error) {
	if g == toLock {
		return Result{}, s.lockCAR(ctx, in)
	}
	ss, err := s.startCAR(ctx, in)
	return Result{ServerSession: ss}, err
}

// destroyCAR destroys the user's session. A user with no session, or one
// already stopping, is not an error.
func (s *Service) destroyCAR(ctx context.Context, userID string) error {
	return s.begin(ctx).retry(0, nil, func(ctx context.Context) error {
		_, err := s.car.DestroySession(ctx, userID)
		switch code(err) {
		case car.CodeSessionNotFound, car.CodeStopping:
			return nil
		}
		return err
	})
}

// code is the CAR error code of err, "" for success or non-CAR errors.
func code(err error) string {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe.Code
	}
	return ""
}

// apply runs ApplyConcurrent with retries that leave reserve of the budget
// for what follows.
func (r *run) apply(in StartInput, reserve time.Duration) error {
	apply := car.ApplyConcurrentInput{UserID: in.UserID, UserIP: in.UserIP, ProjectID: in.ProjectID,
		ApplicationID: in.ApplicationID, ApplicationVersionID: in.ApplicationVersionID}
	return r.retry(reserve, nil, func(ctx context.Context) error {
		_, err := r.s.car.ApplyConcurrent(ctx, apply)
		return err
	})
}
