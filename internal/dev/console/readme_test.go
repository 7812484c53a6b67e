package console_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/chromedp/chromedp"

	"carbroker/internal/dev/consoletest"
)

// readmeLoop is the README's client loop: the js block that defines
// startSession, as written.
func readmeLoop(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile("(?s)```js\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		if strings.Contains(m[1], "async function startSession(") {
			return m[1]
		}
	}
	t.Fatal("the README has no js block defining startSession")
	return ""
}

type loopResult struct {
	ServerSession string
	Error         string
	Places        []map[string]any
	Sessions      int // POST /session requests the loop sent
}

// runLoop runs the README's loop in a page of base, as a user pasting it
// would, and calls startSession(base, body) with an onPlace that records
// every place.
func runLoop(t *testing.T, base, body string, headers string) loopResult {
	t.Helper()
	tab := newTab(t)
	if err := chromedp.Do(tab.Ctx, chromedp.Navigate(base+"/carbroker.d.ts")); err != nil {
		t.Fatal(err)
	}
	out, err := chromedp.Run(tab.Ctx, chromedp.Evaluate[string](`(async () => {
`+readmeLoop(t)+`
		const places = [];
		try {
			const ss = await startSession(`+jsString(base)+`, `+body+`, (p) => places.push(p), `+headers+`);
			return JSON.stringify({ ServerSession: ss, Places: places });
		} catch (e) {
			return JSON.stringify({ Error: String(e.message), Places: places });
		}
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	var r loopResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, u := range tab.Requests() {
		if strings.HasSuffix(u, "/session") {
			r.Sessions++
		}
	}
	return r
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// call sends one request to the dev server and decodes its JSON reply.
func call(t *testing.T, method, url, body, bearer string) (int, map[string]any) {
	t.Helper()
	h := http.Header{}
	if bearer != "" {
		h.Set("Authorization", "Bearer "+bearer)
	}
	return send(t, method, url, body, h)
}

// callFrom is call for a client behind a trusted proxy at address from.
func callFrom(t *testing.T, from, method, url, body string) (int, map[string]any) {
	t.Helper()
	return send(t, method, url, body, http.Header{"X-Forwarded-For": {from}})
}

func send(t *testing.T, method, url, body string, h http.Header) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer res.Body.Close()
	var v map[string]any
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &v)
	return res.StatusCode, v
}

func startDev(t *testing.T, vars map[string]string) *consoletest.Dev {
	t.Helper()
	newTab(t) // skips without chromium, before building anything
	dev, err := consoletest.StartDev(vars)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	return dev
}

// The README's client loop, verbatim, against the dev server (make run's):
// it waits in line and gets the session when the pool frees; it gives up at
// once on NoIdleConcurrency without the line and on a refusal, and after a
// bounded number of tries on a 429 per-IP refusal.
func TestReadmeLoop(t *testing.T) {
	const cs = `"ClientSession":"dev-client-session"`
	t.Run("line on: waits, then starts", func(t *testing.T) {
		t.Parallel()
		dev := startDev(t, map[string]string{"DEV_CONCURRENCY": "1"})
		if code, _ := call(t, "POST", dev.URL+"/session", `{"UserId":"alice",`+cs+`}`, ""); code != 200 {
			t.Fatalf("alice: %d", code)
		}
		stopped := time.AfterFunc(3*time.Second, func() { call(t, "DELETE", dev.URL+"/session?UserId=alice", "", "") })
		defer stopped.Stop()
		r := runLoop(t, dev.URL, `{UserId: "bob", `+cs+`}`, `{}`)
		if r.ServerSession == "" || r.Error != "" {
			t.Fatalf("bob: %+v", r)
		}
		if len(r.Places) == 0 || r.Places[0]["Position"] != 1.0 {
			t.Fatalf("bob's places: %v", r.Places)
		}
	})
	t.Run("line on, ticket mode: polls as the same user", func(t *testing.T) {
		t.Parallel()
		dev := startDev(t, map[string]string{"DEV_CONCURRENCY": "1", "AUTH_MODE": "ticket",
			"AUTH_SECRET": strings.Repeat("readme-loop-test-secret-", 2)})
		code, first := call(t, "POST", dev.URL+"/session", `{`+cs+`}`, "")
		if code != 200 {
			t.Fatalf("first user: %d", code)
		}
		ticket, _ := first["Ticket"].(string)
		stopped := time.AfterFunc(3*time.Second, func() { call(t, "DELETE", dev.URL+"/session", "", ticket) })
		defer stopped.Stop()
		begin := time.Now()
		r := runLoop(t, dev.URL, `{`+cs+`}`, `{}`)
		if r.ServerSession == "" || len(r.Places) == 0 {
			t.Fatalf("second user: %+v", r)
		}
		// Without the ticket each poll would be a new user behind a
		// first place nobody polls, dropped only after QUEUE_ABANDON (30 s).
		if took := time.Since(begin); took > 20*time.Second {
			t.Fatalf("took %v", took)
		}
	})
	t.Run("line on: a refusal gives up at once", func(t *testing.T) {
		t.Parallel()
		dev := startDev(t, map[string]string{"DEV_CONCURRENCY": "1"})
		r := runLoop(t, dev.URL, `{UserId: "bob"}`, `{}`)
		if !strings.HasPrefix(r.Error, "InvalidParameter: ") || !strings.Contains(r.Error, "ClientSession") || r.Sessions != 1 {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("line on: per-IP refusals give up after 6 tries", func(t *testing.T) {
		t.Parallel()
		// The cap counts public addresses only (a loopback one says no
		// proxy is trusted): the clients come through a trusted proxy
		// from one public address.
		dev := startDev(t, map[string]string{"DEV_CONCURRENCY": "1", "QUEUE_MAX_PER_IP": "1",
			"TRUSTED_PROXY_CIDRS": "127.0.0.1/32"})
		const from = "203.0.113.7"
		if code, _ := call(t, "POST", dev.URL+"/session", `{"UserId":"alice",`+cs+`}`, ""); code != 200 {
			t.Fatalf("alice: %d", code)
		}
		// bob holds this address's one place, polling as a client does.
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				callFrom(t, from, "POST", dev.URL+"/session", `{"UserId":"bob",`+cs+`}`)
				select {
				case <-done:
					return
				case <-time.After(2 * time.Second):
				}
			}
		}()
		defer wg.Wait()
		defer close(done)
		time.Sleep(200 * time.Millisecond)
		r := runLoop(t, dev.URL, `{UserId: "carol", `+cs+`}`, `{"X-Forwarded-For": "`+from+`"}`)
		if !strings.HasPrefix(r.Error, "TooManyRequests: ") || !strings.Contains(r.Error, "QUEUE_MAX_PER_IP") || r.Sessions != 6 {
			t.Fatalf("got %+v", r)
		}
	})
	t.Run("line off: NoIdleConcurrency gives up at once", func(t *testing.T) {
		t.Parallel()
		dev := startDev(t, map[string]string{"DEV_CONCURRENCY": "1", "DEV_QUEUE": "false"})
		if code, _ := call(t, "POST", dev.URL+"/session", `{"UserId":"alice",`+cs+`}`, ""); code != 200 {
			t.Fatalf("alice: %d", code)
		}
		r := runLoop(t, dev.URL, `{UserId: "bob", `+cs+`}`, `{}`)
		if !strings.HasPrefix(r.Error, "NoIdleConcurrency: ") || r.Sessions != 1 || len(r.Places) != 0 {
			t.Fatalf("got %+v", r)
		}
	})
}

// A 202 without a Position (the function's line store in trouble) is
// waited out like any place, following Retry-After.
func TestReadmeLoopWaitsWithoutAPosition(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/session" {
			io.WriteString(w, "page")
			return
		}
		mu.Lock()
		at = append(at, time.Now())
		n := len(at)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if n < 3 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(202)
			io.WriteString(w, `{"UserId":"bob","Queue":{},"RequestId":"r"}`)
			return
		}
		io.WriteString(w, `{"UserId":"bob","ServerSession":"SS","RequestId":"r"}`)
	}))
	defer srv.Close()
	r := runLoop(t, srv.URL, `{UserId: "bob", ClientSession: "cs"}`, `{}`)
	if r.ServerSession != "SS" || len(r.Places) != 2 || len(r.Places[0]) != 0 {
		t.Fatalf("got %+v", r)
	}
	if gap := at[1].Sub(at[0]); gap < 950*time.Millisecond {
		t.Fatalf("polled again after %v; Retry-After said 1 s", gap)
	}
}

// Every relative link of the README and the docs it leads to reaches a file,
// and a heading there when it names one (GitHub's anchors); the README stays
// short, with the two commands on its first screen.
func TestDocLinks(t *testing.T) {
	root := "../../.."
	files := []string{"README.md", "docs/reference.md", "docs/clients.md", "docs/queue.md"}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, f := range files {
		b, err := os.ReadFile(root + "/" + f)
		if err != nil {
			t.Fatal(err)
		}
		dir := f[:strings.LastIndex(f, "/")+1]
		for _, m := range link.FindAllStringSubmatch(stripCode(string(b)), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			file := f
			if path != "" {
				file = cleanPath(dir + path)
			}
			body, err := os.ReadFile(root + "/" + file)
			if err != nil {
				t.Errorf("%s: link %s: %v", f, target, err)
				continue
			}
			if anchor != "" && strings.HasSuffix(file, ".md") && !anchors(string(body))[anchor] {
				t.Errorf("%s: link %s: no such heading in %s", f, target, file)
			}
		}
	}
	b, _ := os.ReadFile(root + "/README.md")
	lines := strings.Split(string(b), "\n")
	if len(lines) > 251 {
		t.Errorf("the README has %d lines; at most 250", len(lines)-1)
	}
	first := strings.Join(lines[:40], "\n")
	if !strings.Contains(first, "make run ") || !strings.Contains(first, "make test ") {
		t.Error("make run and make test are not in the README's first 40 lines")
	}
}

// stripCode drops fenced blocks and inline code, where brackets are not links.
func stripCode(s string) string {
	s = regexp.MustCompile("(?s)```.*?```").ReplaceAllString(s, "")
	return regexp.MustCompile("`[^`\n]*`").ReplaceAllString(s, "")
}

func cleanPath(p string) string {
	var out []string
	for _, part := range strings.Split(p, "/") {
		switch part {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, part)
		}
	}
	return strings.Join(out, "/")
}

// anchors are GitHub's: the heading lowercased, punctuation but - and _
// dropped, spaces made -, with -1, -2 … on repeats.
func anchors(md string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	for _, line := range strings.Split(regexp.MustCompile("(?s)```.*?```").ReplaceAllString(md, ""), "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var b strings.Builder
		for _, r := range h {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// The README's loop pasted into the console of a page of the dev server
// opened as http://localhost:PORT/ (the address its Host guard's refusal
// suggests, and a common habit), calling make run's printed
// http://127.0.0.1:PORT: the page's Content-Security-Policy lets it through.
func TestReadmeLoopFromALocalhostPage(t *testing.T) {
	dev := startDev(t, nil)
	tab := newTab(t)
	port := dev.URL[strings.LastIndex(dev.URL, ":")+1:]
	if err := chromedp.Do(tab.Ctx, chromedp.Navigate("http://localhost:"+port+"/carbroker.d.ts")); err != nil {
		t.Fatal(err)
	}
	out, err := chromedp.Run(tab.Ctx, chromedp.Evaluate[string](`(async () => {
`+readmeLoop(t)+`
		try {
			return await startSession(`+jsString(dev.URL)+`, { UserId: "demo-user", ClientSession: "dev-client-session" });
		} catch (e) {
			return "failed: " + e.message;
		}
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if out == "" || strings.HasPrefix(out, "failed") {
		t.Fatalf("the README's loop from http://localhost:%s/ to %s: %q", port, dev.URL, out)
	}
}
