package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"carbroker/internal/resp"
)

// setting is one environment variable the function reads: its one
// declaration. Load parses the table below; Keys, Secret and
// Defaults are read from it; the deployer checks serverless.yml against
// Keys; docs/reference.md's table is rendered from it (config's
// TestDocsTable).
type setting struct {
	name string
	// def is the value when unset, written as an operator would write it
	// and read by the same parser ("": none, the field's zero value).
	def string
	// devDef is the value when unset in dev mode, if not def.
	devDef string
	// required is the problem an unset variable is, when no default applies.
	required string
	// unset says, for the docs, what leaving the variable unset means when
	// def does not say it all ("no line", "off", another setting).
	unset  string
	secret bool // its value is never shown: not in problems, the deploy plan or logs
	dev    bool // read only in dev mode (Options.Dev)
	// sealed: dev mode never takes it from the shell, where it would point
	// dev traffic at production (a real endpoint, project or line).
	sealed bool
	raw    bool // read as set, not trimmed
	kind   kind
	doc    string // what it does, for the docs (Markdown)
}

// kind is how a setting's value is read: the values it takes (for the
// docs) and the parser, which stores a set value in c or reports a
// problem. A parser sees its own value only; what depends on other
// settings is a rule (rules, config.go).
type kind struct {
	form  string
	parse func(c *Config, name, v string, p *problems)
}

