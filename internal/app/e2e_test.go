package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/rpc"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"carbroker/internal/dev/caremu"
	"carbroker/internal/testing/build"
	"carbroker/internal/testing/scftest"
	"carbroker/internal/testing/testkit"
)

// The end-to-end tests start the built binary and act as the SCF runtime
// (net/rpc, gob) or as an HTTP client, against the emulator on loopback.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "carbroker-e2e")
	if err != nil {
		panic(err)
	}
	if binary, err = build.Function(context.Background(), dir, false); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	// No goroutine outlives the tests, once idle keep-alive connections are closed.
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

const (
	credA   = "AKIDrotationA000001"
	keyA    = "rotation-key-A-000000000000001"
	credB   = "AKIDrotationB000002"
	keyB    = "rotation-key-B-000000000000002"
	project = "cap-e2e00001"
)

type world struct {
	t        *testing.T
	emu      *caremu.Emulator
	endpoint string
}

func newWorld(t *testing.T, opt caremu.Options) *world {
	t.Helper()
	opt.Credentials = map[string]caremu.Credential{credA: {SecretKey: keyA}, credB: {SecretKey: keyB, Token: "token-B"}}
	emu := caremu.New(opt)
	ep, stop, err := emu.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return &world{t: t, emu: emu, endpoint: ep}
}

// baseEnv is the configuration common to both modes; no credentials.
func (w *world) baseEnv() []string {
	return []string{"CAR_ENDPOINT=http://" + w.endpoint, "CAR_PROJECT_ID=" + project, "AUTH_MODE=none", "LOG_LEVEL=info", "PATH=" + os.Getenv("PATH")}
}

// proc is the function running as a subprocess.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *testkit.Buffer
}

func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = env
	p := &proc{cmd: cmd, stdout: &testkit.Buffer{}, stderr: &testkit.Buffer{}}
	cmd.Stderr = p.stderr
	cmd.Stdout = p.stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("function stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

var freePort = testkit.FreePort

// eventFunction starts the binary in event mode and dials it as the platform.
func (w *world) eventFunction(extraEnv ...string) (*rpc.Client, *proc) {
	w.t.Helper()
	port := freePort(w.t)
	p := start(w.t, append(append(w.baseEnv(), "_LAMBDA_SERVER_PORT="+port), extraEnv...))
	var c *rpc.Client
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if c, err = rpc.Dial("tcp", "127.0.0.1:"+port); err == nil {
			break
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("the function did not listen on %s: %v\n%s", port, err, p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.t.Cleanup(func() { c.Close() })
	return c, p
}

var listening = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// httpFunction starts the binary in -listen mode and returns its base URL.
func (w *world) httpFunction(extraEnv ...string) (string, *proc) {
	w.t.Helper()
	env := append(append(w.baseEnv(), "TENCENTCLOUD_SECRETID="+credA, "TENCENTCLOUD_SECRETKEY="+keyA), extraEnv...)
	p := start(w.t, env, "-listen", "127.0.0.1:0")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := listening.FindStringSubmatch(p.stderr.String()); m != nil {
			return "http://" + m[1], p
		}
		time.Sleep(10 * time.Millisecond)
	}
	w.t.Fatalf("the function did not report its address:\n%s", p.stderr.String())
	return "", nil
}

var environment = scftest.Environment

func credsA() string {
	return environment("TENCENTCLOUD_SECRETID", credA, "TENCENTCLOUD_SECRETKEY", keyA)
}
func credsB() string {
	return environment("TENCENTCLOUD_SECRETID", credB, "TENCENTCLOUD_SECRETKEY", keyB, "TENCENTCLOUD_SESSIONTOKEN", "token-B")
}

// urlEvent is a Function URL event.
func urlEvent(method, path, body string, headers map[string]string) []byte {
	h := map[string]string{"x-scf-remote-addr": "203.0.113.50", "host": "fn.example.com"}
	for k, v := range headers {
		h[k] = v
	}
	path, rawQuery, _ := strings.Cut(path, "?")
	query := map[string]any{}
	q, _ := url.ParseQuery(rawQuery)
	for k, v := range q {
		query[k] = v[0]
		if len(v) > 1 {
			query[k] = v
		}
	}
	b, _ := json.Marshal(map[string]any{"httpMethod": method, "path": path, "body": body, "headers": h, "queryString": query})
	return b
}

func invoke(t *testing.T, c *rpc.Client, payload []byte, env string, deadline time.Time) (scftest.Response, scftest.InvokeResponse) {
	t.Helper()
	req := scftest.InvokeRequest{Payload: payload, RequestId: fmt.Sprintf("scf-req-%d", time.Now().UnixNano()), Environment: env,
		FunctionName: "carbroker", MemoryLimitInMb: 64, TimeLimitInMs: 15000}
	if !deadline.IsZero() {
		req.Deadline = scftest.At(deadline)
	}
	resp, err := scftest.Invoke(c, req)
	if err != nil {
		t.Fatalf("Function.Invoke: %v", err)
	}
	var ir scftest.Response
	if resp.Error == nil {
		if ir, err = scftest.Decode(resp.Payload); err != nil {
			t.Fatal(err)
		}
	}
	return ir, resp
}

func field(body, path string) string {
	var m map[string]any
	if json.Unmarshal([]byte(body), &m) != nil {
		return ""
	}
	var v any = m
	for _, p := range strings.Split(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[p]
	}
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(v)
	}
	return ""
}

// exec_ runs the binary to completion and returns its combined output.
func exec_(bin string, env []string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// userIP is the UserIp of the user's last ApplyConcurrent.
func (w *world) userIP(user string) string {
	ip := ""
	for _, c := range w.emu.Calls() {
		if c.Action == "ApplyConcurrent" && c.UserID == user {
			ip = c.Params["UserIp"]
		}
	}
	return ip
}
