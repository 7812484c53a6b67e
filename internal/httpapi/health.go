package httpapi

import "net/http"

// health answers GET /healthz; with the line on, Queue says whether Redis
// is reachable ("ok") or the line is degraded to stateless starts.
//
// Auth names the AUTH_MODE in force, so a client (make smoke) knows what
// the server asks for. Where credentials come with each invoke (event
// mode), Credentials says whether this one brought them: "missing" is a
// 503, as the function cannot call CAR.
func (a *api) health(x *exchange) {
	body := map[string]string{"Status": "ok", "Version": a.version, "Auth": string(a.cfg.Auth.Mode)}
	if q := a.broker.Health(x.r.Context()); q != "" {
		body["Queue"] = q
	}
	status := http.StatusOK
	if a.credentials != nil {
		body["Credentials"] = "ok"
		if !a.credentials(x.r.Context()) {
			body["Status"], body["Credentials"] = "unavailable", "missing"
			status = http.StatusServiceUnavailable
		}
	}
	x.reply(status, body)
}
