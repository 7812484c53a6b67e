// Package config reads and validates the function's configuration from the
// environment. It is the one place that validates the configuration and
// sets its defaults: the constructors that take a Config do not check it
// again. Load reports every problem at once, one clear line each, and never
// echoes a secret's value; callers of a misconfigured function get the
// problems without any value (Error.Public).
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"carbroker/internal/resp"
)

// Auth modes.
const (
	AuthNone   = "none"
	AuthTicket = "ticket"
	AuthJWT    = "jwt"
	AuthSign   = "sign"
)

// Config is the validated configuration.
type Config struct {
	// CAR
	ProjectID             string   // CAR_PROJECT_ID, the default ProjectId
	AllowedProjectIDs     []string // CAR_ALLOWED_PROJECT_IDS (default: ProjectID)
	ApplicationID         string   // CAR_APPLICATION_ID, default ApplicationId (optional)
	AllowedAppIDs         []string // CAR_ALLOWED_APPLICATION_IDS
	AllowedVersionIDs     []string // CAR_ALLOWED_VERSION_IDS
	AppParamsPattern      *regexp.Regexp
	AllowRunWithoutClient bool
	NoIdleWait            time.Duration // CAR_NOIDLE_WAIT
	AttemptTimeout        time.Duration // CAR_ATTEMPT_TIMEOUT
	GuestApply            bool          // CAR_GUEST_APPLY: guests call ApplyConcurrent too
	// LockWindow is CAR_LOCK_WINDOW: how long a lock-only start (the demo's
	// /Enqueue answering 10101) lets its user start. CAR does not publish
	// how long its lock lasts.
	LockWindow time.Duration
	// Retention is CAR_RETENTION: how long CAR keeps a disconnected
	// session for a reconnect (90 s, CAR's documented default).
	Retention time.Duration
	Endpoint  Endpoint // CAR_ENDPOINT

	// HTTP
	RequestTimeout   time.Duration  // REQUEST_TIMEOUT
	TrustedProxies   []netip.Prefix // TRUSTED_PROXY_CIDRS
	CORSAllowOrigins []string       // CORS_ALLOW_ORIGINS ("*" allowed)
	LogLevel         string         // LOG_LEVEL: debug, info, warn, error

	Auth Auth

	Queue Queue

	Lease Lease

	Dev Dev // dev mode only
}

// Lease is how long a session may last (docs/lease.md). Leases live in the
// line's store: SESSION_MAX needs QUEUE_REDIS_URL (dev mode: its embedded
// store).
type Lease struct {
	Max      time.Duration // SESSION_MAX: the longest session from the first ServerSession handed; 0 is off
	Renew    bool          // SESSION_RENEW: the owner may extend its lease by Max from now (POST /session/renew)
	RenewMax int           // SESSION_RENEW_MAX: renewals per lease (0: none)
	Cooldown time.Duration // SESSION_COOLDOWN: how long after its lease ended a user may not start again
}

// Queue is the launch-day waiting line (docs/queue.md).
type Queue struct {
	RedisURL  string        // QUEUE_REDIS_URL: redis:// or rediss://; "" means no line. Holds a password: never log it
	Abandon   time.Duration // QUEUE_ABANDON: a place not polled for this long is dropped
	MaxPerIP  int           // QUEUE_MAX_PER_IP: places per client IP
	KeyPrefix string        // QUEUE_KEY_PREFIX
	HoldTTL   time.Duration // QUEUE_HOLD_TTL: how long a user handed a ServerSession through us skips the line after its last start (heartbeats then decide)
	// LineOff keeps the line off while its store (RedisURL) serves session
	// leases: dev mode's DEV_QUEUE=false with SESSION_MAX. Not a variable.
	LineOff bool
}

