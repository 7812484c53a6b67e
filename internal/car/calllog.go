package car

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Call is one CAR call as the request's log line lists it: no parameters,
// no payloads.
type Call struct {
	Action    string
	RequestID string // CAR's RequestId, when it answered
	Code      string // error code, empty on success
	Duration  time.Duration
	// Attempt is the call's attempt number when the use case repeated it
	// (2 for the first retry); 0 or 1 for a first call.
	Attempt int
}

// CallLog is the CAR calls made while serving one request; safe for
// concurrent use. The client records into the one its context carries.
type CallLog struct {
	mu    sync.Mutex
	calls []Call
}

type callLogKey struct{}

type attemptKey struct{}

// WithCallLog returns a context whose CAR calls are recorded in a new
// CallLog.
func WithCallLog(ctx context.Context) (context.Context, *CallLog) {
	l := &CallLog{}
	return context.WithValue(ctx, callLogKey{}, l), l
}

// WithAttempt marks the calls made with ctx as the n-th attempt of one
// call, so that retries are visible in the request's log line.
func WithAttempt(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, attemptKey{}, n)
}

// AttemptOf is the attempt number set by WithAttempt, 0 if none.
func AttemptOf(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}

// record appends c to the CallLog in ctx; without one it does nothing.
func record(ctx context.Context, c Call) {
	if l, ok := ctx.Value(callLogKey{}).(*CallLog); ok {
		l.mu.Lock()
		l.calls = append(l.calls, c)
		l.mu.Unlock()
	}
}

// Calls returns a copy of the recorded calls.
func (l *CallLog) Calls() []Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Call(nil), l.calls...)
}

// LogValue renders the calls as a list for the request's log line.
func (l *CallLog) LogValue() slog.Value {
	calls := l.Calls()
	out := make([]loggedCall, len(calls))
	for i, c := range calls {
		out[i] = loggedCall{Action: c.Action, RequestID: c.RequestID, Code: c.Code,
			Ms: float64(c.Duration.Microseconds()) / 1000}
		if c.Attempt > 1 {
			out[i].Attempt = c.Attempt
		}
	}
	return slog.AnyValue(out)
}

type loggedCall struct {
	Action    string  `json:"action"`
	RequestID string  `json:"car_request_id,omitempty"`
	Code      string  `json:"code,omitempty"`
	Ms        float64 `json:"ms"`
	Attempt   int     `json:"attempt,omitempty"` // 2 and up: a retry
}
