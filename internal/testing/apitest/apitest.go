// Package apitest builds the broker as the function wires it, for the tests
// and harnesses outside internal/app, which may not import it: the steps of
// app's wire (wire.go), with the clocks, the store's budget and the retry
// tuning open to tests. What the configuration sets, and which store
// serves what, is decided once, by queue.OpenFor and
// broker.Options.Configured; only the order of the calls is repeated here.
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
	qo := o.Queue
	if qo.Logger == nil {
		qo.Logger = o.HTTP.Logger
	}
	st, err := queue.OpenFor(cfg, qo)
	if err != nil {
		return nil, nil, err
	}
	bo := o.Broker
	bo.Logger = o.HTTP.Logger
	svc := broker.New(c, bo.Configured(cfg, st))
	var invites *auth.Invites
	if auth.HasInvites(cfg.Auth.Mode) && len(cfg.Auth.Secrets) > 0 {
		if invites, err = auth.NewInvites(cfg.Auth, o.Auth); err != nil {
			return nil, nil, err
		}
	}
	return httpapi.New(httpapi.Services{Broker: svc, Auth: authn, Invites: invites}, cfg, o.HTTP), svc, nil
}
