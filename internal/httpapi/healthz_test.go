package httpapi_test

import (
	"context"
	"testing"
	"time"

	"carbroker/internal/dev/caremu"
	"carbroker/internal/resp"
)

// At maxmemory with noeviction Redis answers PING but refuses writes, as a
// poll's script needs them: /healthz says the line is degraded, and ok
// again once Redis accepts writes.
func TestHealthzDegradedWhileRedisRefusesWrites(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 1, caremu.Options{Concurrency: 2}, nil)
	if !e.redis.IsReal() {
		t.Skip("needs redis-server (maxmemory)")
	}
	wantStarted(t, e.start("a"))
	if r := e.do("203.0.113.5", "GET", "/healthz", ""); r.str("Queue") != "ok" {
		t.Fatalf("healthz: %s", r.Raw)
	}
	admin := resp.New(resp.Options{Addr: e.redis.Addr()})
	defer admin.Close()
	ctx := context.Background()
	for _, kv := range [][2]string{{"maxmemory-policy", "noeviction"}, {"maxmemory", "1"}} {
		if _, err := admin.Do(ctx, "CONFIG", "SET", kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.do("203.0.113.5", "GET", "/healthz", ""); r.Status != 200 || r.str("Queue") != "degraded" {
		t.Fatalf("healthz while Redis refuses writes (OOM): %d %s", r.Status, r.Raw)
	}
	if _, err := admin.Do(ctx, "CONFIG", "SET", "maxmemory", "0"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		r := e.do("203.0.113.5", "GET", "/healthz", "")
		if r.str("Queue") == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz once Redis accepts writes again: %s", r.Raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
