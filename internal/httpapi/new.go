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
	Session session.Options // retry tuning; NoIdleWait, GuestApply and AttemptTimeout come from the configuration
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
	so.NoIdleWait, so.GuestApply, so.AttemptTimeout = cfg.NoIdleWait, cfg.GuestApply, cfg.AttemptTimeout
	d := deps{
		cfg:            cfg,
		sessions:       session.New(c, so),
		auth:           authn,
		requireInvites: auth.HasInvites(cfg.Auth.Mode),
		log:            o.Logger,
		version:        o.Version,
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if auth.HasInvites(cfg.Auth.Mode) && len(cfg.Auth.Secrets) > 0 {
		inv, err := auth.NewInvites(cfg.Auth, o.Auth)
		if err != nil {
			return nil, err
		}
		d.invites = inv
	}
	return &api{deps: d}, nil
}
