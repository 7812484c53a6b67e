// Package apitest builds the broker as the function wires it, for the tests
// and harnesses outside internal/app, which may not import it: the steps of
// app's wire (wire.go), with the clocks, the store's budget and the retry
// tuning open to tests. A change to one is a change to the other.
package apitest

import (
	"net/http"

	"carbroker/internal/auth"
	"carbroker/internal/broker"
	"carbroker/internal/config"
	"carbroker/internal/httpapi"
	"carbroker/internal/queue"
)

// Options tune the wiring; the zero value is production's.
type Options struct {
	HTTP httpapi.Options
	Auth auth.Options // clock, JWKS client
	// Broker tunes the use case (retries, jitter); what the configuration
	// sets, and the stores, are the configuration's.
	Broker broker.Options
	// Queue tunes the line's store (clock, call budget); what the
	// configuration sets is the configuration's.
	Queue queue.Options
}

// New builds the broker for a configuration that passed config.Load, on
// the CAR client c, as app's wire does.
func New(cfg config.Config, c broker.CAR, o Options) (http.Handler, *broker.Service, error) {
	authn, err := auth.New(cfg.Auth, o.Auth)
	if err != nil {
		return nil, nil, err
	}
	bo := o.Broker
	bo.Projects, bo.GuestApply, bo.NoIdleWait = cfg.AllowedProjectIDs, cfg.GuestApply, cfg.NoIdleWait
	bo.AttemptTimeout, bo.SessionMax, bo.Cooldown = cfg.AttemptTimeout, cfg.Lease.Max, cfg.Lease.Cooldown
	bo.Renew, bo.RenewMax, bo.Logger = cfg.Lease.Renew, cfg.Lease.RenewMax, o.HTTP.Logger
	bo.Line, bo.Leases = nil, nil
	if cfg.Queue.RedisURL != "" {
		qo := o.Queue
		qo.URL, qo.Prefix, qo.Abandon = cfg.Queue.RedisURL, cfg.Queue.KeyPrefix, cfg.Queue.Abandon
		qo.MaxPerIP, qo.HoldTTL = cfg.Queue.MaxPerIP, cfg.Queue.HoldTTL
		qo.LockWindow, qo.Retention = cfg.LockWindow, cfg.Retention
		if qo.Logger == nil {
			qo.Logger = o.HTTP.Logger
		}
		st, err := queue.Open(qo)
		if err != nil {
			return nil, nil, err
		}
		if !cfg.Queue.LineOff {
			bo.Line, bo.Now = st, qo.Now
		}
		bo.Leases = st
	}
	svc := broker.New(c, bo)
	var invites *auth.Invites
	if auth.HasInvites(cfg.Auth.Mode) && len(cfg.Auth.Secrets) > 0 {
		if invites, err = auth.NewInvites(cfg.Auth, o.Auth); err != nil {
			return nil, nil, err
		}
	}
	return httpapi.New(httpapi.Services{Broker: svc, Auth: authn, Invites: invites}, cfg, o.HTTP), svc, nil
}
