package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

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
	// prefix, abandonment, per-IP cap, holder expiry, lock window and
	// retention come from the configuration.
	Queue queue.Options
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
	lo := line.Options{Counter: c, Projects: cfg.AllowedProjectIDs, GuestApply: cfg.GuestApply}
	var st *queue.Store
	if cfg.Queue.RedisURL != "" {
		qo := o.Queue
		qo.URL, qo.Prefix, qo.Abandon = cfg.Queue.RedisURL, cfg.Queue.KeyPrefix, cfg.Queue.Abandon
		qo.MaxPerIP, qo.HoldTTL = cfg.Queue.MaxPerIP, cfg.Queue.HoldTTL
		qo.LockWindow, qo.Retention = cfg.LockWindow, cfg.Retention
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
		local:          o.Local,
		now:            o.Now,
		credentials:    o.Credentials,
	}
	if d.now == nil {
		d.now = time.Now
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
