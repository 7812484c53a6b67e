// Package config reads and validates the function's configuration from the
// environment. Load reports every problem at once, one clear line each, and
// never echoes a secret's value.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
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
	GuestApply            bool          // CAR_GUEST_APPLY: guests call ApplyConcurrent too
	Endpoint              Endpoint      // CAR_ENDPOINT

	// HTTP
	RequestTimeout   time.Duration  // REQUEST_TIMEOUT
	TrustedProxies   []netip.Prefix // TRUSTED_PROXY_CIDRS
	CORSAllowOrigins []string       // CORS_ALLOW_ORIGINS ("*" allowed)
	LogLevel         string         // LOG_LEVEL: debug, info, warn, error

	Auth Auth

	Queue Queue
	Dev   Dev // read in dev mode only
}

// Queue is the launch-day waiting line (docs/queue.md).
type Queue struct {
	RedisURL  string        // QUEUE_REDIS_URL: redis:// or rediss://; "" means no line. Holds a password: never log it
	Abandon   time.Duration // QUEUE_ABANDON: a place not polled for this long is dropped
	MaxPerIP  int           // QUEUE_MAX_PER_IP: places per client IP
	KeyPrefix string        // QUEUE_KEY_PREFIX
	HoldTTL   time.Duration // QUEUE_HOLD_TTL: how long a user who got a concurrency through us skips the line
}

// Dev is dev mode's own settings.
type Dev struct {
	Queue       bool // DEV_QUEUE: the line on an embedded Redis (default true; false turns the line off)
	Concurrency int  // DEV_CONCURRENCY: the embedded emulator's pool size (default 4)
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
	JWTPublicKey  string        // JWT_PUBLIC_KEY, PEM (RS256/ES256)
	JWTIssuer     string        // JWT_ISSUER
	JWTAudience   string        // JWT_AUDIENCE
	JWTUserClaim  string        // JWT_USER_CLAIM
	JWTHashUserID bool          // JWT_HASH_USER_ID
	JWTLeeway     time.Duration // JWT_LEEWAY
}

// Options changes how Load treats missing values.
type Options struct {
	Dev bool // dev mode: AUTH_MODE defaults to none, CAR_PROJECT_ID to a dev project
}

// devProjectID is the project the embedded emulator serves in dev mode.
const devProjectID = "cap-dev00000"

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// Load reads the configuration through getenv.
func Load(getenv func(string) string, opt Options) (Config, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }

	c := Config{ProjectID: get("CAR_PROJECT_ID"), ApplicationID: get("CAR_APPLICATION_ID")}
	if c.ProjectID == "" && opt.Dev {
		c.ProjectID = devProjectID
	}
	if c.ProjectID == "" {
		bad("CAR_PROJECT_ID is required (your CAR project id, cap-…)")
	} else if !idPattern.MatchString(c.ProjectID) {
		bad("CAR_PROJECT_ID %q is not a CAR project id (cap-…)", c.ProjectID)
	}
	c.AllowedProjectIDs = list(get("CAR_ALLOWED_PROJECT_IDS"))
	if len(c.AllowedProjectIDs) == 0 && c.ProjectID != "" {
		c.AllowedProjectIDs = []string{c.ProjectID}
	}
	c.AllowedAppIDs = list(get("CAR_ALLOWED_APPLICATION_IDS"))
	c.AllowedVersionIDs = list(get("CAR_ALLOWED_VERSION_IDS"))
	for name, ids := range map[string][]string{"CAR_ALLOWED_PROJECT_IDS": c.AllowedProjectIDs,
		"CAR_ALLOWED_APPLICATION_IDS": c.AllowedAppIDs, "CAR_ALLOWED_VERSION_IDS": c.AllowedVersionIDs} {
		for _, id := range ids {
			if !idPattern.MatchString(id) {
				bad("%s: %q is not a valid id", name, id)
			}
		}
	}
	if c.ApplicationID != "" && !idPattern.MatchString(c.ApplicationID) {
		bad("CAR_APPLICATION_ID %q is not a valid id (app-…)", c.ApplicationID)
	}
	if p := getenv("CAR_ALLOW_APPLICATION_PARAMETERS"); p != "" {
		re, err := regexp.Compile(`^(?:` + p + `)$`)
		if err != nil {
			bad("CAR_ALLOW_APPLICATION_PARAMETERS is not a valid regular expression: %v", err)
		}
		c.AppParamsPattern = re
	}
	c.AllowRunWithoutClient = boolean(get, "CAR_ALLOW_RUN_WITHOUT_CLIENT", false, bad)
	c.GuestApply = boolean(get, "CAR_GUEST_APPLY", false, bad)
	c.NoIdleWait = duration(get, "CAR_NOIDLE_WAIT", 0, 0, 15*time.Minute, bad)
	if ep := get("CAR_ENDPOINT"); ep != "" {
		e, err := parseEndpoint(ep)
		if err != nil {
			bad("CAR_ENDPOINT: %v", err)
		}
		c.Endpoint = e
	} else {
		c.Endpoint = defaultEndpoint
	}

	c.RequestTimeout = duration(get, "REQUEST_TIMEOUT", 10*time.Second, 100*time.Millisecond, 15*time.Minute, bad)
	for _, s := range list(get("TRUSTED_PROXY_CIDRS")) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				p, err = a.Prefix(a.BitLen())
			}
		}
		if err != nil {
			bad("TRUSTED_PROXY_CIDRS: %q is not a CIDR (e.g. 127.0.0.1/32)", s)
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, p.Masked())
	}
	c.CORSAllowOrigins = list(get("CORS_ALLOW_ORIGINS"))
	for _, o := range c.CORSAllowOrigins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			bad("CORS_ALLOW_ORIGINS: %q is not an origin (https://host[:port]) or *", o)
		}
	}
	c.LogLevel = strings.ToLower(get("LOG_LEVEL"))
	switch c.LogLevel {
	case "":
		c.LogLevel = "info"
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL %q must be one of debug, info, warn, error", c.LogLevel)
	}

	c.Auth = loadAuth(get, opt, bad)
	c.Queue = loadQueue(get, bad)
	if opt.Dev {
		c.Dev.Queue = boolean(get, "DEV_QUEUE", true, bad)
		c.Dev.Concurrency = 4
		if v := get("DEV_CONCURRENCY"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				bad("DEV_CONCURRENCY %q must be a number from 1 to 1000", v)
			} else {
				c.Dev.Concurrency = n
			}
		}
	}
	return c, errors.Join(errs...)
}