// Dev is dev mode's own settings (DEV_* variables, read only in dev mode).
type Dev struct {
	Concurrency int           // DEV_CONCURRENCY: the embedded emulator's pool size, default 4
	Retention   time.Duration // DEV_RETENTION, default 90s (CAR's documented default)
	// ClientWait is DEV_CLIENT_WAIT, default 30s: how long a session waits
	// for its client before it is retained as if the client had left. CAR
	// does not document it; 30 s is the emulator's approximation.
	ClientWait time.Duration
	// Queue is DEV_QUEUE, default true: the waiting line on an embedded
	// Redis (or QUEUE_REDIS_URL); false turns the line off.
	Queue bool
}

// Endpoint is where CAR is reached.
type Endpoint struct {
	Host   string // host[:port], never a scheme or path
	Scheme string // "HTTPS" or "HTTP", as the SDK's HttpProfile wants it
}

// defaultEndpoint is the public CAR endpoint.
var defaultEndpoint = Endpoint{Host: "car.tencentcloudapi.com", Scheme: "HTTPS"}

// Auth is the caller-identity configuration.
type Auth struct {
	Mode      string        // AUTH_MODE
	Secrets   [][]byte      // AUTH_SECRET, comma list; the first signs
	TicketTTL time.Duration // AUTH_TICKET_TTL
	InviteTTL time.Duration // AUTH_INVITE_TTL, the longest an invite may live
	SignSalt  string        // COMPAT_SIGN_SALT

	JWTSecret     []byte        // JWT_SECRET (HS256)
	JWTJWKSURL    string        // JWT_JWKS_URL (RS256/ES256)
	JWTPublicKey  *JWTKey       // JWT_PUBLIC_KEY, PEM (RS256/ES256), parsed
	JWTIssuer     string        // JWT_ISSUER
	JWTAudience   string        // JWT_AUDIENCE
	JWTUserClaim  string        // JWT_USER_CLAIM
	JWTHashUserID bool          // JWT_HASH_USER_ID
	JWTLeeway     time.Duration // JWT_LEEWAY
}

// Options changes how Load treats missing values.
type Options struct {
	Dev bool // dev mode: AUTH_MODE defaults to none, CAR_PROJECT_ID to a dev project, CORS_ALLOW_ORIGINS to *
}

// devProjectID is the project the embedded emulator serves in dev mode.
const devProjectID = "cap-dev00000"

var (
	idPattern      = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	projectPattern = regexp.MustCompile(`^cap-[a-z0-9]{1,60}$`)
)

// Problem is one thing wrong with the configuration.
type Problem struct {
	Var     string // the variable at fault
	Message string // what is wrong and how to fix it; never holds the value
	Value   string // the value, for the operator's log; "" for a secret
}

// Error is every problem Load found.
type Error struct {
	Problems []Problem
}

// Error lists the problems, one a line, each with its value unless it is a
// secret: for the operator's terminal and log, never for callers.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.Message
		if p.Value != "" {
			lines[i] += fmt.Sprintf(" (got %q)", p.Value)
		}
	}
	return strings.Join(lines, "\n")
}

// Public is what callers of a misconfigured function may read: the
// problems, naming the variables at fault, without any value.
func (e *Error) Public() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Message
	}
	return strings.Join(msgs, "; ")
}

// problems collects what Load finds.
type problems struct{ list []Problem }

// bad records a problem with key; value is shown only in the log (pass ""
// for a secret).
func (p *problems) bad(key, value, msg string) {
	p.list = append(p.list, Problem{Var: key, Message: msg, Value: value})
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &Error{Problems: p.list}
}

