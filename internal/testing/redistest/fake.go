package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fake speaks just enough RESP for a client's tests: it records each
// connection's commands, one list per round trip (the commands that arrived
// together before it answered), and answers each command through reply.
type Fake struct {
	ln    net.Listener
	reply func(conn int, cmd []string) string

	mu    sync.Mutex
	conns [][][][]string // per connection, per round trip, the commands
	open  []net.Conn
	wg    sync.WaitGroup
}

// StartFake serves a Fake on ln (nil: 127.0.0.1 and a free port) until t
// ends. reply answers one command of connection conn (numbered from 0 in
// the order they arrived) with raw RESP; "" closes the connection without
// a reply, "hang" never answers (until the client or the test closes it).
func StartFake(t testing.TB, ln net.Listener, reply func(conn int, cmd []string) string) *Fake {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	f := &Fake{ln: ln, reply: reply}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.open {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

// Addr is host:port.
func (f *Fake) Addr() string { return f.ln.Addr().String() }

// Seen returns, per connection, per round trip, the commands received.
func (f *Fake) Seen() [][][][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][][][]string(nil), f.conns...)
}

// CloseConn closes connection i from the server's side.
func (f *Fake) CloseConn(i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.open[i].Close()
}

func (f *Fake) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		id := len(f.conns)
		f.conns = append(f.conns, nil)
		f.open = append(f.open, c)
		f.mu.Unlock()
		f.wg.Add(1)
		go f.handle(id, c)
	}
}

// handle reads the commands that arrived together (one round trip), then
// answers each.
func (f *Fake) handle(id int, c net.Conn) {
	defer f.wg.Done()
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		var batch [][]string
		for {
			cmd, err := ReadCommand(br)
			if err != nil {
				return
			}
			batch = append(batch, cmd)
			if br.Buffered() == 0 {
				break
			}
		}
		f.mu.Lock()
		f.conns[id] = append(f.conns[id], batch)
		f.mu.Unlock()
		for _, cmd := range batch {
			r := f.reply(id, cmd)
			switch r {
			case "":
				return
			case "hang":
				buf := make([]byte, 1)
				_, _ = c.Read(buf) // until the client or the test closes it
				return
			}
			if _, err := io.WriteString(c, r); err != nil {
				return
			}
		}
	}
}

// Read reads one RESP2 value: a simple or bulk string as string, an
// integer as int64, a null as nil, an array as []any, an error reply as an
// error value (err is for what could not be read).
func Read(br *bufio.Reader) (v any, err error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, fmt.Errorf("an empty line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return fmt.Errorf("%s", line[1:]), nil
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, 0, n)
		for range n {
			v, err := Read(br)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

// ReadCommand reads one command: an array of bulk strings.
func ReadCommand(br *bufio.Reader) ([]string, error) {
	v, err := Read(br)
	if err != nil {
		return nil, err
	}
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return nil, fmt.Errorf("not a command: %v", v)
	}
	cmd := make([]string, len(arr))
	for i, a := range arr {
		if cmd[i], ok = a.(string); !ok {
			return nil, fmt.Errorf("not a command: %v", v)
		}
	}
	return cmd, nil
}

// Conn is a bare RESP2 connection, for looking at a Redis from outside the
// client under test.
type Conn struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

// Dial connects to addr until t ends.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Conn{t: t, c: c, r: bufio.NewReader(c)}
}

// Do sends a command and returns its reply, as Read returns it.
func (p *Conn) Do(args ...string) any {
	p.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_ = p.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(p.c, b.String()); err != nil {
		p.t.Fatal(err)
	}
	v, err := Read(p.r)
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}
