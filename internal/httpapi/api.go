// Package httpapi is the broker's HTTP API: a plain http.Handler that every
// transport (SCF events, web functions, the local server) reaches.
//
// It owns routing (native routes and the drop-in routes of Tencent's
// car-server-demo), body decoding and validation, the allow-lists, the one
// error-to-status table, CORS, the client-IP rule, the request's time budget
// and the single log line per request.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"carbroker/internal/auth"
	"carbroker/internal/calllog"
	"carbroker/internal/config"
	"carbroker/internal/fault"
	"carbroker/internal/invocation"
	"carbroker/internal/session"
)

// Sessions is the use case the API drives.
type Sessions interface {
	Start(ctx context.Context, in session.StartInput) (string, error)
	Apply(ctx context.Context, in session.StartInput) error
	Stop(ctx context.Context, userID string) error
}

var _ Sessions = (*session.Service)(nil)

// Invites mints and verifies invites to a host's room.
type Invites interface {
	Mint(host, role string, ttl time.Duration) (token string, expires time.Time, err error)
	Verify(token, host string) (role string, err error)
}

// Options wire the API.
type Options struct {
	Config   config.Config // policy: allow-lists, CORS, trusted proxies, request timeout
	Sessions Sessions
	Auth     auth.Authenticator
	// Invites may be nil: joining another user's room is then refused
	// unless RequireInvites is false.
	Invites Invites
	// RequireInvites makes a guest (HostUserId other than its own UserId)
	// present an invite from the host; the role is then the invite's.
	RequireInvites bool
	Logger         *slog.Logger
	Version        string
}

// API is the http.Handler.
type API struct {
	o        Options
	log      *slog.Logger
	warnOnce sync.Once
}

// New returns the API.
func New(o Options) *API {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{o: o, log: o.Logger}
}

// Operations (also the route names in logs).
const (
	opStart   = "start"
	opStop    = "stop"
	opInvite  = "invite"
	opHealth  = "health"
	opEnqueue = "enqueue"
	opDequeue = "dequeue"
)

type route struct {
	path   string
	method string
	op     string
	compat bool
}

// routes match on the path's tail, longest first, so a base path such as
// /release/car/session works.
var routes = []route{
	{"/session/invite", http.MethodPost, opInvite, false},
	{"/StartProject", http.MethodPost, opStart, true},
	{"/StopProject", http.MethodPost, opStop, true},
	{"/session", http.MethodPost, opStart, false},
	{"/session", http.MethodDelete, opStop, false},
	{"/Enqueue", http.MethodPost, opEnqueue, true},
	{"/Dequeue", http.MethodPost, opDequeue, true},
	{"/healthz", http.MethodGet, opHealth, false},
	{"/healthz", http.MethodHead, opHealth, false},
}

// match finds the route for a path and method; found reports whether the
// path exists under any method.
func match(path, method string) (rt route, ok, found bool) {
	path = strings.TrimRight(path, "/")
	for _, r := range routes {
		// every route starts with "/", so a suffix match starts at a segment boundary
		if !strings.HasSuffix(path, r.path) {
			continue
		}
		found = true
		if r.method == method {
			return r, true, true
		}
	}
	return route{}, false, found
}

// exchange is one request being served.
type exchange struct {
	w         http.ResponseWriter
	r         *http.Request
	start     time.Time
	requestID string
	route     route
	calls     *calllog.Log
	status    int
	err       *fault.Error

	clientRequestID string        // the client's RequestId, logged and echoed by compat routes
	userID          string        // the authenticated caller
	identity        auth.Identity // the authenticated caller, as the authenticator said
	outcome         string
}

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{w: w, r: r, start: time.Now(), requestID: requestID(r.Context())}
	ctx, calls := calllog.NewContext(r.Context())
	x.calls = calls
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Request-Id", x.requestID)
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("panic", "request_id", x.requestID, "panic", p)
			a.fail(x, fault.New(fault.Internal, "internal error"))
		}
		a.logRequest(x)
	}()
	if a.cors(w, r) {
		x.status = http.StatusNoContent
		return
	}
	rt, ok, found := match(r.URL.Path, r.Method)
	x.route = rt
	switch {
	case !ok && found:
		a.fail(x, fault.New(fault.MethodNotAllowed, "method "+safeMethod(r.Method)+" is not allowed here"))
		return
	case !ok:
		a.fail(x, fault.New(fault.NotFound, "no such route: use POST /session, DELETE /session, POST /session/invite or GET /healthz"))
		return
	}
	ctx, cancel := a.budget(ctx)
	defer cancel()
	x.r = r.WithContext(ctx)
	switch rt.op {
	case opHealth:
		a.reply(x, http.StatusOK, map[string]string{"Status": "ok", "Version": a.o.Version})
	case opStart:
		a.start(x)
	case opStop:
		a.stop(x)
	case opInvite:
		a.invite(x)
	case opEnqueue:
		a.enqueue(x)
	case opDequeue:
		a.dequeue(x)
	}
}

