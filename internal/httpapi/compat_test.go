package httpapi_test

import (
	"strings"
	"testing"

	"carbroker/internal/dev/caremu"
)

// The drop-in routes answer HTTP 200 with the demo's codes, echoing the
// client's RequestId.
func TestCompatRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{Concurrency: 1}, nil)
	start := `{"ProjectId":"` + testProject + `","UserId":"alice","ClientSession":"cs","RequestId":"req-1"}`

	r := e.do("POST", "/StartProject", start)
	if r.Status != 200 || r.str("Code") != "0" || r.str("RequestId") != "req-1" ||
		r.str("SessionDescribe", "ServerSession") == "" || r.str("SessionDescribe", "RequestId") == "" {
		t.Fatalf("StartProject: %d %s", r.Status, r.Raw)
	}

	cases := []struct {
		name, path, body string
		inject           func()
		code             string
	}{
		{"validation", "/StartProject", `{"UserId":"bob","RequestId":"req-2"}`, nil, "10001"},
		{"bad JSON", "/StartProject", `{`, nil, "10001"},
		{"NoIdle is an ApplyConcurrent failure", "/StartProject", `{"UserId":"bob","ClientSession":"cs","RequestId":"req-2"}`, nil, "10202"},
		{"CreateSession failure", "/StartProject", `{"UserId":"alice","ClientSession":"cs","RequestId":"req-2"}`,
			func() { e.emu.Inject("CreateSession", caremu.Fail("InternalError", "")) }, "10200"},
		{"ApplyConcurrent failure", "/StartProject", `{"UserId":"alice","ClientSession":"cs","RequestId":"req-2"}`,
			func() { e.emu.Inject("ApplyConcurrent", caremu.Fail("InternalError", "")) }, "10202"},
		{"Enqueue with no idle concurrency: queuing", "/Enqueue", `{"UserId":"bob","RequestId":"req-2"}`, nil, "10100"},
		{"Enqueue locks alice's own concurrency", "/Enqueue", `{"UserId":"alice","RequestId":"req-2"}`, nil, "10101"},
		{"Dequeue is a no-op", "/Dequeue", `{"UserId":"alice","RequestId":"req-2"}`, nil, "0"},
		{"stop failure", "/StopProject", `{"UserId":"alice","RequestId":"req-2"}`,
			func() { e.emu.Inject("DestroySession", caremu.Fail("InternalError", "")) }, "10201"},
		{"stop validation", "/StopProject", `{"UserId":"a b","RequestId":"req-2"}`, nil, "10001"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.inject != nil {
				c.inject()
			}
			r := e.do("POST", c.path, c.body)
			if r.Status != 200 || r.str("Code") != c.code || r.str("Msg") == "" {
				t.Fatalf("%d %s, want Code %s", r.Status, r.Raw, c.code)
			}
			if c.name != "bad JSON" && r.str("RequestId") != "req-2" {
				t.Errorf("RequestId not echoed: %s", r.Raw)
			}
		})
	}
	q := e.do("POST", "/Enqueue", `{"UserId":"bob","RequestId":"req-3"}`)
	if q.str("Data", "Index") != "1" || q.str("Data", "UserId") != "bob" || q.str("Data", "ProjectId") != testProject {
		t.Errorf("Enqueue queuing Data: %s", q.Raw)
	}
	if s := e.slot("alice"); s.State == caremu.Stopping || s.State == caremu.Idle {
		t.Errorf("Dequeue or a failed stop changed alice's concurrency: %s", s.State)
	}
	before := e.carCalls("DestroySession")
	if r := e.do("POST", "/StopProject", `{"UserId":"alice","RequestId":"req-4"}`); r.str("Code") != "0" {
		t.Fatalf("StopProject: %s", r.Raw)
	}
	if e.carCalls("DestroySession") != before+1 {
		t.Error("StopProject did not call DestroySession")
	}
}

func TestEnqueueThenStartProject(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{Concurrency: 1}, nil)
	if r := e.do("POST", "/Enqueue", `{"UserId":"alice","RequestId":"q"}`); r.str("Code") != "10101" || r.str("Data", "Index") != "0" {
		t.Fatalf("Enqueue: %s", r.Raw)
	}
	if s := e.slot("alice"); s.State != caremu.Locked {
		t.Fatalf("after Enqueue alice's concurrency is %s, want locked", s.State)
	}
	if r := e.do("POST", "/StartProject", `{"UserId":"alice","ClientSession":"cs","RequestId":"s"}`); r.str("Code") != "0" {
		t.Fatalf("StartProject: %s", r.Raw)
	}
}

func TestUnsafeClientRequestIDIsRefusedEverywhere(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, nil)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/session", `{"UserId":"u1","ClientSession":"cs","RequestId":"a b"}`},
		{"DELETE", "/session", `{"UserId":"u1","RequestId":"a\nb"}`},
		{"POST", "/StopProject", `{"UserId":"u1","RequestId":"<x>"}`},
		{"POST", "/Dequeue", `{"UserId":"u1","RequestId":"` + strings.Repeat("r", 65) + `"}`},
	} {
		r := e.do(c.method, c.path, c.body)
		if r.Status == 200 && r.str("Code") != "10001" || r.Status != 200 && r.Status != 400 {
			t.Errorf("%s %s: %d %s", c.method, c.path, r.Status, r.Raw)
		}
	}
	if n := e.carCalls(""); n != 0 {
		t.Errorf("%d CAR calls", n)
	}
}
