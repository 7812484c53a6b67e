// Package app wires the broker's pieces together and runs one of its modes:
//
//   - dev mode (-dev): the HTTP API on 127.0.0.1:9000 with an embedded CAR
//     emulator and its own credentials; nothing reaches real CAR;
//   - HTTP mode (-listen ADDR): the HTTP API against real CAR (a web
//     function, or any server);
//   - event mode (_LAMBDA_SERVER_PORT or _SCF_SERVER_PORT set): the SCF Go1
//     runtime (net/rpc) on 0.0.0.0:PORT.
//
// Main is the whole program, so end-to-end tests reuse the real wiring. It
// is the composition root: wire (wire.go) builds every mode's broker from
// the configuration; nothing below it opens a connection or reads the
// environment.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"carbroker/internal/broker"
	"carbroker/internal/car"
	"carbroker/internal/config"
	"carbroker/internal/fault"
	"carbroker/internal/httpapi"
	"carbroker/internal/resp"
	"carbroker/internal/scf"
)

// Env is the process's outside world.
type Env struct {
	Args   []string // without the program name
	Getenv func(string) string
	Stdout io.Writer
	Stderr io.Writer
	// Ready, if set, is called with the address being served once the
	// listener is open (tests use it).
	Ready func(addr string)
}

const usage = `usage: main -dev [-listen ADDR]   run locally with an embedded CAR emulator (make run)
       main -listen ADDR           serve HTTP against real CAR (web function: -listen 0.0.0.0:9000)
       main                        with _LAMBDA_SERVER_PORT or _SCF_SERVER_PORT set: SCF Go1 event function
`

// Main runs the program until ctx ends; it returns the exit code.
func Main(ctx context.Context, env Env, version string) int {
	fs := flag.NewFlagSet("main", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	dev := fs.Bool("dev", false, "run with an embedded CAR emulator")
	listen := fs.String("listen", "", "serve HTTP on this address")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() { fmt.Fprint(env.Stderr, usage) }
	if err := fs.Parse(env.Args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // the usage was asked for, and printed
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(env.Stdout, version)
		return 0
	}
	switch {
	case *dev:
		return runDev(ctx, env, *listen, version)
	case *listen != "":
		return runHTTP(ctx, env, *listen, version)
	}
	if port, ok := scf.Port(env.Getenv); ok {
		return runEvent(ctx, env, port, version)
	}
	fmt.Fprint(env.Stderr, usage)
	return 2
}

// newLogger returns the JSON logger at the configured level (LOG_LEVEL,
// validated by config.Load).
func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.LevelVar
	setLevel(&l, level)
	return newLoggerAt(w, &l)
}

func newLoggerAt(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

func setLevel(v *slog.LevelVar, level string) {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	v.Set(l)
}

func carClient(cfg config.Config, transport http.RoundTripper, getenv func(string) string) *car.Client {
	return car.New(car.Options{Host: cfg.Endpoint.Host, Scheme: cfg.Endpoint.Scheme, Transport: transport, Getenv: getenv})
}

// runHTTP serves the API against real CAR.
func runHTTP(ctx context.Context, env Env, addr, version string) int {
	cfg, err := config.Load(env.Getenv, config.Options{})
	if err != nil {
		if env.Getenv("TENCENTCLOUD_RUNENV") != "SCF" {
			fmt.Fprintf(env.Stderr, "configuration:\n%v\n", err)
			return 2
		}
		// A web function that exits cannot tell anyone why: answer every
		// request with the problem instead.
		log := newLogger(env.Stderr, "info")
		log.Error("function misconfigured", "problem", err.Error())
		return serveHTTP(ctx, env, addr, misconfigured(err), config.Config{}, log, nil)
	}
	if !car.EnvCredentials(env.Getenv).Valid() {
		// A server that cannot call CAR would answer every start with an
		// error: say so now, not to the first user.
		problem := &config.Error{Problems: []config.Problem{{Var: "SCF_ROLE", Message: noCredentials}}}
		if env.Getenv("TENCENTCLOUD_RUNENV") != "SCF" {
			fmt.Fprintf(env.Stderr, "configuration:\n%v\n", problem)
			return 2
		}
		log := newLogger(env.Stderr, "info")
		log.Error("function misconfigured", "problem", problem.Error())
		return serveHTTP(ctx, env, addr, misconfigured(problem), config.Config{}, log, nil)
	}
	log := newLogger(env.Stderr, cfg.LogLevel)
	c := carClient(cfg, nil, env.Getenv)
	h, svc, err := wire(cfg, c, wiring{http: httpapi.Options{Logger: log, Version: version}})
	if err != nil {
		fmt.Fprintf(env.Stderr, "configuration: %v\n", err)
		return 2
	}
	probeLine(ctx, svc, cfg.Queue.RedisURL, log)
	go warm(ctx, c)
	h = scf.WebFunction(h, httpapi.TrustedPeer(cfg.TrustedProxies))
	return serveHTTP(ctx, env, addr, h, cfg, log, nil)
}

// noCredentials is why HTTP mode refuses to start without CAR credentials.
const noCredentials = "no CAR credentials: give the function an execution role (SCF_ROLE in .env, role: in serverless.yml; SCF then sets TENCENTCLOUD_SECRETID, TENCENTCLOUD_SECRETKEY and TENCENTCLOUD_SESSIONTOKEN), " +
	"or, outside SCF, set TENCENTCLOUD_SECRETID and TENCENTCLOUD_SECRETKEY; to try the broker without CAR, run make run (dev mode)"

// probeWithin bounds how long the start waits for the line's Redis.
const probeWithin = time.Second

// probeLine checks, once at start and within probeWithin, that the line's
// Redis answers; if it does not, it logs one warning naming the address
// (password masked) and what the function does meanwhile. /healthz says
// "degraded" from the first request on either way, as it asks the store.
func probeLine(ctx context.Context, svc *broker.Service, redisURL string, log *slog.Logger) {
	if redisURL == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, probeWithin)
	defer cancel()
	if svc.Health(ctx) == "degraded" {
		log.Warn("the waiting line's Redis does not answer at start: running degraded (starts go to CAR without the line, a start CAR cannot serve waits with a 202 and Retry-After) until it answers; /healthz says \"Queue\":\"degraded\"",
			"redis", resp.RedactURL(redisURL))
	}
}

