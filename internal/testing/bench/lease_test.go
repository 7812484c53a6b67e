package bench_test

import (
	"bytes"
	"io"
	"log/slog"
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

// BenchmarkLeaseReconnect is what session leases cost a start: a reconnect
// (POST /session of a user holding a concurrency: ApplyConcurrent and
// CreateSession on the in-process emulator) of one of 64 users through one
// instance's HTTP handler with the line on, without leases and with
// SESSION_MAX (read the lease, keep its end, the in-request sweep's claim:
// three more Redis calls).
func BenchmarkLeaseReconnect(b *testing.B) {
	for _, mode := range []string{"off", "on"} {
		b.Run("leases="+mode, func(b *testing.B) {
			srv := redistest.Start(b)
			env := map[string]string{"QUEUE_REDIS_URL": srv.URL(), "QUEUE_MAX_PER_IP": "100000"}
			for k, v := range vars {
				env[k] = v
			}
			if mode == "on" {
				env["SESSION_MAX"] = "1h"
			}
			cfg, err := config.Load(func(k string) string { return env[k] }, config.Options{})
			if err != nil {
				b.Fatal(err)
			}
			emu := caremu.New(caremu.Options{Concurrency: 64, ClientWait: -1, Projects: []string{project},
				Credentials: map[string]caremu.Credential{secretID: {SecretKey: secretKey}}})
			c := car.New(car.Options{Host: cfg.Endpoint.Host, Scheme: cfg.Endpoint.Scheme, Transport: emu.Transport(), Getenv: getenv})
			log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
			api, _, err := apitest.New(cfg, c, apitest.Options{HTTP: httpapi.Options{Logger: log, Version: "bench"},
				Queue: queue.Options{CallTimeout: 2 * time.Second}})
			if err != nil {
				b.Fatal(err)
			}
			out := &sink{h: http.Header{}}
			start := func(user string) {
				r, err := http.NewRequest(http.MethodPost, "/session", bytes.NewReader(startBody(user)))
				if err != nil {
					b.Fatal(err)
				}
				r.RemoteAddr = clientIP + ":40000"
				out.reset()
				api.ServeHTTP(out, r)
				if out.status != http.StatusOK || (mode == "on") != bytes.Contains(out.body.Bytes(), []byte(`"ExpiresAt"`)) {
					b.Fatalf("start %s: %d %s", user, out.status, out.body.String())
				}
			}
			const users = 64
			for i := range users {
				start("u" + strconv.Itoa(i))
			}
			d := make([]time.Duration, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if i%resetEvery == resetEvery-1 {
					b.StopTimer()
					emu.Reset() // the call log stays small; the next starts take fresh concurrencies, in both modes alike
					b.StartTimer()
				}
				t := time.Now()
				start("u" + strconv.Itoa(i%users))
				d[i] = time.Since(t)
			}
			b.StopTimer()
			reportPercentiles(b, d)
		})
	}
}
