package scf

import (
	"context"
	"encoding/json"
	"net/http"
)

// TimerEvent is the event of a timer trigger, with the field names of
// scf-go-lib's events.TimerEvent:
// {"Type":"Timer","TriggerName":"…","Time":"2019-02-21T11:49:00Z","Message":"…"}.
// Message is the trigger's optional argument.
type TimerEvent struct {
	Type        string
	TriggerName string
	Time        string
	Message     string
}

// TimerHandler is a handler with work to do on a timer event: the runtime
// calls Timer for one, instead of ServeHTTP. Its result is the invoke's
// payload, as JSON; the invoke ends when Timer returns, and so must all of
// its work.
type TimerHandler interface {
	http.Handler
	Timer(ctx context.Context, ev TimerEvent) any
}

// DecodeTimer reports whether payload is a timer event (Type "Timer", no
// httpMethod), and returns it.
func DecodeTimer(payload []byte) (TimerEvent, bool) {
	ev, err := parseEvent(payload)
	if err != nil {
		return TimerEvent{}, false
	}
	return ev.timer()
}

// timerReply is the payload of a timer invoke whose handler has no timer
// work, or whose result is not JSON.
type timerReply struct {
	Type        string
	TriggerName string
	Handled     bool
}

// timer runs a timer event's work.
func (f *Function) timer(ctx context.Context, h http.Handler, ev TimerEvent, requestID string) []byte {
	th, ok := h.(TimerHandler)
	if !ok {
		f.log.Debug("scf: timer event with no timer work", "request_id", requestID, "trigger_name", ev.TriggerName)
		b, _ := json.Marshal(timerReply{Type: ev.Type, TriggerName: ev.TriggerName})
		return b
	}
	b, err := json.Marshal(th.Timer(ctx, ev))
	if err != nil {
		b, _ = json.Marshal(timerReply{Type: ev.Type, TriggerName: ev.TriggerName, Handled: true})
	}
	return b
}
