package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// Values the smoke must never print.
const (
	clientSession = "SECRET-CLIENT-SESSION"
	serverSession = "SECRET-SERVER-SESSION"
	ticketPrefix  = "SECRET-TICKET-"
	jwt           = "SECRET-JWT"
)

// fake speaks the broker's HTTP contract, in one AUTH_MODE, with injectable
// failures, and records the calls it gets.
type fake struct {
	mode      string // "none", "jwt" or "ticket"
	version   string // GET /healthz's Version
	failStart int    // if set, POST /session answers this status with an error
	block     chan struct{}

	mu      sync.Mutex
	calls   []string // "METHOD path UserId RunMode"
	tickets int
}

func (f *fake) serve(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(f.handle)) // 127.0.0.1
	t.Cleanup(srv.Close)
	if f.block != nil {
		t.Cleanup(func() { close(f.block) }) // runs before srv.Close
	}
	return srv.URL + "/release" // a base path, as behind API Gateway
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"Error": map[string]string{"Code": code, "Message": msg}, "RequestId": "req-err"})
}

func (f *fake) handle(w http.ResponseWriter, r *http.Request) {
	if f.block != nil {
		<-f.block
	}
	path := strings.TrimPrefix(r.URL.Path, "/release")
	if r.Method == http.MethodGet && path == "/healthz" {
		writeJSON(w, 200, map[string]string{"Status": "ok", "Version": f.version})
		return
	}
	if path != "/session" || (r.Method != http.MethodPost && r.Method != http.MethodDelete) {
		fail(w, 404, "NotFound", "no such route")
		return
	}
	var body map[string]string
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		fail(w, 400, "InvalidParameter", "bad JSON")
		return
	}
	user := body["UserId"]
	if q := r.URL.Query().Get("UserId"); q != "" && user != "" && q != user {
		fail(w, 400, "InvalidParameter", "UserId differs in body and query")
		return
	}
	f.mu.Lock()
	f.calls = append(f.calls, strings.TrimSpace(fmt.Sprintf("%s %s %s %s", r.Method, path, user, body["RunMode"])))
	f.mu.Unlock()

	bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	var ticket string
	switch f.mode {
	case "jwt":
		if bearer != jwt {
			fail(w, 401, "Unauthenticated", "missing token")
			return
		}
		user = "jwt-user" // from the token, whatever the body says
	case "ticket":
		f.mu.Lock()
		switch {
		case bearer == "" && user == "" && r.Method == http.MethodPost:
			user = "u-minted"
		case bearer != ticketPrefix+fmt.Sprint(f.tickets) || user != "u-minted":
			f.mu.Unlock()
			fail(w, 401, "Unauthenticated", "a UserId needs its ticket")
			return
		}
		f.tickets++
		ticket = ticketPrefix + fmt.Sprint(f.tickets)
		f.mu.Unlock()
	default:
		if user == "" {
			fail(w, 400, "InvalidParameter", "UserId is required")
			return
		}
	}

	if r.Method == http.MethodDelete {
		writeJSON(w, 200, map[string]string{"UserId": user, "RequestId": "req-stop"})
		return
	}
	if body["ClientSession"] == "" && body["RunMode"] != "RunWithoutClient" {
		fail(w, 400, "InvalidParameter", "ClientSession is required")
		return
	}
	if body["ClientSession"] != "" && body["ClientSession"] != clientSession {
		fail(w, 400, "InvalidParameter", "wrong ClientSession")
		return
	}
	if f.failStart != 0 {
		fail(w, f.failStart, "ResourceNotFound.NoIdle", "no idle concurrency")
		return
	}
	out := map[string]string{"UserId": user, "ServerSession": serverSession, "RequestId": "req-start"}
	if ticket != "" {
		out["Ticket"] = ticket
	}
	writeJSON(w, 200, out)
}

func (f *fake) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func runSmoke(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
	out := stdout.String() + stderr.String()
	for _, secret := range []string{clientSession, serverSession, ticketPrefix, jwt} {
		if strings.Contains(out, secret) {
			t.Errorf("the output shows a secret (%s):\n%s", secret, out)
		}
	}
	return code, out
}

// lines returns the result lines: "RESULT step status".
func lines(out string) []string {
	var got []string
	re := regexp.MustCompile(`(?m)^(PASS|FAIL|SKIP)\s+(\S+)\s+(\S+)`)
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		got = append(got, m[1]+" "+m[2]+" "+m[3])
	}
	return got
}

