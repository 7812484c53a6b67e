// Package httpapi is the broker's HTTP API: a plain http.Handler that every
// transport (SCF events, web functions, the local server) reaches.
//
// It owns routing (native routes and the drop-in routes of Tencent's
// car-server-demo, each rendered in its own style: replies.go, compat.go),
// body decoding and validation, the allow-lists, CORS, the client-IP rule,
// the request's time budget and the single log line per request. The kind
// → status table and the one JSON writer of the function's replies are in
// reply.go. It serves the use case (package broker) with the services New
// is handed; it builds none.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"carbroker/internal/auth"
	"carbroker/internal/broker"
	"carbroker/internal/car"
	"carbroker/internal/config"
	"carbroker/internal/fault"
)

// deps are what the API is built from (see New).
type deps struct {
	cfg    config.Config // policy: allow-lists, CORS, trusted proxies, request timeout
	broker *broker.Service
	auth   auth.Authenticator
	// invites may be nil: joining another user's room is then refused
	// unless requireInvites is false.
	invites *auth.Invites
	// requireInvites makes a guest (HostUserId other than its own UserId)
	// present an invite from the host; the role is then the invite's.
	requireInvites bool
	log            *slog.Logger
	version        string
	// local is dev mode: every caller is on loopback by design, so a
	// non-public client address is not worth a warning.
	local bool
	now   func() time.Time // for the rate of warnings
	// credentials, if set, reports whether CAR credentials are in force
	// (event mode, where they come with each invoke); /healthz says so.
	credentials func(context.Context) bool
}

// api is the http.Handler.
type api struct {
	deps
	ipWarn struct {
		sync.Mutex
		last time.Time // when the non-public client address was last warned about
	}
}

// ipWarnEvery is the most often the non-public client address is logged.
const ipWarnEvery = time.Minute

// Operations (also the route names in logs).
const (
	opStart    = "start"
	opStop     = "stop"
	opInvite   = "invite"
	opAlive    = "alive"
	opHealth   = "health"
	opEnqueue  = "enqueue"
	opDequeue  = "dequeue"
	opCapacity = "capacity"
	opRenew    = "renew"
)

type route struct {
	path   string
	method string
	op     string
	style  style // how replies are rendered: native, or car-server-demo's compat
}

// routes match on the path's tail, longest first, so a base path such as
// /release/car/session works.
var routes = []route{
	{"/session/invite", http.MethodPost, opInvite, native{}},
	{"/session/renew", http.MethodPost, opRenew, native{}},
	{"/session/alive", http.MethodPost, opAlive, native{}},
	{"/StartProject", http.MethodPost, opStart, compat{}},
	{"/StopProject", http.MethodPost, opStop, compat{}},
	{"/session", http.MethodPost, opStart, native{}},
	{"/session", http.MethodDelete, opStop, native{}},
	{"/Enqueue", http.MethodPost, opEnqueue, compat{}},
	{"/Dequeue", http.MethodPost, opDequeue, compat{}},
	{"/capacity", http.MethodGet, opCapacity, native{}},
	{"/healthz", http.MethodGet, opHealth, native{}},
	{"/healthz", http.MethodHead, opHealth, native{}},
}

// routeList names every route (HEAD /healthz aside), for the 404 message.
var routeList = func() string {
	var names []string
	for _, r := range routes {
		if r.method != http.MethodHead {
			names = append(names, r.method+" "+r.path)
		}
	}
	return strings.Join(names, ", ")
}()

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
	return route{style: native{}}, false, found
}

// exchange is one request being served.
type exchange struct {
	w         http.ResponseWriter
	r         *http.Request
	start     time.Time
	requestID string
	route     route
	calls     *car.CallLog
	status    int
	err       *fault.Error

	clientRequestID string        // the client's RequestId, logged and echoed by compat routes
	userID          string        // the authenticated caller
	identity        auth.Identity // the authenticated caller, as the authenticator said
	outcome         string
	expiresAt       time.Time // a started session's lease end; zero: no lease
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{w: w, r: r, start: time.Now(), requestID: requestID(r.Context())}
	ctx, calls := car.WithCallLog(r.Context())
	x.calls = calls
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Request-Id", x.requestID)
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("panic", "request_id", x.requestID, "panic", p)
			a.fail(x, fault.New(fault.Internal, fault.InternalMessage))
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
		a.fail(x, fault.New(fault.NotFound, "no such route; the routes are "+routeList+", also under a base path (/release/session)"))
		return
	}
	ctx, cancel := a.budget(ctx)
	defer cancel()
	x.r = r.WithContext(ctx)
	switch rt.op {
	case opHealth:
		a.health(x)
	case opStart:
		a.start(x)
	case opStop:
		a.stop(x)
	case opInvite:
		a.invite(x)
	case opAlive:
		a.alive(x)
	case opEnqueue:
		a.enqueue(x)
	case opDequeue:
		a.dequeue(x)
	case opCapacity:
		a.capacity(x)
	case opRenew:
		a.renew(x)
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
func (a *api) budget(ctx context.Context) (context.Context, context.CancelFunc) {
	d := a.cfg.RequestTimeout
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		d = min(d, left-margin(left))
	}
	return context.WithTimeout(ctx, d)
}

// margin is the time kept back from a platform deadline to answer in: a
// tenth of the time left, at least 10 ms and at most 1 s.
func margin(left time.Duration) time.Duration {
	return min(max(left/10, 10*time.Millisecond), time.Second)
}

// requestID is the platform's request id, or a new random one.
func requestID(ctx context.Context) string {
	if info, ok := InvocationFrom(ctx); ok && info.RequestID != "" {
		return info.RequestID
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// reply writes a JSON body with its status.
func (x *exchange) reply(status int, body any) {
	x.status = status
	WriteJSON(x.w, status, body)
}

// cors sets CORS headers for allowed origins and answers preflights. It
// reports whether the request was a preflight (and so is answered).
func (a *api) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	allowed := a.cfg.CORSAllowOrigins
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
func (a *api) clientIP(r *http.Request) (string, error) {
	ip, ok := clientIP(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), a.cfg.TrustedProxies)
	if !ok {
		return "", fault.New(fault.Invalid, "the caller's IP address could not be determined")
	}
	if !public(ip) && !a.local {
		a.warnNonPublic(r, ip)
	}
	return ip.String(), nil
}

// warnNonPublic logs, at most once a minute per instance, that the client
// address is not public: CAR schedules by it, and the waiting line's
// QUEUE_MAX_PER_IP cap is not applied to it (a proxy's address would put
// every user under one cap). The forwarding headers as received help the
// operator decide which proxies to trust; they are addresses, not secrets.
func (a *api) warnNonPublic(r *http.Request, ip netip.Addr) {
	now := a.now()
	a.ipWarn.Lock()
	due := a.ipWarn.last.IsZero() || now.Sub(a.ipWarn.last) >= ipWarnEvery || now.Before(a.ipWarn.last)
	if due {
		a.ipWarn.last = now
	}
	a.ipWarn.Unlock()
	if !due {
		return
	}
	a.log.Warn("client IP is not public: CAR schedules by UserIp, and the line's QUEUE_MAX_PER_IP cap is not applied to it; "+
		"if a proxy fronts the function, set TRUSTED_PROXY_CIDRS to its addresses (logged at most once a minute)",
		"ip", ip.String(), "peer", r.RemoteAddr,
		"x_forwarded_for", clip(strings.Join(r.Header.Values("X-Forwarded-For"), ", ")),
		"x_real_ip", clip(r.Header.Get("X-Real-Ip")))
}

// clip bounds a header value for the log.
func clip(s string) string {
	const max = 200
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
