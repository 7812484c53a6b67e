// Package scf runs the function's http.Handler on Tencent SCF (Serverless
// Cloud Function). It owns the platform's side of the wire and nothing else:
//
//   - the Go1 event-function runtime: a net/rpc service named "Function"
//     (methods Ping and Invoke, default gob codec) that the platform calls on
//     the port in _LAMBDA_SERVER_PORT or _SCF_SERVER_PORT (see Serve, Port);
//   - API Gateway trigger and Function URL events decoded into an
//     *http.Request, and the handler's response encoded as an integration
//     response (see DecodeEvent, EncodeResponse);
//   - timer trigger events given to a handler's timer work (TimerHandler,
//     DecodeTimer); a handler without any answers them harmlessly;
//   - for web functions, the proxy's X-Scf-* headers turned into
//     per-request facts (see WebFunction).
//
// Per-invocation facts travel in the request's context: the request id and
// trigger (httpapi.Invocation), the platform's deadline, and whatever the
// WithInvokeContext hook derives from the invoke's Environment (the
// composition root attaches the credential triple it carried). The package
// knows nothing of the application behind the handler.
//
// What the platform does not document, and how this package copes:
//   - whether Ping precedes the first Invoke: both are served at any time, and
//     Ping answers at once;
//   - how long the platform retries dialling the port: listen before any
//     slow start-up work;
//   - what the platform does with ShouldExit (set only after a panic): the
//     process keeps serving; the platform may restart it;
//   - the unit of the web proxy's X-Scf-Timeout header: read as seconds.
package scf

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
)

// HandlerSource returns the handler for one invoke. The runtime calls it on
// every invoke, after applying the invoke's Environment, so that the caller
// can revalidate its configuration and cache the handler. An error is logged
// and answered as httpapi.WriteError renders it: a *fault.Error's Kind and
// Message, anything else a generic 500. A source that can explain a
// misconfiguration to callers does best to return a handler that does.
type HandlerSource func() (http.Handler, error)

// Option configures the runtime.
type Option func(*Function)

// WithLogger sets the logger for the runtime's own messages (panics,
// misconfiguration, ignored input). The default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(f *Function) {
		if l != nil {
			f.log = l
		}
	}
}

// WithInvokeContext sets a hook that derives each invoke's context from the
// environment as the invoke's Environment left it. The runtime calls it
// under the lock that applies the Environment and chooses the handler, so
// what it reads is this invoke's own: no invoke sees one rotation's
// SecretId with another's SecretKey.
func WithInvokeContext(hook func(ctx context.Context, getenv func(string) string) context.Context) Option {
	return func(f *Function) { f.invoke = hook }
}

// Port returns the TCP port the platform expects the Go1 runtime on:
// _LAMBDA_SERVER_PORT, else _SCF_SERVER_PORT. It reports false when neither is
// set, i.e. the process does not run as an SCF event function.
func Port(getenv func(string) string) (string, bool) {
	for _, k := range []string{"_LAMBDA_SERVER_PORT", "_SCF_SERVER_PORT"} {
		if p := strings.TrimSpace(getenv(k)); p != "" {
			return p, true
		}
	}
	return "", false
}
