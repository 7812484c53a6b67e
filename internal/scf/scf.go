// Package scf runs the function's http.Handler on Tencent SCF: the Go1
// event runtime (net/rpc "Function", Ping and Invoke; see Serve, Port), API
// Gateway and Function URL events to and from http (DecodeEvent,
// EncodeResponse), timer events (TimerHandler), and a web function's X-Scf-*
// headers (WebFunction). Of the application behind the handler it uses
// only httpapi's reply writer and invocation facts, so that its own replies
// (an undecodable event) look like the API's. What the platform leaves
// undocumented is noted where it is handled (runtime.go, web.go).
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
