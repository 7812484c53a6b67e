package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"carbroker/internal/auth"
	"carbroker/internal/broker"
	"carbroker/internal/config"
	"carbroker/internal/queue"
)

// Options tune the production wiring for tests and benchmarks; the zero
// value is production.
type Options struct {
	Logger  *slog.Logger // default: discard
	Version string
	Auth    auth.Options // clock, JWKS client
	// Broker tunes the use case (retries, jitter); what the configuration
	// sets, and the stores, are the configuration's.
	Broker broker.Options
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

// NewFromConfig builds the HTTP API for a configuration that passed
// config.Load: the one wiring of authenticator, invites, use case and API
// that every mode serves, calling CAR through c.
func NewFromConfig(cfg config.Config, c broker.CAR, o Options) (http.Handler, error) {
	authn, err := auth.New(cfg.Auth, o.Auth)
	if err != nil {
		return nil, err
	}
	bo := o.Broker
	bo.Projects, bo.GuestApply, bo.NoIdleWait = cfg.AllowedProjectIDs, cfg.GuestApply, cfg.NoIdleWait
	bo.AttemptTimeout, bo.SessionMax, bo.Cooldown = cfg.AttemptTimeout, cfg.Lease.Max, cfg.Lease.Cooldown
	bo.Renew, bo.RenewMax, bo.Logger = cfg.Lease.Renew, cfg.Lease.RenewMax, o.Logger
	bo.Line, bo.Leases = nil, nil
	if cfg.Queue.RedisURL != "" {
		qo := o.Queue
		qo.URL, qo.Prefix, qo.Abandon = cfg.Queue.RedisURL, cfg.Queue.KeyPrefix, cfg.Queue.Abandon
		qo.MaxPerIP, qo.HoldTTL = cfg.Queue.MaxPerIP, cfg.Queue.HoldTTL
		qo.LockWindow, qo.Retention = cfg.LockWindow, cfg.Retention
		if qo.Logger == nil {
			qo.Logger = o.Logger
		}
		st, err := queue.Open(qo)
		if err != nil {
			return nil, err
		}
		if !cfg.Queue.LineOff {
			bo.Line, bo.Now = st, qo.Now
		}
		bo.Leases = st
	}
	d := deps{
		cfg:            cfg,
		broker:         broker.New(c, bo),
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
func (a *api) Sweep(ctx context.Context) broker.Report { return a.broker.Sweep(ctx) }
