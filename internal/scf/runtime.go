package scf

import (
	"bufio"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/rpc"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"time"

	"carbroker/internal/fault"
	"carbroker/internal/httpapi"
)

// The RPC messages of the Go1 runtime. gob matches struct fields by name, so
// these interoperate with the platform's own definitions.

// PingRequest is the argument of Function.Ping.
type PingRequest struct{}

// PingResponse is the reply of Function.Ping.
type PingResponse struct{}

// Timestamp is an absolute Unix time.
type Timestamp struct {
	Seconds int64
	Nanos   int64
}

// InvokeRequest is the argument of Function.Invoke.
type InvokeRequest struct {
	Payload               []byte // the event, JSON
	RequestId             string
	TraceId               string
	Deadline              Timestamp
	InvokedFunctionUnique string
	ClientContext         []byte
	Namespace             string
	FunctionName          string
	FunctionVersion       string
	MemoryLimitInMb       int32
	TimeLimitInMs         int32
	Environment           string // JSON object of string → string
	TencentcloudRegion    string
	TencentcloudAppID     string
	TencentcloudUin       string
	FunctionTrace         string
}

// InvokeResponse is the reply of Function.Invoke: the integration response
// in Payload, or an Error after a panic.
type InvokeResponse struct {
	Payload []byte
	Error   *InvokeResponseError
}

// InvokeResponseError is a failed invoke; the caller sees an SCF error, not
// an HTTP response.
type InvokeResponseError struct {
	Message    string
	Type       string
	StackTrace []*InvokeResponseErrorStackFrame
	ShouldExit bool
}

// InvokeResponseErrorStackFrame is one frame of a panic's stack.
type InvokeResponseErrorStackFrame struct {
	Path  string
	Line  int32
	Label string
}

// Function is the RPC service the platform calls. Its methods are safe for
// concurrent use: invokes may arrive concurrently on one connection.
type Function struct {
	src    HandlerSource
	log    *slog.Logger
	invoke func(ctx context.Context, getenv func(string) string) context.Context // WithInvokeContext's hook, or nil

	// mu makes applying an invoke's Environment, deriving its context from
	// it and choosing the handler one step, so that no invoke signs with
	// one rotation's SecretId and another's SecretKey.
	mu sync.Mutex
}

// NewFunction returns the service for src. It panics if src is nil.
func NewFunction(src HandlerSource, opts ...Option) *Function {
	if src == nil {
		panic("scf: nil HandlerSource")
	}
	f := &Function{src: src, log: slog.Default()}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Serve registers the service "Function" for src and serves the Go1 runtime
// protocol on every connection ln accepts, until ln fails. Once ln is closed
// it waits for the calls in flight to be answered (at most drainTimeout),
// then returns nil. The platform expects ln on 0.0.0.0:Port(); how long it
// retries dialling is not documented, so listen before slow start-up work.
func Serve(ln net.Listener, src HandlerSource, opts ...Option) error {
	srv := rpc.NewServer()
	if err := srv.RegisterName("Function", NewFunction(src, opts...)); err != nil {
		return fmt.Errorf("scf: %w", err)
	}
	var inflight sync.WaitGroup
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				drain(&inflight)
				return nil
			}
			return fmt.Errorf("scf: accept: %w", err)
		}
		go srv.ServeCodec(newCodec(conn, &inflight))
	}
}

// drainTimeout bounds how long Serve waits for calls in flight at shutdown;
// each call is bounded by its own deadline anyway.
const drainTimeout = 30 * time.Second

func drain(inflight *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainTimeout):
	}
}

// codec is net/rpc's gob wire format (a gob-encoded rpc.Request or
// rpc.Response followed by the gob-encoded body, on one stream), counting
// each call from its request header to its flushed reply so that a
// shutdown can wait for the answers in flight.
type codec struct {
	rwc      io.ReadWriteCloser
	dec      *gob.Decoder
	enc      *gob.Encoder
	buf      *bufio.Writer
	inflight *sync.WaitGroup
}