func loadAuth(get func(string) string, opt Options, bad func(string, ...any)) Auth {
	a := Auth{Mode: strings.ToLower(get("AUTH_MODE"))}
	if a.Mode == "" && opt.Dev {
		a.Mode = AuthNone
	}
	for _, s := range list(get("AUTH_SECRET")) {
		if len(s) < 32 {
			bad("AUTH_SECRET: every secret must be at least 32 characters (generate one with: openssl rand -base64 48)")
			break
		}
		a.Secrets = append(a.Secrets, []byte(s))
	}
	a.TicketTTL = duration(get, "AUTH_TICKET_TTL", 720*time.Hour, time.Minute, 24*365*time.Hour, bad)
	a.InviteTTL = duration(get, "AUTH_INVITE_TTL", time.Hour, time.Minute, 7*24*time.Hour, bad)
	a.SignSalt = get("COMPAT_SIGN_SALT")
	if s := get("JWT_SECRET"); s != "" {
		if len(s) < 32 {
			bad("JWT_SECRET must be at least 32 characters")
		}
		a.JWTSecret = []byte(s)
	}
	a.JWTJWKSURL = get("JWT_JWKS_URL")
	a.JWTPublicKey = strings.ReplaceAll(get("JWT_PUBLIC_KEY"), `\n`, "\n")
	a.JWTIssuer = get("JWT_ISSUER")
	a.JWTAudience = get("JWT_AUDIENCE")
	a.JWTUserClaim = get("JWT_USER_CLAIM")
	if a.JWTUserClaim == "" {
		a.JWTUserClaim = "sub"
	}
	a.JWTHashUserID = boolean(get, "JWT_HASH_USER_ID", false, bad)
	a.JWTLeeway = duration(get, "JWT_LEEWAY", 30*time.Second, 0, 10*time.Minute, bad)

	switch a.Mode {
	case "":
		bad("AUTH_MODE is required: one of none, ticket, jwt, sign (see README, Authentication)")
	case AuthNone:
	case AuthTicket:
		if len(a.Secrets) == 0 {
			bad("AUTH_MODE=ticket needs AUTH_SECRET (one or more comma-separated secrets of 32+ characters)")
		}
	case AuthJWT:
		n := 0
		for _, set := range []bool{a.JWTSecret != nil, a.JWTJWKSURL != "", a.JWTPublicKey != ""} {
			if set {
				n++
			}
		}
		if n != 1 {
			bad("AUTH_MODE=jwt needs exactly one of JWT_SECRET, JWT_JWKS_URL, JWT_PUBLIC_KEY")
		}
		if a.JWTJWKSURL != "" && !strings.HasPrefix(a.JWTJWKSURL, "https://") && !strings.HasPrefix(a.JWTJWKSURL, "http://127.0.0.1") && !strings.HasPrefix(a.JWTJWKSURL, "http://localhost") {
			bad("JWT_JWKS_URL must be an https:// URL")
		}
	case AuthSign:
		if a.SignSalt == "" {
			bad("AUTH_MODE=sign needs COMPAT_SIGN_SALT")
		}
	default:
		bad("AUTH_MODE %q must be one of none, ticket, jwt, sign", a.Mode)
	}
	return a
}

