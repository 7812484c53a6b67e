package app_test

import (
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

var printedCurl = regexp.MustCompile(`curl -s -X POST (\S+) -d '([^']*)'`)

// The dev mode's printed curl returns a ServerSession, even with real-looking
// credentials and a CAR_ENDPOINT in the shell (which it must ignore).
func TestDevModePrintedCurlWorks(t *testing.T) {
	env := []string{"PATH=" + os.Getenv("PATH"), "CAR_ENDPOINT=http://127.0.0.1:1",
		"TENCENTCLOUD_SECRETID=AKIDreal", "TENCENTCLOUD_SECRETKEY=real-key-must-not-be-used"}
	p := start(t, env, "-dev", "-listen", "127.0.0.1:0")
	var m []string
	for deadline := time.Now().Add(10 * time.Second); m == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		m = printedCurl.FindStringSubmatch(p.stdout.String())
	}
	if m == nil {
		t.Fatalf("no curl printed:\n%s\n%s", p.stdout.String(), p.stderr.String())
	}
	res, err := http.Post(m[1], "application/x-www-form-urlencoded", strings.NewReader(m[2])) // what curl -d sends
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || field(string(b), "ServerSession") == "" {
		t.Fatalf("%d %s\n%s", res.StatusCode, b, p.stderr.String())
	}
	if strings.Contains(p.stderr.String()+p.stdout.String(), "real-key-must-not-be-used") {
		t.Error("the shell's key was printed")
	}
}

var devURL = regexp.MustCompile(`dev mode: the function on (\S+) `)

// Dev mode runs the waiting line on an embedded Redis by default, with the
// pool size DEV_CONCURRENCY; DEV_QUEUE=false turns the line off.
func TestDevModeLine(t *testing.T) {
	for _, c := range []struct {
		queue      string
		wantStatus int
	}{{"", http.StatusAccepted}, {"false", http.StatusServiceUnavailable}} {
		env := []string{"PATH=" + os.Getenv("PATH"), "DEV_CONCURRENCY=1", "DEV_QUEUE=" + c.queue}
		p := start(t, env, "-dev", "-listen", "127.0.0.1:0")
		var m []string
		for deadline := time.Now().Add(10 * time.Second); m == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			m = devURL.FindStringSubmatch(p.stdout.String())
		}
		if m == nil {
			t.Fatalf("no URL printed:\n%s\n%s", p.stdout.String(), p.stderr.String())
		}
		post := func(user string) (int, string) {
			res, err := http.Post(m[1]+"/session", "", strings.NewReader(`{"UserId":"`+user+`","ClientSession":"cs"}`))
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			return res.StatusCode, string(b)
		}
		if st, b := post("first"); st != 200 {
			t.Fatalf("DEV_QUEUE=%q first: %d %s", c.queue, st, b)
		}
		if st, b := post("second"); st != c.wantStatus {
			t.Fatalf("DEV_QUEUE=%q second with a pool of 1: %d %s, want %d", c.queue, st, b, c.wantStatus)
		}
	}
}