func warm(ctx context.Context, c *car.Client) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c.Warm(ctx)
}

// misconfigured answers every request with a 500 naming the variables at
// fault, never their values (those are in the log).
func misconfigured(problem error) http.Handler {
	msg := "function misconfigured: see the function's log"
	var cerr *config.Error
	if errors.As(problem, &cerr) {
		msg = "function misconfigured: " + cerr.Public()
	}
	reply := fault.Wrap(fault.Internal, msg, problem)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, _ := httpapi.InvocationFrom(r.Context())
		httpapi.WriteError(w, reply, info.RequestID)
	})
}

// serveHTTP runs an HTTP server until ctx ends, then shuts down gracefully.
func serveHTTP(ctx context.Context, env Env, addr string, h http.Handler, cfg config.Config, log *slog.Logger, ready func(url string)) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(env.Stderr, "listen %s: %v\n", addr, err)
		if errors.Is(err, syscall.EADDRINUSE) {
			fmt.Fprintln(env.Stderr, portTaken(addr, cfg.Dev.Concurrency > 0)) // only dev mode has Dev settings
		}
		return 1
	}
	timeout := cfg.RequestTimeout
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      timeout + 5*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	url := "http://" + ln.Addr().String()
	if a, ok := ln.Addr().(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		// Every interface (0.0.0.0, [::]): name one a browser and curl on
		// this machine reach, and that dev mode's Host guard answers.
		url = "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port))
	}
	log.Info("listening", "addr", ln.Addr().String())
	if ready != nil {
		ready(url)
	}
	if env.Ready != nil {
		env.Ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(env.Stderr, "serve: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout+time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err.Error())
		return 1
	}
	return 0
}

// portTaken says what to do when addr's port is taken: another program
// (often an earlier make run) holds it. It suggests a free port nearby.
func portTaken(addr string, dev bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "the address is taken: choose another with -listen HOST:PORT"
	}
	suggest := "another port"
	if n, err := strconv.Atoi(port); err == nil {
		for p := n + 1; p <= n+20 && p < 65536; p++ {
			if ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p))); err == nil {
				ln.Close()
				suggest = strconv.Itoa(p)
				break
			}
		}
	}
	if suggest == "another port" {
		return "port " + port + " is taken (another program, or an earlier run, holds it): choose another with -listen " + net.JoinHostPort(host, "PORT")
	}
	msg := "port " + port + " is taken (another program, or an earlier run, holds it): choose another with -listen " + net.JoinHostPort(host, suggest)
	if dev {
		msg += ", or: make run PORT=" + suggest
	}
	return msg
}