// Load reads the configuration through getenv. A problem is reported as an
// *Error listing every problem at once.
func Load(getenv func(string) string, opt Options) (Config, error) {
	p := &problems{}
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }

	c := Config{ProjectID: get("CAR_PROJECT_ID"), ApplicationID: get("CAR_APPLICATION_ID")}
	if c.ProjectID == "" && opt.Dev {
		c.ProjectID = devProjectID
	}
	const projectForm = "cap- followed by lowercase letters and digits"
	if c.ProjectID == "" {
		p.bad("CAR_PROJECT_ID", "", "CAR_PROJECT_ID is required (your CAR project id: "+projectForm+")")
	} else if !projectPattern.MatchString(c.ProjectID) {
		p.bad("CAR_PROJECT_ID", c.ProjectID, "CAR_PROJECT_ID is not a CAR project id ("+projectForm+")")
	}
	c.AllowedProjectIDs = list(get("CAR_ALLOWED_PROJECT_IDS"))
	for _, id := range c.AllowedProjectIDs {
		if !projectPattern.MatchString(id) {
			p.bad("CAR_ALLOWED_PROJECT_IDS", id, "CAR_ALLOWED_PROJECT_IDS: every entry must be a CAR project id ("+projectForm+")")
		}
	}
	switch {
	case len(c.AllowedProjectIDs) == 0 && c.ProjectID != "":
		c.AllowedProjectIDs = []string{c.ProjectID}
	case c.ProjectID != "" && !slices.Contains(c.AllowedProjectIDs, c.ProjectID):
		p.bad("CAR_ALLOWED_PROJECT_IDS", "", "CAR_ALLOWED_PROJECT_IDS must include CAR_PROJECT_ID, the project used when a request names none")
	}
	c.AllowedAppIDs = list(get("CAR_ALLOWED_APPLICATION_IDS"))
	c.AllowedVersionIDs = list(get("CAR_ALLOWED_VERSION_IDS"))
	for _, l := range []struct {
		name string
		ids  []string
	}{{"CAR_ALLOWED_APPLICATION_IDS", c.AllowedAppIDs}, {"CAR_ALLOWED_VERSION_IDS", c.AllowedVersionIDs}} {
		for _, id := range l.ids {
			if !idPattern.MatchString(id) {
				p.bad(l.name, id, l.name+": every entry must be 1-64 characters of A-Z a-z 0-9 _ . -")
			}
		}
	}
	if c.ApplicationID != "" && !idPattern.MatchString(c.ApplicationID) {
		p.bad("CAR_APPLICATION_ID", c.ApplicationID, "CAR_APPLICATION_ID is not a valid id (app-…)")
	}
	c.AppParamsPattern = appParamsPattern(getenv("CAR_ALLOW_APPLICATION_PARAMETERS"), p)
	c.AllowRunWithoutClient = boolean(get, "CAR_ALLOW_RUN_WITHOUT_CLIENT", false, p)
	c.GuestApply = boolean(get, "CAR_GUEST_APPLY", false, p)
	c.NoIdleWait = duration(get, "CAR_NOIDLE_WAIT", 0, 0, 15*time.Minute, p)
	c.AttemptTimeout = duration(get, "CAR_ATTEMPT_TIMEOUT", time.Second, 100*time.Millisecond, 15*time.Minute, p)
	c.LockWindow = duration(get, "CAR_LOCK_WINDOW", 30*time.Second, time.Second, time.Hour, p)
	c.Retention = duration(get, "CAR_RETENTION", 90*time.Second, time.Second, 24*time.Hour, p)
	c.Endpoint = defaultEndpoint
	if ep := get("CAR_ENDPOINT"); ep != "" {
		e, err := parseEndpoint(ep)
		if err != nil {
			p.bad("CAR_ENDPOINT", ep, "CAR_ENDPOINT: "+err.Error())
		}
		c.Endpoint = e
	}

	c.RequestTimeout = duration(get, "REQUEST_TIMEOUT", 10*time.Second, 100*time.Millisecond, 15*time.Minute, p)
	for _, s := range list(get("TRUSTED_PROXY_CIDRS")) {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				pfx, err = a.Prefix(a.BitLen())
			}
		}
		if err != nil {
			p.bad("TRUSTED_PROXY_CIDRS", s, "TRUSTED_PROXY_CIDRS: every entry must be a CIDR (e.g. 127.0.0.1/32) or an address")
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, pfx.Masked())
	}
	for _, o := range list(get("CORS_ALLOW_ORIGINS")) {
		origin, ok := normalOrigin(o)
		if !ok {
			p.bad("CORS_ALLOW_ORIGINS", o, "CORS_ALLOW_ORIGINS: every entry must be an origin (https://host[:port], no path) or *")
			continue
		}
		c.CORSAllowOrigins = append(c.CORSAllowOrigins, origin)
	}
	if get("CORS_ALLOW_ORIGINS") == "" && opt.Dev {
		// Dev mode serves a fake CAR on loopback: a page on another local
		// port (a dev server on localhost:5173) may call it as it is.
		c.CORSAllowOrigins = []string{"*"}
	}
	c.LogLevel = strings.ToLower(get("LOG_LEVEL"))
	switch c.LogLevel {
	case "":
		c.LogLevel = "info"
	case "debug", "info", "warn", "error":
	default:
		p.bad("LOG_LEVEL", c.LogLevel, "LOG_LEVEL must be one of debug, info, warn, error")
	}

	c.Auth = loadAuth(get, opt, p)
	c.Queue = loadQueue(get, p)
	c.Lease = loadLease(get, p)
	if opt.Dev {
		c.Dev = Dev{
			Concurrency: integer(get, "DEV_CONCURRENCY", 4, 1, 1000, p),
			Retention:   duration(get, "DEV_RETENTION", 90*time.Second, time.Second, 24*time.Hour, p),
			ClientWait:  duration(get, "DEV_CLIENT_WAIT", 30*time.Second, time.Second, 24*time.Hour, p),
			Queue:       boolean(get, "DEV_QUEUE", true, p),
		}
		if get("CAR_RETENTION") == "" {
			c.Retention = c.Dev.Retention // the embedded emulator's retention is CAR's here
		}
	}
	if c.Lease.Max > 0 && c.Queue.RedisURL == "" && !opt.Dev {
		// Dev mode keeps leases on its embedded store, also with DEV_QUEUE=false.
		p.bad("SESSION_MAX", "", "SESSION_MAX needs QUEUE_REDIS_URL: session leases are kept in the line's Redis, so that every instance sees them")
	}
	return c, p.err()
}

