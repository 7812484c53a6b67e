package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"carbroker/internal/config"
	"carbroker/internal/fault"
)

// Options are the injectable parts of an Authenticator; the zero value is
// production behaviour.
type Options struct {
	Now        func() time.Time // clock; default time.Now
	HTTPClient *http.Client     // fetches JWT_JWKS_URL; default a client bounded by JWKSFetchTimeout
	Rand       io.Reader        // randomness for minted UserIds, safe for concurrent use; default crypto/rand

	// JWKS cache tuning (jwt mode with JWT_JWKS_URL).
	JWKSMinRefresh   time.Duration // least time between two fetches, whatever the callers send; default 1m
	JWKSMaxAge       time.Duration // refetch keys older than this on next use; default 1h
	JWKSFetchTimeout time.Duration // bound on one fetch; default 5s
	JWKSStaleWait    time.Duration // how long a refresh may hold a request whose key is cached; default 200ms
	JWKSMaxBytes     int64         // bound on the document size; default 1 MiB
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.JWKSMinRefresh <= 0 {
		o.JWKSMinRefresh = time.Minute
	}
	if o.JWKSMaxAge <= 0 {
		o.JWKSMaxAge = time.Hour
	}
	if o.JWKSFetchTimeout <= 0 {
		o.JWKSFetchTimeout = 5 * time.Second
	}
	if o.JWKSStaleWait <= 0 {
		o.JWKSStaleWait = 200 * time.Millisecond
	}
	if o.JWKSMaxBytes <= 0 {
		o.JWKSMaxBytes = 1 << 20
	}
	if o.HTTPClient == nil {
		// No keep-alive: fetches are rare, and an idle connection would keep
		// goroutines alive after the request that fetched (and die anyway
		// while SCF freezes the instance).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DisableKeepAlives = true
		o.HTTPClient = &http.Client{Transport: t, Timeout: o.JWKSFetchTimeout, CheckRedirect: sameScheme}
	}
	return o
}

// sameScheme follows up to 5 redirects, never from https to http, and from
// a plain-http URL (allowed only to a loopback host) never to another host.
func sameScheme(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("too many redirects")
	}
	if req.URL.Scheme != via[0].URL.Scheme {
		return errors.New("redirect changes the scheme")
	}
	if req.URL.Scheme == "http" && req.URL.Hostname() != via[0].URL.Hostname() {
		return errors.New("a plain-http redirect leaves its host")
	}
	return nil
}

// New returns the Authenticator for cfg.Mode. cfg must have passed
// config.Load, the one place that validates it: New does not check it again,
// and fails only for a mode it does not know.
func New(cfg config.Auth, opts Options) (Authenticator, error) {
	opts = opts.withDefaults()
	switch cfg.Mode {
	case config.AuthNone:
		return noneAuth{}, nil
	case config.AuthTicket:
		return newTicketAuth(cfg, opts), nil
	case config.AuthJWT:
		return newJWTAuth(cfg, opts), nil
	case config.AuthSign:
		return signAuth{salt: cfg.SignSalt}, nil
	}
	return nil, fmt.Errorf("auth: unknown mode %q", cfg.Mode)
}

// noneAuth trusts the UserId the request names: for development, or behind a
// gateway that already authenticates callers.
type noneAuth struct{}

func (noneAuth) Authenticate(_ context.Context, r Request) (Identity, error) {
	if r.Op == OpRead {
		return Identity{UserID: r.UserID}, nil
	}
	if r.UserID == "" {
		return Identity{}, userIDRequired()
	}
	return Identity{UserID: r.UserID}, nil
}

func (noneAuth) Credential(Identity) (string, error) { return "", nil }

func userIDRequired() error { return fault.New(fault.Invalid, "UserId is required") }

// maxBearer bounds any bearer credential before it is decoded.
const maxBearer = 8 << 10

// bearer returns the token of an "Authorization: Bearer <token>" header.
// present is false when there is no Authorization header (or it is blank);
// any other shape is an error.
func bearer(h http.Header) (token string, present bool, err error) {
	vals := h.Values("Authorization")
	if len(vals) == 0 || (len(vals) == 1 && strings.TrimSpace(vals[0]) == "") {
		return "", false, nil
	}
	if len(vals) > 1 {
		return "", true, unauthenticated("send a single Authorization header")
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t") {
		return "", true, unauthenticated("the Authorization header must be: Bearer <credential>")
	}
	if len(tok) > maxBearer {
		return "", true, unauthenticated("the credential is too long")
	}
	return tok, true, nil
}

func unauthenticated(msg string) *fault.Error { return fault.New(fault.Unauthenticated, msg) }
func forbidden(msg string) *fault.Error       { return fault.New(fault.Forbidden, msg) }
