package caremu

import (
	"errors"
	"net"
	"sync"
)

// Breakage is how Proxy breaks a connection, as networks and servers do.
type Breakage int

const (
	// BlackHole keeps the connection open and drops whatever the client
	// sends: a NAT that lost its mapping, a server that froze. The client
	// learns nothing until its own deadline.
	BlackHole Breakage = iota + 1
	// Reset answers the client's next bytes with a TCP RST: a NAT or
	// server that forgot the connection.
	Reset
	// HalfClose answers the client's next bytes with a FIN and nothing
	// else (the server closed its side), and keeps reading what the
	// client sends.
	HalfClose
)

// Proxy is a TCP proxy on 127.0.0.1 in front of a target (an emulator's
// Listen endpoint), to break connections the client keeps in its pool. It
// imports nothing of the product: tests put it between a client and the
// emulator.
type Proxy struct {
	ln     net.Listener
	target string
	dial   func(network, addr string) (net.Conn, error)

	mu       sync.Mutex
	conns    map[*proxyConn]struct{}
	accepted int
	newMode  Breakage // applied to connections accepted from now on
	closed   bool
	wg       sync.WaitGroup
}

type proxyConn struct {
	client, upstream net.Conn

	mu      sync.Mutex
	pending Breakage // applied when the client next sends
	mode    Breakage // applied: 0 while healthy
}

// NewProxy listens on 127.0.0.1:0 and forwards each connection to target.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, dial: net.Dial, conns: map[*proxyConn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port, for HttpProfile.Endpoint.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Accepted returns how many connections the proxy accepted so far.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Break breaks every connection open now in the way b, and returns how many
// it broke. A black hole starts at once, in both directions (not even the
// target's FIN gets through); a reset or a half-close answers the client's
// next bytes (a request on a pooled connection). Connections opened later
// are healthy.
func (p *Proxy) Break(b Breakage) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.mu.Lock()
		if c.mode == 0 {
			c.pending = b
			if b == BlackHole {
				c.applyLocked()
			}
		}
		c.mu.Unlock()
	}
	return len(p.conns)
}

// BreakNew makes every connection accepted from now on break in the way b
// on its first bytes (0 restores healthy connections): a CAR that cannot be
// reached at all.
func (p *Proxy) BreakNew(b Breakage) {
	p.mu.Lock()
	p.newMode = b
	p.mu.Unlock()
}

// Close stops the proxy, closes every connection and waits for its
// goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.client.Close()
		c.upstream.Close()
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		upstream, err := p.dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		c := &proxyConn{client: client, upstream: upstream}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			client.Close()
			upstream.Close()
			return
		}
		p.accepted++
		c.pending = p.newMode
		p.conns[c] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.up(c)
		go p.down(c)
	}
}

// up copies the client's bytes to the target, applying a pending breakage
// first.
func (p *Proxy) up(c *proxyConn) {
	defer p.wg.Done()
	defer p.forget(c)
	c.pipe(c.client, c.upstream, c.forward)
}

// down copies the target's bytes to the client while the connection is
// healthy.
func (p *Proxy) down(c *proxyConn) {
	defer p.wg.Done()
	c.pipe(c.upstream, c.client, c.healthy)
}

// pipe copies from src to dst while pass reports the connection healthy,
// and passes src's FIN on if it still is.
func (c *proxyConn) pipe(src, dst net.Conn, pass func() bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && pass() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if c.healthy() {
				closeWrite(dst)
			}
			return
		}
	}
}

// forward applies a pending breakage and reports whether the client's
// bytes still go to the target.
func (c *proxyConn) forward() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending != 0 && c.mode == 0 {
		c.applyLocked()
	}
	return c.mode == 0
}

// applyLocked applies the pending breakage; c.mu is held.
func (c *proxyConn) applyLocked() {
	c.mode, c.pending = c.pending, 0
	c.upstream.Close() // the target sees the client go away
	switch c.mode {
	case Reset:
		if tc, ok := c.client.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // Close sends RST
		}
		c.client.Close()
	case HalfClose:
		closeWrite(c.client)
	}
}

func (c *proxyConn) healthy() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mode == 0
}

// forget closes both sides once the client's side is done.
func (p *Proxy) forget(c *proxyConn) {
	c.client.Close()
	c.upstream.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		if err := cw.CloseWrite(); err != nil && !errors.Is(err, net.ErrClosed) {
			c.Close()
		}
		return
	}
	c.Close()
}
