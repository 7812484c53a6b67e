package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"carbroker/internal/auth"
	"carbroker/internal/config"
	"carbroker/internal/lease"
	"carbroker/internal/line"
	"carbroker/internal/queue"
	"carbroker/internal/session"
)

// Options tune the production wiring for tests and benchmarks; the zero
// value is production.
type Options struct {
	Logger  *slog.Logger // default: discard
	Version string
	Auth    auth.Options    // clock, JWKS client
	Session session.Options // retry tuning; NoIdleWait, GuestApply and AttemptTimeout come from the configuration
	// Queue tunes the waiting line's store (clock, call budget); URL,
	// prefix, abandonment, per-IP cap and holder expiry come from the
	// configuration.
	Queue queue.Options
}

// CAR is what the wiring calls CAR for: the session actions and the count.
type CAR interface {
	session.CAR
	line.Counter
}

// NewFromConfig builds the HTTP API for a configuration that passed
// config.Load: the one wiring of authenticator, invites, use case and API
// that every mode serves, calling CAR through c.
func NewFromConfig(cfg config.Config, c CAR, o Options) (http.Handler, error) {
	authn, err := auth.New(cfg.Auth, o.Auth)
	if err != nil {
		return nil, err
	}
	so := o.Session
	so.NoIdleWait, so.GuestApply, so.AttemptTimeout = cfg.NoIdleWait, cfg.GuestApply, cfg.AttemptTimeout
	lo := line.Options{Counter: c, Projects: cfg.AllowedProjectIDs}
	var st *queue.Store
	if cfg.Queue.RedisURL != "" {
		qo := o.Queue
		qo.URL, qo.Prefix, qo.Abandon = cfg.Queue.RedisURL, cfg.Queue.KeyPrefix, cfg.Queue.Abandon
		qo.MaxPerIP, qo.HoldTTL = cfg.Queue.MaxPerIP, cfg.Queue.HoldTTL
		if qo.Logger == nil {
			qo.Logger = o.Logger
		}
		if st, err = queue.Open(qo); err != nil {
			return nil, err
		}
		if !cfg.Queue.LineOff {
			lo.Store, lo.Now = st, qo.Now
			so.NoIdleWait = 0 // CAR_NOIDLE_WAIT is for the line off: in line, users wait with a place
		}
	}
	sessions := session.New(c, so)
	lo.Sessions = sessions
	leo := lease.Options{Inner: line.New(lo), Destroy: sessions, Projects: cfg.AllowedProjectIDs,
		Max: cfg.Lease.Max, Cooldown: cfg.Lease.Cooldown, Renew: cfg.Lease.Renew, RenewMax: cfg.Lease.RenewMax, Logger: o.Logger}
	if st != nil && cfg.Lease.Max > 0 {
		leo.Store = st
	}
	d := deps{
		cfg:            cfg,
		sessions:       lease.New(leo),
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

// Sweep destroys the sessions of ended leases in every allowed project, up
// to ctx's deadline: the timer trigger's work (a no-op with leases off).
func (a *api) Sweep(ctx context.Context) lease.Report { return a.sessions.Sweep(ctx) }
