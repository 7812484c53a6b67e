// Package fault is the broker's error vocabulary: kinds, retry classes and
// the wait before a retry, with no HTTP (the transport maps kinds to
// statuses and renders replies: httpapi/reply.go).
//
// Every failure a caller can see is a *Error with a Kind. What the client may
// read (Kind, Message) is kept apart from what only operators need (the CAR
// code, action, request id and the wrapped cause).
package fault

import (
	"errors"
	"log/slog"
	"time"
)

// Kind classifies a failure by what the caller should do about it.
type Kind int

// The kinds, in the order of the HTTP error table in docs/reference.md.
const (
	Internal         Kind = iota // our own fault or misconfiguration; generic message
	Invalid                      // bad or missing field, bad JSON, bad UserId
	TooLarge                     // request body over the limit
	Unauthenticated              // no or bad credential
	Forbidden                    // authenticated but not allowed
	NotFound                     // unknown route
	MethodNotAllowed             // known route, wrong method
	RoleFull                     // CAR LimitExceeded.Role
	RateLimited                  // CAR RequestLimitExceeded*, SlowDown after retries
	NoIdle                       // CAR ResourceNotFound.NoIdle
	Unavailable                  // CAR Stopping / Initialization after retries
	Timeout                      // the request's deadline ran out
	Upstream                     // CAR answered with a failure or garbage
	SessionEnded                 // the user's session lease ended (SESSION_MAX): no start until its cooldown is over
)

var kindNames = [...]string{
	Internal: "InternalError", Invalid: "InvalidParameter", TooLarge: "RequestTooLarge",
	Unauthenticated: "Unauthorized", Forbidden: "Forbidden", NotFound: "NotFound",
	MethodNotAllowed: "MethodNotAllowed", RoleFull: "RoleFull", RateLimited: "TooManyRequests",
	NoIdle: "NoIdleConcurrency", Unavailable: "Unavailable", Timeout: "UpstreamTimeout",
	Upstream: "UpstreamError", SessionEnded: "SessionEnded",
}

// String is the public error code of the kind (the "Code" of native errors).
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return "InternalError"
	}
	return kindNames[k]
}

// Error is a classified failure. Message is safe to show to the caller; the
// remaining fields are for logs only.
type Error struct {
	Kind    Kind
	Message string // for the caller: what to fix; never a secret or upstream internals

	Action     string        // CAR action that failed, if any
	Code       string        // CAR or SDK error code, if any (safe to log)
	RequestID  string        // CAR RequestId, if any
	RetryAfter time.Duration // when to try again, if not the kind's (see Wait); zero means the kind's
	Err        error         // the cause; for operators, never rendered

	// Retry is the failed call's retry class, as the CAR client knows it
	// from the action and the code; the use case's retry policy says what
	// each class gets, within the request's budget.
	Retry Retry
	// Notice overrides how loudly the failure is logged; the zero value
	// leaves it to the Kind (see LogLevel).
	Notice Notice
}

// Retry is a failed call's retry class: what repeating it may achieve.
type Retry int

const (
	Final     Retry = iota // the same call would fail the same way
	Backoff                // transient: worth retrying after a short jittered backoff
	Throttled              // a rate limit: one more attempt at most (harder multiplies the load)
	Reconnect              // no answer (a failed or silent connection): one more attempt, on a fresh one
	WaitIdle               // no idle concurrency to lock: worth retrying while the caller is willing to wait
	Relock                 // the lock lapsed before CreateSession: worth locking again, then creating
)

// Notice is how much a failure needs an operator's attention.
type Notice int

const (
	ByKind Notice = iota // as LogLevel decides from the Kind
	Warn                 // worth a look: e.g. the project's configuration in CAR
	Bug                  // our own bug: logged as an error whatever the Kind
)

// LogLevel is the level of the request's log line for this failure:
// failures of ours or of CAR are errors, CAR refusing what we validated is a
// warning (usually a stale ClientSession), the caller's mistakes are info.
func (e *Error) LogLevel() slog.Level {
	switch {
	case e.Notice == Bug:
		return slog.LevelError
	case e.Notice == Warn:
		return slog.LevelWarn
	case e.Kind == Internal || e.Kind == Upstream || e.Kind == Timeout:
		return slog.LevelError
	case e.Kind == Invalid && e.Code != "":
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

func (e *Error) Error() string {
	s := e.Kind.String()
	if e.Action != "" {
		s += " from " + e.Action
	}
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Wait is how long the caller should wait before trying again: RetryAfter
// when set, otherwise the kind's own wait (the one home of these values:
// 1 s for RateLimited, 5 s for NoIdle, 2 s for Unavailable), and zero for
// a failure that trying again will not cure.
func (e *Error) Wait() time.Duration {
	if e.RetryAfter > 0 {
		return e.RetryAfter
	}
	switch e.Kind {
	case RateLimited:
		return time.Second
	case NoIdle:
		return 5 * time.Second
	case Unavailable:
		return 2 * time.Second
	}
	return 0
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// InternalMessage is what a caller is told of a failure of ours: nothing
// (the log has the cause).
const InternalMessage = "internal error"

// New returns an error of kind k with a caller-facing message.
func New(k Kind, msg string) *Error { return &Error{Kind: k, Message: msg} }

// Wrap returns an error of kind k with a caller-facing message and a cause
// that only operators see.
func Wrap(k Kind, msg string, cause error) *Error { return &Error{Kind: k, Message: msg, Err: cause} }

// As returns err as a *Error; anything unclassified becomes Internal with a
// generic message, so a raw error can never reach a caller.
func As(err error) *Error {
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	return &Error{Kind: Internal, Message: InternalMessage, Err: err}
}

// KindOf is As(err).Kind, and Internal for nil-safe use in switches.
func KindOf(err error) Kind { return As(err).Kind }
