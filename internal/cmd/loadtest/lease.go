package main

// The lease scenario (-lease): sessions with a short SESSION_MAX on several
// event-function instances (the Go1 runtime over net/rpc, as on SCF) that
// share one Redis and one emulator enforcing CAR's rate limits. The harness
// is the platform: it invokes each instance with Function URL events for
// the starts, and fires the timer trigger on every instance at once every
// -interval, so that sweeps always race. Checked from the emulator's call
// log:
//   - E, ended late: a session not destroyed within one interval plus 5 s
//     after the end its start's reply gave (ExpiresAt), or never;
//   - D, destroyed twice: a user with more than one DestroySession;
//   - also, failing the run: a reconnect whose ExpiresAt moved, a start
//     answered anything but 200 with an ExpiresAt, a DestroySession before
//     the lease's end, any RequestLimitExceeded from CAR.
// It prints one line: lease: N sessions, E ended late (> interval + 5 s),
// D destroyed twice, C CAR calls per sweep.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"carbroker/internal/dev/caremu"
	"carbroker/internal/testing/redistest"
	"carbroker/internal/testing/scftest"
)

// leaseMax is SESSION_MAX in the lease scenario.
const leaseMax = 4 * time.Second

// leaseSlack is what "late" allows past one interval: the sweep's own time.
const leaseSlack = 5 * time.Second

// eventFunction is one instance in event mode.
type eventFunction struct {
	c    *rpc.Client
	stop func() error
}

// startEvent starts bin in event mode on a free port and dials it.
func startEvent(ctx context.Context, bin string, env []string) (*eventFunction, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	logs := &tail{max: 16 << 10}
	cmd := exec.Command(bin)
	cmd.Env = append(env, "_LAMBDA_SERVER_PORT="+port)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stopProc := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			return nil
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("it did not exit within 5 s of SIGTERM")
		}
	}
	deadline := time.Now().Add(healthTimeout)
	for {
		c, err := rpc.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			return &eventFunction{c: c, stop: func() error { c.Close(); return stopProc() }}, nil
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("it exited:\n%s", logs)
		case <-ctx.Done():
			_ = stopProc()
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = stopProc()
			return nil, fmt.Errorf("it did not listen on %s: %v\n%s", port, err, logs)
		}
	}
}

// invoke sends one event with the emulator's credential in its Environment.
func (f *eventFunction) invoke(payload []byte, cred caremu.Client, timeout time.Duration) (scftest.InvokeResponse, error) {
	return scftest.Invoke(f.c, scftest.InvokeRequest{
		Payload: payload, RequestId: fmt.Sprintf("lease-%d", time.Now().UnixNano()),
		Deadline:    scftest.At(time.Now().Add(timeout)),
		Environment: scftest.Environment("TENCENTCLOUD_SECRETID", cred.SecretID, "TENCENTCLOUD_SECRETKEY", cred.SecretKey),
	})
}

// startLease is POST /session as a Function URL event, polled per
// Retry-After while the line answers 202; it returns the last status and
// ExpiresAt.
func (f *eventFunction) startLease(ctx context.Context, user, ip string, cred caremu.Client) (int, time.Time, error) {
	for {
		status, exp, retry, err := f.startOnce(user, ip, cred)
		if err != nil || status != 202 {
			return status, exp, err
		}
		if !sleepUntil(ctx, time.Now().Add(retry)) {
			return status, exp, ctx.Err()
		}
	}
}

