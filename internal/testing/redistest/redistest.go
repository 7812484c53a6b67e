// Package redistest gives tests a Redis of their own: a real redis-server
// (the Debian package) started on a free loopback port in a temporary
// directory when one is on PATH, else the in-process memredis. Either can be
// killed and restarted empty, for outage tests. Fake is a stand-in that
// records a client's round trips and answers as told; Conn looks at a Redis
// from outside the client under test.
package redistest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"carbroker/internal/dev/memredis"
)

// Real reports whether redis-server is on PATH (and REDISTEST_MEM=1 does
// not ask for memredis). Set REDISTEST_REQUIRE_REAL=1 (CI does) to make
// Start fail rather than fall back to memredis.
func Real() bool {
	if os.Getenv("REDISTEST_MEM") == "1" {
		return false
	}
	_, err := exec.LookPath("redis-server")
	return err == nil
}

// Server is a Redis for one test (or one load run).
type Server struct {
	addr string
	dir  string
	real bool

	mu  sync.Mutex
	cmd *exec.Cmd
	mem *memredis.Server
}

// Start launches a Redis for t and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if !Real() && os.Getenv("REDISTEST_REQUIRE_REAL") == "1" {
		t.Fatal("REDISTEST_REQUIRE_REAL=1 but redis-server is not on PATH (or REDISTEST_MEM=1)")
	}
	s, err := Launch(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Launch starts a Redis whose files (if any) go in dir.
func Launch(dir string) (*Server, error) {
	s := &Server{dir: dir, real: Real()}
	if !s.real {
		m, err := memredis.Start("")
		if err != nil {
			return nil, err
		}
		s.mem, s.addr = m, m.Addr()
		return s, nil
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := s.up(); err != nil {
		return nil, err
	}
	return s, nil
}

// IsReal reports whether this is a real redis-server.
func (s *Server) IsReal() bool { return s.real }

// Addr is host:port.
func (s *Server) Addr() string { return s.addr }

// URL is redis://host:port.
func (s *Server) URL() string { return "redis://" + s.addr }

// Kill stops the server at once (SIGKILL for a real one): clients see
// connection errors until Restart.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
	if s.mem != nil {
		s.mem.Close()
		s.mem = nil
	}
}

// Restart starts an empty server on the same address.
func (s *Server) Restart() error {
	s.Kill()
	if !s.real {
		var err error
		deadline := time.Now().Add(5 * time.Second)
		for {
			var m *memredis.Server
			if m, err = memredis.Start(s.addr); err == nil {
				s.mu.Lock()
				s.mem = m
				s.mu.Unlock()
				return nil
			}
			if time.Now().After(deadline) {
				return err
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return s.up()
}

// Close stops the server.
func (s *Server) Close() { s.Kill() }

// up starts redis-server and waits until it answers.
func (s *Server) up() error {
	_, port, _ := net.SplitHostPort(s.addr)
	cmd := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--daemonize", "no", "--loglevel", "warning", "--protected-mode", "yes")
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond); err == nil {
			ok := ping(c)
			c.Close()
			if ok {
				s.mu.Lock()
				s.cmd = cmd
				s.mu.Unlock()
				return nil
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return errors.New("redis-server did not start on " + s.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ping(c net.Conn) bool {
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := c.Read(buf)
	return string(buf[:n]) == "+PONG\r\n"
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
