package app_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"carbroker/internal/dev/caremu"
)

// HTTP mode without CAR credentials refuses to start, and says how to give
// it some; on SCF (where an exit explains nothing) it answers every request
// with that instead.
func TestHTTPModeWithoutCredentialsRefusesToStart(t *testing.T) {
	t.Parallel()
	w := newWorld(t, caremu.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "-listen", "127.0.0.1:0")
	cmd.Env = w.baseEnv()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("HTTP mode without credentials kept running:\n%s", out)
	}
	if err == nil || !strings.Contains(string(out), "SCF_ROLE") || !strings.Contains(string(out), "TENCENTCLOUD_SECRETID") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}

	p := start(t, append(w.baseEnv(), "TENCENTCLOUD_RUNENV=SCF"), "-listen", "127.0.0.1:0")
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; time.Sleep(10 * time.Millisecond) {
		if m := listening.FindStringSubmatch(p.stderr.String()); m != nil {
			base = "http://" + m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no listener on SCF:\n%s", p.stderr.String())
		}
	}
	res, err := http.Post(base+"/session", "application/json", strings.NewReader(`{"UserId":"alice","ClientSession":"cs"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 500 || !strings.Contains(string(b), "SCF_ROLE") {
		t.Fatalf("on SCF: %d %s", res.StatusCode, b)
	}
	if n := len(w.emu.Calls()); n != 0 {
		t.Errorf("%d CAR calls", n)
	}
}

// In event mode credentials come with each invoke: /healthz says whether
// this one brought them.
func TestEventModeHealthzReportsMissingCredentials(t *testing.T) {
	t.Parallel()
	w := newWorld(t, caremu.Options{})
	rpcc, _ := w.eventFunction()
	ir, _ := invoke(t, rpcc, urlEvent("GET", "/healthz", "", nil), environment(), time.Time{})
	if ir.StatusCode != http.StatusServiceUnavailable || field(ir.Body, "Credentials") != "missing" {
		t.Fatalf("invoke without credentials: %d %s", ir.StatusCode, ir.Body)
	}
	ir, _ = invoke(t, rpcc, urlEvent("GET", "/healthz", "", nil), credsA(), time.Time{})
	if ir.StatusCode != 200 || field(ir.Body, "Credentials") != "ok" || field(ir.Body, "Status") != "ok" {
		t.Fatalf("invoke with credentials: %d %s", ir.StatusCode, ir.Body)
	}
}

// With QUEUE_REDIS_URL set and Redis not answering at start, the start logs
// one warning naming the address (password masked) and the degraded mode,
// waits at most a second for it, and /healthz says degraded from the first
// request.
func TestStartWithRedisDownSaysDegraded(t *testing.T) {
	t.Parallel()
	// A Redis that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	w := newWorld(t, caremu.Options{})
	began := time.Now()
	base, p := w.httpFunction("QUEUE_REDIS_URL=redis://:s3cret-pw@"+ln.Addr().String()+"/0", "REQUEST_TIMEOUT=30s")
	if took := time.Since(began); took > 3*time.Second { // a second, and slack for a loaded machine
		t.Errorf("the start took %v", took)
	}
	status, body, _ := get(t, base+"/healthz")
	if status != 200 || field(body, "Queue") != "degraded" {
		t.Errorf("first /healthz: %d %s", status, body)
	}
	logs := p.stderr.String()
	if n := strings.Count(logs, "does not answer at start"); n != 1 {
		t.Fatalf("%d start warnings:\n%s", n, logs)
	}
	if !strings.Contains(logs, ln.Addr().String()) || !strings.Contains(logs, "degraded") {
		t.Errorf("the warning names neither the address nor the mode:\n%s", logs)
	}
	if strings.Contains(logs, "s3cret-pw") {
		t.Errorf("the password was logged:\n%s", logs)
	}
}
