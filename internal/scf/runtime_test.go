package scf_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/rpc"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"carbroker/internal/fault"
	"carbroker/internal/httpapi"
	"carbroker/internal/scf"
	"carbroker/internal/testing/scftest"
)

var quiet = scf.WithLogger(slog.New(slog.DiscardHandler))

// credentialEnv are the variables an invoke may set; each test restores them.
var credentialEnv = []string{
	"TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN",
	"TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_SESSION_TOKEN",
	"SCF_TEST_MODE",
}

// startRuntime serves src on a loopback listener and returns a client of it.
func startRuntime(t *testing.T, src scf.HandlerSource) *rpc.Client {
	t.Helper()
	for _, k := range credentialEnv {
		t.Setenv(k, "")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- scf.Serve(ln, src, quiet, scf.WithInvokeContext(withTriple)) }()
	c, err := rpc.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return c
}

func echoSource() (http.Handler, error) { return echoHandler, nil }

func invoke(t *testing.T, c *rpc.Client, req scftest.InvokeRequest) scftest.InvokeResponse {
	t.Helper()
	resp, err := scftest.Invoke(c, req)
	if err != nil {
		t.Fatalf("Function.Invoke: %v", err)
	}
	return resp
}

var environment = scftest.Environment

func TestPing(t *testing.T) {
	c := startRuntime(t, echoSource)
	if err := c.Call("Function.Ping", scftest.Ping{}, &scftest.Ping{}); err != nil {
		t.Fatal(err)
	}
}

func TestInvoke(t *testing.T) {
	c := startRuntime(t, echoSource)
	deadline := time.Now().Add(time.Hour).Round(time.Microsecond).Add(123) // nanoseconds survive
	tests := []struct {
		file, trigger, remoteAddr string
	}{
		{"apigw_post_json.json", "apigw", "203.0.113.7:0"},
		{"apigw_get_query_no_requestid.json", "apigw", "[2001:db8::7]:0"},
		{"url_post_json.json", "url", "192.0.2.44:0"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			resp := invoke(t, c, scftest.InvokeRequest{
				Payload:     fixture(t, tt.file),
				RequestId:   "req-" + tt.file,
				Deadline:    scftest.At(deadline),
				Environment: environment("TENCENTCLOUD_SECRETID", "id", "TENCENTCLOUD_SECRETKEY", "key", "TENCENTCLOUD_SESSIONTOKEN", "token"),
			})
			if resp.Error != nil {
				t.Fatalf("Error = %+v", resp.Error)
			}
			s := decodeSeen(t, resp.Payload)
			if s.RemoteAddr != tt.remoteAddr {
				t.Errorf("RemoteAddr = %q, want %q", s.RemoteAddr, tt.remoteAddr)
			}
			if want := (httpapi.Invocation{RequestID: "req-" + tt.file, Trigger: tt.trigger}); s.Info == nil || *s.Info != want {
				t.Errorf("Info = %+v, want %+v", s.Info, want)
			}
			if want := (triple{ID: "id", Key: "key", Token: "token"}); s.Triple == nil || *s.Triple != want {
				t.Errorf("Triple = %+v, want %+v", s.Triple, want)
			}
			if s.Deadline == nil || !s.Deadline.Equal(deadline) {
				t.Errorf("Deadline = %v, want %v", s.Deadline, deadline)
			}
			for _, k := range forwarding {
				if _, ok := s.Header[k]; ok {
					t.Errorf("header %s reached the handler", k)
				}
			}
		})
	}
}

func TestInvokeWithoutDeadline(t *testing.T) {
	c := startRuntime(t, echoSource)
	s := decodeSeen(t, invoke(t, c, scftest.InvokeRequest{Payload: fixture(t, "url_no_remote_addr.json"), RequestId: "r"}).Payload)
	if s.Deadline != nil {
		t.Errorf("Deadline = %v, want none", s.Deadline)
	}
	if s.RemoteAddr != "" {
		t.Errorf("RemoteAddr = %q, want unknown", s.RemoteAddr)
	}
	if s.Triple == nil || s.Triple.Valid() {
		t.Errorf("Triple = %+v, want an empty one in the context", s.Triple)
	}
}

