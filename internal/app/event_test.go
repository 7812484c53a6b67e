package app_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/rpc"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"carbroker/internal/dev/caremu"
	"carbroker/internal/testing/scftest"
)

func TestEventModePingAndInvoke(t *testing.T) {
	t.Parallel()
	w := newWorld(t, caremu.Options{})
	c, _ := w.eventFunction()
	if err := c.Call("Function.Ping", struct{}{}, &struct{}{}); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	// Function URL event.
	ir, _ := invoke(t, c, urlEvent("POST", "/session", `{"UserId":"alice","ClientSession":"cs"}`, map[string]string{"x-forwarded-for": "1.2.3.4"}), credsA(), time.Time{})
	if ir.StatusCode != 200 || field(ir.Body, "ServerSession") == "" {
		t.Fatalf("Function URL start: %d %s", ir.StatusCode, ir.Body)
	}
	if ip := w.userIP("alice"); ip != "203.0.113.50" {
		t.Errorf("UserIp = %q, want x-scf-remote-addr (never X-Forwarded-For)", ip)
	}

	// API Gateway event: lowercase headers, no requestContext.requestId,
	// a base path, and a base64 body flagged with the string "true".
	body := base64.StdEncoding.EncodeToString([]byte(`{"UserId":"bob","ClientSession":"cs"}`))
	ev, _ := json.Marshal(map[string]any{
		"requestContext": map[string]any{"serviceId": "service-1", "path": "/car", "httpMethod": "ANY", "sourceIp": "198.51.100.9", "stage": "release", "identity": map[string]any{}},
		"headers":        map[string]any{"content-type": "text/plain", "x-api-requestid": "gw-123", "x-forwarded-for": "6.6.6.6"},
		"body":           body, "isBase64Encoded": "true",
		"path": "/release/car/session", "httpMethod": "POST",
		"queryString": map[string]any{"flag": true, "multi": []string{"a", "b"}},
	})
	ir, _ = invoke(t, c, ev, credsA(), time.Time{})
	if ir.StatusCode != 200 || field(ir.Body, "UserId") != "bob" {
		t.Fatalf("API Gateway start: %d %s", ir.StatusCode, ir.Body)
	}
	if ip := w.userIP("bob"); ip != "198.51.100.9" {
		t.Errorf("UserIp = %q, want requestContext.sourceIp", ip)
	}
	if rid := field(ir.Body, "RequestId"); !strings.HasPrefix(rid, "scf-req-") {
		t.Errorf("RequestId %q is not the invoke's RequestId", rid)
	}
	if ct := ir.Headers["Content-Type"]; !strings.HasPrefix(ct, "application/json") {
		t.Errorf("headers %v", ir.Headers)
	}
	// Nothing outlives an invoke: no warm-up request is started from one
	// (the emulator records a warm-up HEAD as a call without an Action).
	for _, call := range w.emu.Calls() {
		if call.Action == "" {
			t.Errorf("event mode sent CAR a request outside any action: %+v", call)
		}
	}
}

func TestEventModeCredentialsRotateThroughEnvironment(t *testing.T) {
	t.Parallel()
	w := newWorld(t, caremu.Options{Concurrency: 8})
	c, _ := w.eventFunction() // no credentials in the process environment
	start := func(user, env string) int {
		ir, _ := invoke(t, c, urlEvent("POST", "/session", `{"UserId":"`+user+`","ClientSession":"cs"}`, nil), env, time.Time{})
		return ir.StatusCode
	}
	if s := start("u1", credsA()); s != 200 {
		t.Fatalf("with rotation A: %d", s)
	}
	if s := start("u2", credsB()); s != 200 {
		t.Fatalf("with rotation B (with token): %d", s)
	}
	stale := environment("TENCENTCLOUD_SECRETID", credA, "TENCENTCLOUD_SECRETKEY", keyB, "TENCENTCLOUD_SESSIONTOKEN", "")
	if s := start("u3", stale); s != 500 {
		t.Fatalf("a mismatched id/key must be refused by CAR (500), got %d", s)
	}
	if s := start("u4", credsA()); s != 200 {
		t.Fatalf("back to A: %d", s)
	}
}