func newCodec(conn io.ReadWriteCloser, inflight *sync.WaitGroup) *codec {
	buf := bufio.NewWriter(conn)
	return &codec{rwc: conn, dec: gob.NewDecoder(conn), enc: gob.NewEncoder(buf), buf: buf, inflight: inflight}
}

func (c *codec) ReadRequestHeader(r *rpc.Request) error {
	if err := c.dec.Decode(r); err != nil {
		return err
	}
	c.inflight.Add(1) // every header read gets exactly one WriteResponse
	return nil
}

func (c *codec) ReadRequestBody(body any) error { return c.dec.Decode(body) }

// WriteResponse is called once per request header read, serialised by the
// rpc server.
func (c *codec) WriteResponse(r *rpc.Response, body any) error {
	defer c.inflight.Done()
	if err := c.enc.Encode(r); err != nil {
		c.rwc.Close()
		return err
	}
	if err := c.enc.Encode(body); err != nil {
		c.rwc.Close()
		return err
	}
	return c.buf.Flush()
}

func (c *codec) Close() error { return c.rwc.Close() }

// Ping answers the platform's liveness check, at once and at any time:
// whether Ping precedes the first Invoke is not documented.
func (f *Function) Ping(PingRequest, *PingResponse) error { return nil }

// Invoke serves one event. It always returns nil: every handler result, and
// every failure the caller should see as HTTP (an event it cannot decode, a
// HandlerSource error), is an integration response in resp.Payload; only a
// panic becomes resp.Error, with ShouldExit set (what the platform does
// with it is not documented: the process keeps serving, and the platform
// may restart it).
func (f *Function) Invoke(req InvokeRequest, resp *InvokeResponse) error {
	defer func() {
		if v := recover(); v != nil {
			*resp = InvokeResponse{Error: panicError(v)}
			f.log.Error("scf: invoke panicked", "request_id", req.RequestId,
				"panic", resp.Error.Message, "at", topFrame(resp.Error.StackTrace))
		}
	}()

	ctx := context.Background()
	var deadline time.Time
	switch d := req.Deadline; {
	case d.Seconds != 0 || d.Nanos != 0:
		deadline = time.Unix(d.Seconds, d.Nanos)
	case req.TimeLimitInMs > 0: // no absolute deadline: the function's time limit, from now
		deadline = time.Now().Add(time.Duration(req.TimeLimitInMs) * time.Millisecond)
	}
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}

	ctx, h, err := f.prepare(ctx, req.Environment)
	if err != nil {
		f.log.Error("scf: no handler", "request_id", req.RequestId, "err", err)
		resp.Payload = errorResponse(err, req.RequestId)
		return nil
	}

	// The payload is read once: a timer event, else an HTTP event.
	wev, err := parseEvent(req.Payload)
	if tev, ok := wev.timer(); err == nil && ok {
		ctx = httpapi.NewInvocationContext(ctx, httpapi.Invocation{RequestID: req.RequestId, Trigger: "timer"})
		resp.Payload = f.timer(ctx, h, tev, req.RequestId)
		return nil
	}
	var ev Event
	if err == nil {
		ev, err = wev.http()
	}
	if err != nil {
		kind := fault.Invalid
		if errors.Is(err, ErrBodyTooLarge) {
			kind = fault.TooLarge
		}
		f.log.Warn("scf: undecodable event", "request_id", req.RequestId, "bytes", len(req.Payload), "err", err)
		resp.Payload = errorResponse(fault.Wrap(kind, err.Error(), err), req.RequestId)
		return nil
	}
	f.log.Debug("scf: invoke", "request_id", req.RequestId, "trigger", ev.Trigger,
		"gateway_request_id", ev.GatewayRequestID)

	ctx = httpapi.NewInvocationContext(ctx, httpapi.Invocation{RequestID: req.RequestId, Trigger: ev.Trigger})
	w := newResponseBuffer()
	h.ServeHTTP(w, ev.Request.WithContext(ctx))
	resp.Payload = w.result(req.RequestId, ev.Request.Method == http.MethodHead)
	return nil
}

