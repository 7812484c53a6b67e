// Command smoke checks a deployed broker end to end, in four steps:
//
//	healthz    GET    /healthz   200 {"Status":"ok","Version":…}; reports the server's AUTH_MODE ("Auth")
//	start      POST   /session   200 with a ServerSession (and a UserId)
//	reconnect  POST   /session   the same again: 200 with a ServerSession
//	stop       DELETE /session   200 (also run after a failed start, to clean up)
//
// Usage:
//
//	go run ./internal/cmd/smoke -url https://<function url> [flags]
//	make smoke URL=https://<function url>
//
// A real ClientSession comes from the client SDK (TCGSDK.getClientSession()
// in a browser): pass one with -client-session or SMOKE_CLIENT_SESSION. Without
// one, -run-without-client starts the session with RunMode RunWithoutClient,
// which the deployment must allow (CAR_ALLOW_RUN_WITHOUT_CLIENT=true) and
// which holds a concurrency until the stop step; otherwise the session steps
// are skipped. Either way a start takes a real CAR concurrency for a moment.
//
// Authentication: -token (or SMOKE_TOKEN) is sent as "Authorization: Bearer"
// (AUTH_MODE=jwt), and the UserId is the token's. Without -token or -user,
// the start goes without a UserId: in ticket mode the server chooses one,
// and the UserId and Ticket of its reply are used from then on; a server
// that wants a UserId (AUTH_MODE=none) refuses it with a 400 and no CAR
// call, and the start is retried with a random one. -ticket insists on
// ticket mode; -user names the UserId.
//
// It prints one line per step (result, status, latency, detail) and a
// summary, and exits 1 if a step failed, 2 on bad usage. It never prints the
// ClientSession, the ServerSession, a ticket or the token: only their lengths.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"
	"unicode"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// options are the command line, resolved.
