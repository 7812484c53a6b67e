package caremu_test

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"carbroker/internal/dev/caremu"
)

// echo serves a line echo on 127.0.0.1 until the test ends.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// roundTrip writes msg on c and reads as many bytes back.
func roundTrip(c net.Conn, msg string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	b := make([]byte, len(msg))
	_, err := io.ReadFull(c, b)
	return string(b), err
}

func TestProxyBreaksPooledConnections(t *testing.T) {
	t.Parallel() // its own emulator or proxy; waits out deadlines
	cases := []struct {
		b     caremu.Breakage
		check func(error) bool
		want  string
	}{
		{caremu.BlackHole, func(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }, "silence until the deadline"},
		{caremu.Reset, func(err error) bool { return errors.Is(err, syscall.ECONNRESET) }, "connection reset"},
		{caremu.HalfClose, func(err error) bool { return errors.Is(err, io.EOF) }, "EOF"},
	}
	for _, c := range cases {
		p, err := caremu.NewProxy(echo(t))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if got, err := roundTrip(conn, "ping"); err != nil || got != "ping" {
			t.Fatalf("healthy: %q %v", got, err)
		}
		if n := p.Break(c.b); n != 1 {
			t.Fatalf("broke %d connections", n)
		}
		if _, err := roundTrip(conn, "pong"); !c.check(err) {
			t.Errorf("breakage %d: %v, want %s", c.b, err, c.want)
		}
		conn.Close()
		// New connections are healthy.
		fresh, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if got, err := roundTrip(fresh, "again"); err != nil || got != "again" {
			t.Errorf("breakage %d: a fresh connection: %q %v", c.b, got, err)
		}
		fresh.Close()
		if n := p.Accepted(); n != 2 {
			t.Errorf("accepted %d", n)
		}
		p.Close()
	}
}

func TestProxyBreakNew(t *testing.T) {
	t.Parallel() // its own emulator or proxy; waits out deadlines
	p, err := caremu.NewProxy(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.BreakNew(caremu.BlackHole)
	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := roundTrip(conn, "ping"); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a new connection into a black hole: %v", err)
	}
}
