package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"carbroker/internal/dev/caremu"
)

// The web-function shape, with TRUSTED_PROXY_CIDRS=127.0.0.1/32 set (as an
// operator sets it after checking what the proxy forwards: docs/deploy.md):
// the platform's local proxy supplies the request id, the timeout (seconds)
// and the client address.
func TestWebFunctionHeaders(t *testing.T) {
	t.Parallel()
	w := newWorld(t, caremu.Options{})
	base, _ := w.httpFunction("TRUSTED_PROXY_CIDRS=127.0.0.1/32")
	post := func(user string, h map[string]string) (int, string, time.Duration) {
		req, _ := http.NewRequest("POST", base+"/session", strings.NewReader(`{"UserId":"`+user+`","ClientSession":"cs"}`))
		for k, v := range h {
			req.Header.Set(k, v)
		}
		begin := time.Now()
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b), time.Since(begin)
	}
	status, body, _ := post("alice", map[string]string{"X-Scf-Request-Id": "scf-web-req-1", "X-Forwarded-For": "198.51.100.77"})
	if status != 200 || field(body, "RequestId") != "scf-web-req-1" {
		t.Fatalf("%d %s", status, body)
	}
	if ip := w.userIP("alice"); ip != "198.51.100.77" {
		t.Errorf("UserIp = %q, want the proxy's X-Forwarded-For", ip)
	}
	w.emu.SetLatency("CreateSession", 5*time.Second)
	status, body, took := post("bob", map[string]string{"X-Scf-Timeout": "1"})
	if status != 504 || took > 3*time.Second { // 1 s, and slack for a loaded machine; not CreateSession's 5 s
		t.Fatalf("X-Scf-Timeout 1: %d after %v: %s", status, took, body)
	}
}

// A web function on SCF that is misconfigured keeps serving, and answers
// every request with a valid JSON error naming the variables at fault, even
// when a value holds control characters. The values are in the log only.
func TestWebFunctionMisconfiguredReplyIsJSON(t *testing.T) {
	t.Parallel()
	w := newWorld(t, caremu.Options{})
	base, p := w.httpFunction("TENCENTCLOUD_RUNENV=SCF", "CAR_ALLOW_APPLICATION_PARAMETERS=\x01(pattern-value", "AUTH_MODE=")
	res, err := http.Post(base+"/session", "application/json", strings.NewReader(`{"UserId":"alice","ClientSession":"cs"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var reply struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(b, &reply); err != nil {
		t.Fatalf("the reply is not JSON (%v): %q", err, b)
	}
	if res.StatusCode != 500 || reply.Error.Code != "InternalError" ||
		!strings.Contains(reply.Error.Message, "CAR_ALLOW_APPLICATION_PARAMETERS") || !strings.Contains(reply.Error.Message, "AUTH_MODE") {
		t.Fatalf("%d %s", res.StatusCode, b)
	}
	if strings.Contains(string(b), "pattern-value") {
		t.Errorf("the reply holds a value: %s", b)
	}
	if !strings.Contains(p.stderr.String(), "pattern-value") {
		t.Errorf("the log lacks the value:\n%s", p.stderr.String())
	}
}