func check(t *testing.T, out string, code, wantCode int, want ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("exit %d, want %d", code, wantCode)
	}
	if got := lines(out); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

func TestNoAuth(t *testing.T) {
	f := &fake{mode: "none", version: "v1.2.3"}
	url := f.serve(t)
	code, out := runSmoke(t, nil, "-url", url+"/", "-client-session", clientSession, "-user", "smoke-test")
	check(t, out, code, 0, "PASS healthz 200", "PASS start 200", "PASS reconnect 200", "PASS stop 200")
	for _, want := range []string{"version v1.2.3", "ServerSession 21 bytes", "RequestId req-start", "smoke: 4 passed, 0 failed, 0 skipped"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	calls := f.recorded()
	want := []string{"POST /session smoke-test", "POST /session smoke-test", "DELETE /session smoke-test"}
	if strings.Join(calls, ",") != strings.Join(want, ",") {
		t.Errorf("calls %q, want %q", calls, want)
	}
	if !regexp.MustCompile(`PASS  start      200  +[\d.]+ms  `).MatchString(out) {
		t.Errorf("no latency on the start line:\n%s", out)
	}
}

func TestRandomUserAndEnv(t *testing.T) {
	f := &fake{mode: "none", version: "dev"}
	env := map[string]string{"SMOKE_URL": f.serve(t), "SMOKE_CLIENT_SESSION": clientSession}
	code, out := runSmoke(t, env)
	check(t, out, code, 0, "PASS healthz 200", "PASS start 200", "PASS reconnect 200", "PASS stop 200")
	// Asked first without a UserId (ticket mode would choose one), then
	// with a random one when the server wants it.
	calls := f.recorded()
	if len(calls) != 4 || calls[0] != "POST /session" || !regexp.MustCompile(`^POST /session smoke-[0-9a-f]{16}$`).MatchString(calls[1]) {
		t.Errorf("calls %q, want a start without UserId, then a random smoke- UserId", calls)
	}
	if !strings.Contains(out, "the server wants a UserId") || !strings.Contains(out, "smoke: 4 passed, 0 failed, 0 skipped") {
		t.Errorf("output:\n%s", out)
	}
}

func TestJWT(t *testing.T) {
	f := &fake{mode: "jwt", version: "dev"}
	url := f.serve(t)
	code, out := runSmoke(t, nil, "-url", url, "-token", jwt, "-client-session", clientSession)
	check(t, out, code, 0, "PASS healthz 200", "PASS start 200", "PASS reconnect 200", "PASS stop 200")
	// The UserId the server chose (from the token) is the one stopped.
	if calls := f.recorded(); calls[len(calls)-1] != "DELETE /session jwt-user" {
		t.Errorf("calls %q, want the stop for jwt-user", calls)
	}

	// Without the token: the start fails, and there is no UserId to stop.
	code, out = runSmoke(t, nil, "-url", url, "-client-session", clientSession)
	check(t, out, code, 1, "PASS healthz 200", "FAIL start 401", "SKIP reconnect -", "SKIP stop -")
	if !strings.Contains(out, "Unauthenticated: missing token") {
		t.Errorf("the failure does not say why:\n%s", out)
	}
}

func TestTicket(t *testing.T) {
	f := &fake{mode: "ticket", version: "dev"}
	url := f.serve(t)
	code, out := runSmoke(t, nil, "-url", url, "-ticket", "-run-without-client")
	check(t, out, code, 0, "PASS healthz 200", "PASS start 200", "PASS reconnect 200", "PASS stop 200")
	want := []string{"POST /session  RunWithoutClient", "POST /session u-minted RunWithoutClient", "DELETE /session u-minted"}
	if calls := f.recorded(); strings.Join(calls, ",") != strings.Join(want, ",") {
		t.Errorf("calls %q, want %q", calls, want)
	}
	if !strings.Contains(out, "Ticket 15 bytes") || !strings.Contains(out, "UserId u-minted") {
		t.Errorf("output lacks the ticket's length or the minted UserId:\n%s", out)
	}
}

func TestStartFails(t *testing.T) {
	f := &fake{mode: "none", version: "dev", failStart: 503}
	code, out := runSmoke(t, nil, "-url", f.serve(t), "-client-session", clientSession)
	check(t, out, code, 1, "PASS healthz 200", "FAIL start 503", "SKIP reconnect -", "PASS stop 200")
	for _, want := range []string{"ResourceNotFound.NoIdle: no idle concurrency", "RequestId req-err", "cleanup after the failed start", "smoke: 2 passed, 1 failed, 1 skipped"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestHealthzWithoutVersion(t *testing.T) {
	f := &fake{mode: "none"}
	code, out := runSmoke(t, nil, "-url", f.serve(t), "-client-session", clientSession)
	check(t, out, code, 1, "FAIL healthz 200", "PASS start 200", "PASS reconnect 200", "PASS stop 200")
}

func TestNoClientSession(t *testing.T) {
	f := &fake{mode: "none", version: "dev"}
	code, out := runSmoke(t, nil, "-url", f.serve(t))
	check(t, out, code, 0, "PASS healthz 200", "SKIP start -", "SKIP reconnect -", "SKIP stop -")
	if !strings.Contains(out, "-run-without-client") || len(f.recorded()) != 0 {
		t.Errorf("want the skips explained and no session call:\n%s", out)
	}
}

func TestTimeout(t *testing.T) {
	f := &fake{mode: "none", version: "dev", block: make(chan struct{})}
	began := time.Now()
	code, out := runSmoke(t, nil, "-url", f.serve(t), "-client-session", clientSession, "-timeout", "50ms", "-user", "smoke-test")
	check(t, out, code, 1, "FAIL healthz -", "FAIL start -", "SKIP reconnect -", "FAIL stop -")
	if !strings.Contains(out, "Timeout") {
		t.Errorf("the failures do not say timeout:\n%s", out)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestNotTheBroker(t *testing.T) {
	// A gateway error page, or a reply that carries a session by mistake.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(403)
			fmt.Fprint(w, `{"errno":403,"error":"Invalid scf response format"}`)
			return
		}
		w.WriteHeader(500)
		fmt.Fprintf(w, `{"ServerSession":%q,"Ticket":"%s1"}`, serverSession, ticketPrefix)
	}))
	t.Cleanup(srv.Close)
	code, out := runSmoke(t, nil, "-url", srv.URL, "-client-session", clientSession, "-user", "smoke-test")
	check(t, out, code, 1, "FAIL healthz 403", "FAIL start 500", "SKIP reconnect -", "FAIL stop 500")
	if !strings.Contains(out, "Invalid scf response format") || !strings.Contains(out, "(redacted)") {
		t.Errorf("want the gateway's error shown and the session redacted:\n%s", out)
	}
}

func TestUsage(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "-url is required"},
		{[]string{"-url", "ftp://x"}, "want an http(s) address"},
		{[]string{"-url", "https://"}, "want an http(s) address"},
		{[]string{"-url", "https://x", "more"}, "unexpected arguments"},
		{[]string{"-url", "https://x", "-timeout", "0s"}, "-timeout must be positive"},
		{[]string{"-bogus"}, "flag provided but not defined"},
	}
	for _, c := range cases {
		code, out := runSmoke(t, nil, c.args...)
		if code != 2 || !strings.Contains(out, c.want) {
			t.Errorf("smoke %q: exit %d, %q; want 2 and %q", c.args, code, out, c.want)
		}
	}
}