func TestEventModeConcurrentInvokesKeepTheirCredentials(t *testing.T) {
	t.Parallel()
	w := newWorld(t, caremu.Options{Concurrency: 64})
	c, _ := w.eventFunction()
	var wg sync.WaitGroup
	errs := make(chan string, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			env := credsA()
			if i%2 == 1 {
				env = credsB()
			}
			user := "user-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			ir, _ := invoke(t, c, urlEvent("POST", "/session", `{"UserId":"`+user+`","ClientSession":"cs"}`, nil), env, time.Time{})
			if ir.StatusCode != 200 {
				errs <- ir.Body
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("an invoke signed with a mixed credential triple: %s", e)
	}
}

func TestEventModeDeadline(t *testing.T) {
	t.Parallel()
	w := newWorld(t, caremu.Options{})
	c, _ := w.eventFunction()
	w.emu.SetLatency("CreateSession", 5*time.Second)
	begin := time.Now()
	ir, resp := invoke(t, c, urlEvent("POST", "/session", `{"UserId":"alice","ClientSession":"cs"}`, nil), credsA(), begin.Add(400*time.Millisecond))
	took := time.Since(begin)
	if resp.Error != nil || ir.StatusCode != 504 || field(ir.Body, "Error.Code") != "UpstreamTimeout" {
		t.Fatalf("%+v %d %s", resp.Error, ir.StatusCode, ir.Body)
	}
	// The function ends its work at the deadline less its margin; the
	// bound leaves a loaded machine time to deliver the answer, and still
	// fails a function that waits out CreateSession's 5 s.
	if took > 2*time.Second {
		t.Errorf("answered after %v, long past the platform deadline of 400ms", took)
	}
}

func TestEventModeGarbageAndPanicFreeRecovery(t *testing.T) {
	t.Parallel()
	w := newWorld(t, caremu.Options{})
	c, _ := w.eventFunction()
	for _, payload := range []string{`garbage`, `{}`, `null`, `{"httpMethod":7}`, `{"Type":"Timerx","TriggerName":"t"}`} {
		ir, resp := invoke(t, c, []byte(payload), credsA(), time.Time{})
		if resp.Error != nil || ir.StatusCode != 400 {
			t.Errorf("payload %s: %+v %d %s", payload, resp.Error, ir.StatusCode, ir.Body)
		}
	}
	// A timer event (the event variant's sweep trigger) is the lease sweep's
	// success, not an HTTP request: with no lease to end, nothing is done.
	resp, err := scftest.Invoke(c, scftest.InvokeRequest{Payload: []byte(`{"Type":"Timer","TriggerName":"t"}`), RequestId: "timer"})
	if err != nil || resp.Error != nil || string(resp.Payload) != `{"Claimed":0,"Destroyed":0,"Failed":0,"Due":0,"Skipped":false}` {
		t.Errorf("timer event: %v %+v %s", err, resp.Error, resp.Payload)
	}
	ir, _ := invoke(t, c, urlEvent("POST", "/session", `{"UserId":"alice","ClientSession":"cs"}`, nil), credsA(), time.Time{})
	if ir.StatusCode != 200 {
		t.Fatalf("after garbage: %d %s", ir.StatusCode, ir.Body)
	}
}

func TestEventModeMisconfigurationPerInvoke(t *testing.T) {
	t.Parallel()
	w := newWorld(t, caremu.Options{})
	// AUTH_MODE missing at start: the process must keep serving.
	port := freePort(t)
	env := []string{"CAR_ENDPOINT=http://" + w.endpoint, "CAR_PROJECT_ID=" + project, "_LAMBDA_SERVER_PORT=" + port}
	p := start(t, env)
	var c *rpc.Client
	for i := 0; i < 500; i++ {
		var err error
		if c, err = rpc.Dial("tcp", "127.0.0.1:"+port); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c == nil {
		t.Fatalf("no listener:\n%s", p.stderr.String())
	}
	defer c.Close()
	ev := urlEvent("POST", "/session", `{"UserId":"alice","ClientSession":"cs"}`, nil)
	ir, resp := invoke(t, c, ev, credsA(), time.Time{})
	if resp.Error != nil || ir.StatusCode != 500 || !strings.Contains(field(ir.Body, "Error.Message"), "AUTH_MODE") {
		t.Fatalf("misconfigured: %+v %d %s", resp.Error, ir.StatusCode, ir.Body)
	}
	if strings.Contains(ir.Body, keyA) {
		t.Error("a secret in the misconfiguration message")
	}
	// The platform delivers the missing variable with the next invoke.
	fixed := environment("TENCENTCLOUD_SECRETID", credA, "TENCENTCLOUD_SECRETKEY", keyA, "AUTH_MODE", "none")
	if ir, _ := invoke(t, c, ev, fixed, time.Time{}); ir.StatusCode != 200 {
		t.Fatalf("after the fix: %d %s", ir.StatusCode, ir.Body)
	}
	bad := environment("TENCENTCLOUD_SECRETID", credA, "TENCENTCLOUD_SECRETKEY", keyA, "REQUEST_TIMEOUT", "soon")
	if ir, _ := invoke(t, c, ev, bad, time.Time{}); ir.StatusCode != 500 || !strings.Contains(ir.Body, "REQUEST_TIMEOUT") ||
		strings.Contains(ir.Body, "soon") {
		t.Fatalf("bad REQUEST_TIMEOUT (named, its value not shown): %d %s", ir.StatusCode, ir.Body)
	}
}

func TestUsageWithoutMode(t *testing.T) {
	t.Parallel()
	out, err := exec_(binary, nil)
	if err == nil || !strings.Contains(out, "-dev") || !strings.Contains(out, "-listen") || !strings.Contains(out, "_LAMBDA_SERVER_PORT") {
		t.Fatalf("err %v, output %q", err, out)
	}
}

// Asking for help is not an error: -h and -help print the usage and exit 0;
// an unknown flag still exits 2.
func TestHelpExitsZero(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"-h", "-help", "--help"} {
		out, err := exec_(binary, nil, arg)
		if err != nil || !strings.Contains(out, "-dev") || !strings.Contains(out, "-listen") {
			t.Errorf("%s: err %v, output %q", arg, err, out)
		}
	}
	var exit *exec.ExitError
	if _, err := exec_(binary, nil, "-nonsense"); !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Errorf("-nonsense: %v", err)
	}
}

