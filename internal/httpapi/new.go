package httpapi

import (
	"log/slog"
	"net/http"

	"carbroker/internal/auth"
	"carbroker/internal/config"
	"carbroker/internal/session"
)

// Options tune the production wiring for tests and benchmarks; the zero
// value is production.
type Options struct {
	Logger  *slog.Logger // default: discard
	Version string
	Auth    auth.Options    // clock, JWKS client
	Session session.Options // retry tuning; NoIdleWait and GuestApply come from the configuration
}

// NewFromConfig builds the HTTP API for a configuration that passed
// config.Load: the one wiring of authenticator, invites, use case and API
// that every mode serves, calling CAR through c.
func NewFromConfig(cfg config.Config, c session.CAR, o Options) (http.Handler, error) {
	authn, err := auth.New(cfg.Auth, o.Auth)
	if err != nil {
		return nil, err
	}
	so := o.Session
	so.NoIdleWait, so.GuestApply = cfg.NoIdleWait, cfg.GuestApply
	d := deps{
		cfg:            cfg,
		sessions:       session.New(c, so),
		auth:           authn,
		requireInvites: cfg.Auth.Mode != config.AuthNone,
		log:            o.Logger,
		version:        o.Version,
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Auth.Secrets) > 0 {
		inv, err := auth.NewInvites(cfg.Auth, o.Auth)
		if err != nil {
			return nil, err
		}
		d.invites = inv
	}
	return &api{deps: d}, nil
}
