package bench_test

import (
	"bytes"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"testing"
	"time"

	"carbroker/internal/car"
	"carbroker/internal/config"
	"carbroker/internal/dev/caremu"
	"carbroker/internal/httpapi"
	"carbroker/internal/queue"
	"carbroker/internal/testing/apitest"
	"carbroker/internal/testing/redistest"
)

// BenchmarkLinePoll is a poll of a user waiting in the line (POST /session
// answered 202 without reaching CAR) through one instance's HTTP handler,
// with 400 users waiting behind a full pool of 4 and the line in a Redis of
// its own (a real redis-server on loopback when one is on PATH: the metric
// redis-real is 1 then). Each poll is one script on Redis. About once a
// second one poll also refreshes the shared count (DescribeConcurrentCount,
// in process here), as in production; the head, which would try CAR, is
// never polled.
func BenchmarkLinePoll(b *testing.B) {
	srv := redistest.Start(b)
	env := map[string]string{"QUEUE_REDIS_URL": srv.URL(), "QUEUE_MAX_PER_IP": "100000"}
	for k, v := range vars {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] }, config.Options{})
	if err != nil {
		b.Fatal(err)
	}
	emu := caremu.New(caremu.Options{Concurrency: 4, Projects: []string{project},
		Credentials: map[string]caremu.Credential{secretID: {SecretKey: secretKey}}})
	c := car.New(car.Options{Host: cfg.Endpoint.Host, Scheme: cfg.Endpoint.Scheme, Transport: emu.Transport(), Getenv: getenv})
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	// A budget above the default 100 ms: on a loaded machine a rare poll
	// would otherwise be served without the line and end the run.
	api, _, err := apitest.New(cfg, c, apitest.Options{HTTP: httpapi.Options{Logger: log, Version: "bench"},
		Queue: queue.Options{CallTimeout: 2 * time.Second}})
	if err != nil {
		b.Fatal(err)
	}
	out := &sink{h: http.Header{}}
	poll := func(user string) int {
		r, err := http.NewRequest(http.MethodPost, "/session", bytes.NewReader(startBody(user)))
		if err != nil {
			b.Fatal(err)
		}
		r.RemoteAddr = clientIP + ":40000"
		out.reset()
		api.ServeHTTP(out, r)
		return out.status
	}
	for i := range 4 {
		if s := poll("holder-" + strconv.Itoa(i)); s != http.StatusOK {
			b.Fatalf("filling the pool: %d %s", s, out.body.String())
		}
	}
	const waiting = 400
	users := make([]string, waiting)
	for i := range users {
		users[i] = "waiter-" + strconv.Itoa(i)
		if s := poll(users[i]); s != http.StatusAccepted {
			b.Fatalf("joining: %d %s", s, out.body.String())
		}
	}
	if srv.IsReal() {
		b.ReportMetric(1, "redis-real")
	} else {
		b.ReportMetric(0, "redis-real")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	d := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N { // not timed(): its emulator resets would free the pool
		t := time.Now()
		s := poll(users[1+rng.IntN(waiting-1)])
		d[i] = time.Since(t)
		if s != http.StatusAccepted {
			b.Fatalf("poll: %d %s", s, out.body.String())
		}
	}
	b.StopTimer()
	reportPercentiles(b, d)
}