// settings lists every variable, in the order Load reads them and the docs
// show them.
var settings = []setting{
	// CAR
	{name: "CAR_PROJECT_ID", sealed: true, devDef: devProjectID, required: "CAR_PROJECT_ID is required (your CAR project id: " + projectForm + ")",
		kind: projectID(func(c *Config) *string { return &c.ProjectID }),
		doc:  "the default `ProjectId`"},
	{name: "CAR_ALLOWED_PROJECT_IDS", sealed: true, unset: "`CAR_PROJECT_ID` alone",
		kind: projectIDs(func(c *Config) *[]string { return &c.AllowedProjectIDs }),
		doc:  "the ProjectIds a client may name; must include `CAR_PROJECT_ID`"},
	{name: "CAR_APPLICATION_ID", sealed: true,
		kind: kind{form: "an id (`app-…`)", parse: func(c *Config, name, v string, p *problems) {
			c.ApplicationID = v
			if !idPattern.MatchString(v) {
				p.bad(name, v, "CAR_APPLICATION_ID is not a valid id (app-…)")
			}
		}},
		doc: "the default `ApplicationId` (shared multi-app projects)"},
	{name: "CAR_ALLOWED_APPLICATION_IDS", sealed: true, kind: ids(func(c *Config) *[]string { return &c.AllowedAppIDs }),
		doc: "the ApplicationIds a client may name"},
	{name: "CAR_ALLOWED_VERSION_IDS", sealed: true, kind: ids(func(c *Config) *[]string { return &c.AllowedVersionIDs }),
		doc: "the ApplicationVersionIds a client may name"},
	{name: "CAR_ALLOW_APPLICATION_PARAMETERS", raw: true, unset: "refused",
		kind: kind{form: "a regular expression, valid on its own", parse: func(c *Config, name, v string, p *problems) {
			// Compiled alone first, so that it cannot close the anchoring
			// group ("a)|(.*" would match anything once anchored).
			if _, err := regexp.Compile(v); err != nil {
				p.bad(name, v, name+" is not a valid regular expression")
				return
			}
			c.AppParamsPattern = regexp.MustCompile(`^(?:` + v + `)$`) // a valid pattern stays valid in a group
		}},
		doc: "what the whole `ApplicationParameters` must match (control characters are always refused)"},
	{name: "CAR_ALLOW_RUN_WITHOUT_CLIENT", def: "false", kind: boolean(func(c *Config) *bool { return &c.AllowRunWithoutClient }),
		doc: "allow `RunMode=RunWithoutClient`"},
	{name: "CAR_NOIDLE_WAIT", def: "0", kind: duration(0, 15*time.Minute, func(c *Config) *time.Duration { return &c.NoIdleWait }),
		doc: "how long to keep retrying while CAR has no idle concurrency (with the line off)"},
	{name: "CAR_ATTEMPT_TIMEOUT", def: "1s",
		kind: duration(100*time.Millisecond, 15*time.Minute, func(c *Config) *time.Duration { return &c.AttemptTimeout }),
		doc: "how long a request's CAR attempts may take until one succeeds: what a silently dead pooled connection costs " +
			"before the call is repeated on a fresh one (see the retry policy; CAR publishes no latency figures, so this is our choice)"},
	{name: "CAR_GUEST_APPLY", def: "false", kind: boolean(func(c *Config) *bool { return &c.GuestApply }),
		doc: "whether a guest joining a room calls `ApplyConcurrent` first (undocumented upstream)"},
	{name: "CAR_LOCK_WINDOW", def: "30s", kind: duration(time.Second, time.Hour, func(c *Config) *time.Duration { return &c.LockWindow }),
		doc: "how long a lock-only `/Enqueue` (10101) lets its user start (`/StartProject`), counted from the first lock " +
			"and never extended; CAR does not publish how long its lock lasts"},
	{name: "CAR_RETENTION", def: "90s", unset: "`DEV_RETENTION` in dev mode",
		kind: duration(time.Second, 24*time.Hour, func(c *Config) *time.Duration { return &c.Retention }),
		doc: "CAR's retention of a disconnected session (its documented figure): a heartbeating holder's mark lasts this + 60 s " +
			"after its last sign of life, and the rebuild window after the line's store lost its data lasts this long"},
	{name: "CAR_ENDPOINT", sealed: true, def: defaultEndpoint.Host,
		kind: kind{form: "`host[:port]` (HTTPS) or `http(s)://host[:port]`", parse: func(c *Config, name, v string, p *problems) {
			e, err := parseEndpoint(v)
			if err != nil {
				p.bad(name, v, name+": "+err.Error())
			}
			c.Endpoint = e
		}},
		doc: "where CAR's API is reached"},

	// HTTP
	{name: "REQUEST_TIMEOUT", def: "10s",
		kind: duration(100*time.Millisecond, 15*time.Minute, func(c *Config) *time.Duration { return &c.RequestTimeout }),
		doc:  "budget per request, capped by the platform's deadline less a margin (a tenth of the time left, 10 ms–1 s)"},
	{name: "TRUSTED_PROXY_CIDRS",
		kind: kind{form: "comma list of CIDRs or addresses", parse: func(c *Config, name, v string, p *problems) {
			for _, s := range list(v) {
				pfx, err := netip.ParsePrefix(s)
				if err != nil {
					if a, aerr := netip.ParseAddr(s); aerr == nil {
						pfx, err = a.Prefix(a.BitLen())
					}
				}
				if err != nil {
					p.bad(name, s, name+": every entry must be a CIDR (e.g. 127.0.0.1/32) or an address")
					continue
				}
				c.TrustedProxies = append(c.TrustedProxies, pfx.Masked())
			}
		}},
		doc: "peers whose `X-Forwarded-For` is believed (right-most entry outside these CIDRs)"},
	{name: "CORS_ALLOW_ORIGINS", devDef: "*", unset: "no CORS",
		kind: kind{form: "comma list of origins (`https://host[:port]`), or `*`", parse: func(c *Config, name, v string, p *problems) {
			for _, o := range list(v) {
				origin, ok := normalOrigin(o)
				if !ok {
					p.bad(name, o, name+": every entry must be an origin (https://host[:port], no path) or *")
					continue
				}
				c.CORSAllowOrigins = append(c.CORSAllowOrigins, origin)
			}
		}},
		doc: "the origins CORS answers, kept as browsers send `Origin`: `https://App.example.com:443/` is read as " +
			"`https://app.example.com`, a path is refused"},
	{name: "LOG_LEVEL", def: "info", kind: oneOf([]string{"debug", "info", "warn", "error"}, func(c *Config) *string { return &c.LogLevel }),
		doc: "the least severe log line written"},

	// Authentication
	{name: "AUTH_MODE", devDef: AuthNone, required: "AUTH_MODE is required: one of none, ticket, jwt, sign (see README, Authentication)",
		kind: oneOf([]string{AuthNone, AuthTicket, AuthJWT, AuthSign}, func(c *Config) *string { return &c.Auth.Mode }),
		doc:  "how callers prove who they are ([Authentication](#authentication-auth_mode))"},
	{name: "AUTH_SECRET", secret: true,
		kind: kind{form: "comma list of secrets of 32+ characters", parse: func(c *Config, name, v string, p *problems) {
			for _, s := range list(v) {
				if isPlaceholder(s) {
					p.bad(name, "", "AUTH_SECRET is the example value from the docs, which anyone can read: generate your own with: openssl rand -base64 48")
					c.Auth.Secrets = nil
					return
				}
				if len(s) < minSecret {
					p.bad(name, "", "AUTH_SECRET: every secret must be at least 32 characters (generate one with: openssl rand -base64 48)")
					c.Auth.Secrets = nil
					return
				}
				c.Auth.Secrets = append(c.Auth.Secrets, []byte(s))
			}
		}},
		doc: "signs tickets and invites (`ticket` mode, invites in `jwt` mode): the first signs, the others still verify (rotation)"},
	{name: "AUTH_TICKET_TTL", def: "720h", kind: duration(time.Minute, 24*365*time.Hour, func(c *Config) *time.Duration { return &c.Auth.TicketTTL }),
		doc: "ticket lifetime"},
	{name: "AUTH_INVITE_TTL", def: "1h", kind: duration(time.Minute, 7*24*time.Hour, func(c *Config) *time.Duration { return &c.Auth.InviteTTL }),
		doc: "longest invite lifetime"},
	{name: "COMPAT_SIGN_SALT", secret: true, kind: text("the demo's salt", func(c *Config) *string { return &c.Auth.SignSalt }),
		doc: "the demo's SALT (`sign` mode)"},
	{name: "JWT_SECRET", secret: true,
		kind: kind{form: "a secret of 32+ characters", parse: func(c *Config, name, v string, p *problems) {
			if len(v) < minSecret {
				p.bad(name, "", "JWT_SECRET must be at least 32 characters")
			}
			c.Auth.JWTSecret = []byte(v)
		}},
		doc: "`jwt` mode, HS256: exactly one of `JWT_SECRET`, `JWT_JWKS_URL`, `JWT_PUBLIC_KEY`"},
	{name: "JWT_JWKS_URL", kind: text("an `https://` URL (plain `http://` only to `localhost`, `127.0.0.0/8` or `[::1]`)", func(c *Config) *string { return &c.Auth.JWTJWKSURL }),
		doc: "`jwt` mode, RS256/ES256: where the keys are published"},
	{name: "JWT_PUBLIC_KEY",
		// Read in jwt mode only, by the rule that checks the key sources.
		kind: kind{form: "one PEM block (PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE); `\\n` stands for a newline", parse: func(*Config, string, string, *problems) {}},
		doc:  "`jwt` mode, RS256/ES256: the key"},
	{name: "JWT_ISSUER", kind: text("text", func(c *Config) *string { return &c.Auth.JWTIssuer }),
		doc: "`iss`, checked when set"},
	{name: "JWT_AUDIENCE", kind: text("text", func(c *Config) *string { return &c.Auth.JWTAudience }),
		doc: "`aud`, checked when set"},
	{name: "JWT_USER_CLAIM", def: "sub", kind: text("a claim's name", func(c *Config) *string { return &c.Auth.JWTUserClaim }),
		doc: "the claim holding the UserId"},
	{name: "JWT_HASH_USER_ID", def: "false", kind: boolean(func(c *Config) *bool { return &c.Auth.JWTHashUserID }),
		doc: "map claims outside the UserId charset by hash"},
	{name: "JWT_LEEWAY", def: "30s", kind: duration(0, 10*time.Minute, func(c *Config) *time.Duration { return &c.Auth.JWTLeeway }),
		doc: "clock-skew allowance"},

	// The waiting line
	{name: "QUEUE_REDIS_URL", sealed: true, unset: "no line",
		kind: kind{form: "`redis://[[user]:password@]host[:port][/db]` or `rediss://…` (TLS)", parse: func(c *Config, name, v string, p *problems) {
			c.Queue.RedisURL = v
			// The client's own rule (credentials end at the last "@"), so
			// that what passes here connects; the operator's log shows the
			// URL with its password masked whole, callers never see it.
			if _, err := resp.ParseURL(v); err != nil {
				p.bad(name, resp.RedactURL(v), name+" must be redis://[[user]:password@]host[:port][/db] or rediss://… (TencentDB: redis://:account@password@host:6379): "+err.Error())
			}
		}},
		doc: "the waiting line's Redis ([queue.md](queue.md)). TencentDB for Redis custom accounts: " +
			"`redis://:account@password@host:6379` (the password is `account@password`; `%40` works too). Only the last `@` " +
			"ends the credentials, so a password may hold `@`, `/`, `?`, `#` as it is. Its password is masked whole in every log line and error"},
	// At least 3 s: Retry-After is whole seconds, at least 1 and at most a
	// third of QUEUE_ABANDON, so a client that follows it exactly (and
	// takes a moment to send) polls again before its place lapses.
	{name: "QUEUE_ABANDON", def: "30s", kind: duration(3*time.Second, time.Hour, func(c *Config) *time.Duration { return &c.Queue.Abandon }),
		doc: "a place not polled for this long is dropped (at least 3 s, so that a client that follows `Retry-After` is never pruned)"},
	{name: "QUEUE_MAX_PER_IP", def: "4", kind: integer(1, 1_000_000, func(c *Config) *int { return &c.Queue.MaxPerIP }),
		doc: "places in line per client IP (per /64 for IPv6)"},
	{name: "QUEUE_KEY_PREFIX", sealed: true, def: "{carbroker}:",
		kind: kind{form: "at most 64 characters, no spaces", parse: func(c *Config, name, v string, p *problems) {
			if len(v) > 64 || strings.ContainsAny(v, " \t\r\n") {
				p.bad(name, v, name+" must be at most 64 characters without spaces")
				return
			}
			c.Queue.KeyPrefix = v
		}},
		doc: "Redis key prefix; with a `{…}` hash tag every line shares it, without one each project's line gets its own (`prefix{cap-…}:…`)"},
	{name: "QUEUE_HOLD_TTL", def: "2h", kind: duration(time.Minute, 7*24*time.Hour, func(c *Config) *time.Duration { return &c.Queue.HoldTTL }),
		doc: "how long a user handed a ServerSession through us (and not stopped) skips the line after its last start when its " +
			"client sends no heartbeat (`POST /session/alive`); a heartbeating client's mark lasts `CAR_RETENTION` + 60 s after its last sign of life"},

	// Session leases
	{name: "SESSION_MAX", unset: "off", kind: duration(time.Second, 365*24*time.Hour, func(c *Config) *time.Duration { return &c.Lease.Max }),
		doc: "longest session from the moment its user was first handed a ServerSession (e.g. `10m`); needs `QUEUE_REDIS_URL` ([lease.md](lease.md))"},
	{name: "SESSION_RENEW", def: "false", kind: boolean(func(c *Config) *bool { return &c.Lease.Renew }),
		doc: "the owner may extend its lease by `SESSION_MAX` from now (`POST /session/renew`); needs `SESSION_RENEW_MAX` ≥ 1"},
	{name: "SESSION_RENEW_MAX", def: "0", kind: integer(0, 1_000_000, func(c *Config) *int { return &c.Lease.RenewMax }),
		doc: "renewals per lease; needs `SESSION_RENEW=true`"},
	{name: "SESSION_COOLDOWN", def: "0", kind: duration(0, 365*24*time.Hour, func(c *Config) *time.Duration { return &c.Lease.Cooldown }),
		doc: "after a lease ended (or a stop), how long before the user may start again (403 `SessionEnded` + `Retry-After`)"},

	// Dev mode
	{name: "DEV_CONCURRENCY", dev: true, def: "4", kind: integer(1, 1000, func(c *Config) *int { return &c.Dev.Concurrency }),
		doc: "the embedded emulator's concurrencies"},
	{name: "DEV_RETENTION", dev: true, def: "90s", kind: duration(time.Second, 24*time.Hour, func(c *Config) *time.Duration { return &c.Dev.Retention }),
		doc: "how long a disconnected session is retained (CAR's documented default)"},
	{name: "DEV_CLIENT_WAIT", dev: true, def: "30s", kind: duration(time.Second, 24*time.Hour, func(c *Config) *time.Duration { return &c.Dev.ClientWait }),
		doc: "how long a new session waits for its client before it is retained as if the client had left. CAR does not document this; " +
			"30 s is the emulator's approximation. In dev mode no real client ever connects, so every session started by `curl` frees " +
			"itself after `DEV_CLIENT_WAIT` + `DEV_RETENTION`"},
	{name: "DEV_QUEUE", dev: true, def: "true", kind: boolean(func(c *Config) *bool { return &c.Dev.Queue }),
		doc: "`false` turns the line off (else it runs on an embedded Redis; dev mode never reads `QUEUE_REDIS_URL`)"},
}

