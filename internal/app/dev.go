//go:build !scf

package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"carbroker/internal/config"
	"carbroker/internal/dev/caremu"
	"carbroker/internal/dev/console"
	"carbroker/internal/dev/memredis"
	"carbroker/internal/httpapi"
	"carbroker/internal/queue"
)

// runDev serves the API with an embedded emulator. It is sealed from the
// shell's production settings (sealedEnv): dev traffic never reaches real
// CAR or a production line, and real keys never reach the emulator. It
// answers only requests for a loopback name or its -listen address
// (hostGuard).
func runDev(ctx context.Context, env Env, addr, version string) int {
	if env.Getenv("TENCENTCLOUD_RUNENV") == "SCF" {
		fmt.Fprintln(env.Stderr, "refusing -dev on SCF (TENCENTCLOUD_RUNENV=SCF): dev mode serves a fake CAR")
		return 2
	}
	getenv, ignored := sealedEnv(env.Getenv)
	cfg, err := config.Load(getenv, config.Options{Dev: true})
	if err != nil {
		fmt.Fprintf(env.Stderr, "configuration:\n%v\n", err)
		return 2
	}
	pool := cfg.Dev
	var qo queue.Options
	var mem *memredis.Server
	lineNote := "waiting line off (DEV_QUEUE=false)"
	switch {
	case !pool.Queue && cfg.Lease.Max == 0:
		cfg.Queue.RedisURL = ""
	default:
		var err error
		mem, err = memredis.Start("")
		if err != nil {
			fmt.Fprintf(env.Stderr, "embedded Redis: %v\n", err)
			return 1
		}
		defer mem.Close()
		cfg.Queue.RedisURL, lineNote = mem.URL(), "waiting line on an embedded Redis"
		if !pool.Queue { // SESSION_MAX: leases need the store, the line stays off
			cfg.Queue.LineOff, lineNote = true, "waiting line off (DEV_QUEUE=false), session leases on an embedded Redis"
		}
		// The embedded store shares the machine's CPU: a budget of a second
		// keeps a busy laptop from degrading the line.
		qo.CallTimeout = time.Second
	}
	emu := caremu.New(caremu.Options{Concurrency: pool.Concurrency, Retention: pool.Retention, ClientWait: pool.ClientWait,
		Credentials: caremu.RandomCredentials("AKIDdev")})
	cfg.Endpoint = config.Endpoint{Host: "car.emulator.invalid", Scheme: "HTTP"}
	cl := emu.Client()
	c := carClient(cfg, cl.Transport, cl.Getenv)
	log := newLogger(env.Stderr, cfg.LogLevel)
	h, svc, err := wire(cfg, c, wiring{http: httpapi.Options{Logger: log, Version: version, Local: true}, queue: qo})
	if err != nil {
		fmt.Fprintf(env.Stderr, "configuration: %v\n", err)
		return 2
	}
	var sweep func(context.Context)
	if cfg.Lease.Max > 0 {
		sweep = func(ctx context.Context) {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			svc.Sweep(ctx)
		}
	}
	co := consoleOptions(console.Options{Pool: emu, Retention: pool.Retention, ClientWait: pool.ClientWait, Sweep: sweep,
		AuthMode: string(cfg.Auth.Mode), ProjectID: cfg.ProjectID, LineOn: cfg.Queue.RedisURL != "" && !cfg.Queue.LineOff}, cfg, svc, mem)
	h = console.Handler(h, co)
	if addr == "" {
		addr = "127.0.0.1:9000"
	}
	h = hostGuard(h, addr)
	return serveHTTP(ctx, env, addr, h, cfg, log, func(url string) {
		fmt.Fprintf(env.Stdout, "dev mode: the function on %s with an embedded CAR emulator (%d concurrencies, %g s retention, AUTH_MODE=%s, %s)\n",
			url, pool.Concurrency, pool.Retention.Seconds(), cfg.Auth.Mode, lineNote)
		sealed := "dev mode is sealed: it ignores TENCENTCLOUD_*, " + strings.Join(config.DevSealed, ", ") + " from the shell (its own project " + cfg.ProjectID + ", emulator and embedded Redis)"
		if len(ignored) > 0 {
			sealed += "; ignored here: " + strings.Join(ignored, ", ")
		}
		fmt.Fprintln(env.Stdout, sealed)
		fmt.Fprintf(env.Stdout, "dev console: open %s/ in a browser\n", url)
		body, note := `{"UserId":"demo-user","ClientSession":"dev-client-session"}`, ""
		switch cfg.Auth.Mode {
		case config.AuthTicket:
			body, note = `{"ClientSession":"dev-client-session"}`, "the reply's Ticket goes in Authorization: Bearer on later calls"
		case config.AuthJWT:
			note = "add -H 'Authorization: Bearer <a JWT your JWT_* settings accept>' (with JWT_SECRET, make jwt USER=demo-user mints one)"
		case config.AuthSign:
			note = "add the demo's Sign field (SHA-256 of the sorted values + COMPAT_SIGN_SALT)"
		}
		fmt.Fprintf(env.Stdout, "try:\n  curl -s -X POST %s/session -d '%s'\n", url, body)
		if note != "" {
			fmt.Fprintf(env.Stdout, "  (%s mode: %s)\n", cfg.Auth.Mode, note)
		}
	})
}
