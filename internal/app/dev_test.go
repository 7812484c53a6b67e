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
