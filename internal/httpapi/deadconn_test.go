package httpapi_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"carbroker/internal/car"
	"carbroker/internal/config"
	"carbroker/internal/dev/caremu"
	"carbroker/internal/httpapi"
	"carbroker/internal/testing/apitest"
	"carbroker/internal/testing/testkit"
)

// The tests in this file run the production wiring, with the production
// retry policy and the CAR client's real keep-alive transport, over TCP on
// 127.0.0.1: nothing is dialled anywhere else.

// netEnv builds the wiring against the emulator served on loopback, behind
// a fault-injecting proxy, with the real transport tr (built by
// car.NewTransport, its dialer possibly replaced) and CAR at host (the
// proxy when empty).
func netEnv(t *testing.T, timeout string, tr *http.Transport, host string) (*env, *caremu.Proxy) {
	t.Helper()
	emu := caremu.New(caremu.Options{Credentials: map[string]caremu.Credential{testSecretID: {SecretKey: testSecretKey}}})
	ep, stop, err := emu.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := caremu.NewProxy(ep)
	if err != nil {
		stop()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		proxy.Close()
		stop()
	})
	if host == "" {
		host = proxy.Addr()
	}
	return transportEnv(t, emu, timeout, tr, host), proxy
}

// transportEnv builds the production wiring, with the production retry
// policy, whose CAR client reaches CAR at host through tr.
func transportEnv(t *testing.T, emu *caremu.Emulator, timeout string, tr *http.Transport, host string) *env {
	t.Helper()
	vars := map[string]string{"CAR_PROJECT_ID": testProject, "AUTH_MODE": "none", "REQUEST_TIMEOUT": timeout}
	cfg, err := config.Load(func(k string) string { return vars[k] }, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	creds := map[string]string{"TENCENTCLOUD_SECRETID": testSecretID, "TENCENTCLOUD_SECRETKEY": testSecretKey}
	c := car.New(car.Options{Host: host, Scheme: "HTTP", Transport: tr, Getenv: func(k string) string { return creds[k] }})
	e := &env{t: t, emu: emu, cfg: cfg, logs: &testkit.Buffer{}}
	e.api, _, err = apitest.New(cfg, c, apitest.Options{HTTP: httpapi.Options{
		Logger:  slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version: "test",
	}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// loggedAttempts returns the calls of action in the last request's log line.
func (e *env) loggedAttempts(action string) []map[string]any {
	e.t.Helper()
	calls, _ := e.lastRequestLog()["car"].([]any)
	var out []map[string]any
	for _, c := range calls {
		if m, ok := c.(map[string]any); ok && m["action"] == action {
			out = append(out, m)
		}
	}
	return out
}

// timed runs a start for user and returns the reply and how long it took.
func (e *env) timedStart(user string) (reply, time.Duration) {
	e.t.Helper()
	start := time.Now()
	r := e.start(user)
	return r, time.Since(start)
}

// A request over a pooled connection that died costs at most the attempt
// timeout (1 s) before it succeeds on a fresh connection.
func TestDeadPooledConnection(t *testing.T) {
	t.Parallel() // its own emulator and Redis; mostly waiting
	cases := []struct {
		name  string
		b     caremu.Breakage
		least time.Duration // the attempt timeout, for a silent connection
		most  time.Duration // bounds that hold on a loaded machine, far below the 5 s budget
	}{
		{"black hole", caremu.BlackHole, time.Second, 3 * time.Second},
		{"RST", caremu.Reset, 0, 2 * time.Second},
		{"half-close", caremu.HalfClose, 0, 2 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := car.NewTransport()
			e, proxy := netEnv(t, "5s", tr, "")
			if r := e.start("alice"); r.Status != 200 {
				t.Fatalf("warm-up: %d %s", r.Status, r.Raw)
			}
			if n := proxy.Break(c.b); n != 1 {
				t.Fatalf("%d pooled connections, want 1", n)
			}
			r, el := e.timedStart("bob")
			if r.Status != 200 || r.str("ServerSession") == "" {
				t.Fatalf("%d %s", r.Status, r.Raw)
			}
			t.Logf("answered in %v", el)
			if el < c.least || el > c.most {
				t.Errorf("answered in %v, want %v to %v", el, c.least, c.most)
			}
			applies := e.loggedAttempts("ApplyConcurrent")
			if len(applies) != 2 || applies[0]["code"] != "ClientError.NetworkError" || applies[1]["attempt"] != 2.0 {
				t.Errorf("ApplyConcurrent attempts in the log: %v", applies)
			}
			if n := len(e.loggedAttempts("CreateSession")); n != 1 {
				t.Errorf("CreateSession called %d times", n)
			}
			if n := proxy.Accepted(); n != 2 {
				t.Errorf("%d connections to CAR, want the pooled one and a fresh one", n)
			}
			// The dead connection's request never reached CAR.
			if n := e.carCalls("ApplyConcurrent"); n != 2 {
				t.Errorf("CAR served %d ApplyConcurrent, want alice's and bob's retry", n)
			}
		})
	}
}

// A CAR that never answers, on any connection, gets 504 at the deadline:
// the attempt after the short one gets the rest of the budget.
func TestSilentCARTimesOutAtTheBudget(t *testing.T) {
	t.Parallel() // its own emulator and Redis; mostly waiting
	tr := car.NewTransport()
	e, proxy := netEnv(t, "3s", tr, "")
	if r := e.start("alice"); r.Status != 200 {
		t.Fatalf("warm-up: %d %s", r.Status, r.Raw)
	}
	proxy.Break(caremu.BlackHole)
	proxy.BreakNew(caremu.BlackHole)
	e.timesOutAfterTwoAttempts("bob", 0)
}

// timesOutAfterTwoAttempts checks that a start for user, with a 3 s budget,
// answers 504 near the deadline after two ApplyConcurrent attempts: a short
// one, then one with the rest of the budget. exact, if not zero, is how long
// the answer takes on a fake clock.
func (e *env) timesOutAfterTwoAttempts(user string, exact time.Duration) {
	e.t.Helper()
	r, el := e.timedStart(user)
	if r.Status != 504 || r.code() != "UpstreamTimeout" {
		e.t.Fatalf("%d %s", r.Status, r.Raw)
	}
	if exact != 0 {
		if el != exact {
			e.t.Errorf("answered in %v with a 3 s budget, want %v", el, exact)
		}
	} else if el < 2*time.Second || el > 5*time.Second { // 2.75 s expected; slack for a loaded machine
		e.t.Errorf("answered in %v with a 3 s budget", el)
	}
	if n := len(e.loggedAttempts("ApplyConcurrent")); n != 2 {
		e.t.Errorf("%d ApplyConcurrent attempts, want 2", n)
	}
}

// A connect that hangs is cut at the attempt timeout, retried once, and
// answered 504 at the deadline. The dialer never touches a socket (it
// stands for a SYN that gets no answer), so the test runs the real
// keep-alive transport in a synctest bubble and times the answer exactly:
// the 1 s attempt, then the rest of the 3 s budget less the reply's
// reserve.
func TestHangingConnect(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var (
			mu       sync.Mutex
			dialedAt []time.Duration
		)
		start := time.Now()
		tr := car.NewTransport()
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			mu.Lock()
			dialedAt = append(dialedAt, time.Since(start))
			mu.Unlock()
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-release:
				return nil, errors.New("released")
			}
		}
		t.Cleanup(func() { close(release); tr.CloseIdleConnections() })
		emu := caremu.New(caremu.Options{Credentials: map[string]caremu.Credential{testSecretID: {SecretKey: testSecretKey}}})
		e := transportEnv(t, emu, "3s", tr, "car.tencentcloudapi.com")
		e.timesOutAfterTwoAttempts("alice", 2750*time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		t.Logf("dialled at %v", dialedAt)
		if n := len(dialedAt); n < 1 || n > 2 || dialedAt[0] != 0 || n == 2 && dialedAt[1] != time.Second {
			t.Errorf("dialled at %v, want at once (and after the 1 s attempt, unless the transport kept the first dial)", dialedAt)
		}
		if n := emu.Calls(); len(n) != 0 {
			t.Errorf("CAR served %d calls through a connect that never completed", len(n))
		}
	})
}

// A DNS failure is retried once, then answered 502 at once.
func TestDNSFailure(t *testing.T) {
	t.Parallel()
	var lookups, dials atomic.Int32
	d := &net.Dialer{Resolver: &net.Resolver{PreferGo: true,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			lookups.Add(1)
			return nil, errors.New("no DNS server is reachable")
		}}}
	tr := car.NewTransport()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, network, addr)
	}
	e, _ := netEnv(t, "5s", tr, "car.example.test:80")
	r, el := e.timedStart("alice")
	if r.Status != 502 || r.code() != "UpstreamError" || r.str("Error", "Message") != "CAR could not be reached; try again" {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	if el > 2*time.Second {
		t.Errorf("answered in %v", el)
	}
	if n := len(e.loggedAttempts("ApplyConcurrent")); n != 2 {
		t.Errorf("%d ApplyConcurrent attempts, want 2", n)
	}
	if n := dials.Load(); n != 2 || lookups.Load() == 0 {
		t.Errorf("%d dials, %d DNS lookups", n, lookups.Load())
	}
}
