package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/rpc"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"carbroker/internal/car"
	"carbroker/internal/config"
	"carbroker/internal/dev/caremu"
	"carbroker/internal/httpapi"
	"carbroker/internal/scf"
	"carbroker/internal/testing/apitest"
)

const (
	secretID  = "AKIDbench00000000001"
	secretKey = "bench-secret-key-00000000000000001"
	project   = "cap-bench0001"
	// clientIP is a public address (TEST-NET-1): the broker passes it to
	// CAR as UserIp, as it would a real client's.
	clientIP = "192.0.2.10"
	// resetEvery bounds the emulator's call log, which grows by every call.
	resetEvery = 8192
)

// clientSession stands for the client SDK's opaque ClientSession (a few KB
// of base64).
var clientSession = string(bytes.Repeat([]byte("Q2xpZW50U2Vzc2lvbg=="), 80))

// vars is the function's environment: the minimal configuration.
var vars = map[string]string{
	"CAR_PROJECT_ID":         project,
	"AUTH_MODE":              "none",
	"CAR_ENDPOINT":           "http://car.emulator.invalid",
	"TENCENTCLOUD_SECRETID":  secretID,
	"TENCENTCLOUD_SECRETKEY": secretKey,
}

func getenv(k string) string { return vars[k] }

func newEmulator() *caremu.Emulator {
	return caremu.New(caremu.Options{Concurrency: 64, Projects: []string{project},
		Credentials: map[string]caremu.Credential{secretID: {SecretKey: secretKey}}})
}

// wiring is the function's real wiring, built as internal/app builds it,
// with the emulator's in-process transport in place of the network to CAR.
type wiring struct {
	emu *caremu.Emulator
	car *car.Client
	cfg config.Config
	api http.Handler // the HTTP API alone (event mode serves this)
}

func newWiring(b *testing.B) *wiring {
	b.Helper()
	cfg, err := config.Load(getenv, config.Options{})
	if err != nil {
		b.Fatal(err)
	}
	emu := newEmulator()
	c := car.New(car.Options{Host: cfg.Endpoint.Host, Scheme: cfg.Endpoint.Scheme, Transport: emu.Transport(), Getenv: getenv})
	// The request log line is formatted as in production (JSON, info); only
	// its write is discarded.
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	api, _, err := apitest.New(cfg, c, apitest.Options{HTTP: httpapi.Options{Logger: log, Version: "bench"}})
	if err != nil {
		b.Fatal(err)
	}
	return &wiring{emu: emu, car: c, cfg: cfg, api: api}
}

// httpHandler is the handler HTTP mode serves: the API behind
// scf.WebFunction, trusting the configured proxies (none here).
func (w *wiring) httpHandler() http.Handler {
	return scf.WebFunction(w.api, httpapi.TrustedPeer(w.cfg.TrustedProxies))
}

// timed runs op b.N times, timing each, and reports the median and 99th
// percentile besides the mean. Every resetEvery iterations, with the timer
// stopped, it empties the emulator so that its call log stays small.
func timed(b *testing.B, emu *caremu.Emulator, op func(i int)) {
	b.Helper()
	d := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%resetEvery == resetEvery-1 {
			b.StopTimer()
			emu.Reset()
			b.StartTimer()
		}
		t := time.Now()
		op(i)
		d[i] = time.Since(t)
	}
	b.StopTimer()
	reportPercentiles(b, d)
}

func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[(len(d)-1)/2]), "p50-ns")
	b.ReportMetric(float64(d[(len(d)*99-1)/100]), "p99-ns")
}

