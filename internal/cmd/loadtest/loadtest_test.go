package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"carbroker/internal/car"
	"carbroker/internal/config"
	"carbroker/internal/dev/caremu"
	"carbroker/internal/httpapi"
	"carbroker/internal/scf"
	"carbroker/internal/testing/apitest"
	"carbroker/internal/testing/build"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// inProcess serves the function's real wiring (apitest.New, app's wiring,
// behind the web-function adapter, as in HTTP mode) from this process: the
// harness logic without building a binary.
func inProcess(_ context.Context, env []string) (*function, error) {
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	getenv := func(k string) string { return vars[k] }
	cfg, err := config.Load(getenv, config.Options{})
	if err != nil {
		return nil, err
	}
	logs := &tail{max: 16 << 10}
	tr := car.NewTransport()
	c := car.New(car.Options{Host: cfg.Endpoint.Host, Scheme: cfg.Endpoint.Scheme, Transport: tr, Getenv: getenv})
	h, _, err := apitest.New(cfg, c, apitest.Options{HTTP: httpapi.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Version: "test"}})
	if err != nil {
		return nil, err
	}
	srv := httptest.NewServer(scf.WebFunction(h, httpapi.TrustedPeer(cfg.TrustedProxies)))
	stop := func() error {
		srv.Close()
		tr.CloseIdleConnections()
		return nil
	}
	return &function{url: srv.URL, pid: os.Getpid(), logs: logs.String, stop: stop}, nil
}

// small is a run that crosses retention several times in about 2 s, with a
// pool far smaller than the users. On a loaded machine requests are slower,
// so fewer steps fit in 2 s: the run goes on (up to 30 s) until it has
// exercised everything TestRunInProcess checks.
var small = options{users: 12, duration: 2 * time.Second, concurrency: 5, retention: 400 * time.Millisecond, seed: 1,
	enough: func(n tally) bool {
		return n.ok > 0 && n.noIdle > 0 && n.within > 0 && n.after > 0 && n.stops > 0 && n.disconnects > 0
	},
	maxDuration: 30 * time.Second}