// loadLease reads the SESSION_* settings. A renewal setting without a lease
// to renew, or renewals allowed zero times, is refused rather than ignored.
func loadLease(get func(string) string, p *problems) Lease {
	l := Lease{
		Max:      duration(get, "SESSION_MAX", 0, time.Second, 365*24*time.Hour, p),
		Renew:    boolean(get, "SESSION_RENEW", false, p),
		RenewMax: integer(get, "SESSION_RENEW_MAX", 0, 0, 1_000_000, p),
		Cooldown: duration(get, "SESSION_COOLDOWN", 0, 0, 365*24*time.Hour, p),
	}
	if get("SESSION_MAX") == "" {
		for k, set := range map[string]bool{"SESSION_RENEW": l.Renew, "SESSION_RENEW_MAX": l.RenewMax > 0, "SESSION_COOLDOWN": l.Cooldown > 0} {
			if set {
				p.bad(k, get(k), k+" has no effect without SESSION_MAX (the longest session, e.g. 10m)")
			}
		}
	}
	if !l.Renew && l.RenewMax > 0 && l.Max > 0 {
		p.bad("SESSION_RENEW_MAX", get("SESSION_RENEW_MAX"), "SESSION_RENEW_MAX has no effect without SESSION_RENEW=true (renewals are off)")
	}
	if l.Renew && l.RenewMax == 0 && l.Max > 0 {
		p.bad("SESSION_RENEW_MAX", "", "SESSION_RENEW=true needs SESSION_RENEW_MAX of at least 1 (how many times a lease may be renewed)")
	}
	return l
}

