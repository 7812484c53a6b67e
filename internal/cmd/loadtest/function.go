package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// function is the function under test, serving its HTTP API.
type function struct {
	url  string
	pid  int           // its process, for VmHWM
	logs func() string // the tail of its stderr
	// stop ends it; it returns an error if it had died during the run or
	// did not exit cleanly.
	stop func() error
}

// launcher starts the function with exactly the environment env and waits
// until it answers.
type launcher func(ctx context.Context, env []string) (*function, error)

// healthTimeout bounds the wait for the function's first /healthz.
const healthTimeout = 10 * time.Second

var errAddrInUse = errors.New("address already in use")

// binary launches bin as a subprocess in HTTP mode (-listen) on a free
// loopback port. The binary cannot report a port it chose itself, so the
// harness picks one and tries again, a few times, if another process takes
// it first.
func binary(bin string) launcher {
	return func(ctx context.Context, env []string) (*function, error) {
		var err error
		for range 5 {
			var addr string
			if addr, err = freeAddr(); err != nil {
				return nil, err
			}
			var fn *function
			if fn, err = startBinary(ctx, bin, addr, env); err == nil {
				return fn, nil
			}
			if !errors.Is(err, errAddrInUse) {
				break
			}
		}
		return nil, err
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startBinary(ctx context.Context, bin, addr string, env []string) (*function, error) {
	logs := &tail{max: 16 << 10}
	cmd := exec.Command(bin, "-listen", addr)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	url := "http://" + addr
	if err := waitHealthy(ctx, url, exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		if strings.Contains(logs.String(), "address already in use") {
			return nil, fmt.Errorf("%s: %w", addr, errAddrInUse)
		}
		return nil, fmt.Errorf("the function did not answer /healthz: %v\nits output:\n%s", err, logs)
	}
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			select {
			case <-exited:
				stopErr = fmt.Errorf("it exited during the run: %v", waitErr)
				return
			default:
			}
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
				if waitErr != nil {
					stopErr = fmt.Errorf("after SIGTERM: %v", waitErr)
				}
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
				stopErr = errors.New("it did not exit within 5 s of SIGTERM")
			}
		})
		return stopErr
	}
	return &function{url: url, pid: cmd.Process.Pid, logs: logs.String, stop: stop}, nil
}

// waitHealthy polls GET /healthz until it answers 200.
func waitHealthy(ctx context.Context, url string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(healthTimeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/healthz", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("for %v: %v", healthTimeout, err)
		}
		select {
		case <-exited:
			return errors.New("it exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = t.b[over:]
		if i := bytes.IndexByte(t.b, '\n'); i >= 0 {
			t.b = t.b[i+1:]
		}
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
