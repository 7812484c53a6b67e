package httpapi

// Invocation facts are set by a transport adapter (the SCF runtime, the
// web-function proxy headers) for the HTTP API, through the request's
// context rather than headers a client could forge.

import "context"

// Invocation describes the invocation serving one request.
type Invocation struct {
	RequestID string // the platform's request id ("" when there is none)
	Trigger   string // "apigw", "url" (Function URL), "web" (web function), "timer" (a timer trigger), or "" (plain HTTP)
}

type ctxKey struct{}

// NewInvocationContext returns ctx carrying info.
func NewInvocationContext(ctx context.Context, info Invocation) context.Context {
	return context.WithValue(ctx, ctxKey{}, info)
}

// InvocationFrom returns the Invocation in ctx, if any.
func InvocationFrom(ctx context.Context) (Invocation, bool) {
	i, ok := ctx.Value(ctxKey{}).(Invocation)
	return i, ok
}
