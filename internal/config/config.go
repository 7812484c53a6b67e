// Package config reads and validates the function's configuration from the
// environment. Each setting is declared once, in settings.go: its name,
// default, parser and check, whether it is secret, what it does; Load,
// Keys, Secret and Defaults, the deployer's checks of
// serverless.yml and the table in docs/reference.md come from there. It is
// the one place that validates the configuration and sets its defaults:
// the constructors that take a Config do not check it again. Load reports every problem at once, one clear line each, and never
// echoes a secret's value; callers of a misconfigured function get the
// problems without any value (Error.Public).
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
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
// for a secret; Load blanks the value of a setting declared secret anyway).
func (p *problems) bad(key, value, msg string) {
	p.list = append(p.list, Problem{Var: key, Message: msg, Value: value})
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &Error{Problems: p.list}
}

// Load reads the configuration through getenv: every setting (settings.go)
// on its own, then the rules between them. A problem is reported as an
// *Error listing every problem at once: those of single settings first, in
// the order of the table, then those between settings. With an error, the
// Config is incomplete: use it only when err is nil.
func Load(getenv func(string) string, opt Options) (Config, error) {
	l := &loader{opt: opt, p: &problems{}, values: map[string]string{}}
	for _, s := range settings {
		if s.dev && !opt.Dev {
			continue
		}
		v := getenv(s.name)
		if !s.raw {
			v = strings.TrimSpace(v)
		}
		l.values[s.name] = v
		switch {
		case v != "":
		case opt.Dev && s.devDef != "":
			v = s.devDef
		case s.def != "":
			v = s.def
		case s.required != "":
			l.p.bad(s.name, "", s.required)
			continue
		default:
			continue
		}
		s.kind.parse(&l.c, s.name, v, l.p)
	}
	for _, rule := range rules {
		rule(l)
	}
	for i, pr := range l.p.list {
		if Secret(pr.Var) {
			l.p.list[i].Value = ""
		}
	}
	return l.c, l.p.err()
}

// loader is one Load: the configuration so far, the values as read (""
// for unset) and the problems found.
type loader struct {
	c      Config
	opt    Options
	p      *problems
	values map[string]string
}

// rules are the checks and defaults that involve more than one setting,
// run in this order after every setting was read.
var rules = []func(*loader){
	allowedProjects,
	devRetention,
	authSources,
	leaseSettings,
	leaseStore,
}

// allowedProjects: CAR_ALLOWED_PROJECT_IDS defaults to CAR_PROJECT_ID and
// must include it.
func allowedProjects(l *loader) {
	c := &l.c
	switch {
	case len(c.AllowedProjectIDs) == 0 && c.ProjectID != "":
		c.AllowedProjectIDs = []string{c.ProjectID}
	case c.ProjectID != "" && !slices.Contains(c.AllowedProjectIDs, c.ProjectID):
		l.p.bad("CAR_ALLOWED_PROJECT_IDS", "", "CAR_ALLOWED_PROJECT_IDS must include CAR_PROJECT_ID, the project used when a request names none")
	}
}

// devRetention: in dev mode the embedded emulator's retention (DEV_RETENTION)
// is CAR's, unless CAR_RETENTION is set.
func devRetention(l *loader) {
	if l.opt.Dev && l.values["CAR_RETENTION"] == "" {
		l.c.Retention = l.c.Dev.Retention
	}
}

// authSources: what each AUTH_MODE needs. JWT_JWKS_URL and JWT_PUBLIC_KEY
// are checked in jwt mode only.
func authSources(l *loader) {
	a, p := &l.c.Auth, l.p
	switch a.Mode {
	case AuthTicket:
		if l.values["AUTH_SECRET"] == "" {
			p.bad("AUTH_SECRET", "", "AUTH_MODE=ticket needs AUTH_SECRET (one or more comma-separated secrets of 32+ characters)")
		}
	case AuthJWT:
		pemKey := strings.ReplaceAll(l.values["JWT_PUBLIC_KEY"], `\n`, "\n")
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
	}
}

// leaseSettings: a renewal setting without a lease to renew, or renewals
// allowed zero times, is refused rather than ignored.
func leaseSettings(l *loader) {
	c, p := &l.c.Lease, l.p
	if l.values["SESSION_MAX"] == "" {
		for _, s := range []struct {
			name string
			set  bool
		}{{"SESSION_RENEW", c.Renew}, {"SESSION_RENEW_MAX", c.RenewMax > 0}, {"SESSION_COOLDOWN", c.Cooldown > 0}} {
			if s.set {
				p.bad(s.name, l.values[s.name], s.name+" has no effect without SESSION_MAX (the longest session, e.g. 10m)")
			}
		}
	}
	if !c.Renew && c.RenewMax > 0 && c.Max > 0 {
		p.bad("SESSION_RENEW_MAX", l.values["SESSION_RENEW_MAX"], "SESSION_RENEW_MAX has no effect without SESSION_RENEW=true (renewals are off)")
	}
	if c.Renew && c.RenewMax == 0 && c.Max > 0 {
		p.bad("SESSION_RENEW_MAX", "", "SESSION_RENEW=true needs SESSION_RENEW_MAX of at least 1 (how many times a lease may be renewed)")
	}
}

// leaseStore: leases live in the line's Redis. Dev mode keeps them on its
// embedded store, also with DEV_QUEUE=false.
func leaseStore(l *loader) {
	if l.c.Lease.Max > 0 && l.c.Queue.RedisURL == "" && !l.opt.Dev {
		l.p.bad("SESSION_MAX", "", "SESSION_MAX needs QUEUE_REDIS_URL: session leases are kept in the line's Redis, so that every instance sees them")
	}
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
