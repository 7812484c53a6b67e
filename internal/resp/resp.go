// Package resp is the broker's Redis client: RESP2 over TCP or TLS, a pool
// of idle connections, scripts by SHA with a fallback to the source, and
// the rules of a Redis URL (ParseURL, RedactURL).
//
// It is built for a serverless function: it starts no goroutine of its own
// and keeps no timer; everything happens inside a call, bounded by the
// call's context. A new connection costs the dial and, with a password or a
// database other than 0, one round trip (AUTH and SELECT sent together):
// no HELLO, no CLIENT SETINFO, RESP2 (which every Redis since 2.x and
// TencentDB's proxies speak). It writes no log: every problem is an error
// returned to the caller, which logs it its own way.
package resp

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure a Client.
type Options struct {
	Addr     string      // host:port
	Username string      // ACL user (Redis 6+); "" logs in as the default user
	Password string      // AUTH only when set
	DB       int         // SELECT only when not 0
	TLS      *tls.Config // nil: plain TCP

	// MaxIdle is how many idle connections are kept for reuse; default 16.
	MaxIdle int
	// IdleTimeout closes a connection idle for longer instead of reusing it
	// (a frozen instance's connections may be gone); default 60 s.
	IdleTimeout time.Duration
}

// Defaults.
const (
	DefaultMaxIdle     = 16
	DefaultIdleTimeout = 60 * time.Second
)

// Limits on what a server may send (a sane Redis stays far below them).
const (
	maxLine  = 64 << 10
	maxBulk  = 64 << 20
	maxArray = 1 << 20
	maxDepth = 16
	readBuf  = 4 << 10
)

// past is a deadline that has passed: setting it interrupts a read or write.
var past = time.Unix(1, 0)

// Error is an error reply from Redis ("-ERR …", "-NOSCRIPT …", "-OOM …").
// The connection stays usable after one.
type Error string

func (e Error) Error() string { return string(e) }

// Prefix is the error's code: "ERR", "NOSCRIPT", "OOM", "READONLY"…
func (e Error) Prefix() string {
	s := string(e)
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i]
	}
	return s
}

// ErrProtocol is returned when the server sends what RESP2 does not allow.
var ErrProtocol = errors.New("redis: protocol error")

// ErrClosed is returned by a call on a closed Client.
var ErrClosed = errors.New("redis: client closed")

// Client is a pool of connections to one Redis. It is safe for concurrent
// use; each call takes a connection of its own.
type Client struct {
	o Options

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool
}

// New returns a Client; it does not connect (the first call does).
func New(o Options) *Client {
	if o.MaxIdle <= 0 {
		o.MaxIdle = DefaultMaxIdle
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	return &Client{o: o}
}

// Close closes the idle connections; those in use are closed when their
// call ends.
func (c *Client) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle, c.closed = nil, true
	c.mu.Unlock()
	for _, cn := range idle {
		cn.nc.Close()
	}
	return nil
}

// Do sends one command and returns its reply: string (status), int64,
// []byte (bulk), []any (array), nil (a null bulk or array), or an Error
// for an error reply. The context's deadline bounds the whole call,
// connecting included; its cancellation interrupts it.
//
// A pooled connection the server closed while it sat idle (a restart, its
// idle timeout, a kill) is found before the command is written and
// replaced. A command is sent again only when writing it failed on a
// pooled connection (Redis runs no command it did not receive whole);
// once written, it is never sent again: a reply cut short or lost may
// follow a command that ran, and a script run twice (a renewal, a claim)
// is not the same as once.
func (c *Client) Do(ctx context.Context, args ...any) (any, error) {
	cmd, err := appendCommand(nil, args)
	if err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		cn, reused, err := c.get(ctx)
		if err != nil {
			return nil, err
		}
		reply, err := cn.roundTrip(ctx, cmd)
		var rerr Error
		if err == nil || errors.As(err, &rerr) {
			c.put(cn)
			return reply, err
		}
		cn.nc.Close()
		if reused && try == 0 && !cn.wrote && stale(err) && ctx.Err() == nil {
			continue
		}
		return nil, err
	}
}

