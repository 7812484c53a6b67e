package app_test

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"carbroker/internal/dev/caremu"
	"carbroker/internal/testing/scftest"
)

// On SIGTERM the HTTP server stops accepting, finishes the request in
// flight, and exits 0.
func TestGracefulShutdownOnSIGTERM(t *testing.T) {
	t.Parallel()
	w := newWorld(t, caremu.Options{})
	base, p := w.httpFunction()
	w.emu.SetLatency("CreateSession", 400*time.Millisecond)

	done := make(chan int, 1)
	go func() {
		res, err := http.Post(base+"/session", "", strings.NewReader(`{"UserId":"alice","ClientSession":"cs"}`))
		if err != nil {
			done <- -1
			return
		}
		res.Body.Close()
		done <- res.StatusCode
	}()
	// Wait until the request is inside CAR, then terminate.
	deadline := time.Now().Add(5 * time.Second)
	for w.emu.InFlight() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if status := <-done; status != 200 {
		t.Fatalf("the request in flight got %d", status)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the function did not exit after SIGTERM")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still serving after shutdown")
	}
}

// CAR unreachable: a prompt 502, and the function stays healthy.
func TestCARConnectionRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t, caremu.Options{})
	w.endpoint = "127.0.0.1:" + freePort(t) // nothing listens there
	base, _ := w.httpFunction()
	start := time.Now()
	res, err := http.Post(base+"/session", "", strings.NewReader(`{"UserId":"alice","ClientSession":"cs"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 502 || time.Since(start) > 3*time.Second {
		t.Fatalf("status %d after %v", res.StatusCode, time.Since(start))
	}
	res, err = http.Get(base + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("healthz after a CAR failure: %v", err)
	}
	res.Body.Close()
}

// In event mode too, SIGTERM lets the invoke in flight finish.
func TestEventModeDrainsOnSIGTERM(t *testing.T) {
	t.Parallel()
	w := newWorld(t, caremu.Options{})
	c, p := w.eventFunction()
	w.emu.SetLatency("CreateSession", 400*time.Millisecond)
	got := make(chan scftest.Response, 1)
	go func() {
		var ir scftest.Response
		req := scftest.InvokeRequest{Payload: urlEvent("POST", "/session", `{"UserId":"alice","ClientSession":"cs"}`, nil), RequestId: "drain", Environment: credsA()}
		if resp, err := scftest.Invoke(c, req); err == nil {
			ir, _ = scftest.Decode(resp.Payload)
		}
		got <- ir
	}()
	for deadline := time.Now().Add(5 * time.Second); w.emu.InFlight() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if ir := <-got; ir.StatusCode != 200 {
		t.Fatalf("the invoke in flight got %d %s", ir.StatusCode, ir.Body)
	}
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
}