func loadQueue(get func(string) string, bad func(string, ...any)) Queue {
	q := Queue{RedisURL: get("QUEUE_REDIS_URL"), KeyPrefix: get("QUEUE_KEY_PREFIX")}
	if q.RedisURL != "" {
		u, err := url.Parse(q.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			// never echo the value: it holds the password
			bad("QUEUE_REDIS_URL must be redis://[:password@]host:port[/db] or rediss://… (TencentDB: redis://:account@password@host:6379)")
		}
	}
	if q.KeyPrefix == "" {
		q.KeyPrefix = "{carbroker}:"
	} else if len(q.KeyPrefix) > 64 || strings.ContainsAny(q.KeyPrefix, " \t\r\n") {
		bad("QUEUE_KEY_PREFIX must be at most 64 characters without spaces")
	}
	q.Abandon = duration(get, "QUEUE_ABANDON", 30*time.Second, time.Second, time.Hour, bad)
	q.HoldTTL = duration(get, "QUEUE_HOLD_TTL", 2*time.Hour, time.Minute, 7*24*time.Hour, bad)
	q.MaxPerIP = 4
	if v := get("QUEUE_MAX_PER_IP"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1_000_000 {
			bad("QUEUE_MAX_PER_IP %q must be a number from 1 to 1000000", v)
		} else {
			q.MaxPerIP = n
		}
	}
	return q
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
		return e, fmt.Errorf("%q: only http:// and https:// are supported", s)
	}
	s = strings.TrimSuffix(s, "/")
	if s == "" || strings.ContainsAny(s, "/?#@ ") {
		return e, fmt.Errorf("%q must be host[:port] or http(s)://host[:port], without a path", s)
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

func boolean(get func(string) string, key string, def bool, bad func(string, ...any)) bool {
	v := get(key)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		bad("%s %q must be true or false", key, v)
	}
	return b
}

func duration(get func(string) string, key string, def, lo, hi time.Duration, bad func(string, ...any)) time.Duration {
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
		bad("%s %q must be a duration such as 10s or 1m30s", key, v)
		return def
	}
	if d < lo || d > hi {
		bad("%s %v must be between %v and %v", key, d, lo, hi)
		return def
	}
	return d
}

// Keys lists every environment variable the configuration reads.
var Keys = []string{
	"CAR_PROJECT_ID", "CAR_ALLOWED_PROJECT_IDS", "CAR_APPLICATION_ID", "CAR_ALLOWED_APPLICATION_IDS",
	"CAR_ALLOWED_VERSION_IDS", "CAR_ALLOW_APPLICATION_PARAMETERS", "CAR_ALLOW_RUN_WITHOUT_CLIENT",
	"CAR_NOIDLE_WAIT", "CAR_GUEST_APPLY", "CAR_ENDPOINT", "REQUEST_TIMEOUT", "TRUSTED_PROXY_CIDRS",
	"CORS_ALLOW_ORIGINS", "LOG_LEVEL", "AUTH_MODE", "AUTH_SECRET", "AUTH_TICKET_TTL", "AUTH_INVITE_TTL",
	"COMPAT_SIGN_SALT", "JWT_SECRET", "JWT_JWKS_URL", "JWT_PUBLIC_KEY", "JWT_ISSUER", "JWT_AUDIENCE",
	"JWT_USER_CLAIM", "JWT_HASH_USER_ID", "JWT_LEEWAY",
	"QUEUE_REDIS_URL", "QUEUE_ABANDON", "QUEUE_MAX_PER_IP", "QUEUE_KEY_PREFIX", "QUEUE_HOLD_TTL",
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
