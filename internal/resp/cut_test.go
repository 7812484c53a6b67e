package resp

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"carbroker/internal/redistest"
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