// prepare applies environment, then derives the invoke's context (the
// WithInvokeContext hook) and chooses the handler, all under f.mu.
func (f *Function) prepare(ctx context.Context, environment string) (context.Context, http.Handler, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applyEnvironment(environment)
	if f.invoke != nil {
		ctx = f.invoke(ctx, os.Getenv)
	}
	h, err := f.src()
	if err == nil && h == nil {
		err = errors.New("no handler")
	}
	return ctx, h, err
}

// applyEnvironment sets each variable of the JSON object environment. A
// malformed one is ignored whole; its content is never logged.
func (f *Function) applyEnvironment(environment string) {
	if environment == "" {
		return
	}
	var env map[string]string
	if err := json.Unmarshal([]byte(environment), &env); err != nil {
		f.log.Warn("scf: ignoring an Environment that is not a JSON object of strings", "bytes", len(environment))
		return
	}
	// The credential triple is one unit: an Environment that carries any of
	// it replaces all of it, so a rotation without a session token does not
	// sign with the previous rotation's token.
	for _, group := range credentialKeys {
		if _, ok := env[group[0]]; !ok {
			continue
		}
		for _, k := range group[1:] {
			if _, ok := env[k]; !ok {
				env[k] = ""
			}
		}
	}
	for k, v := range env {
		var err error
		if v == "" && isCredentialKey(k) {
			err = os.Unsetenv(k)
		} else {
			err = os.Setenv(k, v)
		}
		if err != nil {
			f.log.Warn("scf: cannot set an environment variable", "name", k)
		}
	}
}

// credentialKeys are the credential triples, SecretId first, under the
// names SCF sets and the names the SDK reads.
var credentialKeys = [][]string{
	{"TENCENTCLOUD_SECRETID", "TENCENTCLOUD_SECRETKEY", "TENCENTCLOUD_SESSIONTOKEN"},
	{"TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_SESSION_TOKEN"},
}

func isCredentialKey(k string) bool {
	for _, g := range credentialKeys {
		for _, c := range g {
			if c == k {
				return true
			}
		}
	}
	return false
}

// panicError describes the panic v. Called from the deferred recover, it
// sees the panicking goroutine's stack.
func panicError(v any) *InvokeResponseError {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(3, pcs) // skip Callers, panicError, the deferred func
	frames := runtime.CallersFrames(pcs[:n])
	var stack []*InvokeResponseErrorStackFrame
	for {
		fr, more := frames.Next()
		// Drop the runtime's panic machinery above the panicking frame.
		if len(stack) > 0 || !strings.HasPrefix(fr.Function, "runtime.") {
			stack = append(stack, &InvokeResponseErrorStackFrame{Path: fr.File, Line: int32(fr.Line), Label: fr.Function})
		}
		if !more {
			break
		}
	}
	return &InvokeResponseError{Message: fmt.Sprint(v), Type: panicType(v), StackTrace: stack, ShouldExit: true}
}

// panicType names the panic value's Go type, as scf-go-lib does: the type's
// name, looking through one pointer ("string", "errorString" for
// errors.New, "boundsError" for an index out of range). A type without a
// name is spelled out ("[]int").
func panicType(v any) string {
	t := reflect.TypeOf(v)
	if t == nil {
		return "nil"
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Name() != "" {
		return t.Name()
	}
	return t.String()
}

func topFrame(stack []*InvokeResponseErrorStackFrame) string {
	if len(stack) == 0 {
		return ""
	}
	return fmt.Sprintf("%s (%s:%d)", stack[0].Label, stack[0].Path, stack[0].Line)
}
