package config

import (
	"errors"
	"slices"
	"testing"
)

// Every problem Load can report, one environment each (over a valid base:
// CAR_PROJECT_ID=cap-1, AUTH_MODE=none): the variable at fault, the exact
// message operators and callers read, and the value the operator's log
// shows ("" for a secret, the Redis URL with its password masked).
var problemCases = []struct {
	name string
	env  map[string]string
	dev  bool
	want []Problem
}{
	{"project required", map[string]string{"CAR_PROJECT_ID": ""}, false, []Problem{
		{"CAR_PROJECT_ID", "CAR_PROJECT_ID is required (your CAR project id: cap- followed by lowercase letters and digits)", ""},
	}},
	{"project form", map[string]string{"CAR_PROJECT_ID": "1300012345"}, false, []Problem{
		{"CAR_PROJECT_ID", "CAR_PROJECT_ID is not a CAR project id (cap- followed by lowercase letters and digits)", "1300012345"},
	}},
	{"allowed project form", map[string]string{"CAR_ALLOWED_PROJECT_IDS": "cap-1,Cap-x"}, false, []Problem{
		{"CAR_ALLOWED_PROJECT_IDS", "CAR_ALLOWED_PROJECT_IDS: every entry must be a CAR project id (cap- followed by lowercase letters and digits)", "Cap-x"},
	}},
	{"allowed projects lack the default", map[string]string{"CAR_ALLOWED_PROJECT_IDS": "cap-2"}, false, []Problem{
		{"CAR_ALLOWED_PROJECT_IDS", "CAR_ALLOWED_PROJECT_IDS must include CAR_PROJECT_ID, the project used when a request names none", ""},
	}},
	{"allowed application ids", map[string]string{"CAR_ALLOWED_APPLICATION_IDS": "app-1,a b"}, false, []Problem{
		{"CAR_ALLOWED_APPLICATION_IDS", "CAR_ALLOWED_APPLICATION_IDS: every entry must be 1-64 characters of A-Z a-z 0-9 _ . -", "a b"},
	}},
	{"allowed version ids", map[string]string{"CAR_ALLOWED_VERSION_IDS": "ver/1"}, false, []Problem{
		{"CAR_ALLOWED_VERSION_IDS", "CAR_ALLOWED_VERSION_IDS: every entry must be 1-64 characters of A-Z a-z 0-9 _ . -", "ver/1"},
	}},
	{"application id", map[string]string{"CAR_APPLICATION_ID": "app/1"}, false, []Problem{
		{"CAR_APPLICATION_ID", "CAR_APPLICATION_ID is not a valid id (app-…)", "app/1"},
	}},
	{"application parameters", map[string]string{"CAR_ALLOW_APPLICATION_PARAMETERS": "("}, false, []Problem{
		{"CAR_ALLOW_APPLICATION_PARAMETERS", "CAR_ALLOW_APPLICATION_PARAMETERS is not a valid regular expression", "("},
	}},
	{"run without client", map[string]string{"CAR_ALLOW_RUN_WITHOUT_CLIENT": "yes"}, false, []Problem{
		{"CAR_ALLOW_RUN_WITHOUT_CLIENT", "CAR_ALLOW_RUN_WITHOUT_CLIENT must be true or false", "yes"},
	}},
	{"guest apply", map[string]string{"CAR_GUEST_APPLY": "x"}, false, []Problem{
		{"CAR_GUEST_APPLY", "CAR_GUEST_APPLY must be true or false", "x"},
	}},
	{"noidle wait range", map[string]string{"CAR_NOIDLE_WAIT": "16m"}, false, []Problem{
		{"CAR_NOIDLE_WAIT", "CAR_NOIDLE_WAIT must be between 0s and 15m0s", "16m"},
	}},
	{"attempt timeout form", map[string]string{"CAR_ATTEMPT_TIMEOUT": "soon"}, false, []Problem{
		{"CAR_ATTEMPT_TIMEOUT", "CAR_ATTEMPT_TIMEOUT must be a duration such as 10s or 1m30s", "soon"},
	}},
	{"lock window range", map[string]string{"CAR_LOCK_WINDOW": "0"}, false, []Problem{
		{"CAR_LOCK_WINDOW", "CAR_LOCK_WINDOW must be between 1s and 1h0m0s", "0"},
	}},
	{"retention range", map[string]string{"CAR_RETENTION": "500ms"}, false, []Problem{
		{"CAR_RETENTION", "CAR_RETENTION must be between 1s and 24h0m0s", "500ms"},
	}},
	{"endpoint scheme", map[string]string{"CAR_ENDPOINT": "ftp://x"}, false, []Problem{
		{"CAR_ENDPOINT", "CAR_ENDPOINT: only http:// and https:// are supported", "ftp://x"},
	}},
	{"endpoint path", map[string]string{"CAR_ENDPOINT": "http://h/path"}, false, []Problem{
		{"CAR_ENDPOINT", "CAR_ENDPOINT: must be host[:port] or http(s)://host[:port], without a path", "http://h/path"},
	}},
	{"request timeout", map[string]string{"REQUEST_TIMEOUT": "1ms"}, false, []Problem{
		{"REQUEST_TIMEOUT", "REQUEST_TIMEOUT must be between 100ms and 15m0s", "1ms"},
	}},
	{"trusted proxies", map[string]string{"TRUSTED_PROXY_CIDRS": "10.0.0.0/8,nonsense"}, false, []Problem{
		{"TRUSTED_PROXY_CIDRS", "TRUSTED_PROXY_CIDRS: every entry must be a CIDR (e.g. 127.0.0.1/32) or an address", "nonsense"},
	}},
	{"cors origins", map[string]string{"CORS_ALLOW_ORIGINS": "example.com"}, false, []Problem{
		{"CORS_ALLOW_ORIGINS", "CORS_ALLOW_ORIGINS: every entry must be an origin (https://host[:port], no path) or *", "example.com"},
	}},
	{"log level", map[string]string{"LOG_LEVEL": "LOUD"}, false, []Problem{
		{"LOG_LEVEL", "LOG_LEVEL must be one of debug, info, warn, error", "loud"},
	}},
	{"auth mode required", map[string]string{"AUTH_MODE": ""}, false, []Problem{
		{"AUTH_MODE", "AUTH_MODE is required: one of none, ticket, jwt, sign (see README, Authentication)", ""},
	}},
	{"auth mode unknown", map[string]string{"AUTH_MODE": "Magic"}, false, []Problem{
		{"AUTH_MODE", "AUTH_MODE must be one of none, ticket, jwt, sign", "magic"},
	}},
	{"ticket without secret", map[string]string{"AUTH_MODE": "ticket"}, false, []Problem{
		{"AUTH_SECRET", "AUTH_MODE=ticket needs AUTH_SECRET (one or more comma-separated secrets of 32+ characters)", ""},
	}},
	{"short secret", map[string]string{"AUTH_MODE": "ticket", "AUTH_SECRET": "short-secret-value"}, false, []Problem{
		{"AUTH_SECRET", "AUTH_SECRET: every secret must be at least 32 characters (generate one with: openssl rand -base64 48)", ""},
	}},
	{"placeholder secret", map[string]string{"AUTH_MODE": "ticket", "AUTH_SECRET": "replace-with-48-random-bytes-in-base64"}, false, []Problem{
		{"AUTH_SECRET", "AUTH_SECRET is the example value from the docs, which anyone can read: generate your own with: openssl rand -base64 48", ""},
	}},
	{"ticket ttl", map[string]string{"AUTH_TICKET_TTL": "30s"}, false, []Problem{
		{"AUTH_TICKET_TTL", "AUTH_TICKET_TTL must be between 1m0s and 8760h0m0s", "30s"},
	}},
	{"invite ttl", map[string]string{"AUTH_INVITE_TTL": "x"}, false, []Problem{
		{"AUTH_INVITE_TTL", "AUTH_INVITE_TTL must be a duration such as 10s or 1m30s", "x"},
	}},
	{"jwt secret short", map[string]string{"JWT_SECRET": "tiny"}, false, []Problem{
		{"JWT_SECRET", "JWT_SECRET must be at least 32 characters", ""},
	}},
	{"jwt without key", map[string]string{"AUTH_MODE": "jwt"}, false, []Problem{
		{"AUTH_MODE", "AUTH_MODE=jwt needs exactly one of JWT_SECRET, JWT_JWKS_URL, JWT_PUBLIC_KEY", ""},
	}},
	{"jwt two keys", map[string]string{"AUTH_MODE": "jwt", "JWT_JWKS_URL": "https://idp.example/jwks", "JWT_SECRET": "0123456789abcdef0123456789abcdef"}, false, []Problem{
		{"AUTH_MODE", "AUTH_MODE=jwt needs exactly one of JWT_SECRET, JWT_JWKS_URL, JWT_PUBLIC_KEY", ""},
	}},
	{"jwks plain http", map[string]string{"AUTH_MODE": "jwt", "JWT_JWKS_URL": "http://example.com/jwks"}, false, []Problem{
		{"JWT_JWKS_URL", "JWT_JWKS_URL must be an https:// URL (plain http only to a loopback address)", "http://example.com/jwks"},
	}},
	{"jwt public key", map[string]string{"AUTH_MODE": "jwt", "JWT_PUBLIC_KEY": "MIIB-not-a-pem"}, false, []Problem{
		{"JWT_PUBLIC_KEY", "JWT_PUBLIC_KEY: not a PEM block", ""},
	}},
	{"sign without salt", map[string]string{"AUTH_MODE": "sign"}, false, []Problem{
		{"COMPAT_SIGN_SALT", "AUTH_MODE=sign needs COMPAT_SIGN_SALT", ""},
	}},
	{"hash user id", map[string]string{"JWT_HASH_USER_ID": "maybe"}, false, []Problem{
		{"JWT_HASH_USER_ID", "JWT_HASH_USER_ID must be true or false", "maybe"},
	}},
	{"leeway", map[string]string{"JWT_LEEWAY": "11m"}, false, []Problem{
		{"JWT_LEEWAY", "JWT_LEEWAY must be between 0s and 10m0s", "11m"},
	}},
	{"redis url", map[string]string{"QUEUE_REDIS_URL": "http://:hunter2@x:1"}, false, []Problem{
		{"QUEUE_REDIS_URL", "QUEUE_REDIS_URL must be redis://[[user]:password@]host[:port][/db] or rediss://… (TencentDB: redis://:account@password@host:6379): a Redis URL starts with redis:// or rediss://", "http://:xxxxx@x:1"},
	}},
	{"key prefix space", map[string]string{"QUEUE_KEY_PREFIX": "a b"}, false, []Problem{
		{"QUEUE_KEY_PREFIX", "QUEUE_KEY_PREFIX must be at most 64 characters without spaces", "a b"},
	}},
	{"key prefix long", map[string]string{"QUEUE_KEY_PREFIX": "0123456789012345678901234567890123456789012345678901234567890123x"}, false, []Problem{
		{"QUEUE_KEY_PREFIX", "QUEUE_KEY_PREFIX must be at most 64 characters without spaces", "0123456789012345678901234567890123456789012345678901234567890123x"},
	}},
	{"abandon", map[string]string{"QUEUE_ABANDON": "2s"}, false, []Problem{
		{"QUEUE_ABANDON", "QUEUE_ABANDON must be between 3s and 1h0m0s", "2s"},
	}},
	{"hold ttl", map[string]string{"QUEUE_HOLD_TTL": "1s"}, false, []Problem{
		{"QUEUE_HOLD_TTL", "QUEUE_HOLD_TTL must be between 1m0s and 168h0m0s", "1s"},
	}},
	{"max per ip", map[string]string{"QUEUE_MAX_PER_IP": "0"}, false, []Problem{
		{"QUEUE_MAX_PER_IP", "QUEUE_MAX_PER_IP must be a whole number from 1 to 1000000", "0"},
	}},
	{"max per ip form", map[string]string{"QUEUE_MAX_PER_IP": "x"}, false, []Problem{
		{"QUEUE_MAX_PER_IP", "QUEUE_MAX_PER_IP must be a whole number from 1 to 1000000", "x"},
	}},
	{"session max", map[string]string{"QUEUE_REDIS_URL": "redis://127.0.0.1:6379", "SESSION_MAX": "500ms"}, false, []Problem{
		{"SESSION_MAX", "SESSION_MAX must be between 1s and 8760h0m0s", "500ms"},
	}},
	{"session renew form", map[string]string{"QUEUE_REDIS_URL": "redis://127.0.0.1:6379", "SESSION_MAX": "10m", "SESSION_RENEW": "maybe"}, false, []Problem{
		{"SESSION_RENEW", "SESSION_RENEW must be true or false", "maybe"},
	}},
	{"renew max form", map[string]string{"QUEUE_REDIS_URL": "redis://127.0.0.1:6379", "SESSION_MAX": "10m", "SESSION_RENEW_MAX": "-1"}, false, []Problem{
		{"SESSION_RENEW_MAX", "SESSION_RENEW_MAX must be a whole number from 0 to 1000000", "-1"},
	}},
	{"cooldown form", map[string]string{"QUEUE_REDIS_URL": "redis://127.0.0.1:6379", "SESSION_COOLDOWN": "-5s", "SESSION_MAX": "10m"}, false, []Problem{
		{"SESSION_COOLDOWN", "SESSION_COOLDOWN must be between 0s and 8760h0m0s", "-5s"},
	}},
	{"renew without max", map[string]string{"SESSION_RENEW": "true"}, false, []Problem{
		{"SESSION_RENEW", "SESSION_RENEW has no effect without SESSION_MAX (the longest session, e.g. 10m)", "true"},
	}},
	{"renew max without max", map[string]string{"SESSION_RENEW_MAX": "2"}, false, []Problem{
		{"SESSION_RENEW_MAX", "SESSION_RENEW_MAX has no effect without SESSION_MAX (the longest session, e.g. 10m)", "2"},
	}},
	{"cooldown without max", map[string]string{"SESSION_COOLDOWN": "1m"}, false, []Problem{
		{"SESSION_COOLDOWN", "SESSION_COOLDOWN has no effect without SESSION_MAX (the longest session, e.g. 10m)", "1m"},
	}},
	{"renew max without renew", map[string]string{"QUEUE_REDIS_URL": "redis://127.0.0.1:6379", "SESSION_MAX": "10m", "SESSION_RENEW_MAX": "3"}, false, []Problem{
		{"SESSION_RENEW_MAX", "SESSION_RENEW_MAX has no effect without SESSION_RENEW=true (renewals are off)", "3"},
	}},
	{"renew without renew max", map[string]string{"QUEUE_REDIS_URL": "redis://127.0.0.1:6379", "SESSION_MAX": "10m", "SESSION_RENEW": "true"}, false, []Problem{
		{"SESSION_RENEW_MAX", "SESSION_RENEW=true needs SESSION_RENEW_MAX of at least 1 (how many times a lease may be renewed)", ""},
	}},
	{"leases without redis", map[string]string{"SESSION_MAX": "10m"}, false, []Problem{
		{"SESSION_MAX", "SESSION_MAX needs QUEUE_REDIS_URL: session leases are kept in the line's Redis, so that every instance sees them", ""},
	}},
	{"dev settings", map[string]string{"DEV_CLIENT_WAIT": "100ms", "DEV_CONCURRENCY": "0", "DEV_QUEUE": "maybe", "DEV_RETENTION": "forever"}, true, []Problem{
		{"DEV_CONCURRENCY", "DEV_CONCURRENCY must be a whole number from 1 to 1000", "0"},
		{"DEV_RETENTION", "DEV_RETENTION must be a duration such as 10s or 1m30s", "forever"},
		{"DEV_CLIENT_WAIT", "DEV_CLIENT_WAIT must be between 1s and 24h0m0s", "100ms"},
		{"DEV_QUEUE", "DEV_QUEUE must be true or false", "maybe"},
	}},
	{"dev concurrency form", map[string]string{"DEV_CONCURRENCY": "many"}, true, []Problem{
		{"DEV_CONCURRENCY", "DEV_CONCURRENCY must be a whole number from 1 to 1000", "many"},
	}},
}

func TestEveryProblemMessage(t *testing.T) {
	for _, c := range problemCases {
		vars := map[string]string{"CAR_PROJECT_ID": "cap-1", "AUTH_MODE": "none"}
		for k, v := range c.env {
			vars[k] = v
		}
		_, err := Load(func(k string) string { return vars[k] }, Options{Dev: c.dev})
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v, want %d problems", c.name, err, len(c.want))
			continue
		}
		if !slices.Equal(ce.Problems, c.want) {
			t.Errorf("%s: problems\n%q\nwant\n%q", c.name, ce.Problems, c.want)
		}
	}
}
