package crossing_test

import (
	"bufio"
	"fmt"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"carbroker/internal/dev/caremu"
	"carbroker/internal/testing/redistest"
	"carbroker/internal/testing/scftest"
)

// goal bounds the packages one start crosses (issue 17): a later feature
// goes into the package where it fits.
const goal = 8

const (
	project = "cap-crossing01"
	secret  = "AKIDcrossing000001"
	key     = "crossing-secret-key-0000000000001"
)

func TestCrossing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the function with coverage counters and runs it")
	}
	bin := filepath.Join(t.TempDir(), "main")
	build := exec.Command("go", "build", "-tags=scf", "-cover", "-covermode=atomic", "-coverpkg=carbroker/...",
		"-o", bin, "carbroker/function")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	emu := caremu.New(caremu.Options{Concurrency: 100, Credentials: map[string]caremu.Credential{secret: {SecretKey: key}}})
	ep, stop, err := emu.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	redis := redistest.Start(t)
	base := []string{"CAR_ENDPOINT=http://" + ep, "CAR_PROJECT_ID=" + project, "AUTH_MODE=none", "LOG_LEVEL=info",
		"PATH=" + os.Getenv("PATH")}
	configs := []struct {
		name string
		env  []string
	}{
		{"line off", nil},
		{"line on", []string{"QUEUE_REDIS_URL=" + redis.URL(), "QUEUE_KEY_PREFIX=line-on:"}},
		{"line and leases on", []string{"QUEUE_REDIS_URL=" + redis.URL(), "QUEUE_KEY_PREFIX=leases-on:", "SESSION_MAX=10m"}},
	}
	for _, c := range configs {
		env := append(slices.Clone(base), c.env...)
		before := run(t, bin, env, c.name+" warm", 1)
		after := run(t, bin, env, c.name+" measured", 2)
		var crossed []string
		for pkg, blocks := range after {
			var moved []string
			for b, n := range blocks {
				if n > before[pkg][b] {
					moved = append(moved, b)
				}
			}
			if len(moved) > 0 {
				crossed = append(crossed, pkg)
				slices.Sort(moved)
				if testing.Verbose() && os.Getenv("CROSSING_BLOCKS") != "" {
					t.Logf("%s: %s", c.name, strings.Join(moved, " "))
				}
			}
		}
		slices.Sort(crossed)
		t.Logf("%s: POST /session crosses %d of our packages: %s", c.name, len(crossed), strings.ReplaceAll(strings.Join(crossed, " "), "carbroker/internal/", ""))
		if len(crossed) > goal {
			t.Errorf("%s: a start crosses %d packages, more than %d", c.name, len(crossed), goal)
		}
	}
}

// run starts the binary in event mode with its counters going to a new
// directory, serves n POST /session starts (new users, the first a
// warm-up) and stops it; it returns each package's counters by block.
func run(t *testing.T, bin string, env []string, name string, n int) map[string]map[string]int {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(env, "_LAMBDA_SERVER_PORT="+port, "GOCOVERDIR="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var c *rpc.Client
	for deadline := time.Now().Add(10 * time.Second); ; {
		var err error
		if c, err = rpc.Dial("tcp", "127.0.0.1:"+port); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("%s: the function did not listen: %v\n%s", name, err, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	creds := scftest.Environment("TENCENTCLOUD_SECRETID", secret, "TENCENTCLOUD_SECRETKEY", key)
	for i := range n {
		user := fmt.Sprintf("user-%s-%d", strings.ReplaceAll(name, " ", "-"), i)
		ev := fmt.Sprintf(`{"httpMethod":"POST","path":"/session","headers":{"x-scf-remote-addr":"203.0.113.50"},"body":%q}`,
			`{"UserId":"`+user+`","ClientSession":"cs"}`)
		resp, err := scftest.Invoke(c, scftest.InvokeRequest{Payload: []byte(ev), RequestId: "req-" + strconv.Itoa(i),
			Environment: creds, TimeLimitInMs: 15000})
		if err != nil {
			t.Fatal(err)
		}
		r, err := scftest.Decode(resp.Payload)
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("%s: start %d: %d %s %v\n%s", name, i, r.StatusCode, r.Body, err, stderr.String())
		}
	}
	c.Close()
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, stderr.String())
	}
	text := filepath.Join(t.TempDir(), "cover.txt")
	if out, err := exec.Command("go", "tool", "covdata", "textfmt", "-i="+dir, "-o="+text).CombinedOutput(); err != nil {
		t.Fatalf("covdata: %v\n%s", err, out)
	}
	return counters(t, text)
}

// counters reads a textfmt profile: file:block statements count.
func counters(t *testing.T, file string) map[string]map[string]int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]map[string]int{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, "mode:") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			continue
		}
		n, _ := strconv.Atoi(fields[2])
		block := fields[0]
		file, _, _ := strings.Cut(block, ":")
		pkg := path.Dir(file)
		if m[pkg] == nil {
			m[pkg] = map[string]int{}
		}
		m[pkg][block] += n
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}
