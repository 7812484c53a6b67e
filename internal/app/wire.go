package app

import (
	"net/http"

	"carbroker/internal/auth"
	"carbroker/internal/broker"
	"carbroker/internal/config"
	"carbroker/internal/httpapi"
	"carbroker/internal/queue"
)

// wiring tunes wire per mode; the zero value is production.
type wiring struct {
	http httpapi.Options
	// queue tunes the line's store (its call budget); the rest comes from
	// the configuration.
	queue queue.Options
}

// wire builds the broker for a configuration that passed config.Load, on
// the CAR client c: the Redis store of the waiting line and the leases
// (when QUEUE_REDIS_URL is set), the use case, the authenticator and
// invites, and the HTTP API over them. Every mode serves what it builds;
// internal/testing/apitest builds the same for tests outside app.
func wire(cfg config.Config, c broker.CAR, w wiring) (http.Handler, *broker.Service, error) {
	authn, err := auth.New(cfg.Auth, auth.Options{})
	if err != nil {
		return nil, nil, err
	}
	qo := w.queue
	qo.Logger = w.http.Logger
	st, err := queue.OpenFor(cfg, qo)
	if err != nil {
		return nil, nil, err
	}
	svc := broker.New(c, broker.Options{Logger: w.http.Logger}.Configured(cfg, st))
	var invites *auth.Invites
	if auth.HasInvites(cfg.Auth.Mode) && len(cfg.Auth.Secrets) > 0 {
		if invites, err = auth.NewInvites(cfg.Auth, auth.Options{}); err != nil {
			return nil, nil, err
		}
	}
	return httpapi.New(httpapi.Services{Broker: svc, Auth: authn, Invites: invites}, cfg, w.http), svc, nil
}
