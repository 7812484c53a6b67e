package bench_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"carbroker/internal/dev/caremu"
	"carbroker/internal/testing/build"
	"carbroker/internal/testing/procstat"
	"carbroker/internal/testing/scftest"
	"carbroker/internal/testing/testkit"
)

// The binaries are built once per run: as make build builds it (deploy),
// and with dev mode for the mode=dev cold start (the deployed build has none).
var (
	buildDir string
	builds   [2]struct {
		once sync.Once
		bin  string
		err  error
	}
)

func TestMain(m *testing.M) {
	var err error
	if buildDir, err = os.MkdirTemp("", "bench-"); err != nil {
		panic(err)
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary returns the function's binary for linux/amd64, built with the
// deployment's flags. It skips under -short.
func binary(b *testing.B) string { return built(b, true) }

// built builds the function once per run, for deployment or with dev mode.
func built(b *testing.B, deploy bool) string {
	b.Helper()
	if testing.Short() {
		b.Skip("builds the function binary")
	}
	i, sub := 0, "deploy"
	if !deploy {
		i, sub = 1, "dev"
	}
	v := &builds[i]
	v.once.Do(func() {
		dir := filepath.Join(buildDir, sub)
		if v.err = os.MkdirAll(dir, 0o755); v.err == nil {
			v.bin, v.err = build.Function(context.Background(), dir, deploy)
		}
	})
	if v.err != nil {
		b.Fatal(v.err)
	}
	return v.bin
}

// runnable returns the binary if this machine can run it and read its
// VmHWM.
func runnable(b *testing.B) string {
	bin := binary(b)
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		b.Skip("runs a linux/amd64 binary and reads /proc")
	}
	return bin
}

// BenchmarkBinarySize reports the size of the deployable binary
// (GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -trimpath -buildvcs=false
// -ldflags='-s -w -buildid=').
func BenchmarkBinarySize(b *testing.B) {
	bin := binary(b)
	var size int64
	for b.Loop() {
		st, err := os.Stat(bin)
		if err != nil {
			b.Fatal(err)
		}
		size = st.Size()
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(size), "bytes")
	b.ReportMetric(float64(size)/1e6, "MB")
}

// process is one run of the binary.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	stderr bytes.Buffer
}