func TestDevRefusesOnSCF(t *testing.T) {
	t.Parallel()
	out, err := exec_(binary, []string{"TENCENTCLOUD_RUNENV=SCF"}, "-dev")
	if err == nil || !strings.Contains(out, "refusing") {
		t.Fatalf("err %v, output %q", err, out)
	}
}

// Without an absolute Deadline the function's time limit bounds the invoke;
// a HEAD reply has no body, as over HTTP.
func TestEventModeTimeLimitAndHead(t *testing.T) {
	t.Parallel()
	w := newWorld(t, caremu.Options{})
	c, _ := w.eventFunction()
	ir, _ := invoke(t, c, urlEvent("HEAD", "/healthz", "", nil), credsA(), time.Time{})
	if ir.StatusCode != 200 || ir.Body != "" {
		t.Errorf("HEAD: %d %q", ir.StatusCode, ir.Body)
	}
	w.emu.SetLatency("ApplyConcurrent", 5*time.Second)
	req := scftest.InvokeRequest{Payload: urlEvent("POST", "/session", `{"UserId":"alice","ClientSession":"cs"}`, nil),
		RequestId: "no-deadline", Environment: credsA(), TimeLimitInMs: 300}
	begin := time.Now()
	resp, err := scftest.Invoke(c, req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := scftest.Decode(resp.Payload)
	// Far from ApplyConcurrent's 5 s; the slack is for a loaded machine.
	if out.StatusCode != 504 || time.Since(begin) > 2*time.Second {
		t.Errorf("status %d after %v with a 300ms time limit", out.StatusCode, time.Since(begin))
	}
}

// A LOG_LEVEL delivered in an invoke's Environment reaches the runtime's own
// log lines too, not only the API's.
func TestEventModeLogLevelFromEnvironment(t *testing.T) {
	t.Parallel()
	w := newWorld(t, caremu.Options{})
	c, p := w.eventFunction()
	ev := urlEvent("GET", "/healthz", "", nil)
	// logged waits for the request line of an invoke (stderr is copied
	// from a pipe), and returns the log up to then.
	logged := func(ir scftest.Response) string {
		t.Helper()
		line := `"request_id":"` + ir.Headers["X-Request-Id"] + `","method"`
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if s := p.stderr.String(); strings.Contains(s, line) {
				return s
			}
		}
		t.Fatalf("no request line %s in:\n%s", line, p.stderr.String())
		return ""
	}
	ir, _ := invoke(t, c, ev, credsA(), time.Time{})
	if strings.Contains(logged(ir), `"msg":"scf: invoke"`) {
		t.Fatal("a debug line at LOG_LEVEL=info")
	}
	debug := environment("TENCENTCLOUD_SECRETID", credA, "TENCENTCLOUD_SECRETKEY", keyA, "LOG_LEVEL", "debug")
	ir, _ = invoke(t, c, ev, debug, time.Time{})
	if !strings.Contains(logged(ir), `"msg":"scf: invoke"`) {
		t.Fatalf("LOG_LEVEL=debug from the Environment did not reach the runtime's log:\n%s", p.stderr.String())
	}
}