// FuzzRedact: whatever a reply holds, the excerpt is short and printable,
// and a ServerSession in a JSON reply is never shown.
func FuzzRedact(f *testing.F) {
	f.Add([]byte(`{"ServerSession":"abc","Error":{"Code":"X"}}`), "SESSIONabcdef123", "no idle")
	f.Add([]byte("plain \x1b[31mtext\r\n with Session inside"), "x", "")
	f.Add([]byte(`{"errno":403,"error":"Invalid scf response format"}`), "0123456789", "msg")
	f.Fuzz(func(t *testing.T, raw []byte, session, message string) {
		got := redact(raw)
		if n := utf8.RuneCountInString(got); n > 161 {
			t.Fatalf("%d runes", n)
		}
		for _, c := range got {
			if unicode.IsControl(c) {
				t.Fatalf("control character %U in %q", c, got)
			}
		}

		body, _ := json.Marshal(map[string]any{"ServerSession": session, "Error": map[string]string{"Message": message}})
		rest, _ := json.Marshal(map[string]any{"ServerSession": "(redacted)", "Error": map[string]string{"Message": message}})
		if len(session) < 8 || bytes.Contains(rest, []byte(session)) {
			return // too short to tell, or shown as part of something else
		}
		if got := redact(body); strings.Contains(got, session) {
			t.Fatalf("ServerSession %q shown in %q", session, got)
		}
	})
}
