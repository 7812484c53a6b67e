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
}

// Log is a request's list of calls; safe for concurrent use.
type Log struct {
	mu    sync.Mutex
	calls []Call
}

type ctxKey struct{}

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

// LogValue renders the calls as a slog group list.
func (l *Log) LogValue() slog.Value {
	calls := l.Calls()
	attrs := make([]slog.Attr, 0, len(calls))
	for i, c := range calls {
		g := []any{slog.String("action", c.Action), slog.Int64("ms", c.Duration.Milliseconds())}
		if c.RequestID != "" {
			g = append(g, slog.String("car_request_id", c.RequestID))
		}
		if c.Code != "" {
			g = append(g, slog.String("code", c.Code))
		}
		attrs = append(attrs, slog.Group(itoa(i), g...))
	}
	return slog.GroupValue(attrs...)
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