func (f *eventFunction) startOnce(user, ip string, cred caremu.Client) (int, time.Time, time.Duration, error) {
	body, _ := json.Marshal(startBody{UserId: user, ClientSession: "cs-" + user})
	ev, _ := json.Marshal(map[string]any{"httpMethod": "POST", "path": "/session", "body": string(body),
		"headers": map[string]string{"x-scf-remote-addr": ip, "content-type": "application/json"}})
	resp, err := f.invoke(ev, cred, 10*time.Second)
	if err != nil || resp.Error != nil {
		return 0, time.Time{}, 0, fmt.Errorf("invoke: %v %+v", err, resp.Error)
	}
	ir, err := scftest.Decode(resp.Payload)
	if err != nil {
		return 0, time.Time{}, 0, err
	}
	var r struct{ ExpiresAt string }
	_ = json.Unmarshal([]byte(ir.Body), &r)
	exp, _ := time.Parse(time.RFC3339, r.ExpiresAt)
	ra, _ := strconv.Atoi(ir.Headers["Retry-After"])
	return ir.StatusCode, exp, time.Duration(max(ra, 1)) * time.Second, nil
}

type sweepReport struct{ Claimed, Destroyed, Failed, Due int }

// leaseResult is what a lease run measured.
type leaseResult struct {
	sessions, late, twice int
	sweeps, destroys      int
	problems              []string
	maxDelay              time.Duration
	realRedis             bool
}

func (r leaseResult) failed() bool { return r.late > 0 || r.twice > 0 || len(r.problems) > 0 }

// runLeaseScenario runs the lease scenario with the function binary bin.
func runLeaseScenario(ctx context.Context, o options, bin string, stdout, stderr io.Writer) int {
	res, err := leaseRun(ctx, o, bin)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest -lease: %v\n", err)
		return 1
	}
	redisNote := "a real redis-server"
	if !res.realRedis {
		redisNote = "the embedded store (redis-server is not on PATH)"
	}
	perSweep := 0.0
	if res.sweeps > 0 {
		perSweep = float64(res.destroys) / float64(res.sweeps)
	}
	fmt.Fprintf(stderr, "loadtest -lease: %d sessions of SESSION_MAX=%v on %d instances, %s, CAR rate limits on, a timer every %v on every instance at once: "+
		"%d timer invocations, %d DestroySession, longest end-to-destroy %.1f s\n",
		res.sessions, leaseMax, o.instances, redisNote, o.interval, res.sweeps, res.destroys, res.maxDelay.Seconds())
	listFirst(stderr, "problem: ", res.problems, 20, "")
	fmt.Fprintf(stdout, "lease: %d sessions, %d ended late (> interval + 5 s), %d destroyed twice, %.2f CAR calls per sweep\n",
		res.sessions, res.late, res.twice, perSweep)
	if res.failed() {
		return 1
	}
	return 0
}