type options struct {
	base             *url.URL // the function's address, without a trailing slash
	token            string   // bearer token for the start, or the whole run
	ticket           bool     // AUTH_MODE=ticket: the server chooses the UserId
	clientSession    string
	runWithoutClient bool
	userID           string
	timeout          time.Duration // per request
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, err := parse(args, getenv, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "smoke: %v\n", err)
		}
		return 2
	}
	s := &smoke{o: o, out: stdout, client: &http.Client{Timeout: o.timeout}, bearer: o.token}
	s.run(ctx)
	fmt.Fprintf(stdout, "smoke: %d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped)
	if s.failed > 0 {
		return 1
	}
	return 0
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("smoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rawURL := fs.String("url", getenv("SMOKE_URL"), "the deployed function's address (Function URL or API Gateway path); env SMOKE_URL")
	token := fs.String("token", "", "bearer token for AUTH_MODE=jwt (or an invite); env SMOKE_TOKEN")
	ticket := fs.Bool("ticket", false, "AUTH_MODE=ticket: start without a UserId, then use the UserId and Ticket of the reply")
	clientSession := fs.String("client-session", "", "a ClientSession from the client SDK; env SMOKE_CLIENT_SESSION")
	runWithoutClient := fs.Bool("run-without-client", false, "without a ClientSession, start with RunMode RunWithoutClient (needs CAR_ALLOW_RUN_WITHOUT_CLIENT=true)")
	user := fs.String("user", "", "the UserId to use (default: the server's choice in ticket mode, the token's in jwt mode, else smoke- and 16 random hex digits)")
	timeout := fs.Duration("timeout", 30*time.Second, "timeout of each request")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o := options{
		token:            firstSet(*token, getenv("SMOKE_TOKEN")),
		ticket:           *ticket,
		clientSession:    firstSet(*clientSession, getenv("SMOKE_CLIENT_SESSION")),
		runWithoutClient: *runWithoutClient,
		userID:           *user,
		timeout:          *timeout,
	}
	if *rawURL == "" {
		return o, errors.New("-url is required: the deployed function's address, e.g. -url https://…")
	}
	u, err := url.Parse(*rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return o, fmt.Errorf("-url %q: want an http(s) address", *rawURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	o.base = u
	if o.timeout <= 0 {
		return o, errors.New("-timeout must be positive")
	}
	return o, nil
}

// randomUser is a UserId for a smoke run: smoke- and 16 random hex digits.
func randomUser() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return "smoke-" + hex.EncodeToString(b)
}

func firstSet(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// smoke runs the steps and counts their results.
type smoke struct {
	o      options
	out    io.Writer
	client *http.Client
	bearer string // the current Authorization: Bearer value, if any
	// askedForUserID: the start without a UserId was refused as invalid.
	askedForUserID bool

	passed, failed, skipped int
}

// reply is what the broker may answer, success or error.
type reply struct {
	Status, Version               string
	Auth                          string // GET /healthz: the AUTH_MODE the server runs
	UserId, ServerSession, Ticket string
	RequestId                     string
	Error                         *struct{ Code, Message string }

	decodeErr    error // the body is not the JSON wanted
	status       int   // 0: no reply
	latency      time.Duration
	contentType  string
	snippet      string // a redacted excerpt of a failed reply
	transportErr string // the request got no reply
}

func (s *smoke) run(ctx context.Context) {
	auth := "none"
	switch {
	case s.o.ticket:
		auth = "ticket"
	case s.o.token != "":
		auth = fmt.Sprintf("bearer token (%d bytes)", len(s.o.token))
	}
	who := s.o.userID
	if who == "" {
		who = "chosen by the server"
	}
	fmt.Fprintf(s.out, "smoke %s  user %s  sending auth %s\n", s.o.base.Redacted(), who, auth)

	s.healthz(ctx)

	switch {
	case s.o.clientSession != "":
	case s.o.runWithoutClient:
		fmt.Fprintln(s.out, "note: no ClientSession, starting with RunMode RunWithoutClient (the deployment must set CAR_ALLOW_RUN_WITHOUT_CLIENT=true)")
	default:
		reason := "no ClientSession: pass -client-session (or SMOKE_CLIENT_SESSION) from the client SDK, or -run-without-client if the deployment allows it"
		for _, name := range []string{"start", "reconnect", "stop"} {
			s.report("SKIP", name, nil, reason)
		}
		return
	}

	started := s.start(ctx, "start")
	if !started && s.askedForUserID {
		// AUTH_MODE=none (or sign): the server wants the UserId; it made no
		// CAR call for the refusal.
		s.o.userID, s.askedForUserID = randomUser(), false
		fmt.Fprintf(s.out, "note: the server wants a UserId (AUTH_MODE none?): starting again as %s\n", s.o.userID)
		started = s.start(ctx, "start")
	}
	if started {
		s.start(ctx, "reconnect")
	} else {
		s.report("SKIP", "reconnect", nil, "the start failed")
	}
	if s.o.userID == "" { // ticket mode, and the start gave no UserId
		s.report("SKIP", "stop", nil, "no UserId to stop")
		return
	}
	// Release the session even after an interrupt.
	s.stop(context.WithoutCancel(ctx), started)
}

func (s *smoke) healthz(ctx context.Context) {
	r := s.do(ctx, http.MethodGet, "/healthz", nil)
	switch {
	case r.status != http.StatusOK:
		s.fail("healthz", r, "want 200")
	case r.decodeErr != nil:
		s.fail("healthz", r, "the reply is not JSON: "+r.decodeErr.Error())
	case r.Status != "ok" || r.Version == "":
		s.fail("healthz", r, printable(fmt.Sprintf(`want {"Status":"ok","Version":…}, got Status %q, Version %q`, r.Status, r.Version)))
	default:
		s.report("PASS", "healthz", &r, "version "+printable(r.Version)+", "+s.serverAuth(r.Auth))
	}
}

// serverAuth reports the AUTH_MODE the server says it runs, and what the
// smoke's flags lack for it.
func (s *smoke) serverAuth(mode string) string {
	if mode == "" {
		return "server auth mode not reported (a broker older than this smoke)"
	}
	msg := "server AUTH_MODE=" + printable(mode)
	switch mode {
	case "jwt":
		if s.o.token == "" {
			msg += " (the start needs -token: a JWT the server accepts; locally: make jwt USER=…)"
		}
	case "ticket":
		if s.o.token != "" {
			msg += " (-token is sent as a ticket)"
		}
	}
	return msg
}

// start posts a session start and reports whether it got a ServerSession.
func (s *smoke) start(ctx context.Context, step string) bool {
	body := map[string]string{}
	if s.o.userID != "" {
		body["UserId"] = s.o.userID
	}
	if s.o.clientSession != "" {
		body["ClientSession"] = s.o.clientSession
	} else {
		body["RunMode"] = "RunWithoutClient"
	}
	r := s.do(ctx, http.MethodPost, "/session", body)
	switch {
	case r.status == http.StatusBadRequest && s.o.userID == "" && !s.o.ticket && s.o.token == "" && step == "start" &&
		r.Error != nil && r.Error.Code == "InvalidParameter":
		s.askedForUserID = true
		s.report("NOTE", step, &r, "refused without a UserId")
		return false
	case r.status != http.StatusOK:
		s.fail(step, r, "want 200")
		return false
	case r.decodeErr != nil:
		s.fail(step, r, "the reply is not JSON: "+r.decodeErr.Error())
		return false
	case r.ServerSession == "":
		s.fail(step, r, "the reply has no ServerSession")
		return false
	case r.UserId == "":
		s.fail(step, r, "the reply has no UserId")
		return false
	case s.o.ticket && r.Ticket == "":
		s.fail(step, r, "ticket mode: the reply has no Ticket")
		return false
	case s.o.ticket && s.o.userID != "" && r.UserId != s.o.userID:
		s.fail(step, r, "ticket mode: the reply's UserId is not the ticket's")
		return false
	}
	detail := fmt.Sprintf("ServerSession %d bytes", len(r.ServerSession))
	if r.UserId != s.o.userID {
		detail += ", UserId " + printable(r.UserId)
		s.o.userID = r.UserId // jwt and ticket modes: the server decides
	}
	if r.Ticket != "" {
		detail += fmt.Sprintf(", Ticket %d bytes", len(r.Ticket))
		s.bearer = r.Ticket // every success renews the ticket
	}
	s.report("PASS", step, &r, detail)
	return true
}

func (s *smoke) stop(ctx context.Context, started bool) {
	q := url.Values{"UserId": {s.o.userID}}
	r := s.do(ctx, http.MethodDelete, "/session?"+q.Encode(), map[string]string{"UserId": s.o.userID})
	switch {
	case r.status != http.StatusOK:
		s.fail("stop", r, "want 200")
	case !started:
		s.report("PASS", "stop", &r, "cleanup after the failed start")
	default:
		s.report("PASS", "stop", &r, "")
	}
}

// maxBody bounds what is read of a reply.
const maxBody = 1 << 20

// do sends one request and decodes the reply; it never fails, the reply
// carries what went wrong.
func (s *smoke) do(ctx context.Context, method, path string, body map[string]string) reply {
	var r reply
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			r.transportErr = err.Error()
			return r
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.o.base.String()+path, rd)
	if err != nil {
		r.transportErr = err.Error()
		return r
	}
	req.Header.Set("User-Agent", "carbroker-smoke")
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+s.bearer)
	}
	began := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		r.latency = time.Since(began)
		r.transportErr = transportError(err)
		return r
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	r.latency = time.Since(began)
	r.status = resp.StatusCode
	r.contentType = resp.Header.Get("Content-Type")
	if err != nil {
		r.transportErr = "reading the reply: " + transportError(err)
		return r
	}
	r.decodeErr = json.Unmarshal(b, &r)
	if r.decodeErr != nil || r.status != http.StatusOK {
		r.snippet = redact(b)
	}
	return r
}

