// Command loadtest runs many simulated users against the function binary
// and a CAR emulator for a bounded time, and checks invariants from the
// emulator's state, not only status codes.
//
// Usage:
//
//	go run ./internal/cmd/loadtest [-users 200] [-duration 20s] [-concurrency 32] [-retention 3s] [-bin path]
//	make loadtest
//
// The emulator runs in this process on a real 127.0.0.1 listener, with a
// pool of -concurrency slots (fewer than the users, so the pool runs full at
// times) and a retention of -retention (CAR's is 90 s; a short one lets a
// run cross it); its pool clock is real time. The function runs as a
// subprocess in HTTP mode (main -listen 127.0.0.1:PORT) with only
// CAR_ENDPOINT, CAR_PROJECT_ID, AUTH_MODE=none, the emulator's credential
// and LOG_LEVEL=warn in its environment: -bin names a prebuilt binary, else
// it is built with go build into a temporary directory.
//
// Each user, on its own, starts a session (POST /session), plays, then
// stops it (DELETE /session), refreshes it (a second start while
// connected), or disconnects (the emulator's Disconnect: the client
// closing) and reconnects either well within retention or after it has
// lapsed. A start may find the pool full. Checked while it runs, and from
// the emulator's call log at the end:
//   - a reconnect within retention (answered before the retention end the
//     emulator reported at the disconnect) gets its own slot back, and a
//     refresh keeps its slot; neither is ever answered 503;
//   - no user is given a slot another user still holds (live, retained or
//     stopping, by the harness's own conservative ledger), every user owns
//     one slot at most, and no ServerSession is given to two users;
//   - the only 5xx is 503 NoIdleConcurrency, and only when CAR itself
//     answered ResourceNotFound.NoIdle to that start's ApplyConcurrent;
//   - no session is lost or destroyed that its user did not stop: a live
//     session is checked before each step, every DestroySession arrives
//     during a DELETE of the same user, and CAR created exactly as many
//     sessions, and took over exactly as many, as the answers say.
//
// Request loops are bounded in time and in count. It prints a breakdown and
// any errors on stderr, then exactly one summary line on stdout:
//
//	loadtest: N requests, E unexpected errors, V invariant violations, p50 X ms, p99 Y ms, peak RSS Z MB
//
// where the latencies are over every answered request and the peak RSS is
// the function process's VmHWM, read just before it is stopped. It exits 1
// if E or V is not zero, 2 on bad usage.
//
// With -launch it runs the launch scenario instead (launch.go): -instances
// (3) function processes with the waiting line on, sharing one Redis (a
// real redis-server when one is on PATH, else the embedded store, which it
// says) and one emulator of -concurrency (16) slots that enforces CAR's
// documented rate limits; -users (400) arrive in a 2 s burst, poll per
// Retry-After, play 1-4 s and stop; one in ten gives up after 1-3 polls.
// It ends when every user is done (at most -duration, 100 s), then prints a
// breakdown on stderr and exactly one line on stdout:
//
//	queue: N users, F fifo violations, L lost, G granted twice, max wait Xs, p99 poll Y ms, CAR calls/poll Z
//
// and exits 1 unless F, L and G are 0 and nothing else went wrong.
//
// With -hostile (which implies -launch; -users defaults to 200) the launch also has guests spamming
// the demo's /Enqueue with a HostUserId, lock-only seeders (/Enqueue, never
// /StartProject) and a 2 s CLIENT PAUSE of Redis mid-launch (hostile.go),
// and it prints a second line:
//
//	queue-hostile: N users, F fifo violations, L lost, J jumps, E waiters ejected
//
// exiting 1 unless J and E are 0 too.
//
// With -lease it runs the lease scenario instead (lease.go): -users (200)
// sessions with SESSION_MAX=4s on -instances (2) event-function instances
// (the Go1 runtime over net/rpc), one Redis, one emulator enforcing CAR's
// rate limits; the harness fires the timer trigger on every instance at once
// every -interval (2 s) and prints one line on stdout:
//
//	lease: N sessions, E ended late (> interval + 5 s), D destroyed twice, C CAR calls per sweep
//
// and exits 1 unless E and D are 0 and nothing else went wrong.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"carbroker/internal/dev/caremu"
	"carbroker/internal/testing/build"
	"carbroker/internal/testing/procstat"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the command line.