func safeMethod(m string) string {
	if len(m) > 10 || strings.ToUpper(m) != m {
		return "(other)"
	}
	return m
}

// budget bounds the request: REQUEST_TIMEOUT, capped by the platform's
// deadline less a margin that scales with the time left, so the reply is
// written before the platform gives up.
func (a *API) budget(ctx context.Context) (context.Context, context.CancelFunc) {
	d := a.o.Config.RequestTimeout
	if d <= 0 {
		d = 10 * time.Second
	}
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		d = min(d, left-Margin(left))
	}
	return context.WithTimeout(ctx, d)
}

// Margin is the time kept back from a platform deadline to answer in: a
// tenth of the time left, at least 10 ms and at most 1 s.
func Margin(left time.Duration) time.Duration {
	return min(max(left/10, 10*time.Millisecond), time.Second)
}

// requestID is the platform's request id, or a new random one.
func requestID(ctx context.Context) string {
	if info, ok := invocation.FromContext(ctx); ok && info.RequestID != "" {
		return info.RequestID
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// reply writes a JSON success body.
func (a *API) reply(x *exchange, status int, body any) {
	x.status = status
	writeJSON(x.w, status, body)
}

// fail writes an error in the route's dialect: native errors, or the demo's
// always-200 numeric codes on compat routes.
func (a *API) fail(x *exchange, err error) {
	fe := fault.As(err)
	x.err = fe
	if ra := retryAfter(fe); ra != "" {
		x.w.Header().Set("Retry-After", ra)
	}
	if x.route.compat && x.route.op == opEnqueue && fe.Kind == fault.NoIdle {
		return // enqueue renders "queuing" itself
	}
	// A caller whose UserId the server just chose learns it, with its
	// credential, even when the start failed: its next try then reuses the
	// concurrency CAR may have locked for it.
	var userID, ticket string
	if x.identity.Minted {
		if t, err := a.o.Auth.Credential(x.identity); err == nil {
			userID, ticket = x.identity.UserID, t
		}
	}
	if x.route.compat {
		a.reply(x, http.StatusOK, compatReply{RequestId: x.compatRequestID(), Code: compatCode(fe, x.route.op), Msg: fe.Message,
			UserId: userID, Ticket: ticket})
		return
	}
	a.reply(x, Status(fe.Kind), nativeError{Error: errorBody{Code: fe.Kind.String(), Message: fe.Message}, RequestId: x.requestID,
		UserId: userID, Ticket: ticket})
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	b, err := json.Marshal(body)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"Error":{"Code":"InternalError","Message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// cors sets CORS headers for allowed origins and answers preflights. It
// reports whether the request was a preflight (and so is answered).
func (a *API) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	allowed := a.o.Config.CORSAllowOrigins
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if origin != "" && len(allowed) > 0 {
		h := w.Header()
		h.Add("Vary", "Origin")
		switch {
		case slices.Contains(allowed, "*"):
			h.Set("Access-Control-Allow-Origin", "*")
		case slices.Contains(allowed, origin):
			h.Set("Access-Control-Allow-Origin", origin)
		}
		if h.Get("Access-Control-Allow-Origin") != "" {
			h.Set("Access-Control-Expose-Headers", "Retry-After, X-Request-Id")
			if preflight {
				h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				h.Set("Access-Control-Max-Age", "600")
			}
		}
	}
	if preflight {
		w.WriteHeader(http.StatusNoContent)
	}
	return preflight
}

// TrustedPeer reports whether a peer address ("ip:port" or "ip") is inside
// one of the prefixes; transports use it to decide whose headers to believe.
func TrustedPeer(prefixes []netip.Prefix) func(remoteAddr string) bool {
	return func(remoteAddr string) bool {
		a, ok := parseAddr(remoteAddr)
		return ok && inAny(a, prefixes)
	}
}

// clientIP applies the client-IP rule to the request.
func (a *API) clientIP(r *http.Request) (string, error) {
	ip, ok := clientIP(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), a.o.Config.TrustedProxies)
	if !ok {
		return "", fault.New(fault.Invalid, "the caller's IP address could not be determined")
	}
	if !public(ip) {
		a.warnOnce.Do(func() {
			a.log.Warn("client IP is not public; CAR schedules by UserIp, so set TRUSTED_PROXY_CIDRS if a proxy fronts the function",
				"ip", ip.String())
		})
	}
	return ip.String(), nil
}