// appParamsPattern compiles CAR_ALLOW_APPLICATION_PARAMETERS, anchored to
// match whole values. The pattern is compiled alone first, so that it
// cannot close the anchoring group ("a)|(.*" would match anything).
func appParamsPattern(s string, p *problems) *regexp.Regexp {
	if s == "" {
		return nil
	}
	if _, err := regexp.Compile(s); err != nil {
		p.bad("CAR_ALLOW_APPLICATION_PARAMETERS", s, "CAR_ALLOW_APPLICATION_PARAMETERS is not a valid regular expression")
		return nil
	}
	return regexp.MustCompile(`^(?:` + s + `)$`) // a valid pattern stays valid in a group
}

// normalOrigin returns o as browsers send it in Origin: lowercase scheme and
// host, no default port, no trailing slash ("https://App.example.com:443/"
// becomes "https://app.example.com"). It refuses anything with a path, a
// query, a fragment or user information. "*" stays "*".
func normalOrigin(o string) (string, bool) {
	if o == "*" {
		return o, true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(o, "#") {
		return "", false
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname())
	switch {
	case scheme != "http" && scheme != "https":
		return "", false
	case u.Port() != "" && !(scheme == "http" && u.Port() == "80" || scheme == "https" && u.Port() == "443"):
		host = net.JoinHostPort(host, u.Port())
	case strings.Contains(host, ":"):
		host = "[" + host + "]" // IPv6, default port
	}
	return scheme + "://" + host, true
}

// isPlaceholder reports whether a secret is one of the docs' example
// values (README: replace-with-the-output-of-openssl-rand-base64-48;
// docs/deploy.md: replace-with-48-random-bytes-in-base64). Every
// "replace-with-…" counts: openssl rand -base64 never writes a "-".
func isPlaceholder(secret string) bool {
	return strings.HasPrefix(strings.ToLower(secret), "replace-with")
}

func loadAuth(get func(string) string, opt Options, p *problems) Auth {
	a := Auth{Mode: strings.ToLower(get("AUTH_MODE"))}
	if a.Mode == "" && opt.Dev {
		a.Mode = AuthNone
	}
	secretSet := get("AUTH_SECRET") != ""
	for _, s := range list(get("AUTH_SECRET")) {
		if isPlaceholder(s) {
			p.bad("AUTH_SECRET", "", "AUTH_SECRET is the example value from the docs, which anyone can read: generate your own with: openssl rand -base64 48")
			a.Secrets = nil
			break
		}
		if len(s) < 32 {
			p.bad("AUTH_SECRET", "", "AUTH_SECRET: every secret must be at least 32 characters (generate one with: openssl rand -base64 48)")
			a.Secrets = nil
			break
		}
		a.Secrets = append(a.Secrets, []byte(s))
	}
	a.TicketTTL = duration(get, "AUTH_TICKET_TTL", 720*time.Hour, time.Minute, 24*365*time.Hour, p)
	a.InviteTTL = duration(get, "AUTH_INVITE_TTL", time.Hour, time.Minute, 7*24*time.Hour, p)
	a.SignSalt = get("COMPAT_SIGN_SALT")
	if s := get("JWT_SECRET"); s != "" {
		if len(s) < 32 {
			p.bad("JWT_SECRET", "", "JWT_SECRET must be at least 32 characters")
		}
		a.JWTSecret = []byte(s)
	}
	a.JWTJWKSURL = get("JWT_JWKS_URL")
	pemKey := strings.ReplaceAll(get("JWT_PUBLIC_KEY"), `\n`, "\n")
	a.JWTIssuer = get("JWT_ISSUER")
	a.JWTAudience = get("JWT_AUDIENCE")
	a.JWTUserClaim = get("JWT_USER_CLAIM")
	if a.JWTUserClaim == "" {
		a.JWTUserClaim = "sub"
	}
	a.JWTHashUserID = boolean(get, "JWT_HASH_USER_ID", false, p)
	a.JWTLeeway = duration(get, "JWT_LEEWAY", 30*time.Second, 0, 10*time.Minute, p)

	switch a.Mode {
	case "":
		p.bad("AUTH_MODE", "", "AUTH_MODE is required: one of none, ticket, jwt, sign (see README, Authentication)")
	case AuthNone:
	case AuthTicket:
		if !secretSet {
			p.bad("AUTH_SECRET", "", "AUTH_MODE=ticket needs AUTH_SECRET (one or more comma-separated secrets of 32+ characters)")
		}
	case AuthJWT:
		n := 0
		for _, set := range []bool{a.JWTSecret != nil, a.JWTJWKSURL != "", pemKey != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			p.bad("AUTH_MODE", "", "AUTH_MODE=jwt needs exactly one of JWT_SECRET, JWT_JWKS_URL, JWT_PUBLIC_KEY")
		}
		if a.JWTJWKSURL != "" && !secureURL(a.JWTJWKSURL) {
			p.bad("JWT_JWKS_URL", a.JWTJWKSURL, "JWT_JWKS_URL must be an https:// URL (plain http only to a loopback address)")
		}
		if pemKey != "" {
			k, err := ParseJWTKey(pemKey)
			if err != nil {
				p.bad("JWT_PUBLIC_KEY", "", "JWT_PUBLIC_KEY: "+err.Error())
			} else {
				a.JWTPublicKey = &k
			}
		}
	case AuthSign:
		if a.SignSalt == "" {
			p.bad("COMPAT_SIGN_SALT", "", "AUTH_MODE=sign needs COMPAT_SIGN_SALT")
		}
	default:
		p.bad("AUTH_MODE", a.Mode, "AUTH_MODE must be one of none, ticket, jwt, sign")
	}
	return a
}

func loadQueue(get func(string) string, p *problems) Queue {
	q := Queue{RedisURL: get("QUEUE_REDIS_URL"), KeyPrefix: get("QUEUE_KEY_PREFIX")}
	if q.RedisURL != "" {
		// The client's own rule (credentials end at the last "@"), so that
		// what passes here connects; the operator's log shows the URL with
		// its password masked whole (resp.RedactURL), callers never see it.
		if _, err := resp.ParseURL(q.RedisURL); err != nil {
			p.bad("QUEUE_REDIS_URL", resp.RedactURL(q.RedisURL), "QUEUE_REDIS_URL must be redis://[[user]:password@]host[:port][/db] or rediss://… (TencentDB: redis://:account@password@host:6379): "+err.Error())
		}
	}
	if q.KeyPrefix == "" {
		q.KeyPrefix = "{carbroker}:"
	} else if len(q.KeyPrefix) > 64 || strings.ContainsAny(q.KeyPrefix, " \t\r\n") {
		p.bad("QUEUE_KEY_PREFIX", q.KeyPrefix, "QUEUE_KEY_PREFIX must be at most 64 characters without spaces")
	}
	// At least 3 s: Retry-After is whole seconds, at least 1 and at most a
	// third of QUEUE_ABANDON, so a client that follows it exactly (and
	// takes a moment to send) polls again before its place lapses.
	q.Abandon = duration(get, "QUEUE_ABANDON", 30*time.Second, 3*time.Second, time.Hour, p)
	q.HoldTTL = duration(get, "QUEUE_HOLD_TTL", 2*time.Hour, time.Minute, 7*24*time.Hour, p)
	q.MaxPerIP = integer(get, "QUEUE_MAX_PER_IP", 4, 1, 1_000_000, p)
	return q
}

// secureURL reports whether s is an https URL, or a plain http one to a
// loopback host (localhost, 127.0.0.0/8, ::1). The host is the URL's, as
// parsed: "http://127.0.0.1.evil.example/" and "http://localhost@evil.example/"
// are not loopback.
func secureURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		if strings.EqualFold(h, "localhost") {
			return true
		}
		a, err := netip.ParseAddr(h)
		return err == nil && a.IsLoopback()
	}
	return false
}