type options struct {
	users       int
	duration    time.Duration
	concurrency int
	retention   time.Duration
	bin         string
	seed        uint64
	verbose     bool
	// enough, if set, keeps users taking steps past duration, up to
	// maxDuration, until it holds for the tally so far: a test's run lasts
	// until it has exercised what the test checks, however loaded the
	// machine (the command line runs for duration exactly).
	enough      func(tally) bool
	maxDuration time.Duration

	launch    bool // the launch scenario (launch.go)
	hostile   bool // with hostile clients and a Redis pause (hostile.go)
	instances int  // its function instances

	lease    bool          // the lease scenario (lease.go)
	interval time.Duration // its timer's interval
}

// project is the CAR project the emulator serves.
const project = "cap-loadtest"

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.users, "users", 200, "simulated users")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "how long users take new steps (requests in flight then finish)")
	fs.IntVar(&o.concurrency, "concurrency", 32, "the emulator's pool size; fewer than -users, so the pool runs full at times")
	fs.DurationVar(&o.retention, "retention", 3*time.Second, "the emulator's retention of a disconnected session (CAR's is 90s)")
	fs.StringVar(&o.bin, "bin", "", "a prebuilt function binary (default: go build carbroker/function into a temporary directory)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the users' random choices")
	fs.BoolVar(&o.verbose, "v", false, "also print the tail of the function's log")
	fs.BoolVar(&o.launch, "launch", false, "the launch scenario: a burst of users waiting in the line (QUEUE_REDIS_URL) across instances; defaults -users 400 -concurrency 16 -duration 100s")
	fs.IntVar(&o.instances, "instances", 3, "-launch, -lease: function instances sharing one Redis and one emulator")
	fs.BoolVar(&o.hostile, "hostile", false, "-launch with guests spamming /Enqueue, lock-only seeders and a 2 s Redis pause mid-launch (implies -launch; -users defaults to 200)")
	fs.BoolVar(&o.lease, "lease", false, "the lease scenario: sessions with SESSION_MAX=4s on event-function instances, the timer fired on every instance at once; defaults -users 200 -instances 2")
	fs.DurationVar(&o.interval, "interval", 2*time.Second, "-lease: the timer trigger's interval")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.lease {
		if !set["instances"] {
			o.instances = 2
		}
		if o.launch || o.hostile || o.instances < 1 || o.instances > 16 || o.interval < 100*time.Millisecond || o.users > 10_000 {
			return o, errors.New("-lease: not with -launch or -hostile; -instances 1 to 16, -interval at least 100ms, -users at most 10000")
		}
	}
	o.launch = o.launch || o.hostile
	if o.launch {
		if !set["users"] {
			o.users = 400
			if o.hostile {
				// Fewer: hostile clients' locks take concurrencies for CAR's
				// lock time, and the run must end with every honest user
				// served (L counts the rest) within -duration.
				o.users = 200
			}
		}
		if !set["concurrency"] {
			o.concurrency = 16
		}
		if !set["duration"] {
			o.duration = 100 * time.Second
		}
		if o.instances < 1 || o.instances > 16 {
			return o, errors.New("-instances must be between 1 and 16")
		}
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.users < 1 || o.users > 100_000:
		return o, errors.New("-users must be between 1 and 100000")
	case o.concurrency < 1:
		return o, errors.New("-concurrency must be at least 1")
	case o.duration <= 0 || o.duration > 24*time.Hour:
		return o, errors.New("-duration must be positive and at most 24h")
	case o.retention < 100*time.Millisecond:
		return o, errors.New("-retention must be at least 100ms (the reconnect margins are fractions of it)")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
		}
		return 2
	}
	bin := o.bin
	if bin == "" {
		dir, err := os.MkdirTemp("", "loadtest-")
		if err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			return 1
		}
		defer os.RemoveAll(dir)
		if bin, err = build.Function(ctx, dir, false); err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			return 1
		}
	}
	if o.launch {
		return runLaunch(ctx, o, bin, stdout, stderr)
	}
	if o.lease {
		return runLeaseScenario(ctx, o, bin, stdout, stderr)
	}
	res, logs, err := runLoad(ctx, o, binary(bin), nil)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return 1
	}
	report(res, o, logs, stdout, stderr)
	if res.failed() {
		return 1
	}
	return 0
}

