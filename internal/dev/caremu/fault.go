package caremu

import (
	"context"
	"fmt"
	"time"
)

// Fault is a one-shot change to how the emulator answers one request: wait
// Delay (real time), then hang if Hang, else answer Raw if set, else the
// error Code if set, else answer normally.
type Fault struct {
	Delay   time.Duration // wait before answering; the request's context cuts it short
	Hang    bool          // never answer: block until the request's context ends
	Code    string        // answer this error code in the CAR envelope
	Message string        // the error message (a generic one when empty)
	Raw     *RawReply     // answer these bytes instead of an envelope
}

// RawReply is an answer that need not be a CAR envelope: an HTML 500,
// truncated JSON, an empty body.
type RawReply struct {
	Status      int
	ContentType string // no Content-Type header when empty
	Body        string
}

// Fail returns a fault answering the error code with message.
func Fail(code, message string) Fault { return Fault{Code: code, Message: message} }

// Delay returns a fault that answers normally after d.
func Delay(d time.Duration) Fault { return Fault{Delay: d} }

// Hang returns a fault that never answers.
func Hang() Fault { return Fault{Hang: true} }

// Raw returns a fault answering the given status, content type and body.
func Raw(status int, contentType, body string) Fault {
	return Fault{Raw: &RawReply{Status: status, ContentType: contentType, Body: body}}
}

func (f Fault) kind() string {
	switch {
	case f.Hang:
		return "hang"
	case f.Raw != nil:
		return "raw"
	case f.Code != "":
		return "error"
	default:
		return "delay"
	}
}

// Inject queues faults for action. Each well-formed, authenticated request
// for the action consumes the next one, in order; requests find the pool
// untouched while a fault answers for it. It panics on an unknown action.
func (e *Emulator) Inject(action string, faults ...Fault) {
	mustKnow(action)
	e.mu.Lock()
	e.faults[action] = append(e.faults[action], faults...)
	e.mu.Unlock()
}

// SetLatency makes every request for action wait d (real time) before the
// rest of its handling, faults included; 0 removes it. It panics on an
// unknown action.
func (e *Emulator) SetLatency(action string, d time.Duration) {
	mustKnow(action)
	e.mu.Lock()
	e.latency[action] = d
	e.mu.Unlock()
}

// Pending returns how many injected faults for action are still queued.
func (e *Emulator) Pending(action string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.faults[action])
}

func mustKnow(action string) {
	if _, ok := actions[action]; !ok {
		panic(fmt.Sprintf("caremu: unknown action %q", action))
	}
}

// inject applies the action's latency and its next fault, if any. It returns
// the answer the fault imposes, or the context's error if the client left.
func (e *Emulator) inject(ctx context.Context, c *Call) error {
	e.mu.Lock()
	latency := e.latency[c.Action]
	var f Fault
	q := e.faults[c.Action]
	if len(q) > 0 {
		f = q[0]
		e.faults[c.Action] = q[1:]
		c.Fault = f.kind()
	}
	e.mu.Unlock()

	if err := sleep(ctx, latency+f.Delay); err != nil {
		return err
	}
	switch {
	case f.Hang:
		<-ctx.Done()
		return ctx.Err()
	case f.Raw != nil:
		return &rawError{*f.Raw}
	case f.Code != "":
		msg := f.Message
		if msg == "" {
			msg = "injected fault"
		}
		return errorf(f.Code, msg)
	}
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