// minSecret is the shortest AUTH_SECRET or JWT_SECRET accepted.
const minSecret = 32

const projectForm = "cap- followed by lowercase letters and digits"

var (
	idPattern      = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	projectPattern = regexp.MustCompile(`^cap-[a-z0-9]{1,60}$`)
)

func projectID(field func(*Config) *string) kind {
	return kind{form: "`cap-` and lowercase letters and digits", parse: func(c *Config, name, v string, p *problems) {
		*field(c) = v
		if !projectPattern.MatchString(v) {
			p.bad(name, v, name+" is not a CAR project id ("+projectForm+")")
		}
	}}
}

func projectIDs(field func(*Config) *[]string) kind {
	return kind{form: "comma list of project ids (`cap-…`)", parse: func(c *Config, name, v string, p *problems) {
		*field(c) = list(v)
		for _, id := range *field(c) {
			if !projectPattern.MatchString(id) {
				p.bad(name, id, name+": every entry must be a CAR project id ("+projectForm+")")
			}
		}
	}}
}

func ids(field func(*Config) *[]string) kind {
	return kind{form: "comma list of ids (1–64 of `A-Z a-z 0-9 _ . -`)", parse: func(c *Config, name, v string, p *problems) {
		*field(c) = list(v)
		for _, id := range *field(c) {
			if !idPattern.MatchString(id) {
				p.bad(name, id, name+": every entry must be 1-64 characters of A-Z a-z 0-9 _ . -")
			}
		}
	}}
}

