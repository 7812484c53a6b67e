package app

import (
	"io"
	"sync"
	"testing"
)

// Event mode rebuilds its handler (and with it the use case's per-instance
// state: shared counts, the line's trouble, held grants, the Redis pool)
// when a configuration variable changes, and only then: a rotated
// credential triple, which an invoke's Environment brings every few
// minutes, is read per call by the CAR client, not by the configuration.
func TestEventSourceRebuildsOnConfigurationOnly(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	vars := map[string]string{"CAR_PROJECT_ID": "cap-test1", "AUTH_MODE": "none",
		"TENCENTCLOUD_SECRETID": "AKIDone", "TENCENTCLOUD_SECRETKEY": "key-one"}
	set := func(k, v string) { mu.Lock(); vars[k] = v; mu.Unlock() }
	get := func(k string) string { mu.Lock(); defer mu.Unlock(); return vars[k] }
	src := newEventSource(Env{Getenv: get, Stderr: io.Discard}, "test")
	built := func() timerHandler {
		t.Helper()
		h, err := src.current()
		if err != nil {
			t.Fatal(err)
		}
		return h.(timerHandler)
	}
	first := built()
	set("TENCENTCLOUD_SECRETID", "AKIDtwo")
	set("TENCENTCLOUD_SECRETKEY", "key-two")
	set("TENCENTCLOUD_SESSIONTOKEN", "token-two")
	if built().svc != first.svc {
		t.Error("a credential rotation rebuilt the handler")
	}
	set("LOG_LEVEL", "debug")
	second := built()
	if second.svc == first.svc {
		t.Error("a changed LOG_LEVEL kept the handler built before it")
	}
	if built().svc != second.svc {
		t.Error("an unchanged configuration rebuilt the handler")
	}
	set("LOG_LEVEL", "")
	if built().svc == second.svc {
		t.Error("a variable unset again kept the handler built with it")
	}
}