func leaseRun(ctx context.Context, o options, bin string) (leaseResult, error) {
	dir, err := os.MkdirTemp("", "lease-")
	if err != nil {
		return leaseResult{}, err
	}
	defer os.RemoveAll(dir)
	rds, err := redistest.Launch(dir)
	if err != nil {
		return leaseResult{}, fmt.Errorf("redis: %v", err)
	}
	defer rds.Close()
	emu := caremu.New(caremu.Options{
		Concurrency: o.users, StopTime: 300 * time.Millisecond, ClientWait: -1,
		Projects: []string{project}, Credentials: caremu.RandomCredentials("AKIDload"),
		RateLimits: caremu.RateLimitsCAR,
	})
	cred := emu.Client()
	endpoint, stopEmu, err := emu.Listen("127.0.0.1:0")
	if err != nil {
		return leaseResult{}, fmt.Errorf("emulator: %v", err)
	}
	defer stopEmu()
	env := []string{
		"CAR_ENDPOINT=http://" + endpoint, "CAR_PROJECT_ID=" + project, "AUTH_MODE=none",
		"LOG_LEVEL=error", "QUEUE_REDIS_URL=" + rds.URL(), "SESSION_MAX=" + leaseMax.String(),
	}
	var fns []*eventFunction
	defer func() {
		for _, fn := range fns {
			_ = fn.stop()
		}
	}()
	for range o.instances {
		fn, err := startEvent(ctx, bin, env)
		if err != nil {
			return leaseResult{}, fmt.Errorf("function: %v", err)
		}
		fns = append(fns, fn)
	}

	res := leaseResult{sessions: o.users, realRedis: rds.IsReal()}
	var mu sync.Mutex
	problem := func(format string, a ...any) {
		mu.Lock()
		res.problems = append(res.problems, fmt.Sprintf(format, a...))
		mu.Unlock()
	}
	expires := make([]time.Time, o.users)
	rng := rand.New(rand.NewPCG(o.seed, 11))
	began := time.Now()
	var wg sync.WaitGroup
	for i := range o.users {
		arrive := began.Add(time.Duration(rng.Int64N(int64(launchBurst))))
		reconnect := rng.IntN(4) == 0 // one in four reconnects before its end
		fn, fn2 := fns[rng.IntN(len(fns))], fns[rng.IntN(len(fns))]
		wg.Go(func() {
			if !sleepUntil(ctx, arrive) {
				return
			}
			user, ip := fmt.Sprintf("u%04d", i), userIP(i)
			status, exp, err := fn.startLease(ctx, user, ip, cred)
			if err != nil || status != 200 || exp.IsZero() {
				problem("%s: start: %d %v (no ExpiresAt: %v)", user, status, err, exp.IsZero())
				return
			}
			expires[i] = exp
			if reconnect && sleepUntil(ctx, time.Now().Add(leaseMax/4)) {
				status, again, err := fn2.startLease(ctx, user, ip, cred)
				if err != nil || status != 200 || !again.Equal(exp) {
					problem("%s: reconnect: %d %v, ExpiresAt %v, was %v", user, status, err, again, exp)
				}
			}
		})
	}

	// The timer: every interval, on every instance at once, until every
	// lease ended more than two intervals ago.
	timer, _ := json.Marshal(map[string]string{"Type": "Timer", "TriggerName": "sweep", "Message": ""})
	last := began.Add(launchBurst + leaseMax + 2*o.interval + time.Second)
	starts := make(chan struct{})
	go func() { wg.Wait(); close(starts) }()
	for next := began.Add(o.interval); ; next = next.Add(o.interval) {
		if !sleepUntil(ctx, next) {
			break
		}
		select {
		case <-starts:
		default:
			last = time.Now().Add(leaseMax + 2*o.interval + time.Second) // a start still polling may get its lease now
		}
		if next.After(last) {
			break
		}
		var tw sync.WaitGroup
		for _, fn := range fns {
			tw.Go(func() {
				resp, err := fn.invoke(timer, cred, 15*time.Second)
				var r sweepReport
				if err != nil || resp.Error != nil || json.Unmarshal(resp.Payload, &r) != nil {
					problem("timer: %v %+v %s", err, resp.Error, resp.Payload)
				}
				mu.Lock()
				res.sweeps++
				mu.Unlock()
			})
		}
		tw.Wait()
	}
	wg.Wait()

	destroyed := map[string][]time.Time{}
	for _, c := range emu.Calls() {
		switch {
		case c.Action == "DestroySession" && c.Code == "":
			destroyed[c.UserID] = append(destroyed[c.UserID], c.Time)
			res.destroys++
		case strings.HasPrefix(c.Code, "RequestLimitExceeded"):
			problem("CAR rate limit on %s", c.Action)
		}
	}
	for i, exp := range expires {
		user := fmt.Sprintf("u%04d", i)
		if exp.IsZero() {
			continue // its start failed: a problem already
		}
		times := destroyed[user]
		switch {
		case len(times) == 0:
			res.late++
			problem("%s: never destroyed (lease ended %s)", user, exp.Format(time.RFC3339))
			continue
		case len(times) > 1:
			res.twice++
		}
		d := times[0].Sub(exp)
		res.maxDelay = max(res.maxDelay, d)
		if d < 0 {
			problem("%s: destroyed %v before its lease ended", user, -d)
		}
		if d > o.interval+leaseSlack {
			res.late++
		}
	}
	for _, fn := range fns {
		if err := fn.stop(); err != nil {
			res.problems = append(res.problems, "function: "+err.Error())
		}
	}
	fns = nil
	return res, nil
}