func text(form string, field func(*Config) *string) kind {
	return kind{form: form, parse: func(c *Config, _, v string, _ *problems) { *field(c) = v }}
}

// oneOf reads one of values, in any case.
func oneOf(values []string, field func(*Config) *string) kind {
	return kind{form: "`" + strings.Join(values, "`, `") + "`", parse: func(c *Config, name, v string, p *problems) {
		v = strings.ToLower(v)
		*field(c) = v
		for _, ok := range values {
			if v == ok {
				return
			}
		}
		p.bad(name, v, name+" must be one of "+strings.Join(values, ", "))
	}}
}

func boolean(field func(*Config) *bool) kind {
	return kind{form: "`true` or `false`", parse: func(c *Config, name, v string, p *problems) {
		b, err := strconv.ParseBool(v)
		if err != nil {
			p.bad(name, v, name+" must be true or false")
			return
		}
		*field(c) = b
	}}
}

func integer(lo, hi int, field func(*Config) *int) kind {
	return kind{form: fmt.Sprintf("whole number, %d–%d", lo, hi), parse: func(c *Config, name, v string, p *problems) {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			p.bad(name, v, fmt.Sprintf("%s must be a whole number from %d to %d", name, lo, hi))
			return
		}
		*field(c) = n
	}}
}

