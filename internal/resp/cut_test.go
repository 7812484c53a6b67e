package resp

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"carbroker/internal/testing/redistest"
)

// cutProxy stands between the client and a real redis-server. Armed, it
// lets the next command through, waits for Redis's reply (the command ran),
// passes its first keep bytes on and cuts the client's connection: a
// network cut, a proxy (TencentDB's) restarting mid-reply.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	armed bool
	keep  int
	conns []net.Conn
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) arm(keep int) {
	p.mu.Lock()
	p.armed, p.keep = true, keep
	p.mu.Unlock()
}

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() { // client → Redis
			defer p.wg.Done()
			_, _ = io.Copy(s, c)
			s.Close()
		}()
		go func() { // Redis → client, cut when armed
			defer p.wg.Done()
			defer c.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := s.Read(buf)
				if err != nil {
					return
				}
				p.mu.Lock()
				armed, keep := p.armed, p.keep
				p.armed = false
				p.mu.Unlock()
				if armed {
					_, _ = c.Write(buf[:min(keep, n)])
					c.Close()
					s.Close()
					return
				}
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}()
	}
}

// A reply cut after the command ran (mid-array, or before its first byte)
// is an error, and the command is not sent again: a script that is not
// idempotent (a lease renewal, a stop's claim, a sweep's claims) would run
// twice. Reproduction: the client retried it on a new connection, since
// the pooled connection had read no whole reply.
func TestReproCutReplyIsNotRunTwice(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	if !rs.IsReal() {
		t.Skip("needs redis-server")
	}
	for _, c := range []struct {
		name string
		keep int
	}{{"mid-array", 6}, {"before-the-reply", 0}} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			admin := New(Options{Addr: rs.Addr()})
			defer admin.Close()
			if _, err := admin.Do(ctx, "DEL", "n"); err != nil {
				t.Fatal(err)
			}
			px := newCutProxy(t, rs.Addr())
			cl := New(Options{Addr: px.ln.Addr().String()})
			defer cl.Close()
			sc := NewScript("return {redis.call('INCR', KEYS[1]), 7}")
			if _, err := sc.Run(ctx, cl, []string{"x"}); err != nil { // loads the script, pools the connection
				t.Fatal(err)
			}
			px.arm(c.keep) // "*2\r\n:1" of "*2\r\n:1\r\n:7\r\n"
			r, err := sc.Run(ctx, cl, []string{"n"})
			if n, gerr := Int64(admin.Do(ctx, "INCRBY", "n", 0)); gerr != nil || n != 1 {
				t.Fatalf("the script ran %d times (%v); the cut call answered %v, %v", n, gerr, r, err)
			}
			if err == nil {
				t.Fatalf("a cut reply answered %v, want an error", r)
			}
		})
	}
}

// A pooled connection the real server dropped while it sat idle (CLIENT
// KILL, a restart) costs nothing: the next call takes a new connection and
// succeeds at its first try.
func TestPooledConnectionToAKilledOrRestartedServer(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	if !rs.IsReal() {
		t.Skip("needs redis-server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := New(Options{Addr: rs.Addr()})
	defer cl.Close()
	if _, err := cl.Do(ctx, "CLIENT", "SETNAME", "pooled"); err != nil {
		t.Fatal(err)
	}
	admin := New(Options{Addr: rs.Addr()})
	if _, err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	time.Sleep(50 * time.Millisecond)
	if r, err := cl.Do(ctx, "CLIENT", "GETNAME"); err != nil || r != nil {
		t.Fatalf("after CLIENT KILL: %v %v, want a new (unnamed) connection", r, err)
	}
	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if r, err := cl.Do(ctx, "PING"); err != nil || r != "PONG" {
		t.Fatalf("after a restart: %v %v", r, err)
	}
}

// Many concurrent calls, a Redis that keeps stalling (a busy script), and deadlines that
// end calls mid-reply: no call ever reads another call's reply (a
// connection given up mid-call is closed, never pooled), and no goroutine
// is left behind (TestMain).
func TestNoCallReadsAnotherCallsReply(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	if !rs.IsReal() {
		t.Skip("needs redis-server")
	}
	cl := New(Options{Addr: rs.Addr(), MaxIdle: 4})
	defer cl.Close()
	admin := New(Options{Addr: rs.Addr()})
	defer admin.Close()
	stop := time.Now().Add(1500 * time.Millisecond)
	stall := NewScript("local t = redis.call('TIME'); local s = t[1] * 1e6 + t[2]; " +
		"repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - s >= 10000; return 1")
	if _, err := stall.Run(context.Background(), admin, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for time.Now().Before(stop) {
			_, _ = stall.Run(context.Background(), admin, nil) // Redis busy for 10 ms
			time.Sleep(10 * time.Millisecond)
		}
	})
	var mu sync.Mutex
	var ok, failed int
	for g := range 32 {
		wg.Go(func() {
			for i := 0; time.Now().Before(stop); i++ {
				token := fmt.Sprintf("g%d-%d", g, i)
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+i%15)*time.Millisecond)
				r, err := cl.Do(ctx, "ECHO", token)
				cancel()
				mu.Lock()
				if err != nil {
					if failed == 0 {
						t.Logf("first failure: %v", err)
					}
					failed++
				} else {
					ok++
				}
				mu.Unlock()
				if err == nil && string(r.([]byte)) != token {
					t.Errorf("ECHO %s answered %s: another call's reply", token, r)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d calls answered, %d given up", ok, failed)
	if ok == 0 || failed == 0 {
		t.Fatalf("%d answered, %d given up: the test did not interrupt calls mid-way", ok, failed)
	}
}

// A TLS server that accepts and never answers the handshake costs the
// call's deadline, and leaves no goroutine behind (TestMain).
func TestStalledTLSHandshakeCostsTheDeadline(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // read nothing, answer nothing
			mu.Unlock()
		}
	})
	defer func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	o, err := ParseURL("rediss://:pw@" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cl := New(o)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err = cl.Do(ctx, "PING")
	if err == nil || time.Since(began) > time.Second {
		t.Fatalf("a stalled handshake: %v after %v", err, time.Since(began))
	}
	if strings.Contains(err.Error(), "pw") {
		t.Fatalf("the error quotes the password: %v", err)
	}
}

// A connection whose last call had a deadline is reused after that
// deadline passed: the deadline was the call's, not the connection's.
func TestConnectionOutlivesItsCallsDeadline(t *testing.T) {
	t.Parallel()
	srv := redistest.StartFake(t, nil, okReply)
	cl := New(Options{Addr: srv.Addr()})
	defer cl.Close()
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := cl.Do(ctx, "PING")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(srv.Seen()); n != 1 {
		t.Fatalf("%d connections for 3 calls with a deadline each, want 1", n)
	}
}