func TestRunInProcess(t *testing.T) {
	t.Parallel()
	res, logs, err := runLoad(context.Background(), small, inProcess, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.failed() {
		t.Fatalf("errors %q\nviolations %q\nlog: %s", res.errors, res.violations, logs)
	}
	n := res.tally
	t.Logf("%d requests, p50 %v, p99 %v: %+v", res.requests, res.percentile(.5), res.percentile(.99), n)
	// The run must have exercised what it checks.
	for what, count := range map[string]int{"successful starts": n.ok, "NoIdle answers": n.noIdle,
		"checked reconnects within retention": n.within, "reconnects after retention": n.after,
		"stops": n.stops, "disconnects": n.disconnects} {
		if count == 0 {
			t.Errorf("no %s in the run", what)
		}
	}
	if res.requests != n.starts+n.stops || len(res.latencies) != res.requests {
		t.Errorf("%d requests, %d latencies, %d starts + %d stops", res.requests, len(res.latencies), n.starts, n.stops)
	}
}

// lyingPool stands for a broken CAR: a user who reconnects while its slot is
// retained is shown on another slot.
type lyingPool struct {
	*caremu.Emulator
	size int

	mu    sync.Mutex
	until map[string]time.Time // the retention end of users who disconnected
}

func (p *lyingPool) Disconnect(userID string) bool {
	ok := p.Emulator.Disconnect(userID)
	s, _ := p.Emulator.SlotOf(userID)
	p.mu.Lock()
	p.until[userID] = s.Until
	p.mu.Unlock()
	return ok
}

func (p *lyingPool) SlotOf(userID string) (caremu.Slot, bool) {
	s, ok := p.Emulator.SlotOf(userID)
	p.mu.Lock()
	defer p.mu.Unlock()
	if until, left := p.until[userID]; ok && left && s.State == caremu.Session {
		delete(p.until, userID)
		if time.Now().Before(until) {
			s.ID = (s.ID + 1) % p.size
		}
	}
	return s, ok
}

func TestDetectsReconnectToAnotherSlot(t *testing.T) {
	t.Parallel()
	o := small
	o.duration = 1500 * time.Millisecond
	// A reconnect is checked only when it was answered within retention,
	// which a loaded machine may delay: go on until a few were.
	o.enough = func(n tally) bool { return n.within >= 3 }
	wrap := func(e *caremu.Emulator) pool {
		return &lyingPool{Emulator: e, size: o.concurrency, until: map[string]time.Time{}}
	}
	res, _, err := runLoad(context.Background(), o, inProcess, wrap)
	if err != nil {
		t.Fatal(err)
	}
	if !res.failed() {
		t.Fatal("the run passed")
	}
	found := false
	for _, v := range res.violations {
		found = found || strings.Contains(v, "before its retention ended but got slot")
	}
	if !found {
		t.Errorf("no reconnect violation among %q", res.violations)
	}
}

func TestLedger(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	l := newLedger()
	if v := l.claim("a", 0, t0); v != "" {
		t.Fatal(v)
	}
	if v := l.claim("b", 0, t0.Add(time.Second)); !strings.Contains(v, "live session of a") {
		t.Errorf("a live session given away: %q", v)
	}
	l = newLedger()
	l.claim("a", 0, t0)
	l.release("a", 0, t0.Add(3*time.Second)) // retained, or stopping, until then
	if v := l.claim("b", 0, t0.Add(2*time.Second)); !strings.Contains(v, "kept until") {
		t.Errorf("a retained slot given away: %q", v)
	}
	if v := l.claim("b", 0, t0.Add(3*time.Second)); v != "" {
		t.Errorf("once retention ended: %q", v)
	}
	if v := l.claim("b", 1, t0.Add(4*time.Second)); v != "" { // b moves: slot 0 is no longer b's
		t.Error(v)
	}
	if v := l.claim("c", 0, t0.Add(4*time.Second)); v != "" {
		t.Errorf("a slot its holder left: %q", v)
	}
	l.forget("c")
	if v := l.claim("d", 0, t0.Add(4*time.Second)); v != "" {
		t.Errorf("after forget: %q", v)
	}
	if v := l.serverSession("a", "S1"); v != "" {
		t.Error(v)
	}
	if v := l.serverSession("b", "S1"); !strings.Contains(v, "already been given to a") {
		t.Errorf("a ServerSession given twice: %q", v)
	}
}

func TestAudit(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w := func(from, to int) window { return window{at(from), at(to)} }
	call := func(action, user, code string, ms int) caremu.Call {
		return caremu.Call{Action: action, UserID: user, Code: code, Time: at(ms)}
	}
	// u started at 0–10 ms, refreshed at 20–30, stopped at 40–50, and was
	// answered NoIdle at 60–70.
	good := []caremu.Call{
		{Action: "", Code: "UnsupportedProtocol", Time: at(0)}, // the function's warm-up HEAD
		call("ApplyConcurrent", "u", "", 1), call("CreateSession", "u", "", 2),
		call("ApplyConcurrent", "u", "", 21), call("CreateSession", "u", "", 22),
		call("DestroySession", "u", "", 41),
		call("ApplyConcurrent", "u", carNoIdle, 61),
	}
	rec := func() map[string]*record {
		return map[string]*record{"u": {starts: []window{w(0, 10), w(20, 30), w(60, 70)}, stops: []window{w(40, 50)},
			noIdle: []window{w(60, 70)}, created: 2, refreshes: 1}}
	}
	oneTakeover := func(string) int { return 1 }
	if v := audit(good, rec(), oneTakeover); len(v) != 0 {
		t.Fatalf("a clean log: %q", v)
	}
	for _, tc := range []struct {
		name      string
		calls     []caremu.Call
		takeovers func(string) int
		want      string
	}{
		{"destroyed without a stop", append(good[:len(good):len(good)], call("DestroySession", "u", "", 80)),
			oneTakeover, "which u did not stop"},
		{"503 without a full pool", good[:len(good)-1], oneTakeover, "the pool was not full"},
		{"a session nobody asked for", append(good[:len(good):len(good)], call("CreateSession", "u", "", 25)),
			oneTakeover, "CAR created 3 sessions"},
		{"a call outside any request", append(good[:len(good):len(good)], call("ApplyConcurrent", "u", "", 15)),
			oneTakeover, "outside any start"},
		{"an unknown user", append(good[:len(good):len(good)], call("ApplyConcurrent", "x", "", 1)),
			oneTakeover, "never ran"},
		{"a takeover the user did not cause", good, func(string) int { return 2 }, "taken over 2 times"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := audit(tc.calls, rec(), tc.takeovers)
			if len(v) == 0 || !strings.Contains(strings.Join(v, "\n"), tc.want) {
				t.Errorf("got %q, want one with %q", v, tc.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	r := result{latencies: []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}
	if p := r.percentile(.5); p != 5 {
		t.Errorf("p50 %v", p)
	}
	if p := r.percentile(.99); p != 10 {
		t.Errorf("p99 %v", p)
	}
	if p := (result{}).percentile(.5); p != 0 {
		t.Errorf("empty: %v", p)
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-users", "0"}, {"-retention", "10ms"}, {"-nope"}, {"extra"}} {
		var stderr bytes.Buffer
		if code := run(context.Background(), args, io.Discard, &stderr); code != 2 {
			t.Errorf("%q: exit %d", args, code)
		}
	}
}

// functionBinary builds the function as make loadtest does, for t (skipped
// under -short).
func functionBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the function")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	bin, err := build.Function(context.Background(), t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestBinary runs the command as make loadtest does, on a binary built once.
func TestBinary(t *testing.T) {
	t.Parallel()
	bin := functionBinary(t)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-bin", bin, "-users", "8", "-duration", "1500ms",
		"-concurrency", "3", "-retention", "400ms"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stderr.String(), stdout.String())
	}
	summary := regexp.MustCompile(`^loadtest: [1-9]\d* requests, 0 unexpected errors, 0 invariant violations, ` +
		`p50 \d+\.\d\d ms, p99 \d+\.\d\d ms, peak RSS [1-9]\d*\.\d MB\n$`)
	if !summary.MatchString(stdout.String()) {
		t.Errorf("stdout %q is not one summary line", stdout.String())
	}
	t.Log(strings.TrimSpace(stderr.String()), "\n", strings.TrimSpace(stdout.String()))
}