// runEvent serves the SCF Go1 runtime protocol. Configuration is validated
// at start and again after each invoke's Environment is applied; a
// misconfigured function answers each invoke with a 500 naming the problem.
func runEvent(ctx context.Context, env Env, port, version string) int {
	ln, err := net.Listen("tcp", net.JoinHostPort("0.0.0.0", port))
	if err != nil {
		fmt.Fprintf(env.Stderr, "listen on port %s: %v\n", port, err)
		return 1
	}
	src := newEventSource(env, version)
	if h, err := src.current(); err != nil {
		src.log.Error("function misconfigured at start; every invoke will answer 500 until fixed", "problem", err.Error())
	} else if t, ok := h.(timerHandler); ok {
		probeLine(ctx, t.svc, t.redisURL, src.log)
	}
	if env.Ready != nil {
		env.Ready(ln.Addr().String())
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	if err := scf.Serve(ln, src.handler, scf.WithLogger(src.log), scf.WithInvokeContext(invokeCredentials)); err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	return 0
}

// invokeCredentials attaches the CAR credentials an invoke's Environment
// left in the environment to its context (scf.WithInvokeContext).
func invokeCredentials(ctx context.Context, getenv func(string) string) context.Context {
	return car.WithCredentials(ctx, car.EnvCredentials(getenv))
}

// eventSource rebuilds the handler when the configuration in the
// environment changes, and otherwise reuses it. The CAR transport (and so
// its open connections) and the logger live for the whole process; the
// logger's level follows the LOG_LEVEL in force, for the runtime's own
// lines too.
type eventSource struct {
	env       Env
	version   string
	transport http.RoundTripper
	level     *slog.LevelVar
	log       *slog.Logger

	mu      sync.Mutex
	built   []string     // the values of config.Keys h was built from
	h       http.Handler // the API, or misconfigured's reply
	problem error        // why the configuration in force is refused, nil if it is not
}

func newEventSource(env Env, version string) *eventSource {
	level := new(slog.LevelVar) // info until a configuration says otherwise
	return &eventSource{env: env, version: version, transport: car.NewTransport(), level: level, log: newLoggerAt(env.Stderr, level)}
}

// credentials reports whether the invoke in ctx brought CAR credentials
// (the runtime attaches those its Environment carried), or else whether
// the process has them.
func (s *eventSource) credentials(ctx context.Context) bool {
	if t, ok := car.CredentialsFrom(ctx); ok {
		return t.Valid()
	}
	return car.EnvCredentials(s.env.Getenv).Valid()
}

// handler is the scf.HandlerSource: the handler for the configuration in
// the environment. A misconfiguration is answered by the handler, and
// logged on every invoke.
func (s *eventSource) handler() (http.Handler, error) {
	h, err := s.current()
	if err != nil {
		s.log.Error("function misconfigured", "problem", err.Error())
	}
	return h, nil
}

// current (re)loads the configuration if it changed, and returns its
// handler and its problem.
func (s *eventSource) current() (http.Handler, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.h != nil && s.unchanged() {
		return s.h, s.problem
	}
	s.built = s.built[:0]
	for _, k := range config.Keys {
		s.built = append(s.built, s.env.Getenv(k))
	}
	cfg, err := config.Load(s.env.Getenv, config.Options{})
	var h http.Handler
	var svc *broker.Service
	if err == nil {
		setLevel(s.level, cfg.LogLevel)
		c := carClient(cfg, s.transport, s.env.Getenv)
		h, svc, err = wire(cfg, c, wiring{http: httpapi.Options{Logger: s.log, Version: s.version, Credentials: s.credentials}})
	}
	if err != nil {
		s.h, s.problem = misconfigured(err), err
		return s.h, err
	}
	// No warm-up here: it would run in a goroutine started inside an invoke,
	// which may outlive it (the instance can be frozen right after), and the
	// invoke's own CAR call opens the connection anyway.
	s.h, s.problem = timerHandler{Handler: h, svc: svc, redisURL: cfg.Queue.RedisURL}, nil
	return s.h, nil
}

// unchanged reports whether every variable of the configuration (config.Keys)
// still has the value the handler was built from: a comparison per invoke,
// in this package's code (no hash, nothing of config's runs). s.mu must be
// held.
func (s *eventSource) unchanged() bool {
	if len(s.built) != len(config.Keys) {
		return false
	}
	for i, k := range config.Keys {
		if s.env.Getenv(k) != s.built[i] {
			return false
		}
	}
	return true
}

// timerHandler gives the timer trigger's events to the sweep of ended
// leases (docs/lease.md).
type timerHandler struct {
	http.Handler
	svc      *broker.Service
	redisURL string // QUEUE_REDIS_URL it was built with, for the start-up probe
}

func (t timerHandler) Timer(ctx context.Context, _ scf.TimerEvent) any {
	return t.svc.Sweep(ctx)
}
