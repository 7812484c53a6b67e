package app_test

import (
	"io"
	"net/http"
	"net/rpc"
	"strings"
	"testing"
	"time"

	"carbroker/internal/dev/caremu"
)

// outcome is what a client observes of one request, whatever the transport.
type outcome struct {
	Status     int
	Code       string // Error.Code, or the compat Code
	RetryAfter bool
	CORS       string
	HasSession bool
}

// transport delivers one HTTP request to the function.
type transport interface {
	do(t *testing.T, method, path, body string, header map[string]string) outcome
}

type eventTransport struct{ c *rpc.Client }

func (e eventTransport) do(t *testing.T, method, path, body string, header map[string]string) outcome {
	ir, resp := invoke(t, e.c, urlEvent(method, path, body, header), credsA(), time.Now().Add(10*time.Second))
	if resp.Error != nil {
		t.Fatalf("invoke error: %+v", resp.Error)
	}
	h := http.Header{}
	for k, v := range ir.Headers {
		h.Add(k, v)
	}
	return observe(ir.StatusCode, h, ir.Body)
}

type httpTransport struct{ base string }

func (h httpTransport) do(t *testing.T, method, path, body string, header map[string]string) outcome {
	req, err := http.NewRequest(method, h.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return observe(res.StatusCode, res.Header, string(b))
}

func observe(status int, h http.Header, body string) outcome {
	o := outcome{Status: status, RetryAfter: h.Get("Retry-After") != "", CORS: h.Get("Access-Control-Allow-Origin"),
		HasSession: field(body, "ServerSession") != "" || field(body, "SessionDescribe.ServerSession") != ""}
	o.Code = field(body, "Error.Code")
	if c := field(body, "Code"); c != "" {
		o.Code = c
	}
	if h.Get("Cache-Control") != "no-store" && status != 204 {
		o.Code += " (no Cache-Control: no-store)"
	}
	return o
}

// TestSameBehaviourEverywhere runs one script through the SCF event runtime
// and the HTTP server; both must give the expected, identical outcomes.
func TestSameBehaviourEverywhere(t *testing.T) {
	t.Parallel()
	origin := map[string]string{"Origin": "https://app.example.com"}
	steps := []struct {
		name, method, path, body string
		header                   map[string]string
		want                     outcome
	}{
		{"health", "GET", "/healthz", "", nil, outcome{Status: 200}},
		{"start", "POST", "/session", `{"UserId":"alice","ClientSession":"cs"}`, nil, outcome{Status: 200, HasSession: true}},
		{"reconnect", "POST", "/session", `{"UserId":"alice","ClientSession":"cs"}`, nil, outcome{Status: 200, HasSession: true}},
		{"base path", "POST", "/release/car/session", `{"UserId":"bob","ClientSession":"cs"}`, nil, outcome{Status: 200, HasSession: true}},
		{"pool exhausted", "POST", "/session", `{"UserId":"carol","ClientSession":"cs"}`, nil, outcome{Status: 503, Code: "NoIdleConcurrency", RetryAfter: true}},
		{"bad UserId", "POST", "/session", `{"UserId":"a b","ClientSession":"cs"}`, nil, outcome{Status: 400, Code: "InvalidParameter"}},
		{"bad JSON", "POST", "/session", `{"UserId"`, nil, outcome{Status: 400, Code: "InvalidParameter"}},
		{"project not allowed", "POST", "/session", `{"UserId":"dave","ClientSession":"cs","ProjectId":"cap-other"}`, nil, outcome{Status: 403, Code: "Forbidden"}},
		{"too large", "POST", "/session", `{"UserId":"dave","ClientSession":"` + strings.Repeat("x", 300<<10) + `"}`, nil, outcome{Status: 413, Code: "RequestTooLarge"}},
		{"unknown route", "POST", "/nowhere", `{}`, nil, outcome{Status: 404, Code: "NotFound"}},
		{"wrong method", "GET", "/session", "", nil, outcome{Status: 405, Code: "MethodNotAllowed"}},
		{"preflight", "OPTIONS", "/session", "", map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}, outcome{Status: 204, CORS: "https://app.example.com"}},
		{"CORS on a reply", "GET", "/healthz", "", origin, outcome{Status: 200, CORS: "https://app.example.com"}},
		{"compat start while full", "POST", "/StartProject", `{"UserId":"carol","ClientSession":"cs","RequestId":"r1"}`, nil, outcome{Status: 200, Code: "10202", RetryAfter: true}},
		{"compat dequeue", "POST", "/Dequeue", `{"UserId":"carol","RequestId":"r2"}`, nil, outcome{Status: 200, Code: "0"}},
		{"stop", "DELETE", "/session", `{"UserId":"alice"}`, nil, outcome{Status: 200}},
		{"stop via query", "DELETE", "/session?UserId=bob", ``, nil, outcome{Status: 200}},
		{"compat stop", "POST", "/StopProject", `{"UserId":"bob","RequestId":"r3"}`, nil, outcome{Status: 200, Code: "0"}},
	}
	run := func(t *testing.T, tr transport) []outcome {
		var got []outcome
		for _, s := range steps {
			o := tr.do(t, s.method, s.path, s.body, s.header)
			if o != s.want {
				t.Errorf("%s: got %+v, want %+v", s.name, o, s.want)
			}
			got = append(got, o)
		}
		return got
	}
	extra := []string{"CORS_ALLOW_ORIGINS=https://app.example.com"}
	var results [][]outcome
	t.Run("event", func(t *testing.T) {
		w := newWorld(t, caremu.Options{Concurrency: 2})
		c, _ := w.eventFunction(extra...)
		results = append(results, run(t, eventTransport{c}))
	})
	t.Run("http", func(t *testing.T) {
		w := newWorld(t, caremu.Options{Concurrency: 2})
		base, _ := w.httpFunction(extra...)
		results = append(results, run(t, httpTransport{base}))
	})
	if len(results) == 2 {
		for i := range steps {
			if results[0][i] != results[1][i] {
				t.Errorf("%s differs: event %+v, http %+v", steps[i].name, results[0][i], results[1][i])
			}
		}
	}
}