// transportError describes a failed exchange without the URL, which the
// error repeats.
func transportError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// fail reports a failed step: what was wanted, and what came instead.
func (s *smoke) fail(step string, r reply, want string) {
	detail := want
	switch {
	case r.transportErr != "":
		detail = r.transportErr
	case r.Error != nil && r.Error.Code != "":
		detail += "; " + printable(r.Error.Code) + ": " + printable(r.Error.Message)
	case r.snippet != "":
		detail += fmt.Sprintf("; %s %q", r.contentType, r.snippet)
	}
	s.report("FAIL", step, &r, detail)
}

// report prints one step's line and counts it (a NOTE is not counted).
func (s *smoke) report(result, step string, r *reply, detail string) {
	switch result {
	case "PASS":
		s.passed++
	case "FAIL":
		s.failed++
	case "SKIP":
		s.skipped++
	}
	status, latency := "-", "-"
	if r != nil {
		if r.status != 0 {
			status = fmt.Sprint(r.status)
		}
		if r.latency > 0 {
			latency = milliseconds(r.latency)
		}
		if r.RequestId != "" {
			detail = strings.TrimPrefix(detail+"; RequestId "+printable(r.RequestId), "; ")
		}
	}
	fmt.Fprintf(s.out, "%-4s  %-9s  %3s  %8s  %s\n", result, step, status, latency, detail)
}

// milliseconds formats d as 0.4ms, 12ms or 1234ms.
func milliseconds(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if ms < 10 {
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}

// secretKeys are the reply fields never shown, even in a broken reply.
var secretKeys = []string{"ServerSession", "ClientSession", "Ticket", "SessionDescribe"}

// redact returns a short, printable excerpt of a reply body, with the
// values of secretKeys blanked when it is a JSON object.
func redact(b []byte) string {
	var obj map[string]any
	if json.Unmarshal(b, &obj) == nil {
		for _, k := range secretKeys {
			if _, ok := obj[k]; ok {
				obj[k] = "(redacted)"
			}
		}
		b, _ = json.Marshal(obj)
	} else if bytes.Contains(b, []byte("Session")) || bytes.Contains(b, []byte("Ticket")) {
		return fmt.Sprintf("(%d bytes, not shown: they may hold a session)", len(b))
	}
	return printable(string(b))
}

// printable caps s at 160 characters and drops control characters, so that a
// reply cannot garble the terminal.
func printable(s string) string {
	var b strings.Builder
	n := 0
	for _, c := range s {
		if n == 160 {
			b.WriteString("…")
			break
		}
		if unicode.IsControl(c) || c == unicode.ReplacementChar {
			c = ' '
		}
		b.WriteRune(c)
		n++
	}
	return b.String()
}
