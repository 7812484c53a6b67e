// Package invocation carries per-invocation facts set by a transport adapter
// (the SCF runtime, the web-function proxy headers) to the HTTP API, through
// the request's context rather than headers a client could forge.
package invocation

import "context"

// Info describes the invocation serving one request.
type Info struct {
	RequestID string // the platform's request id ("" when there is none)
	Trigger   string // "apigw", "url" (Function URL), "web" (web function), "timer" (a timer trigger), or "" (plain HTTP)
}

type ctxKey struct{}

// NewContext returns ctx carrying info.
func NewContext(ctx context.Context, info Info) context.Context {
	return context.WithValue(ctx, ctxKey{}, info)
}

// FromContext returns the Info in ctx, if any.
func FromContext(ctx context.Context) (Info, bool) {
	i, ok := ctx.Value(ctxKey{}).(Info)
	return i, ok
}