// BenchmarkCAR is the baseline: only the two CAR calls of a start
// (ApplyConcurrent, then CreateSession) through the same CAR client. Against
// the in-process emulator it is what the overhead benchmarks subtract; over
// loopback it adds two real HTTP round trips on a kept-alive connection,
// the shape of the floor against real CAR.
func BenchmarkCAR(b *testing.B) {
	in := car.ApplyConcurrentInput{UserID: "bench-user", UserIP: clientIP, ProjectID: project}
	create := car.CreateSessionInput{UserID: "bench-user", UserIP: clientIP, ClientSession: clientSession}
	two := func(b *testing.B, c *car.Client) func(int) {
		ctx := context.Background()
		return func(int) {
			if _, err := c.ApplyConcurrent(ctx, in); err != nil {
				b.Fatal(err)
			}
			if _, err := c.CreateSession(ctx, create); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("transport=inprocess", func(b *testing.B) {
		w := newWiring(b)
		timed(b, w.emu, two(b, w.car))
	})
	b.Run("transport=loopback", func(b *testing.B) {
		emu := newEmulator()
		endpoint, stop, err := emu.Listen("")
		if err != nil {
			b.Fatal(err)
		}
		defer stop()
		tr := car.NewTransport()
		defer tr.CloseIdleConnections()
		c := car.New(car.Options{Host: endpoint, Scheme: "HTTP", Transport: tr, Getenv: getenv})
		timed(b, emu, two(b, c))
	})
}

// sink is a minimal ResponseWriter, reused, so that ServeHTTP is measured
// alone.
type sink struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (s *sink) Header() http.Header         { return s.h }
func (s *sink) WriteHeader(status int)      { s.status = status }
func (s *sink) Write(p []byte) (int, error) { return s.body.Write(p) }

func (s *sink) reset() {
	clear(s.h)
	s.status = 0
	s.body.Reset()
}

func startBody(user string) []byte {
	b, _ := json.Marshal(map[string]string{"UserId": user, "ClientSession": clientSession})
	return b
}

// BenchmarkHTTPHandler is POST /session through the HTTP-mode handler's
// ServeHTTP: everything the function does per request except reading and
// writing the connection. Overhead = this − BenchmarkCAR/transport=inprocess.
func BenchmarkHTTPHandler(b *testing.B) {
	w := newWiring(b)
	h := w.httpHandler()
	body := startBody("bench-user")
	out := &sink{h: http.Header{}}
	rd := bytes.NewReader(body)
	timed(b, w.emu, func(int) {
		rd.Reset(body)
		r, err := http.NewRequest(http.MethodPost, "/session", rd)
		if err != nil {
			b.Fatal(err)
		}
		r.RemoteAddr = clientIP + ":40000"
		r.Header.Set("Content-Type", "application/json")
		out.reset()
		h.ServeHTTP(out, r)
		if out.status != http.StatusOK {
			b.Fatalf("status %d: %s", out.status, out.body.String())
		}
	})
}

// BenchmarkHTTPLoopback is POST /session over a real loopback connection
// to net/http serving the HTTP-mode handler, from 1 and from 8 concurrent
// keep-alive clients (each its own user). Its time includes the client and
// the kernel; with 8 clients it compares with the demo's 8-client figures.
func BenchmarkHTTPLoopback(b *testing.B) {
	for _, clients := range []int{1, 8} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			w := newWiring(b)
			srv := httptest.NewServer(w.httpHandler())
			defer srv.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: clients}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			post := func(body []byte) {
				resp, err := client.Post(srv.URL+"/session", "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
				}
			}
			if clients == 1 {
				body := startBody("bench-user")
				timed(b, w.emu, func(int) { post(body) })
				return
			}
			// Several clients: each its own user (CAR refuses concurrent calls
			// for one UserId), sharing b.N. No emulator reset: one run's call
			// log is small enough.
			var next atomic.Int64
			d := make([]time.Duration, b.N)
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for c := range clients {
				wg.Go(func() {
					body := startBody(fmt.Sprintf("bench-user-%d", c))
					for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
						t := time.Now()
						post(body)
						d[i] = time.Since(t)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
			reportPercentiles(b, d)
		})
	}
}

// event returns a Function URL event for POST /session, as SCF delivers it.
func event(user string) []byte {
	b, _ := json.Marshal(map[string]any{
		"httpMethod": "POST",
		"path":       "/session",
		"headers": map[string]string{
			"content-type":      "application/json",
			"host":              "1250000000-abcd1234.gz.tencentscf.com",
			"x-scf-remote-addr": clientIP,
		},
		"queryString": map[string]string{},
		"body":        string(startBody(user)),
	})
	return b
}

// environment is what SCF passes with every invoke: the function's
// variables and the execution role's rotating credentials.
func environment() string {
	env := map[string]string{"SCF_NAMESPACE": "default", "TENCENTCLOUD_RUNENV": "SCF",
		"TENCENTCLOUD_SESSIONTOKEN": ""}
	for k, v := range vars {
		env[k] = v
	}
	b, _ := json.Marshal(env)
	return string(b)
}

// eventSource mirrors internal/app's: per invoke it compares the
// configuration's variables with those the handler was built from, and
// reuses the handler.
func eventSource(b *testing.B, w *wiring) scf.HandlerSource {
	built := make([]string, len(config.Keys))
	for i, k := range config.Keys {
		built[i] = os.Getenv(k)
	}
	return func() (http.Handler, error) {
		for i, k := range config.Keys {
			if os.Getenv(k) != built[i] {
				b.Error("the configuration changed between invokes")
			}
		}
		return w.api, nil
	}
}

// setEventEnv sets, for the benchmark, the variables each invoke's
// Environment sets again, so that they are restored afterwards.
func setEventEnv(b *testing.B) {
	var env map[string]string
	_ = json.Unmarshal([]byte(environment()), &env)
	for k, v := range env {
		b.Setenv(k, v)
	}
}

// BenchmarkEventInvoke is POST /session as an SCF event invoke:
// scf.Function.Invoke with a Function URL event, the invoke's Environment
// and a deadline, as the Go1 runtime calls it. Overhead =
// this − BenchmarkCAR/transport=inprocess.
func BenchmarkEventInvoke(b *testing.B) {
	setEventEnv(b)
	w := newWiring(b)
	fn := scf.NewFunction(eventSource(b, w), scf.WithLogger(slog.New(slog.DiscardHandler)))
	payload, envJSON := event("bench-user"), environment()
	ok := []byte(`"statusCode":200`)
	timed(b, w.emu, func(i int) {
		dl := time.Now().Add(3 * time.Second)
		var resp scf.InvokeResponse
		if err := fn.Invoke(scf.InvokeRequest{Payload: payload, RequestId: "bench", Environment: envJSON,
			Deadline: scf.Timestamp{Seconds: dl.Unix(), Nanos: int64(dl.Nanosecond())}}, &resp); err != nil {
			b.Fatal(err)
		}
		if !bytes.Contains(resp.Payload, ok) {
			b.Fatalf("invoke answered %s", resp.Payload)
		}
	})
}

// BenchmarkEventRPC is the same invoke over the Go1 runtime's wire: net/rpc
// with gob on a loopback connection to scf.Serve. Its time includes the
// caller's gob encoding and decoding.
func BenchmarkEventRPC(b *testing.B) {
	setEventEnv(b)
	w := newWiring(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- scf.Serve(ln, eventSource(b, w), scf.WithLogger(slog.New(slog.DiscardHandler))) }()
	defer func() {
		ln.Close()
		<-served
	}()
	client, err := rpc.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	payload, envJSON := event("bench-user"), environment()
	ok := []byte(`"statusCode":200`)
	timed(b, w.emu, func(i int) {
		dl := time.Now().Add(3 * time.Second)
		var resp scf.InvokeResponse
		if err := client.Call("Function.Invoke", scf.InvokeRequest{Payload: payload, RequestId: "bench", Environment: envJSON,
			Deadline: scf.Timestamp{Seconds: dl.Unix(), Nanos: int64(dl.Nanosecond())}}, &resp); err != nil {
			b.Fatal(err)
		}
		if !bytes.Contains(resp.Payload, ok) {
			b.Fatalf("invoke answered %s", resp.Payload)
		}
	})
}

// BenchmarkOverhead measures the function's own time per start at the
// median, robustly on a busy machine: each op makes the two CAR calls alone
// (one user) and serves a full start (another user) against the same
// emulator, alternating which goes first, and overhead-p50-ns is the median
// of the per-op differences. ns/op, B/op and allocs/op are of the pair;
// for the function alone see BenchmarkHTTPHandler and BenchmarkEventInvoke.
func BenchmarkOverhead(b *testing.B) {
	in := car.ApplyConcurrentInput{UserID: "bench-base", UserIP: clientIP, ProjectID: project}
	create := car.CreateSessionInput{UserID: "bench-base", UserIP: clientIP, ClientSession: clientSession}
	for _, mode := range []string{"http", "event"} {
		b.Run("mode="+mode, func(b *testing.B) {
			if mode == "event" {
				setEventEnv(b)
			}
			w := newWiring(b)
			ctx := context.Background()
			baseline := func() {
				if _, err := w.car.ApplyConcurrent(ctx, in); err != nil {
					b.Fatal(err)
				}
				if _, err := w.car.CreateSession(ctx, create); err != nil {
					b.Fatal(err)
				}
			}
			var full func()
			if mode == "http" {
				h, body, out := w.httpHandler(), startBody("bench-user"), &sink{h: http.Header{}}
				rd := bytes.NewReader(body)
				full = func() {
					rd.Reset(body)
					r, _ := http.NewRequest(http.MethodPost, "/session", rd)
					r.RemoteAddr = clientIP + ":40000"
					r.Header.Set("Content-Type", "application/json")
					out.reset()
					h.ServeHTTP(out, r)
					if out.status != http.StatusOK {
						b.Fatalf("status %d: %s", out.status, out.body.String())
					}
				}
			} else {
				fn := scf.NewFunction(eventSource(b, w), scf.WithLogger(slog.New(slog.DiscardHandler)))
				payload, envJSON := event("bench-user"), environment()
				full = func() {
					dl := time.Now().Add(3 * time.Second)
					var resp scf.InvokeResponse
					_ = fn.Invoke(scf.InvokeRequest{Payload: payload, RequestId: "bench", Environment: envJSON,
						Deadline: scf.Timestamp{Seconds: dl.Unix(), Nanos: int64(dl.Nanosecond())}}, &resp)
					if !bytes.Contains(resp.Payload, []byte(`"statusCode":200`)) {
						b.Fatalf("invoke answered %s", resp.Payload)
					}
				}
			}
			base, total, diff := make([]time.Duration, b.N), make([]time.Duration, b.N), make([]time.Duration, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i%resetEvery == resetEvery-1 {
					b.StopTimer()
					w.emu.Reset()
					b.StartTimer()
				}
				if i%2 == 0 {
					t0 := time.Now()
					baseline()
					t1 := time.Now()
					full()
					base[i], total[i] = t1.Sub(t0), time.Since(t1)
				} else {
					t0 := time.Now()
					full()
					t1 := time.Now()
					baseline()
					total[i], base[i] = t1.Sub(t0), time.Since(t1)
				}
				diff[i] = total[i] - base[i]
			}
			b.StopTimer()
			median := func(d []time.Duration) float64 {
				slices.Sort(d)
				return float64(d[(len(d)-1)/2])
			}
			b.ReportMetric(median(base), "car-p50-ns")
			b.ReportMetric(median(total), "start-p50-ns")
			b.ReportMetric(median(diff), "overhead-p50-ns")
		})
	}
}