// stale reports whether err is what a connection the server closed while
// it sat idle gives: end of file, reset, broken pipe.
func stale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// get returns an idle connection (reused true) or a new one.
func (c *Client) get(ctx context.Context) (*conn, bool, error) {
	now := time.Now()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, false, ErrClosed
	}
	var old []*conn
	var cn *conn
	for len(c.idle) > 0 {
		last := c.idle[len(c.idle)-1]
		c.idle = c.idle[:len(c.idle)-1]
		if now.Sub(last.used) > c.o.IdleTimeout {
			old = append(old, last)
			continue
		}
		cn = last
		break
	}
	c.mu.Unlock()
	for _, o := range old {
		o.nc.Close()
	}
	if cn != nil {
		if cn.alive() {
			return cn, true, nil
		}
		cn.nc.Close()
		return c.get(ctx)
	}
	cn, err := c.dial(ctx)
	return cn, false, err
}

// put returns a healthy connection to the pool.
func (c *Client) put(cn *conn) {
	cn.used = time.Now()
	c.mu.Lock()
	if !c.closed && len(c.idle) < c.o.MaxIdle {
		c.idle = append(c.idle, cn)
		cn = nil
	}
	c.mu.Unlock()
	if cn != nil {
		cn.nc.Close()
	}
}

// dial connects, upgrades to TLS, and logs in: AUTH when a password is set
// and SELECT when the database is not 0, written together and answered in
// one round trip.
func (c *Client) dial(ctx context.Context) (*conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", c.o.Addr)
	if err != nil {
		return nil, err
	}
	if c.o.TLS != nil {
		tc := tls.Client(nc, c.o.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("redis TLS handshake: %w", err)
		}
		nc = tc
	}
	cn := &conn{nc: nc, br: bufio.NewReaderSize(nc, readBuf)}
	var login []byte
	n := 0
	if c.o.Password != "" {
		args := []any{"AUTH", c.o.Password}
		if c.o.Username != "" {
			args = []any{"AUTH", c.o.Username, c.o.Password}
		}
		login, _ = appendCommand(login, args)
		n++
	}
	if c.o.DB != 0 {
		login, _ = appendCommand(login, []any{"SELECT", c.o.DB})
		n++
	}
	if n == 0 {
		return cn, nil
	}
	replies, err := cn.exchange(ctx, login, n)
	if err != nil {
		nc.Close()
		return nil, err
	}
	for i, r := range replies {
		if e, ok := r.(Error); ok {
			nc.Close()
			what := "AUTH"
			if i == n-1 && c.o.DB != 0 {
				what = "SELECT"
			}
			return nil, fmt.Errorf("redis %s: %w", what, e)
		}
	}
	return cn, nil
}

// conn is one connection.
type conn struct {
	nc    net.Conn
	br    *bufio.Reader
	used  time.Time
	wrote bool // the last command was written whole: it may have run
}

// roundTrip writes one command and reads its reply; an error reply is
// returned as an Error.
func (cn *conn) roundTrip(ctx context.Context, cmd []byte) (any, error) {
	r, err := cn.exchange(ctx, cmd, 1)
	if err != nil {
		return nil, err
	}
	if e, ok := r[0].(Error); ok {
		return nil, e
	}
	return r[0], nil
}

// exchange writes cmds (n commands) and reads n replies, within ctx.
func (cn *conn) exchange(ctx context.Context, cmds []byte, n int) ([]any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dl, _ := ctx.Deadline() // zero: none
	if err := cn.nc.SetDeadline(dl); err != nil {
		return nil, err
	}
	// A cancellation interrupts the reads and writes by moving the
	// deadline to the past; the function runs only if ctx ends during the
	// call, and the call waits for it, so nothing outlives the call.
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		cn.nc.SetDeadline(past)
		close(interrupted)
	})
	defer func() {
		if !stop() {
			<-interrupted
		}
	}()
	cn.wrote = false
	if _, err := cn.nc.Write(cmds); err != nil {
		return nil, cn.ctxErr(ctx, err)
	}
	cn.wrote = true
	out := make([]any, n)
	for i := range out {
		r, err := readReply(cn.br, 0)
		if err != nil {
			return nil, cn.ctxErr(ctx, err)
		}
		out[i] = r
	}
	return out, nil
}

// ctxErr names the context's end when it caused err: a cancellation, or
// its deadline (which the connection's deadline is, so the read may time
// out a moment before the context says so).
func (cn *conn) ctxErr(ctx context.Context, err error) error {
	ce := ctx.Err()
	var ne net.Error
	if dl, ok := ctx.Deadline(); ce == nil && ok && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(dl) {
		ce = context.DeadlineExceeded
	}
	if ce != nil {
		return fmt.Errorf("%w (%v)", ce, err)
	}
	return err
}

