package queue_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"carbroker/internal/queue"
	"carbroker/internal/testing/redistest"
)

// rawConn is a bare RESP2 connection for looking at Redis from outside the
// Store (independent of the Store's client).
type rawConn struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialResp(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

// do sends a command and returns its reply: a string, an int64, nil, a
// []any, or an error reply as error.
func (p *rawConn) do(args ...string) any {
	p.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	_ = p.c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.c.Write([]byte(b.String())); err != nil {
		p.t.Fatal(err)
	}
	v, err := p.read()
	if err != nil {
		p.t.Fatal(err)
	}
	return v
}

func (p *rawConn) read() (any, error) {
	line, err := p.r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return fmt.Errorf("%s", line[1:]), nil
	case ':':
		return strconv.ParseInt(line[1:], 10, 64)
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(p.r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, _ := strconv.Atoi(line[1:])
		out := make([]any, 0, max(n, 0))
		for range n {
			v, err := p.read()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

// snapshot is every key of the line with its serialised value.
func (p *rawConn) snapshot() map[string]string {
	p.t.Helper()
	keys, _ := p.do("KEYS", "*"+project+"*").([]any)
	out := map[string]string{}
	for _, k := range keys {
		out[k.(string)], _ = p.do("DUMP", k.(string)).(string)
	}
	return out
}

// consistent checks the line's own invariants: every user in line has a
// last poll and an address, and the per-address counts add up.
func (p *rawConn) consistent(base string) error {
	line, _ := p.do("ZRANGE", base+"line", "0", "-1").([]any)
	seen, _ := p.do("ZRANGE", base+"seen", "0", "-1").([]any)
	ipof, _ := p.do("HKEYS", base+"ipof").([]any)
	counts, _ := p.do("HVALS", base+"ipn").([]any)
	str := func(vs []any) []string {
		var s []string
		for _, v := range vs {
			s = append(s, v.(string))
		}
		slices.Sort(s)
		return s
	}
	sum := 0
	for _, c := range counts {
		n, _ := strconv.Atoi(c.(string))
		sum += n
	}
	if !slices.Equal(str(line), str(seen)) || !slices.Equal(str(line), str(ipof)) || sum != len(line) {
		return fmt.Errorf("line %v, seen %v, ipof %v, places per address sum %d", str(line), str(seen), str(ipof), sum)
	}
	return nil
}

// At maxmemory with noeviction every operation of the line either fails
// before it writes or completes: never a partial write. Redis checks OOM
// in a script only until its first write (Redis 4 to 7 alike, for scripts
// without a shebang such as line.lua: the script then runs past maxmemory),
// so a script is never stopped half-way. On 7.0 an operation that first
// stores a count fails (HSET is its first write); the others complete,
// their first write (pruning) needing no memory. This runs it on the real
// server.
func TestNoPartialWritesUnderOOM(t *testing.T) {
	if !redistest.Real() {
		t.Skip("maxmemory needs a real redis-server (not on PATH)")
	}
	f := newFixture(t, queue.Options{Abandon: 30 * time.Second})
	raw := dialResp(t, f.srv.Addr())
	ctx := context.Background()
	base := "{carbroker}:" + project + ":"

	// A line of three with a count, then Redis over its memory.
	f.count(2, 2)
	for _, u := range []string{"u1", "u2", "u3"} {
		f.poll(u, "198.51.100."+u[1:])
	}
	raw.do("EVAL", "for i=1,20000 do redis.call('SET','junk:'..i, string.rep('x',100)) end return 1", "0")
	raw.do("CONFIG", "SET", "maxmemory-policy", "noeviction")
	raw.do("CONFIG", "SET", "maxmemory", "1mb")
	if err, ok := raw.do("SET", "probe", "x").(error); !ok || !strings.HasPrefix(err.Error(), "OOM") {
		t.Fatalf("Redis is not out of memory: SET answered %v", err)
	}

	f.clock.Advance(1100 * time.Millisecond) // the count is stale: a poll may take the lease
	ops := []struct {
		name string
		run  func() error
	}{
		{"a newcomer's poll (joins)", func() error { _, err := f.store.Repoll(ctx, project, "n1", "198.51.100.9", nil); return err }},
		{"a waiter's poll", func() error { _, err := f.store.Poll(ctx, project, "u2", "198.51.100.2"); return err }},
		{"a poll storing a count", func() error {
			_, err := f.store.Repoll(ctx, project, "u3", "198.51.100.3", &queue.Count{Total: 3, Running: 2, At: f.clock.Now()})
			return err
		}},
		{"a grant", func() error {
			_, err := f.store.Done(ctx, project, "u1", "198.51.100.1", queue.Granted)
			return err
		}},
		{"a NoIdle", func() error {
			_, err := f.store.Done(ctx, project, "n2", "198.51.100.9", queue.NoIdle)
			return err
		}},
		{"a leave", func() error { return f.store.Quit(ctx, project, "u2") }},
		{"a capacity storing a count", func() error {
			_, err := f.store.Capacity(ctx, project, &queue.Count{Total: 3, Running: 1, At: f.clock.Now()})
			return err
		}},
	}
	for _, op := range ops {
		before := raw.snapshot()
		err := op.run()
		after := raw.snapshot()
		switch {
		case err != nil && !maps.Equal(before, after):
			t.Errorf("%s failed (%v) but changed the line", op.name, err)
		case err == nil:
			if cerr := raw.consistent(base); cerr != nil {
				t.Errorf("%s left the line inconsistent: %v", op.name, cerr)
			}
		}
		t.Logf("OOM: %s: %v", op.name, errOr(err))
	}
}

func errOr(err error) string {
	if err == nil {
		return "completed"
	}
	return "failed before writing: " + err.Error()
}