// runLoad starts the emulator and the function, runs the users, reads the
// function's peak RSS and stops both. wrap, if set, stands between the
// harness and the emulator (tests use it to fake a broken state). It returns
// the tail of the function's log too.
func runLoad(ctx context.Context, o options, launch launcher, wrap func(*caremu.Emulator) pool) (result, string, error) {
	stopTime := o.retention / 3
	emu := caremu.New(caremu.Options{
		Concurrency: o.concurrency, Retention: o.retention, StopTime: stopTime,
		Projects:    []string{project},
		Credentials: caremu.RandomCredentials("AKIDload"),
	})
	cred := emu.Client()
	endpoint, stopEmu, err := emu.Listen("127.0.0.1:0")
	if err != nil {
		return result{}, "", fmt.Errorf("emulator: %v", err)
	}
	defer stopEmu()
	env := []string{
		"CAR_ENDPOINT=http://" + endpoint,
		"CAR_PROJECT_ID=" + project,
		"AUTH_MODE=none",
		"TENCENTCLOUD_SECRETID=" + cred.SecretID,
		"TENCENTCLOUD_SECRETKEY=" + cred.SecretKey,
		"LOG_LEVEL=warn",
	}
	fn, err := launch(ctx, env)
	if err != nil {
		return result{}, "", fmt.Errorf("function: %v", err)
	}
	defer fn.stop()

	var p pool = emu
	if wrap != nil {
		p = wrap(emu)
	}
	res := newHarness(o, p, fn.url, stopTime).run(ctx)
	if res.peakRSS, err = procstat.PeakRSS(fn.pid); err != nil {
		res.errors = append(res.errors, "peak RSS: "+err.Error())
	}
	if err := fn.stop(); err != nil {
		res.errors = append(res.errors, "function: "+err.Error())
	}
	return res, fn.logs(), nil
}

// listFirst prints the first max items, one a line with prefix, then how
// many more there were (of what).
func listFirst(w io.Writer, prefix string, items []string, max int, what string) {
	for i, s := range items {
		if i == max {
			fmt.Fprintf(w, "  … and %d more%s\n", len(items)-max, what)
			return
		}
		fmt.Fprintf(w, "  %s%s\n", prefix, s)
	}
}

// report prints the breakdown, the first errors and violations, and the
// summary line.
func report(res result, o options, logs string, stdout, stderr io.Writer) {
	t := res.tally
	fmt.Fprintf(stderr, "loadtest: %d users, pool %d, retention %v, %v: %d starts (%d ok, %d NoIdle), "+
		"%d reconnects within retention (+%d unchecked), %d after it, %d refreshes, %d disconnects, %d stops, %d users dropped out\n",
		o.users, o.concurrency, o.retention, o.duration, t.starts, t.ok, t.noIdle,
		t.within, t.withinUnchecked, t.after, t.refreshes, t.disconnects, t.stops, t.dropped)
	listFirst(stderr, "unexpected error: ", res.errors, 20, "")
	listFirst(stderr, "invariant violation: ", res.violations, 20, "")
	if logs = strings.TrimSpace(logs); logs != "" && (o.verbose || res.failed()) {
		fmt.Fprintf(stderr, "the function's log (tail):\n%s\n", logs)
	}
	fmt.Fprintf(stdout, "loadtest: %d requests, %d unexpected errors, %d invariant violations, p50 %.2f ms, p99 %.2f ms, peak RSS %.1f MB\n",
		res.requests, len(res.errors), len(res.violations), ms(res.percentile(0.50)), ms(res.percentile(0.99)),
		float64(res.peakRSS)/(1<<20))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
