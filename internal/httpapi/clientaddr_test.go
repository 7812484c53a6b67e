package httpapi_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"carbroker/internal/car"
	"carbroker/internal/config"
	"carbroker/internal/dev/caremu"
	"carbroker/internal/httpapi"
	"carbroker/internal/testing/apitest"
	"carbroker/internal/testing/testkit"
)

// A function that cannot see client addresses (no trusted proxy: every
// caller is 127.0.0.1) does not let one address hold the whole line: the
// QUEUE_MAX_PER_IP cap is not applied to a non-public address.
func TestLineDoesNotCapNonPublicAddress(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 1, caremu.Options{Concurrency: 1}, map[string]string{"QUEUE_MAX_PER_IP": "1"})
	start := func(user string) reply {
		return e.do("127.0.0.1", "POST", "/session", `{"UserId":"`+user+`","ClientSession":"cs-`+user+`"}`)
	}
	if r := start("first"); r.Status != 200 {
		t.Fatalf("first: %d %s", r.Status, r.Raw)
	}
	for i, u := range []string{"second", "third", "fourth"} {
		wantWait(t, start(u), i+1)
	}
	// A public address is still capped.
	if r := e.do("198.51.100.9", "POST", "/session", `{"UserId":"p1","ClientSession":"cs"}`); r.Status != http.StatusAccepted {
		t.Fatalf("first place from a public address: %d %s", r.Status, r.Raw)
	}
	if r := e.do("198.51.100.9", "POST", "/session", `{"UserId":"p2","ClientSession":"cs"}`); r.Status != http.StatusTooManyRequests {
		t.Fatalf("second place from one public address with QUEUE_MAX_PER_IP=1: %d %s", r.Status, r.Raw)
	}
}

// The warning about a non-public client address names TRUSTED_PROXY_CIDRS,
// comes at most once a minute (not once per instance for good), and never in
// dev mode.
func TestNonPublicAddressWarning(t *testing.T) {
	t.Parallel()
	for _, local := range []bool{false, true} {
		cfg, err := config.Load(func(k string) string {
			return map[string]string{"CAR_PROJECT_ID": testProject, "AUTH_MODE": "none"}[k]
		}, config.Options{})
		if err != nil {
			t.Fatal(err)
		}
		emu := caremu.New(caremu.Options{Concurrency: 100})
		cl := emu.Client()
		c := car.New(car.Options{Host: "car.tencentcloudapi.com", Transport: cl.Transport, Getenv: cl.Getenv})
		logs := &testkit.Buffer{}
		clock := testkit.NewClock(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
		api, _, err := apitest.New(cfg, c, apitest.Options{HTTP: httpapi.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil)), Now: clock.Now, Local: local}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		start := func() {
			t.Helper()
			n++
			req := httptest.NewRequest("POST", "/session", strings.NewReader(`{"UserId":"u`+string(rune('a'+n))+`","ClientSession":"cs"}`))
			req.RemoteAddr = "127.0.0.1:5555"
			req.Header.Set("X-Forwarded-For", "198.51.100.4")
			if r := serveOn(t, api, req); r.Status != 200 {
				t.Fatalf("start: %d %s", r.Status, r.Raw)
			}
		}
		warnings := func() int { return strings.Count(logs.String(), "TRUSTED_PROXY_CIDRS") }
		start()
		start()
		clock.Advance(59 * time.Second)
		start()
		want := 1
		if local {
			want = 0
		}
		if got := warnings(); got != want {
			t.Fatalf("local=%v: %d warnings within a minute, want %d:\n%s", local, got, want, logs)
		}
		clock.Advance(2 * time.Second)
		start()
		if local {
			want = 0
		} else {
			want = 2
		}
		if got := warnings(); got != want {
			t.Fatalf("local=%v: %d warnings after a minute, want %d:\n%s", local, got, want, logs)
		}
		if !local && !strings.Contains(logs.String(), `"x_forwarded_for":"198.51.100.4"`) {
			t.Errorf("the warning does not show the forwarding header it ignored:\n%s", logs)
		}
	}
}