// Concurrent invokes on one connection, each with its own credentials: every
// handler call must see its own invoke's triple, never a mix.
func TestInvokeConcurrentCredentials(t *testing.T) {
	c := startRuntime(t, echoSource)
	payload := fixture(t, "url_post_json.json")
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			n := fmt.Sprint(i)
			var resp scftest.InvokeResponse
			err := c.Call("Function.Invoke", scftest.InvokeRequest{
				Payload:   payload,
				RequestId: n,
				Environment: environment("TENCENTCLOUD_SECRETID", "id-"+n, "TENCENTCLOUD_SECRETKEY", "key-"+n,
					"TENCENTCLOUD_SESSIONTOKEN", "token-"+n),
			}, &resp)
			if err != nil {
				t.Error(err)
				return
			}
			s := decodeSeen(t, resp.Payload)
			want := triple{ID: "id-" + n, Key: "key-" + n, Token: "token-" + n}
			if s.Triple == nil || *s.Triple != want || s.Info == nil || s.Info.RequestID != n {
				t.Errorf("invoke %s saw %+v, %+v", n, s.Triple, s.Info)
			}
		})
	}
	wg.Wait()
}

// The error's Type is the panic value's Go type name, as scf-go-lib reports it.
func TestInvokePanicType(t *testing.T) {
	c := startRuntime(t, echoSource)
	for path, want := range map[string]string{"/panic": "string", "/panic/error": "errorString", "/panic/index": "boundsError"} {
		resp := invoke(t, c, scftest.InvokeRequest{Payload: []byte(`{"httpMethod":"GET","path":"` + path + `"}`), RequestId: "p"})
		if resp.Error == nil || resp.Error.Type != want {
			t.Errorf("%s: Error = %+v, want Type %q", path, resp.Error, want)
		}
	}
}

func TestInvokePanic(t *testing.T) {
	c := startRuntime(t, echoSource)
	resp := invoke(t, c, scftest.InvokeRequest{Payload: []byte(`{"httpMethod":"GET","path":"/panic"}`), RequestId: "p"})
	e := resp.Error
	if e == nil {
		t.Fatalf("no Error; payload %s", resp.Payload)
	}
	if e.Message != "boom" || e.Type != "string" || !e.ShouldExit || len(e.StackTrace) == 0 {
		t.Errorf("Error = %+v", e)
	}
	if top := e.StackTrace[0]; !strings.Contains(top.Label, "scf_test") || !strings.HasSuffix(top.Path, "helpers_test.go") || top.Line == 0 {
		t.Errorf("top frame = %+v, want the panicking handler", top)
	}
	// The connection and the process keep serving.
	decodeSeen(t, invoke(t, c, scftest.InvokeRequest{Payload: fixture(t, "url_post_json.json")}).Payload)
}

func TestInvokeUndecodableEvent(t *testing.T) {
	c := startRuntime(t, echoSource)
	for _, payload := range []string{"garbage", "", "null", "{}", `{"httpMethod":"GET","body":1}`} {
		resp := invoke(t, c, scftest.InvokeRequest{Payload: []byte(payload), RequestId: "bad-1"})
		if resp.Error != nil {
			t.Fatalf("%q: Error = %+v", payload, resp.Error)
		}
		r := decodeIntegration(t, resp.Payload)
		var e apiError
		if err := json.Unmarshal([]byte(r.Body), &e); err != nil {
			t.Fatalf("%q: body %q: %v", payload, r.Body, err)
		}
		if r.StatusCode != http.StatusBadRequest || e.Error.Code != "InvalidParameter" || e.Error.Message == "" || e.RequestId != "bad-1" {
			t.Errorf("%q: status %d, body %s", payload, r.StatusCode, r.Body)
		}
		if ct := r.Headers["Content-Type"]; ct != "application/json; charset=utf-8" {
			t.Errorf("%q: Content-Type %s", payload, ct)
		}
		if cc := r.Headers["Cache-Control"]; cc != "no-store" {
			t.Errorf("%q: Cache-Control %s", payload, cc)
		}
		decodeSeen(t, invoke(t, c, scftest.InvokeRequest{Payload: fixture(t, "url_post_json.json")}).Payload)
	}
}

// The source runs after the Environment is applied; its error is rendered
// as httpapi.WriteError renders it (the caller-safe message only), and the next
// invoke recovers.
func TestInvokeHandlerSource(t *testing.T) {
	src := func() (http.Handler, error) {
		if m := os.Getenv("SCF_TEST_MODE"); m != "ok" {
			return nil, fault.Wrap(fault.Internal, "function misconfigured: SCF_TEST_MODE is not ok", errors.New("SCF_TEST_MODE="+m))
		}
		return echoHandler, nil
	}
	c := startRuntime(t, src)
	payload := fixture(t, "url_post_json.json")

	resp := invoke(t, c, scftest.InvokeRequest{Payload: payload, RequestId: "r1", Environment: environment("SCF_TEST_MODE", "broken")})
	r := decodeIntegration(t, resp.Payload)
	var e apiError
	if err := json.Unmarshal([]byte(r.Body), &e); err != nil {
		t.Fatal(err)
	}
	want := apiError{RequestId: "r1"}
	want.Error.Code, want.Error.Message = "InternalError", "function misconfigured: SCF_TEST_MODE is not ok"
	if resp.Error != nil || r.StatusCode != http.StatusInternalServerError || e != want {
		t.Errorf("got %+v, status %d, body %+v; want 500, %+v", resp.Error, r.StatusCode, e, want)
	}

	decodeSeen(t, invoke(t, c, scftest.InvokeRequest{Payload: payload, Environment: environment("SCF_TEST_MODE", "ok")}).Payload)
	// A malformed Environment is ignored: the previous one still holds.
	decodeSeen(t, invoke(t, c, scftest.InvokeRequest{Payload: payload, Environment: `{"SCF_TEST_MODE":`}).Payload)
	decodeSeen(t, invoke(t, c, scftest.InvokeRequest{Payload: payload, Environment: `{"SCF_TEST_MODE":1}`}).Payload)
}