// parseEndpoint accepts host[:port] or http(s)://host[:port][/].
func parseEndpoint(s string) (Endpoint, error) {
	e := Endpoint{Scheme: "HTTPS"}
	switch {
	case strings.HasPrefix(strings.ToLower(s), "https://"):
		s = s[len("https://"):]
	case strings.HasPrefix(strings.ToLower(s), "http://"):
		s, e.Scheme = s[len("http://"):], "HTTP"
	case strings.Contains(s, "://"):
		return e, errors.New("only http:// and https:// are supported")
	}
	s = strings.TrimSuffix(s, "/")
	if s == "" || strings.ContainsAny(s, "/?#@ ") {
		return e, errors.New("must be host[:port] or http(s)://host[:port], without a path")
	}
	e.Host = s
	return e, nil
}

func list(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func boolean(get func(string) string, key string, def bool, p *problems) bool {
	v := get(key)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.bad(key, v, key+" must be true or false")
	}
	return b
}

func integer(get func(string) string, key string, def, lo, hi int, p *problems) int {
	v := get(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.bad(key, v, fmt.Sprintf("%s must be a whole number from %d to %d", key, lo, hi))
		return def
	}
	return n
}

func duration(get func(string) string, key string, def, lo, hi time.Duration, p *problems) time.Duration {
	v := get(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		if n, nerr := strconv.Atoi(v); nerr == nil {
			d, err = time.Duration(n)*time.Second, nil
		}
	}
	if err != nil {
		p.bad(key, v, key+" must be a duration such as 10s or 1m30s")
		return def
	}
	if d < lo || d > hi {
		p.bad(key, v, fmt.Sprintf("%s must be between %v and %v", key, lo, hi))
		return def
	}
	return d
}

