package scf_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"carbroker/internal/httpapi"
	"carbroker/internal/scf"
	"carbroker/internal/testing/scftest"
)

// scf-go-lib's own timer event test payload (events/timer_test.go): its
// field names, as the platform sends them.
const timerPayload = `{"Message": "", "Time": "2019-08-17T05:26:00Z", "TriggerName": "oneminute", "Type": "Timer"}`

func TestDecodeTimer(t *testing.T) {
	ev, ok := scf.DecodeTimer([]byte(timerPayload))
	if !ok || ev != (scf.TimerEvent{Type: "Timer", TriggerName: "oneminute", Time: "2019-08-17T05:26:00Z"}) {
		t.Fatalf("%v %+v", ok, ev)
	}
	for _, p := range []string{`{}`, `garbage`, `{"Type":"timer"}`, `{"Type":"Timer","httpMethod":"POST","path":"/"}`, `{"Type":7}`} {
		if _, ok := scf.DecodeTimer([]byte(p)); ok {
			t.Errorf("%s read as a timer event", p)
		}
	}
}

// timerHandler records what its timer work saw.
type timerHandler struct {
	http.Handler
	got chan seenTimer
}

type seenTimer struct {
	ev       scf.TimerEvent
	deadline time.Time
	triple   triple
	info     httpapi.Invocation
}

func (h timerHandler) Timer(ctx context.Context, ev scf.TimerEvent) any {
	s := seenTimer{ev: ev}
	s.deadline, _ = ctx.Deadline()
	s.triple, _ = ctx.Value(tripleKey{}).(triple)
	s.info, _ = httpapi.InvocationFrom(ctx)
	h.got <- s
	return map[string]int{"Destroyed": 3}
}

// A timer event reaches the handler's timer work through the Go1 runtime,
// with the invoke's deadline and credentials; its result is the payload.
func TestInvokeTimer(t *testing.T) {
	h := timerHandler{Handler: echoHandler, got: make(chan seenTimer, 1)}
	c := startRuntime(t, func() (http.Handler, error) { return h, nil })
	deadline := time.Now().Add(time.Minute).Round(time.Second)
	resp := invoke(t, c, scftest.InvokeRequest{Payload: []byte(timerPayload), RequestId: "req-timer", Deadline: scftest.At(deadline),
		Environment: environment("TENCENTCLOUD_SECRETID", "id", "TENCENTCLOUD_SECRETKEY", "key")})
	if resp.Error != nil || string(resp.Payload) != `{"Destroyed":3}` {
		t.Fatalf("%+v %s", resp.Error, resp.Payload)
	}
	s := <-h.got
	if s.ev.TriggerName != "oneminute" || s.ev.Time != "2019-08-17T05:26:00Z" || !s.deadline.Equal(deadline) ||
		s.triple != (triple{ID: "id", Key: "key"}) || s.info != (httpapi.Invocation{RequestID: "req-timer", Trigger: "timer"}) {
		t.Errorf("timer work saw %+v", s)
	}
}

// A handler without timer work answers a timer event harmlessly: no HTTP
// request, no error.
func TestInvokeTimerWithoutTimerWork(t *testing.T) {
	c := startRuntime(t, echoSource)
	resp := invoke(t, c, scftest.InvokeRequest{Payload: []byte(timerPayload), RequestId: "req-timer"})
	var r struct {
		Type, TriggerName string
		Handled           bool
		StatusCode        int `json:"statusCode"`
	}
	if resp.Error != nil || json.Unmarshal(resp.Payload, &r) != nil || r.Handled || r.TriggerName != "oneminute" || r.StatusCode != 0 {
		t.Fatalf("%+v %s", resp.Error, resp.Payload)
	}
}
