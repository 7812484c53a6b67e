package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"carbroker/internal/auth"
	"carbroker/internal/broker"
	"carbroker/internal/config"
)

// Services are what the API serves with, ready: the composition root
// (internal/app) builds them from the configuration.
type Services struct {
	Broker *broker.Service
	Auth   auth.Authenticator
	// Invites mints and checks invites to a host's room; nil: joining
	// another user's room is refused where invites are required.
	Invites *auth.Invites
}

// Options tune the API; the zero value is production.
type Options struct {
	Logger  *slog.Logger // default: discard
	Version string
	// Local is dev mode: callers are on loopback by design, so a
	// non-public client address is not warned about.
	Local bool
	// Now is the clock of rate-limited warnings (default time.Now).
	Now func() time.Time
	// Credentials, if set, reports whether CAR credentials are in force;
	// /healthz then answers "Credentials":"missing" with a 503 when they
	// are not (event mode: they come with each invoke).
	Credentials func(context.Context) bool
}

// New returns the HTTP API over s for a configuration that passed
// config.Load: cfg is its policy (allow-lists, CORS, trusted proxies, the
// request timeout, AUTH_MODE).
func New(s Services, cfg config.Config, o Options) http.Handler {
	d := deps{
		cfg:            cfg,
		broker:         s.Broker,
		auth:           s.Auth,
		requireInvites: auth.HasInvites(cfg.Auth.Mode),
		log:            o.Logger,
		version:        o.Version,
		local:          o.Local,
		now:            o.Now,
		credentials:    o.Credentials,
		invites:        s.Invites,
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	return &api{deps: d}
}
