package scf_test

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"carbroker/internal/httpapi"
	"carbroker/internal/scf"
)

func TestWebFunction(t *testing.T) {
	trusted := func(addr string) bool { return addr == "127.0.0.1:51000" }
	h := scf.WebFunction(echoHandler, trusted)
	tests := []struct {
		name, peer, timeout string
		info                *httpapi.Invocation
		seconds             float64 // 0: no deadline
	}{
		{"trusted", "127.0.0.1:51000", "3", &httpapi.Invocation{RequestID: "web-1", Trigger: "web"}, 3},
		{"fractional", "127.0.0.1:51000", "0.5", &httpapi.Invocation{RequestID: "web-1", Trigger: "web"}, 0.5},
		{"milliseconds", "127.0.0.1:51000", "300000", &httpapi.Invocation{RequestID: "web-1", Trigger: "web"}, 300},
		{"neither unit", "127.0.0.1:51000", "950", &httpapi.Invocation{RequestID: "web-1", Trigger: "web"}, 0},
		{"past the longest timeout", "127.0.0.1:51000", "1000000", &httpapi.Invocation{RequestID: "web-1", Trigger: "web"}, 0},
		{"no timeout", "127.0.0.1:51000", "", &httpapi.Invocation{RequestID: "web-1", Trigger: "web"}, 0},
		{"bad timeout", "127.0.0.1:51000", "soon", &httpapi.Invocation{RequestID: "web-1", Trigger: "web"}, 0},
		{"negative timeout", "127.0.0.1:51000", "-1", &httpapi.Invocation{RequestID: "web-1", Trigger: "web"}, 0},
		{"untrusted", "203.0.113.5:40000", "3", nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/car/session", nil)
			r.RemoteAddr = tt.peer
			r.Header.Set("X-Scf-Request-Id", "web-1")
			if tt.timeout != "" {
				r.Header.Set("X-Scf-Timeout", tt.timeout)
			}
			w := httptest.NewRecorder()
			before := time.Now()
			h.ServeHTTP(w, r)
			after := time.Now()
			var s seen
			if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
				t.Fatal(err)
			}
			if (s.Info == nil) != (tt.info == nil) || s.Info != nil && *s.Info != *tt.info {
				t.Errorf("Info = %+v, want %+v", s.Info, tt.info)
			}
			if tt.seconds == 0 {
				if s.Deadline != nil {
					t.Errorf("Deadline = %v, want none", s.Deadline)
				}
				return
			}
			d := time.Duration(tt.seconds * float64(time.Second))
			if s.Deadline == nil || s.Deadline.Before(before.Add(d)) || s.Deadline.After(after.Add(d)) {
				t.Errorf("Deadline = %v, want %v after arrival", s.Deadline, d)
			}
		})
	}
}

func TestWebFunctionTrustsNobodyByDefault(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Scf-Request-Id", "forged")
	w := httptest.NewRecorder()
	scf.WebFunction(echoHandler, nil).ServeHTTP(w, r)
	var s seen
	if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil || s.Info != nil {
		t.Errorf("Info = %+v, err %v; want none", s.Info, err)
	}
}