// A source's error that is not a *fault.Error is answered with a generic
// 500: its text (which may hold anything) stays in the log.
func TestInvokeHandlerSourceRawError(t *testing.T) {
	c := startRuntime(t, func() (http.Handler, error) { return nil, errors.New("raw detail AKIDsecret") })
	r := decodeIntegration(t, invoke(t, c, scftest.InvokeRequest{Payload: fixture(t, "url_post_json.json"), RequestId: "r2"}).Payload)
	var e apiError
	if err := json.Unmarshal([]byte(r.Body), &e); err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != http.StatusInternalServerError || e.Error.Code != "InternalError" || e.Error.Message != "internal error" ||
		e.RequestId != "r2" || strings.Contains(r.Body, "AKIDsecret") {
		t.Errorf("%d %s", r.StatusCode, r.Body)
	}
}

func TestInvokeResponse(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"nothing written", func(http.ResponseWriter, *http.Request) {},
			`{"isBase64Encoded":false,"statusCode":200,"headers":{},"body":""}`},
		{"sniffed, first status wins, headers fixed at status", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Add("Vary", "Origin")
			w.Header().Add("Vary", "Accept-Encoding")
			w.WriteHeader(http.StatusEarlyHints) // not relayed
			w.WriteHeader(http.StatusTeapot)
			w.WriteHeader(http.StatusOK)
			w.Header().Set("X-Late", "ignored")
			w.Write([]byte("<html></html>"))
		}, `{"isBase64Encoded":false,"statusCode":418,"headers":{"Vary":"Origin, Accept-Encoding","Content-Type":"text/html; charset=utf-8"},"body":"<html></html>"}`},
		{"binary", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write([]byte{0xff, 0x00})
		}, `{"isBase64Encoded":true,"statusCode":200,"headers":{"Content-Type":"application/octet-stream"},"body":"/wA="}`},
		{"too large", func(w http.ResponseWriter, _ *http.Request) {
			w.Write(make([]byte, scf.MaxBodyBytes))
			if _, err := w.Write([]byte{1}); err == nil {
				panic("write past the limit succeeded")
			}
		}, `{"isBase64Encoded":false,"statusCode":500,"headers":{"Cache-Control":"no-store","Content-Type":"application/json; charset=utf-8","X-Content-Type-Options":"nosniff","X-Request-Id":"r"},"body":"{\"Error\":{\"Code\":\"InternalError\",\"Message\":\"the response exceeds 6 MB\"},\"RequestId\":\"r\"}"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := scf.NewFunction(func() (http.Handler, error) { return tt.handler, nil }, quiet)
			var resp scf.InvokeResponse
			f.Invoke(scf.InvokeRequest{Payload: []byte(`{"httpMethod":"GET","path":"/"}`), RequestId: "r"}, &resp)
			if resp.Error != nil {
				t.Fatalf("Error = %+v", resp.Error)
			}
			if err := jsonEqual(tt.want, resp.Payload); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestPort(t *testing.T) {
	tests := []struct {
		env      map[string]string
		port     string
		eventFun bool
	}{
		{map[string]string{"_LAMBDA_SERVER_PORT": "9001", "_SCF_SERVER_PORT": "28902"}, "9001", true},
		{map[string]string{"_SCF_SERVER_PORT": "28902"}, "28902", true},
		{map[string]string{"_LAMBDA_SERVER_PORT": " ", "_SCF_SERVER_PORT": "28902"}, "28902", true},
		{map[string]string{}, "", false},
	}
	for _, tt := range tests {
		port, ok := scf.Port(func(k string) string { return tt.env[k] })
		if port != tt.port || ok != tt.eventFun {
			t.Errorf("Port(%v) = %q, %v; want %q, %v", tt.env, port, ok, tt.port, tt.eventFun)
		}
	}
}

// FuzzInvoke checks that any event yields an integration response (a timer
// event: an empty success), never a panic or an invoke error, with string headers and the body the handler
// wrote, intact (in base64 when it is not UTF-8).
//
// The event is built from fuzzed fields, or is raw when raw is set (garbage;
// FuzzDecodeEvent covers the decoder on raw bytes). A whole event as one
// []byte made every new input a kilobyte to minimize, which took the whole
// CI slot (10 executions in 5 s); small fields minimize in milliseconds.
func FuzzInvoke(f *testing.F) {
	f.Add("POST", "/release/car/session", `{"UserId":"u"}`, false, "apigw", []byte(nil))
	f.Add("GET", "/healthz", "", false, "url", []byte(nil))
	f.Add("POST", "/x", "/w==", true, "url", []byte(nil))
	f.Add("HEAD", "/panic", "", false, "apigw", []byte(nil))
	f.Add("", "", "", false, "", []byte("garbage"))
	f.Add("", "", "", false, "", []byte(`{"Type":"Timer","TriggerName":"sweep"}`))
	fn := scf.NewFunction(func() (http.Handler, error) { return bodyEcho, nil }, quiet)
	f.Fuzz(func(t *testing.T, method, path, body string, b64 bool, trigger string, raw []byte) {
		payload := raw
		if len(raw) == 0 {
			ev := map[string]any{"httpMethod": method, "path": path, "body": body, "isBase64Encoded": b64,
				"headers": map[string]string{"content-type": "text/plain", "x-scf-remote-addr": "192.0.2.44"}}
			if trigger == "apigw" {
				ev["requestContext"] = map[string]string{"sourceIp": "203.0.113.7", "requestId": "r", "stage": "release"}
			}
			payload, _ = json.Marshal(ev) // strings and a bool: cannot fail
		}
		var resp scf.InvokeResponse
		if err := fn.Invoke(scf.InvokeRequest{Payload: payload, RequestId: "f"}, &resp); err != nil {
			t.Fatal(err)
		}
		if resp.Error != nil {
			if resp.Error.Message != "boom" {
				t.Fatalf("Error = %+v", resp.Error)
			}
			return
		}
		var timer struct{ Type string }
		if json.Unmarshal(payload, &timer) == nil && timer.Type == "Timer" {
			var reply map[string]any
			if err := json.Unmarshal(resp.Payload, &reply); err != nil || reply["Type"] != "Timer" || reply["Handled"] != false {
				t.Fatalf("timer event answered %s", resp.Payload)
			}
			return // a timer event is the handler's timer work (none here), not an HTTP request
		}
		r := decodeIntegration(t, resp.Payload) // headers must be strings
		if r.StatusCode < 200 || r.StatusCode > 599 {
			t.Fatalf("status %d", r.StatusCode)
		}
		if r.StatusCode == http.StatusOK && r.Headers["X-Echo"] == "yes" && r.Headers["X-Body-Sha256"] != sha256Hex(r.Body) {
			t.Fatalf("the body the handler wrote did not come back intact (isBase64Encoded %v)", r.IsBase64Encoded)
		}
	})
}

// bodyEcho answers 200 with the request's body as it read it, a repeated
// header and the body's SHA-256; /panic panics.
var bodyEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if strings.HasSuffix(r.URL.Path, "/panic") {
		panic("boom")
	}
	b, _ := io.ReadAll(r.Body)
	h := w.Header()
	h.Set("X-Echo", "yes")
	h.Add("Vary", "Origin")
	h.Add("Vary", "Accept")
	h.Set("X-Body-Sha256", sha256Hex(string(b)))
	if r.Method == http.MethodHead {
		h.Set("X-Body-Sha256", sha256Hex(""))
	}
	w.Write(b)
})

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// A timer trigger's event (scf-go-lib's events.TimerEvent, testdata's
// fixture) reaches no HTTP route: a handler without timer work answers a
// success saying nothing was handled.
func TestInvokeTimerEventWithoutTimerWork(t *testing.T) {
	c := startRuntime(t, func() (http.Handler, error) { return echoHandler, nil })
	resp := invoke(t, c, scftest.InvokeRequest{Payload: fixture(t, "timer.json"), RequestId: "timer-1"})
	if resp.Error != nil || string(resp.Payload) != `{"Type":"Timer","TriggerName":"sweep","Handled":false}` {
		t.Errorf("timer event: Error %+v, payload %s", resp.Error, resp.Payload)
	}
	// Anything else without httpMethod is still an undecodable event.
	resp = invoke(t, c, scftest.InvokeRequest{Payload: []byte(`{"Type":"Cos"}`), RequestId: "cos-1"})
	if r := decodeIntegration(t, resp.Payload); r.StatusCode != http.StatusBadRequest {
		t.Errorf("another event: status %d", r.StatusCode)
	}
}
