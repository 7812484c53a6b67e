package console_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"carbroker/client"
)

// reply is one scripted answer of the fake function.
type reply struct {
	status     int
	retryAfter string
	body       string
}

// seen is one request the fake function got.
type seen struct {
	Method, Path, Authorization, Body string
	At                                time.Time
}

// fakeFunction serves the module, a blank page, and scripted replies on
// every other path (the last reply repeats).
type fakeFunction struct {
	*httptest.Server
	mu     sync.Mutex
	script []reply
	got    []seen
}

func newFake(t *testing.T, script ...reply) *fakeFunction {
	t.Helper()
	f := &fakeFunction{script: script}
	module, err := fs.ReadFile(client.Files, "carbroker.js")
	if err != nil {
		t.Fatal(err)
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, `<!doctype html><html lang="en"><head><title>module test</title><link rel="icon" href="data:,"></head><body></body></html>`)
			return
		case "/carbroker.js":
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			w.Write(module)
			return
		}
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.got = append(f.got, seen{r.Method, r.URL.Path, r.Header.Get("Authorization"), string(b), time.Now()})
		rep := f.script[0]
		if len(f.script) > 1 {
			f.script = f.script[1:]
		}
		f.mu.Unlock()
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
		reply{503, "1", `{"Error":{"Code":"Unavailable","Message":"CAR is busy"},"RequestId":"r1"}`},
		reply{202, "1", `{"UserId":"u1","Queue":{"Position":2,"Ahead":1,"EtaSeconds":9},"RequestId":"r2"}`},
		reply{202, "1", `{"UserId":"u1","Queue":{"Position":1,"Ahead":0},"RequestId":"r3"}`},
		reply{200, "", `{"UserId":"u1","ServerSession":"SS-1","RequestId":"r4"}`},
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
		{"refusal", []reply{{403, "", `{"Error":{"Code":"Forbidden","Message":"not yours"},"RequestId":"rq-1"}`}},
			caughtError{Name: "BrokerError", Code: "Forbidden", Status: 403, RequestId: "rq-1", Message: "not yours", Typed: true}, 1},
		{"no line", []reply{{503, "2", `{"Error":{"Code":"NoIdleConcurrency","Message":"no idle concurrency"},"RequestId":"rq-2"}`}},
			caughtError{Name: "BrokerError", Code: "NoIdleConcurrency", Status: 503, RequestId: "rq-2", RetryAfter: 2000, Message: "no idle concurrency", Typed: true}, 1},
		{"transient until it gives up", []reply{{502, "", `<html>Bad Gateway</html>`}},
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
	f := newFake(t, reply{202, "30", `{"UserId":"u1","Queue":{"Position":5,"Ahead":4,"EtaSeconds":60},"RequestId":"r"}`})
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
		reply{200, "", `{"UserId":"minted-1","ServerSession":"SS-1","RequestId":"r1","Ticket":"T1"}`},
		reply{200, "", `{"UserId":"minted-1","ServerSession":"SS-2","RequestId":"r2","Ticket":"T2"}`},
		reply{401, "", `{"Error":{"Code":"Unauthorized","Message":"ticket expired"},"RequestId":"r3"}`},
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
	f := newFake(t, reply{200, "", `{}`})
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
