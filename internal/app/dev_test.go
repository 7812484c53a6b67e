package app_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"carbroker/internal/dev/caremu"
)

var printedCurl = regexp.MustCompile(`curl -s -X POST (\S+) -d '([^']*)'`)

// The dev mode's printed curl returns a ServerSession, even with real-looking
// credentials and a CAR_ENDPOINT in the shell (which it must ignore).
func TestDevModePrintedCurlWorks(t *testing.T) {
	t.Parallel()
	env := []string{"PATH=" + os.Getenv("PATH"), "CAR_ENDPOINT=http://127.0.0.1:1",
		"TENCENTCLOUD_SECRETID=AKIDreal", "TENCENTCLOUD_SECRETKEY=real-key-must-not-be-used"}
	p := start(t, env, "-dev", "-listen", "127.0.0.1:0")
	var m []string
	for deadline := time.Now().Add(10 * time.Second); m == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		m = printedCurl.FindStringSubmatch(p.stdout.String())
	}
	if m == nil {
		t.Fatalf("no curl printed:\n%s\n%s", p.stdout.String(), p.stderr.String())
	}
	res, err := http.Post(m[1], "application/x-www-form-urlencoded", strings.NewReader(m[2])) // what curl -d sends
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || field(string(b), "ServerSession") == "" {
		t.Fatalf("%d %s\n%s", res.StatusCode, b, p.stderr.String())
	}
	if strings.Contains(p.stderr.String()+p.stdout.String(), "real-key-must-not-be-used") {
		t.Error("the shell's key was printed")
	}
}

// In a VM or container dev mode listens on every interface (-listen
// 0.0.0.0:PORT, as docs/reference.md says): the console address and the
// curl it prints still work from this machine, past its own Host guard.
func TestDevModeAllInterfacesPrintsAWorkingCurl(t *testing.T) {
	t.Parallel()
	p := start(t, []string{"PATH=" + os.Getenv("PATH")}, "-dev", "-listen", "0.0.0.0:0")
	var m []string
	for deadline := time.Now().Add(10 * time.Second); m == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		m = printedCurl.FindStringSubmatch(p.stdout.String())
	}
	if m == nil {
		t.Fatalf("no curl printed:\n%s\n%s", p.stdout.String(), p.stderr.String())
	}
	res, err := http.Post(m[1], "application/x-www-form-urlencoded", strings.NewReader(m[2]))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || field(string(b), "ServerSession") == "" {
		t.Fatalf("the printed curl (%s): %d %s\n%s", m[1], res.StatusCode, b, p.stdout.String())
	}
	console := regexp.MustCompile(`open (\S+) in a browser`).FindStringSubmatch(p.stdout.String())
	if console == nil {
		t.Fatalf("no console address printed:\n%s", p.stdout.String())
	}
	if st, body, _ := get(t, console[1]); st != 200 {
		t.Fatalf("the printed console address %s: %d %s", console[1], st, body)
	}
}