// launch execs bin with exactly env (none if env is empty); its log is kept
// for failures. A process still running when b ends is killed.
func launch(b *testing.B, bin string, env []string, args ...string) *process {
	p := &process{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Env = append([]string{}, env...) // never nil: nil would inherit this process's environment
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, &p.stderr
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	b.Cleanup(func() {
		if p.alive() {
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits; it kills the process after 5 s.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// modeEnv is the environment of HTTP and event mode against the emulator at
// endpoint; the log stays at its default level (info, one line a request).
func modeEnv(endpoint string) []string {
	return []string{"CAR_ENDPOINT=http://" + endpoint, "CAR_PROJECT_ID=" + project, "AUTH_MODE=none",
		"TENCENTCLOUD_SECRETID=" + secretID, "TENCENTCLOUD_SECRETKEY=" + secretKey}
}

// firstAnswer is one way to reach a just-exec'd binary: it tries once and
// reports whether it got a successful answer to a start.
type firstAnswer func(user string) (bool, error)

// httpStart tries POST /session on addr once.
func httpStart(client *http.Client, addr string) firstAnswer {
	return func(user string) (bool, error) {
		resp, err := client.Post("http://"+addr+"/session", "application/json", bytes.NewReader(startBody(user)))
		if err != nil {
			return false, nil // not listening yet
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		return true, nil
	}
}

func invoke(client *rpc.Client, user string) error {
	dl := time.Now().Add(3 * time.Second)
	res, err := scftest.Invoke(client, scftest.InvokeRequest{Payload: event(user), RequestId: "bench-" + user, Deadline: scftest.At(dl)})
	switch {
	case err != nil:
		return err
	case res.Error != nil:
		return errors.New(res.Error.Message)
	case !bytes.Contains(res.Payload, []byte(`"statusCode":200`)):
		return fmt.Errorf("invoke answered %s", res.Payload)
	}
	return nil
}

// eventStart dials the runtime's port once and, if it is listening,
// invokes a start.
func eventStart(addr string) firstAnswer {
	return func(user string) (bool, error) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return false, nil
		}
		client := rpc.NewClient(conn)
		defer client.Close()
		return true, invoke(client, user)
	}
}

// BenchmarkColdStart measures exec of the deployable binary (for mode=dev,
// the dev build: the deployed one has no dev mode) to its first
// successful answer to a start (POST /session with two CAR calls, or the
// same as an event invoke), retrying every 100 µs until the process
// listens. One op is one start of the process; ms/start is its mean, and
// p50, p99 and max are over the ops.
func BenchmarkColdStart(b *testing.B) {
	bin := runnable(b)
	devBin := built(b, false) // dev mode is not in the deployed build
	emu := newEmulator()
	endpoint, stopEmu, err := emu.Listen("")
	if err != nil {
		b.Fatal(err)
	}
	defer stopEmu()
	modes := []struct {
		name  string
		start func(port string) (*process, firstAnswer, func())
	}{
		{"mode=http", func(port string) (*process, firstAnswer, func()) {
			tr := &http.Transport{DisableKeepAlives: true}
			return launch(b, bin, modeEnv(endpoint), "-listen", "127.0.0.1:"+port),
				httpStart(&http.Client{Transport: tr, Timeout: 5 * time.Second}, "127.0.0.1:"+port), tr.CloseIdleConnections
		}},
		{"mode=dev", func(port string) (*process, firstAnswer, func()) {
			tr := &http.Transport{DisableKeepAlives: true}
			return launch(b, devBin, nil, "-dev", "-listen", "127.0.0.1:"+port),
				httpStart(&http.Client{Transport: tr, Timeout: 5 * time.Second}, "127.0.0.1:"+port), tr.CloseIdleConnections
		}},
		{"mode=event", func(port string) (*process, firstAnswer, func()) {
			return launch(b, bin, append(modeEnv(endpoint), "_LAMBDA_SERVER_PORT="+port)),
				eventStart("127.0.0.1:" + port), func() {}
		}},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			d := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				emu.Reset()
				port := testkit.FreePort(b)
				user := fmt.Sprintf("cold-%d", i)
				b.StartTimer()
				t0 := time.Now()
				p, try, done := m.start(port)
				for {
					ok, err := try(user)
					if err != nil {
						b.Fatalf("%v\n%s", err, p.stderr.String())
					}
					if ok {
						break
					}
					if !p.alive() || time.Since(t0) > 10*time.Second {
						b.Fatalf("no answer from the process:\n%s", p.stderr.String())
					}
					time.Sleep(100 * time.Microsecond)
				}
				d = append(d, time.Since(t0))
				b.StopTimer()
				p.stop()
				done()
				b.StartTimer()
			}
			b.StopTimer()
			var sum time.Duration
			for _, x := range d {
				sum += x
			}
			b.ReportMetric(float64(sum)/float64(len(d))/1e6, "ms/start")
			reportPercentiles(b, d)
			b.ReportMetric(float64(d[len(d)-1]), "max-ns") // d is sorted now
		})
	}
}

// BenchmarkPeakRSS runs the binary, sends it rounds of 64 concurrent starts
// (64 clients, each its own user, 50 starts each), and reports its VmHWM:
// the largest over the ops, in MB. One op is one process.
func BenchmarkPeakRSS(b *testing.B) {
	const clients, perClient = 64, 50
	bin := runnable(b)
	// Each client's user keeps one concurrency (the warm-up user one more).
	emu := caremu.New(caremu.Options{Concurrency: 2 * clients, Projects: []string{project},
		Credentials: map[string]caremu.Credential{secretID: {SecretKey: secretKey}}})
	endpoint, stopEmu, err := emu.Listen("")
	if err != nil {
		b.Fatal(err)
	}
	defer stopEmu()

	load := func(b *testing.B, one func(c int) error) {
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for c := range clients {
			wg.Go(func() {
				for range perClient {
					if err := one(c); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	modes := []struct {
		name string
		run  func(b *testing.B, port string) *process
	}{
		{"mode=http", func(b *testing.B, port string) *process {
			p := launch(b, bin, modeEnv(endpoint), "-listen", "127.0.0.1:"+port)
			tr := &http.Transport{MaxIdleConnsPerHost: clients}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			waitFor(b, p, func() bool { ok, _ := httpStart(client, "127.0.0.1:"+port)("rss-warm"); return ok })
			start := httpStart(client, "127.0.0.1:"+port)
			load(b, func(c int) error {
				ok, err := start(fmt.Sprintf("rss-%d", c))
				if err == nil && !ok {
					err = errors.New("no answer")
				}
				return err
			})
			return p
		}},
		{"mode=event", func(b *testing.B, port string) *process {
			p := launch(b, bin, append(modeEnv(endpoint), "_LAMBDA_SERVER_PORT="+port))
			var client *rpc.Client
			waitFor(b, p, func() bool {
				var err error
				client, err = rpc.Dial("tcp", "127.0.0.1:"+port)
				return err == nil
			})
			defer client.Close()
			load(b, func(c int) error { return invoke(client, fmt.Sprintf("rss-%d", c)) })
			return p
		}},
	}
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			var peak int64
			for range b.N {
				emu.Reset()
				p := m.run(b, testkit.FreePort(b))
				rss, err := procstat.PeakRSS(p.cmd.Process.Pid)
				p.stop()
				if err != nil {
					b.Fatal(err)
				}
				peak = max(peak, rss)
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MB")
		})
	}
}

// waitFor polls ready every millisecond for up to 10 s.
func waitFor(b *testing.B, p *process, ready func() bool) {
	deadline := time.Now().Add(10 * time.Second)
	for !ready() {
		if !p.alive() || time.Now().After(deadline) {
			b.Fatalf("the process did not come up:\n%s", p.stderr.String())
		}
		time.Sleep(time.Millisecond)
	}
}