// Keys lists every environment variable the configuration reads outside dev
// mode (dev mode adds DEV_CONCURRENCY, DEV_RETENTION, DEV_CLIENT_WAIT and DEV_QUEUE).
var Keys = []string{
	"CAR_PROJECT_ID", "CAR_ALLOWED_PROJECT_IDS", "CAR_APPLICATION_ID", "CAR_ALLOWED_APPLICATION_IDS",
	"CAR_ALLOWED_VERSION_IDS", "CAR_ALLOW_APPLICATION_PARAMETERS", "CAR_ALLOW_RUN_WITHOUT_CLIENT",
	"CAR_NOIDLE_WAIT", "CAR_ATTEMPT_TIMEOUT", "CAR_GUEST_APPLY", "CAR_LOCK_WINDOW", "CAR_RETENTION", "CAR_ENDPOINT", "REQUEST_TIMEOUT", "TRUSTED_PROXY_CIDRS",
	"CORS_ALLOW_ORIGINS", "LOG_LEVEL", "AUTH_MODE", "AUTH_SECRET", "AUTH_TICKET_TTL", "AUTH_INVITE_TTL",
	"COMPAT_SIGN_SALT", "JWT_SECRET", "JWT_JWKS_URL", "JWT_PUBLIC_KEY", "JWT_ISSUER", "JWT_AUDIENCE",
	"JWT_USER_CLAIM", "JWT_HASH_USER_ID", "JWT_LEEWAY",
	"QUEUE_REDIS_URL", "QUEUE_ABANDON", "QUEUE_MAX_PER_IP", "QUEUE_KEY_PREFIX", "QUEUE_HOLD_TTL",
	"SESSION_MAX", "SESSION_RENEW", "SESSION_RENEW_MAX", "SESSION_COOLDOWN",
}

// Fingerprint identifies the configuration in the environment, so a caller
// can rebuild only when it changes. It is a hash: it holds no secret.
func Fingerprint(getenv func(string) string) string {
	h := sha256.New()
	for _, k := range Keys {
		v := getenv(k)
		fmt.Fprintf(h, "%s=%d:%s\x00", k, len(v), v)
	}
	return hex.EncodeToString(h.Sum(nil))
}