// devFunction starts the binary with -dev on a free port and returns its URL.
func devFunction(t *testing.T, extraEnv ...string) (string, *proc) {
	t.Helper()
	p := start(t, append([]string{"PATH=" + os.Getenv("PATH")}, extraEnv...), "-dev", "-listen", "127.0.0.1:0")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := listening.FindStringSubmatch(p.stderr.String()); m != nil {
			return "http://" + m[1], p
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("dev mode did not report its address:\n%s", p.stderr.String())
	return "", nil
}

func get(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

// The console, its module and the dev endpoints exist in dev mode only.
func TestConsoleOnlyInDevMode(t *testing.T) {
	t.Parallel()
	dev, _ := devFunction(t)
	for _, path := range []string{"/", "/console.js", "/carbroker.js", "/dev/state"} {
		if status, _, _ := get(t, dev+path); status != 200 {
			t.Errorf("dev mode: GET %s = %d", path, status)
		}
	}
	w := newWorld(t, caremu.Options{})
	base, _ := w.httpFunction()
	rpcc, _ := w.eventFunction()
	for _, path := range []string{"/", "/console.js", "/carbroker.js", "/dev/state"} {
		if status, body, _ := get(t, base+path); status != 404 || field(body, "Error.Code") != "NotFound" {
			t.Errorf("HTTP mode: GET %s = %d %s", path, status, body)
		}
		ir, _ := invoke(t, rpcc, urlEvent("GET", path, "", nil), credsA(), time.Time{})
		if ir.StatusCode != 404 || field(ir.Body, "Error.Code") != "NotFound" {
			t.Errorf("event mode: GET %s = %d %s", path, ir.StatusCode, ir.Body)
		}
	}
	for _, path := range []string{"/dev/connect", "/dev/disconnect"} {
		res, err := http.Post(base+path, "application/json", strings.NewReader(`{"UserId":"u1"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 {
			t.Errorf("HTTP mode: POST %s = %d", path, res.StatusCode)
		}
	}
}

// A page served by a local dev server (another port, so another origin) can
// call `make run` without configuration; HTTP mode answers no CORS until
// CORS_ALLOW_ORIGINS is set.
func TestDevModeAnswersCORSForAnyOrigin(t *testing.T) {
	t.Parallel()
	preflight := func(url string) http.Header {
		t.Helper()
		req, _ := http.NewRequest(http.MethodOptions, url+"/session", nil)
		req.Header.Set("Origin", "http://localhost:5173")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.Header
	}
	dev, _ := devFunction(t)
	if h := preflight(dev); h.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("dev mode preflight: %v", h)
	}
	w := newWorld(t, caremu.Options{})
	base, _ := w.httpFunction()
	if h := preflight(base); h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("HTTP mode answered CORS without CORS_ALLOW_ORIGINS: %v", h)
	}
}

// In dev mode no client ever connects, so without the emulator's client
// wait the pool would fill for good: here a pool of one frees itself.
func TestDevPoolDoesNotFillForGood(t *testing.T) {
	t.Parallel()
	dev, p := devFunction(t, "DEV_CONCURRENCY=1", "DEV_CLIENT_WAIT=1s", "DEV_RETENTION=1s")
	// stdout is copied from a pipe: the banner may arrive after the listener is up.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.stdout.String(), "(1 concurrencies, 1 s retention"); {
		if time.Now().After(deadline) {
			t.Errorf("banner: %s", p.stdout.String())
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	post := func(user string) int {
		res, err := http.Post(dev+"/session", "text/plain", strings.NewReader(`{"UserId":"`+user+`","ClientSession":"cs"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if s := post("first"); s != 200 {
		t.Fatalf("first: %d", s)
	}
	_, state, _ := get(t, dev+"/dev/state")
	if field(state, "RetentionSeconds") != "1" || field(state, "ClientWaitSeconds") != "1" {
		t.Fatalf("state %s", state)
	}
	if s := post("second"); s != http.StatusAccepted { // dev mode's waiting line gives it a place
		t.Fatalf("second while the pool is full: %d", s)
	}
	// The first session's client never connects: retained after 1 s, idle 1 s later.
	deadline := time.Now().Add(15 * time.Second)
	for post("second") != 200 {
		if time.Now().After(deadline) {
			_, state, _ := get(t, dev+"/dev/state")
			t.Fatalf("the pool stayed full: %s", state)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestDevPoolSettingsRefused(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"DEV_CONCURRENCY=0", "DEV_CONCURRENCY=x", "DEV_CLIENT_WAIT=0s", "DEV_RETENTION=48h"} {
		out, err := exec_(binary, []string{"PATH=" + os.Getenv("PATH"), bad}, "-dev", "-listen", "127.0.0.1:0")
		name, _, _ := strings.Cut(bad, "=")
		if err == nil || !strings.Contains(out, name) {
			t.Errorf("%s: err %v, output %q", bad, err, out)
		}
	}
}

// Dev mode runs the waiting line on an embedded Redis by default;
// DEV_QUEUE=false turns it off, also when SESSION_MAX keeps the embedded
// Redis for the leases.
func TestDevModeLine(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		queue, sessionMax string
		wantStatus        int
	}{{"", "", http.StatusAccepted}, {"false", "", http.StatusServiceUnavailable}, {"false", "10m", http.StatusServiceUnavailable}} {
		url, _ := devFunction(t, "DEV_CONCURRENCY=1", "DEV_QUEUE="+c.queue, "SESSION_MAX="+c.sessionMax)
		post := func(user string) (int, string) {
			res, err := http.Post(url+"/session", "", strings.NewReader(`{"UserId":"`+user+`","ClientSession":"cs"}`))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}
		st, b := post("first")
		if st != 200 {
			t.Fatalf("DEV_QUEUE=%q first: %d %s", c.queue, st, b)
		}
		if leased := field(b, "ExpiresAt") != ""; leased != (c.sessionMax != "") {
			t.Fatalf("DEV_QUEUE=%q SESSION_MAX=%q: ExpiresAt in %s", c.queue, c.sessionMax, b)
		}
		if st, b := post("second"); st != c.wantStatus {
			t.Fatalf("DEV_QUEUE=%q second with a pool of 1: %d %s, want %d", c.queue, st, b, c.wantStatus)
		}
	}
}

// Dev mode is sealed from a shell holding production settings: it never
// writes to the production line (QUEUE_REDIS_URL, QUEUE_KEY_PREFIX) nor
// takes its project or allow-lists, and its banner names what it ignored.
func TestDevModeIgnoresProductionSettings(t *testing.T) {
	t.Parallel()
	dev, p := devFunction(t, "DEV_CONCURRENCY=1",
		"QUEUE_REDIS_URL=redis://:prod-password@127.0.0.1:1/0", "QUEUE_KEY_PREFIX=prod:",
		"CAR_PROJECT_ID=cap-prod1", "CAR_ALLOWED_PROJECT_IDS=cap-prod1,cap-prod2", "CAR_APPLICATION_ID=app-prod")
	if _, body, _ := get(t, dev+"/healthz"); field(body, "Queue") != "ok" {
		t.Errorf("healthz %s: the line is not on the embedded Redis", body)
	}
	post := func(user string) (int, string) {
		res, err := http.Post(dev+"/session", "", strings.NewReader(`{"UserId":"`+user+`","ClientSession":"cs","ProjectId":"cap-dev00000"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if st, b := post("first"); st != 200 {
		t.Fatalf("start in the dev project: %d %s", st, b)
	}
	if st, b := post("second"); st != http.StatusAccepted || field(b, "Queue.Position") != "1" {
		t.Fatalf("second start with a pool of 1: %d %s, want a place in the embedded line", st, b)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(p.stdout.String(), "ignored here:"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("banner does not say what it ignored:\n%s", p.stdout.String())
		}
	}
	out := p.stdout.String() + p.stderr.String()
	for _, k := range []string{"QUEUE_REDIS_URL", "QUEUE_KEY_PREFIX", "CAR_PROJECT_ID", "CAR_ALLOWED_PROJECT_IDS"} {
		if !strings.Contains(out, k) {
			t.Errorf("banner does not name %s:\n%s", k, p.stdout.String())
		}
	}
	if strings.Contains(out, "prod-password") {
		t.Error("the production Redis password was printed")
	}
	if strings.Contains(p.stderr.String(), "TRUSTED_PROXY_CIDRS") {
		t.Errorf("dev mode warned about TRUSTED_PROXY_CIDRS (every dev caller is on loopback):\n%s", p.stderr.String())
	}
}

// The dev server answers only Host headers naming loopback (or its -listen
// address): a page that rebinds its DNS name to 127.0.0.1 reaches neither
// /dev/* nor the API.
func TestDevModeRefusesForeignHost(t *testing.T) {
	t.Parallel()
	dev, _ := devFunction(t)
	port := dev[strings.LastIndex(dev, ":")+1:]
	do := func(method, path, host, body string) (int, string) {
		req, _ := http.NewRequest(method, dev+path, strings.NewReader(body))
		req.Host = host
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, host := range []string{"evil.example:" + port, "evil.example", "localhost.evil.example:" + port, "127.0.0.1.nip.io:" + port, "127.0.0.2:" + port} {
		for _, r := range []struct{ method, path, body string }{
			{"GET", "/dev/state", ""}, {"POST", "/dev/connect", `{"UserId":"u1"}`}, {"GET", "/", ""},
			{"POST", "/session", `{"UserId":"u1","ClientSession":"cs"}`}, {"GET", "/healthz", ""},
		} {
			st, b := do(r.method, r.path, host, r.body)
			if st != http.StatusForbidden || field(b, "Error.Code") != "Forbidden" || !strings.Contains(b, "localhost") {
				t.Errorf("Host %s: %s %s = %d %s", host, r.method, r.path, st, b)
			}
		}
	}
	for _, host := range []string{"localhost:" + port, "LOCALHOST", "127.0.0.1:" + port, "[::1]:" + port, "localhost"} {
		if st, b := do("GET", "/dev/state", host, ""); st != 200 {
			t.Errorf("Host %s: GET /dev/state = %d %s", host, st, b)
		}
	}
}

// When the port is taken (an earlier make run), dev mode says how to pick
// another: -listen, and make run's PORT.
func TestDevModePortTaken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out, err := exec_(binary, []string{"PATH=" + os.Getenv("PATH")}, "-dev", "-listen", ln.Addr().String())
	if err == nil || !strings.Contains(out, "-listen 127.0.0.1:") || !strings.Contains(out, "make run PORT=") {
		t.Fatalf("err %v, output:\n%s", err, out)
	}
}
