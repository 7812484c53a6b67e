package app_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"carbroker/internal/dev/caremu"
	"carbroker/internal/testing/redistest"
	"carbroker/internal/testing/scftest"
)

// The timer trigger's event, through the real binary's Go1 runtime with
// scf-go-lib's field names, destroys the sessions of ended leases.
func TestEventModeTimerSweeps(t *testing.T) {
	t.Parallel()
	w := newWorld(t, caremu.Options{ClientWait: -1})
	srv := redistest.Start(t)
	c, p := w.eventFunction("QUEUE_REDIS_URL="+srv.URL(), "SESSION_MAX=1s")
	ir, _ := invoke(t, c, urlEvent("POST", "/session", `{"UserId":"alice","ClientSession":"cs"}`, nil), credsA(), time.Time{})
	exp, err := time.Parse(time.RFC3339, field(ir.Body, "ExpiresAt"))
	if ir.StatusCode != 200 || err != nil || time.Until(exp) > 2*time.Second {
		t.Fatalf("start: %d %s", ir.StatusCode, ir.Body)
	}
	timer := func() map[string]any {
		t.Helper()
		resp, err := scftest.Invoke(c, scftest.InvokeRequest{
			Payload:     []byte(`{"Type":"Timer","TriggerName":"sweep","Time":"` + time.Now().UTC().Format(time.RFC3339) + `","Message":""}`),
			RequestId:   fmt.Sprintf("timer-%d", time.Now().UnixNano()),
			Environment: credsA(), Deadline: scftest.At(time.Now().Add(10 * time.Second)),
		})
		var out map[string]any
		if err != nil || resp.Error != nil || json.Unmarshal(resp.Payload, &out) != nil {
			t.Fatalf("timer invoke: %v %+v %s", err, resp.Error, resp.Payload)
		}
		return out
	}
	if r := timer(); r["Claimed"] != 0.0 {
		t.Fatalf("a live lease was claimed: %v", r)
	}
	time.Sleep(time.Until(exp) + 100*time.Millisecond)
	if r := timer(); r["Destroyed"] != 1.0 {
		t.Fatalf("after the lease: %v\n%s", r, p.stderr.String())
	}
	n := 0
	for _, call := range w.emu.Calls() {
		if call.Action == "DestroySession" && call.UserID == "alice" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d DestroySession calls for alice", n)
	}
}
