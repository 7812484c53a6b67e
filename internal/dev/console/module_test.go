package console_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// reply is one scripted answer of the fake function.
type reply struct {
	status     int
	retryAfter string
	body       string
	delay      time.Duration // before the reply is written
}

// seen is one request the fake function got.
type seen struct {
	Method, Path, Authorization, Body string
	At                                time.Time // arrived
	Done                              time.Time // replied
}

func (s seen) String() string { return s.Method + " " + s.Path }

// fakeFunction serves the module, a blank page, and scripted replies on
// every other path (the last reply repeats): routes' script for that
// "METHOD /path" when there is one, else script.
type fakeFunction struct {
	*httptest.Server
	mu     sync.Mutex
	script []reply
	routes map[string][]reply
	got    []seen
}

func newFake(t *testing.T, script ...reply) *fakeFunction {
	t.Helper()
	f := &fakeFunction{script: script}
	module, err := os.ReadFile(filepath.Join("client", "carbroker.js"))
	if err != nil {
		t.Fatal(err)
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, `<!doctype html><html lang="en"><head><title>module test</title><link rel="icon" href="data:,"></head><body></body></html>`)
			return
		case "/mark": // the page says when something happened
			f.mu.Lock()
			f.got = append(f.got, seen{Method: r.Method, Path: r.URL.Path, At: time.Now(), Done: time.Now()})
			f.mu.Unlock()
			return
		case "/carbroker.js":
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Write(module)
			return
		}
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		i := len(f.got)
		f.got = append(f.got, seen{Method: r.Method, Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Body: string(b), At: time.Now()})
		script := f.script
		route, routed := f.routes[r.Method+" "+r.URL.Path]
		if routed {
			script = route
		}
		rep := script[0]
		if len(script) > 1 {
			script = script[1:]
		}
		if routed {
			f.routes[r.Method+" "+r.URL.Path] = script
		} else {
			f.script = script
		}
		f.mu.Unlock()
		time.Sleep(rep.delay)
		defer func() {
			f.mu.Lock()
			f.got[i].Done = time.Now()
			f.mu.Unlock()
		}()
		if rep.retryAfter != "" {
			w.Header().Set("Retry-After", rep.retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(rep.body, "<") {
			w.Header().Set("Content-Type", "text/html")
		}
		w.WriteHeader(rep.status)
		io.WriteString(w, rep.body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeFunction) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.got...)
}