// duration reads a Go duration (10s, 1m30s) or whole seconds.
func duration(lo, hi time.Duration, field func(*Config) *time.Duration) kind {
	return kind{form: "duration, " + shortDuration(lo) + "–" + shortDuration(hi), parse: func(c *Config, name, v string, p *problems) {
		d, err := time.ParseDuration(v)
		if err != nil {
			if n, nerr := strconv.Atoi(v); nerr == nil {
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil {
			p.bad(name, v, name+" must be a duration such as 10s or 1m30s")
			return
		}
		if d < lo || d > hi {
			p.bad(name, v, fmt.Sprintf("%s must be between %v and %v", name, lo, hi))
			return
		}
		*field(c) = d
	}}
}

// shortDuration writes d as an operator would: 1h, not 1h0m0s.
func shortDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
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

// Keys lists every environment variable the configuration reads outside dev
// mode (dev mode adds the DEV_* settings).
var Keys = keys()

func keys() []string {
	var out []string
	for _, s := range settings {
		if !s.dev {
			out = append(out, s.name)
		}
	}
	return out
}

// Defaults is the configuration of an environment that sets nothing,
// outside dev mode: every default, no project and no AUTH_MODE. A package
// that fills in an option left zero takes the setting's default from here.
func Defaults() Config { return defaults() }

var defaults = sync.OnceValue(func() Config {
	c, _ := Load(func(string) string { return "" }, Options{})
	return c
})

// DevSealed lists the settings dev mode never takes from the shell: they
// would point it at production. (The CAR credentials, TENCENTCLOUD_*, are
// not settings; dev mode ignores them too.) Read it, do not change it.
var DevSealed = func() []string {
	var out []string
	for _, s := range settings {
		if s.sealed {
			out = append(out, s.name)
		}
	}
	return out
}()

// Secret reports whether name is a setting whose value is a secret: it is
// never shown, in Load's problems as in the deployer's plan.
func Secret(name string) bool {
	for _, s := range settings {
		if s.name == name {
			return s.secret
		}
	}
	return false
}
