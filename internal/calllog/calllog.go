// Package calllog collects the CAR calls made while serving one request, so
// the request's single log line can list them (action, CAR RequestId, error
// code, latency) without the CAR client knowing about logging.
package calllog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Call is one CAR call as it may be logged: no parameters, no payloads.
type Call struct {
	Action    string
	RequestID string // CAR's RequestId, when it answered
	Code      string // error code, empty on success
	Duration  time.Duration
	// Attempt is the call's attempt number when the use case repeated it
	// (2 for the first retry); 0 or 1 for a first call.
	Attempt int
}

// Log is a request's list of calls; safe for concurrent use.
type Log struct {
	mu    sync.Mutex
	calls []Call
}

type ctxKey struct{}

type attemptKey struct{}

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

// NewContext returns a context that collects calls into a new Log.
func NewContext(ctx context.Context) (context.Context, *Log) {
	l := &Log{}
	return context.WithValue(ctx, ctxKey{}, l), l
}

// Record appends c to the Log in ctx; without one it does nothing.
func Record(ctx context.Context, c Call) {
	if l, ok := ctx.Value(ctxKey{}).(*Log); ok {
		l.mu.Lock()
		l.calls = append(l.calls, c)
		l.mu.Unlock()
	}
}

// Calls returns a copy of the recorded calls.
func (l *Log) Calls() []Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Call(nil), l.calls...)
}

// LogValue renders the calls as a list for the request's log line.
func (l *Log) LogValue() slog.Value {
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