// run evaluates an async function body in a page of the fake function, with
// createBroker and BrokerError in scope, and decodes what it returns.
func run[T any](t *testing.T, f *fakeFunction, body string) T {
	t.Helper()
	tab := newTab(t)
	if err := chromedp.Do(tab.Ctx, chromedp.Navigate(f.URL+"/")); err != nil {
		t.Fatal(err)
	}
	out, err := chromedp.Run(tab.Ctx, chromedp.Evaluate[string](`(async () => {
		const { createBroker, BrokerError } = await import("/carbroker.js");
		const result = await (async () => {`+body+`})();
		return JSON.stringify(result);
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return v
}

// caught is how the page reports a rejection.
const catchJS = `catch (e) {
	return {name: e.name, code: String(e.code ?? ""), status: e.status, requestId: e.requestId, retryAfter: e.retryAfter,
		message: e.message, typed: e instanceof BrokerError};
}`

type caughtError struct {
	Name, Code, RequestId, Message string
	Status, RetryAfter             int
	Typed                          bool
}

func TestModuleFollowsRetryAfterAndTheLine(t *testing.T) {
	f := newFake(t,
		reply{503, "1", `{"Error":{"Code":"Unavailable","Message":"CAR is busy"},"RequestId":"r1"}`, 0},
		reply{202, "1", `{"UserId":"u1","Queue":{"Position":2,"Ahead":1,"EtaSeconds":9},"RequestId":"r2"}`, 0},
		reply{202, "1", `{"UserId":"u1","Queue":{"Position":1,"Ahead":0},"RequestId":"r3"}`, 0},
		reply{200, "", `{"UserId":"u1","ServerSession":"SS-1","RequestId":"r4"}`, 0},
	)
	got := run[struct {
		ServerSession string
		Queue         []map[string]any
	}](t, f, `
		const queue = [];
		const broker = createBroker({ userId: "u1" });
		const ServerSession = await broker.start({ clientSession: "cs", onQueue: (q) => queue.push(q) });
		return { ServerSession, Queue: queue };`)
	if got.ServerSession != "SS-1" {
		t.Fatalf("ServerSession %q", got.ServerSession)
	}
	if len(got.Queue) != 2 || got.Queue[0]["position"] != 2.0 || got.Queue[0]["ahead"] != 1.0 || got.Queue[0]["etaSeconds"] != 9.0 ||
		got.Queue[1]["position"] != 1.0 || got.Queue[1]["etaSeconds"] != nil {
		t.Fatalf("onQueue calls %v", got.Queue)
	}
	reqs := f.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests", len(reqs))
	}
	for i, r := range reqs {
		if r.Method != "POST" || r.Path != "/session" || !strings.Contains(r.Body, `"UserId":"u1"`) || !strings.Contains(r.Body, `"ClientSession":"cs"`) {
			t.Errorf("request %d: %+v", i, r)
		}
		if i > 0 {
			if gap := r.At.Sub(reqs[i-1].At); gap < 950*time.Millisecond {
				t.Errorf("request %d came %v after the previous one; Retry-After said 1 s", i, gap)
			}
		}
	}
}

func TestModuleTypedErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		script   []reply
		want     caughtError
		requests int
	}{
		{"refusal", []reply{{403, "", `{"Error":{"Code":"Forbidden","Message":"not yours"},"RequestId":"rq-1"}`, 0}},
			caughtError{Name: "BrokerError", Code: "Forbidden", Status: 403, RequestId: "rq-1", Message: "not yours", Typed: true}, 1},
		{"no line", []reply{{503, "2", `{"Error":{"Code":"NoIdleConcurrency","Message":"no idle concurrency"},"RequestId":"rq-2"}`, 0}},
			caughtError{Name: "BrokerError", Code: "NoIdleConcurrency", Status: 503, RequestId: "rq-2", RetryAfter: 2000, Message: "no idle concurrency", Typed: true}, 1},
		{"transient until it gives up", []reply{{502, "", `<html>Bad Gateway</html>`, 0}},
			caughtError{Name: "BrokerError", Code: "UpstreamError", Status: 502, Message: "HTTP 502 without the function's error body", Typed: true}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, tc.script...)
			got := run[caughtError](t, f, `
				try {
					await createBroker({ userId: "u1", maxRetries: 2 }).start({ clientSession: "cs" });
					return {};
				} `+catchJS)
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
			if n := len(f.requests()); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
		})
	}
}

func TestModuleAbort(t *testing.T) {
	f := newFake(t, reply{202, "30", `{"UserId":"u1","Queue":{"Position":5,"Ahead":4,"EtaSeconds":60},"RequestId":"r"}`, 0})
	begin := time.Now()
	got := run[caughtError](t, f, `
		const ac = new AbortController();
		try {
			await createBroker({ userId: "u1" }).start({ clientSession: "cs", signal: ac.signal,
				onQueue: () => setTimeout(() => ac.abort(), 100) });
			return {};
		} `+catchJS)
	if got.Name != "AbortError" || got.Typed {
		t.Fatalf("abort: %+v", got)
	}
	if took := time.Since(begin); took > 15*time.Second {
		t.Fatalf("abort took %v: it waited out Retry-After", took)
	}
	if n := len(f.requests()); n != 1 {
		t.Fatalf("%d requests after abort", n)
	}
}

func TestModuleKeepsTheTicket(t *testing.T) {
	f := newFake(t,
		reply{200, "", `{"UserId":"minted-1","ServerSession":"SS-1","RequestId":"r1","Ticket":"T1"}`, 0},
		reply{200, "", `{"UserId":"minted-1","ServerSession":"SS-2","RequestId":"r2","Ticket":"T2"}`, 0},
		reply{401, "", `{"Error":{"Code":"Unauthorized","Message":"ticket expired"},"RequestId":"r3"}`, 0},
	)
	got := run[map[string]any](t, f, `
		const first = createBroker();
		await first.start({ clientSession: "cs" });
		const afterFirst = localStorage.getItem("carbroker.ticket");
		// A new page load: a new broker finds the ticket in localStorage.
		const second = createBroker();
		const ss = await second.start({ clientSession: "cs" });
		const afterSecond = localStorage.getItem("carbroker.ticket");
		let code = "";
		try { await second.start({ clientSession: "cs" }); } catch (e) { code = e.code; }
		return { afterFirst, ss, afterSecond, userId: second.userId, code, afterRefusal: localStorage.getItem("carbroker.ticket") };`)
	want := map[string]any{"afterFirst": "T1", "ss": "SS-2", "afterSecond": "T2", "userId": "", "code": "Unauthorized", "afterRefusal": nil}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	reqs := f.requests()
	if len(reqs) != 3 || reqs[0].Authorization != "" || strings.Contains(reqs[0].Body, "UserId") ||
		reqs[1].Authorization != "Bearer T1" || reqs[2].Authorization != "Bearer T2" {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestModuleNetworkError(t *testing.T) {
	f := newFake(t, reply{200, "", `{}`, 0})
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // a loopback port nobody answers on
	got := run[caughtError](t, f, `
		try {
			await createBroker({ baseUrl: "`+closed.URL+`", userId: "u1", maxRetries: 1 }).start({ clientSession: "cs" });
			return {};
		} `+catchJS)
	if got.Code != "NetworkError" || !got.Typed || got.Status != 0 {
		t.Fatalf("unreachable function: %+v", got)
	}
}

// after returns the requests after the first one matching method and path
// (all of them when there is none).
func after(reqs []seen, what string) []seen {
	for i, r := range reqs {
		if r.String() == what {
			return reqs[i+1:]
		}
	}
	return reqs
}

func count(reqs []seen, what string) int {
	n := 0
	for _, r := range reqs {
		if r.String() == what {
			n++
		}
	}
	return n
}

const (
	waiting = `{"UserId":"u1","Queue":{"Position":2,"Ahead":1,"EtaSeconds":9},"RequestId":"q"}`
	started = `{"UserId":"u1","ServerSession":"SS-1","RequestId":"s"}`
	stopped = `{"UserId":"u1","RequestId":"d"}`
)

// stop() while start() waits out Retry-After leaves the line: start()
// rejects at once with an AbortError, the DELETE is the next request, and no
// poll follows it (the page would otherwise go on saying "You are number 2"
// and the function would put the user back in line).
func TestModuleStopWhileWaiting(t *testing.T) {
	f := newFake(t, reply{200, "", stopped, 0})
	f.routes = map[string][]reply{"POST /session": {{202, "1", waiting, 0}}}
	got := run[map[string]any](t, f, `
		const broker = createBroker({ userId: "u1" });
		let queued;
		const seen = new Promise((ok) => { queued = ok; });
		const pending = broker.start({ clientSession: "cs", onQueue: queued });
		const outcome = pending.then(() => "resolved", (e) => e.name);
		await seen;
		const stop = await broker.stop();
		const first = await Promise.race([outcome, new Promise((ok) => setTimeout(() => ok("still pending"), 100))]);
		await new Promise((ok) => setTimeout(ok, 2500)); // Retry-After was 1 s: a poll would come now
		return { start: first, stop: stop.UserId };`)
	if got["start"] != "AbortError" || got["stop"] != "u1" {
		t.Fatalf("start %v, stop %v", got["start"], got["stop"])
	}
	reqs := f.requests()
	if n := count(reqs, "DELETE /session"); n != 1 {
		t.Fatalf("%d DELETEs: %v", n, reqs)
	}
	if later := after(reqs, "DELETE /session"); len(later) > 0 {
		t.Fatalf("requests after the DELETE: %v (all: %v)", later, reqs)
	}
}

// A poll already on the wire when stop() is called: the DELETE goes out
// after its reply, and nothing follows the DELETE.
func TestModuleStopWhilePollOnTheWire(t *testing.T) {
	f := newFake(t, reply{200, "", stopped, 0})
	f.routes = map[string][]reply{"POST /session": {{202, "1", waiting, 800 * time.Millisecond}}}
	got := run[map[string]any](t, f, `
		const broker = createBroker({ userId: "u1" });
		const outcome = broker.start({ clientSession: "cs" }).then(() => "resolved", (e) => e.name);
		await new Promise((ok) => setTimeout(ok, 200));
		await broker.stop();
		const start = await Promise.race([outcome, new Promise((ok) => setTimeout(() => ok("still pending"), 3000))]);
		await new Promise((ok) => setTimeout(ok, 2000));
		return { start };`)
	if got["start"] != "AbortError" {
		t.Fatalf("start %v", got["start"])
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[0].String() != "POST /session" || reqs[1].String() != "DELETE /session" {
		t.Fatalf("requests %v, want the poll then the DELETE", reqs)
	}
	if reqs[1].At.Before(reqs[0].Done) {
		t.Fatalf("the DELETE arrived %v before the poll was answered", reqs[0].Done.Sub(reqs[1].At))
	}
}

// The heartbeat: POST /session/alive at the interval the function gives,
// after a successful start, with the stop's body; none after stop(),
// forget(), or a start that failed.
func TestModuleHeartbeat(t *testing.T) {
	alive := `{"UserId":"u1","Holding":true,"HeartbeatSeconds":1,"RequestId":"a"}`
	for _, tc := range []struct {
		name, end, marker string
	}{
		{"stop", `await broker.stop();`, "DELETE /session"},
		{"forget", `broker.forget(); await fetch("/mark");`, "GET /mark"},
		{"failed start", `await broker.start({ clientSession: "cs" }).catch(() => {});`, "POST /session"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, reply{200, "", stopped, 0})
			f.routes = map[string][]reply{
				"POST /session":       {{200, "", started, 0}, {403, "", `{"Error":{"Code":"Forbidden","Message":"no"},"RequestId":"f"}`, 0}},
				"POST /session/alive": {{200, "", alive, 0}},
			}
			run[any](t, f, `
				const broker = createBroker({ userId: "u1", heartbeatSeconds: 0.5, projectId: "cap-one" });
				await broker.start({ clientSession: "cs" });
				await new Promise((ok) => setTimeout(ok, 1800));
				`+tc.end+`
				await new Promise((ok) => setTimeout(ok, 2500));
				return null;`)
			reqs := f.requests()
			var end int
			for i, r := range reqs {
				if r.String() == tc.marker {
					end = i // the last one: the failed start is the second POST /session
				}
			}
			before, later := reqs[:end], reqs[end+1:]
			if n := count(before, "POST /session/alive"); n < 2 || n > 3 {
				t.Fatalf("%d heartbeats in 1.8 s (0.5 s, then 1 s apart): %v", n, reqs)
			}
			for _, r := range before {
				if r.String() == "POST /session/alive" && r.Body != `{"UserId":"u1","ProjectId":"cap-one"}` {
					t.Errorf("heartbeat body %s", r.Body)
				}
			}
			if n := count(later, "POST /session/alive"); n > 0 {
				t.Fatalf("%d heartbeats after %s: %v", n, tc.name, reqs)
			}
		})
	}
}

// The function ends the heartbeat: Holding false (the user holds nothing
// through it, or it has no line), or no such route (an older function).
func TestModuleHeartbeatEndsWhenTheFunctionSaysSo(t *testing.T) {
	for _, tc := range []struct {
		name  string
		alive reply
	}{
		{"holding nothing", reply{200, "", `{"UserId":"u1","Holding":false,"HeartbeatSeconds":0,"RequestId":"a"}`, 0}},
		{"no such route", reply{404, "", `{"Error":{"Code":"NotFound","Message":"routes: …"},"RequestId":"a"}`, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, reply{200, "", started, 0})
			f.routes = map[string][]reply{"POST /session/alive": {tc.alive}}
			run[any](t, f, `
				const broker = createBroker({ userId: "u1", heartbeatSeconds: 0.4 });
				await broker.start({ clientSession: "cs" });
				await new Promise((ok) => setTimeout(ok, 2000));
				return null;`)
			if n := count(f.requests(), "POST /session/alive"); n != 1 {
				t.Fatalf("%d heartbeats, want 1: %v", n, f.requests())
			}
		})
	}
}

// A 202 whose place is unknown (the function's line store is in trouble)
// is waiting all the same: onQueue without a position, then Retry-After.
func TestModuleWaitsWithoutAPosition(t *testing.T) {
	f := newFake(t,
		reply{202, "1", `{"UserId":"u1","Queue":{},"RequestId":"r1"}`, 0},
		reply{200, "", started, 0},
	)
	got := run[map[string]any](t, f, `
		const places = [];
		const ss = await createBroker({ userId: "u1" }).start({ clientSession: "cs", onQueue: (q) => places.push(q) });
		return { ss, places: places.length, position: places[0].position ?? "unknown" };`)
	if got["ss"] != "SS-1" || got["places"] != 1.0 || got["position"] != "unknown" {
		t.Fatalf("got %v", got)
	}
	if reqs := f.requests(); len(reqs) != 2 || reqs[1].At.Sub(reqs[0].At) < 950*time.Millisecond {
		t.Fatalf("requests %v: Retry-After not followed", reqs)
	}
}

// Against the dev server: a user stopped while it waits is out of the line
// and stays out (a poll after the DELETE would put it back).
func TestModuleStopLeavesTheLineOnTheDevServer(t *testing.T) {
	tab := newTab(t)
	dev := startDev(t, map[string]string{"DEV_CONCURRENCY": "1"})
	if code, _ := call(t, "POST", dev.URL+"/session", `{"UserId":"alice","ClientSession":"cs"}`, ""); code != 200 {
		t.Fatalf("alice: %d", code)
	}
	if err := chromedp.Do(tab.Ctx, chromedp.Navigate(dev.URL+"/carbroker.d.ts")); err != nil {
		t.Fatal(err)
	}
	got := must(chromedp.Run(tab.Ctx, chromedp.Evaluate[map[string]any](`(async () => {
		const { createBroker } = await import("/carbroker.js");
		const broker = createBroker({ userId: "bob" });
		let queued;
		const seen = new Promise((ok) => { queued = ok; });
		const outcome = broker.start({ clientSession: "cs", onQueue: queued }).then(() => "resolved", (e) => e.name);
		const place = await seen;
		await broker.stop();
		const start = await Promise.race([outcome, new Promise((ok) => setTimeout(() => ok("still pending"), 3000))]);
		await new Promise((ok) => setTimeout(ok, 3000)); // several Retry-After periods
		return { position: place.position, start };
	})()`, chromedp.EvalAwaitPromise)))(t)
	if got["position"] != 1.0 || got["start"] != "AbortError" {
		t.Fatalf("got %v", got)
	}
	if readState(t, dev).waiting("bob") {
		t.Fatal("bob is back in line after stop()")
	}
}

// forget() while start() waits in line drops the identity for good: the
// pending start ends (AbortError) instead of going on as a stranger (in
// ticket mode a new user at the end of the line, with a heartbeat for it),
// and a reply already on the wire does not bring the ticket back.
func TestModuleForgetWhileWaiting(t *testing.T) {
	queued := `{"UserId":"u1","Ticket":"T1","Queue":{"Position":2,"Ahead":1,"EtaSeconds":9},"RequestId":"q"}`
	minted := `{"UserId":"u2","Ticket":"T2","ServerSession":"SS-2","RequestId":"s"}`
	alive := `{"UserId":"u2","Holding":true,"HeartbeatSeconds":1,"RequestId":"a"}`
	for _, tc := range []struct {
		name  string
		delay time.Duration // of the second poll: on the wire when forget() is called
		wait  string        // how the page lets forget() fall
	}{
		{"sleeping", 0, `await seen;`},
		{"poll on the wire", 800 * time.Millisecond, `await seen; await new Promise((ok) => setTimeout(ok, 1300));`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, reply{200, "", stopped, 0})
			f.routes = map[string][]reply{
				"POST /session":       {{202, "1", queued, 0}, {202, "1", queued, tc.delay}, {200, "", minted, 0}},
				"POST /session/alive": {{200, "", alive, 0}},
			}
			got := run[map[string]any](t, f, `
				const broker = createBroker({ heartbeatSeconds: 0.5, storage: null });
				let queued;
				const seen = new Promise((ok) => { queued = ok; });
				const outcome = broker.start({ clientSession: "cs", onQueue: queued }).then(() => "resolved", (e) => e.name);
				`+tc.wait+`
				broker.forget();
				await fetch("/mark");
				const start = await Promise.race([outcome, new Promise((ok) => setTimeout(() => ok("still pending"), 3000))]);
				await new Promise((ok) => setTimeout(ok, 1500));
				return { start, ticket: broker.ticket, userId: broker.userId };`)
			reqs := f.requests()
			if got["start"] != "AbortError" || got["ticket"] != "" || got["userId"] != "" {
				t.Fatalf("after forget(): start %v, ticket %q, userId %q (requests %v)", got["start"], got["ticket"], got["userId"], reqs)
			}
			if later := after(reqs, "GET /mark"); len(later) > 0 {
				t.Fatalf("requests after forget(): %v (all: %v)", later, reqs)
			}
		})
	}
}

// A heartbeat the function cannot answer for now (503 Unavailable while the
// line's store is in trouble, a gateway's 503 page, a 429) is not an end:
// the next beat goes out as usual, and the one after it too.
func TestModuleHeartbeatOutlivesTransientFailures(t *testing.T) {
	f := newFake(t, reply{200, "", started, 0})
	f.routes = map[string][]reply{"POST /session/alive": {
		{503, "30", `{"Error":{"Code":"Unavailable","Message":"the waiting line's store did not answer"},"RequestId":"a1"}`, 0},
		{503, "", `<html><body>503 Service Temporarily Unavailable</body></html>`, 0},
		{429, "1", `{"Error":{"Code":"TooManyRequests","Message":"slow down"},"RequestId":"a3"}`, 0},
		{200, "", `{"UserId":"u1","Holding":true,"HeartbeatSeconds":1,"RequestId":"a4"}`, 0},
	}}
	run[any](t, f, `
		const broker = createBroker({ userId: "u1", heartbeatSeconds: 0.3 });
		await broker.start({ clientSession: "cs" });
		await new Promise((ok) => setTimeout(ok, 2700));
		await broker.stop();
		return null;`)
	if n := count(f.requests(), "POST /session/alive"); n < 5 {
		t.Fatalf("%d heartbeats in 2.7 s (0.3 s apart through three failures, then 1 s): %v", n, f.requests())
	}
}
