package main

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"carbroker/internal/car"
	"carbroker/internal/config"
	"carbroker/internal/dev/caremu"
	"carbroker/internal/httpapi"
	"carbroker/internal/testing/apitest"
)

// broker serves the function's real wiring, configured by vars, against the
// CAR emulator.
func broker(t *testing.T, vars map[string]string) string {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return vars[k] }, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl := caremu.New(caremu.Options{}).Client()
	c := car.New(car.Options{Host: cfg.Endpoint.Host, Scheme: cfg.Endpoint.Scheme, Transport: cl.Transport, Getenv: cl.Getenv})
	h, _, err := apitest.New(cfg, c, apitest.Options{HTTP: httpapi.Options{Logger: slog.New(slog.DiscardHandler), Version: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// The deploy guide's configuration (docs/deploy.md, section 3): ticket mode.
var documented = map[string]string{
	"CAR_PROJECT_ID":     "cap-abc123",
	"AUTH_MODE":          "ticket",
	"AUTH_SECRET":        "q3Z0bW9rZS10ZXN0LXNlY3JldC1ub3QtdGhlLWV4YW1wbGUtdmFsdWU0OA==", // as openssl rand -base64 48 makes one: the docs' example value is refused
	"CORS_ALLOW_ORIGINS": "https://app.example.com",
}

// The smoke line of docs/deploy.md and docs/reference.md, as documented, passes against a function
// configured as documented: without flags it checks /healthz and says how
// to check a session; with a ClientSession it runs every step, whatever the
// auth mode it needs to learn.
func TestAgainstTheDocumentedConfiguration(t *testing.T) {
	url := broker(t, documented)
	code, out := runSmoke(t, nil, "-url", url)
	check(t, out, code, 0, "PASS healthz 200", "SKIP start -", "SKIP reconnect -", "SKIP stop -")
	if !strings.Contains(out, "-client-session") {
		t.Errorf("the skips do not say how to check a session:\n%s", out)
	}
	code, out = runSmoke(t, nil, "-url", url, "-client-session", clientSession)
	check(t, out, code, 0, "PASS healthz 200", "PASS start 200", "PASS reconnect 200", "PASS stop 200")

	// AUTH_MODE=none wants a UserId: the smoke learns it from the refusal.
	none := map[string]string{"CAR_PROJECT_ID": "cap-abc123", "AUTH_MODE": "none"}
	code, out = runSmoke(t, nil, "-url", broker(t, none), "-client-session", clientSession)
	check(t, out, code, 0, "PASS healthz 200", "PASS start 200", "PASS reconnect 200", "PASS stop 200")

	// RunWithoutClient needs the deployment's consent; the failure says so.
	code, out = runSmoke(t, nil, "-url", url, "-run-without-client")
	check(t, out, code, 1, "PASS healthz 200", "FAIL start 403", "SKIP reconnect -", "SKIP stop -")
	if !strings.Contains(out, "CAR_ALLOW_RUN_WITHOUT_CLIENT") {
		t.Errorf("the failure does not name the setting:\n%s", out)
	}
}