// appendCommand encodes args as a RESP array of bulk strings.
func appendCommand(b []byte, args []any) ([]byte, error) {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		var s string
		switch v := a.(type) {
		case string:
			s = v
		case []byte:
			s = string(v)
		case int:
			s = strconv.Itoa(v)
		case int64:
			s = strconv.FormatInt(v, 10)
		case float64:
			s = strconv.FormatFloat(v, 'f', -1, 64)
		default:
			return nil, fmt.Errorf("redis: cannot send an argument of type %T", a)
		}
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, '\r', '\n')
		b = append(b, s...)
		b = append(b, '\r', '\n')
	}
	return b, nil
}

// readReply reads one RESP2 reply.
func readReply(br *bufio.Reader, depth int) (any, error) {
	line, err := readLine(br)
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return nil, ErrProtocol
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return string(body), nil
	case '-':
		return Error(body), nil
	case ':':
		n, err := strconv.ParseInt(string(body), 10, 64)
		if err != nil {
			return nil, ErrProtocol
		}
		return n, nil
	case '$':
		n, err := strconv.Atoi(string(body))
		switch {
		case err != nil || n < -1 || n > maxBulk:
			return nil, ErrProtocol
		case n == -1:
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, eof(err)
		}
		if buf[n] != '\r' || buf[n+1] != '\n' {
			return nil, ErrProtocol
		}
		return buf[:n], nil
	case '*':
		n, err := strconv.Atoi(string(body))
		switch {
		case err != nil || n < -1 || n > maxArray || depth >= maxDepth:
			return nil, ErrProtocol
		case n == -1:
			return nil, nil
		}
		out := make([]any, 0, min(n, 1024))
		for range n {
			v, err := readReply(br, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	return nil, ErrProtocol
}

// readLine reads up to CRLF (which it drops).
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull && len(long) <= maxLine {
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		if err == bufio.ErrBufferFull || len(long) > maxLine {
			return nil, ErrProtocol
		}
		line = long
	}
	if err != nil {
		return nil, eof(err)
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, ErrProtocol
	}
	return line[:len(line)-2], nil
}

// eof makes a reply cut short an unexpected end of file.
func eof(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Script is a Lua script run by its SHA-1 (EVALSHA), sent whole (EVAL)
// when Redis does not have it (NOSCRIPT: a restart, a failover, SCRIPT
// FLUSH).
type Script struct {
	src string
	sha string
}

// NewScript returns a Script for src.
func NewScript(src string) *Script {
	sum := sha1.Sum([]byte(src))
	return &Script{src: src, sha: hex.EncodeToString(sum[:])}
}

// Run runs the script with keys and args.
func (s *Script) Run(ctx context.Context, c *Client, keys []string, args ...any) (any, error) {
	cmd := make([]any, 0, 3+len(keys)+len(args))
	cmd = append(cmd, "EVALSHA", s.sha, len(keys))
	for _, k := range keys {
		cmd = append(cmd, k)
	}
	cmd = append(cmd, args...)
	r, err := c.Do(ctx, cmd...)
	var e Error
	if errors.As(err, &e) && e.Prefix() == "NOSCRIPT" {
		cmd[0], cmd[1] = "EVAL", s.src
		r, err = c.Do(ctx, cmd...)
	}
	return r, err
}

// Int64s reads an array of integers.
func Int64s(reply any, err error) ([]int64, error) {
	if err != nil {
		return nil, err
	}
	arr, ok := reply.([]any)
	if !ok {
		return nil, fmt.Errorf("redis: want an array of integers, got %T", reply)
	}
	out := make([]int64, len(arr))
	for i, v := range arr {
		n, ok := v.(int64)
		if !ok {
			return nil, fmt.Errorf("redis: want an array of integers, got %T in it", v)
		}
		out[i] = n
	}
	return out, nil
}

// Int64 reads an integer reply.
func Int64(reply any, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	n, ok := reply.(int64)
	if !ok {
		return 0, fmt.Errorf("redis: want an integer, got %T", reply)
	}
	return n, nil
}

// Strings reads an array of bulk or status strings.
func Strings(reply any, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	arr, ok := reply.([]any)
	if !ok && reply != nil {
		return nil, fmt.Errorf("redis: want an array of strings, got %T", reply)
	}
	out := make([]string, len(arr))
	for i, v := range arr {
		switch s := v.(type) {
		case []byte:
			out[i] = string(s)
		case string:
			out[i] = s
		default:
			return nil, fmt.Errorf("redis: want an array of strings, got %T in it", v)
		}
	}
	return out, nil
}
