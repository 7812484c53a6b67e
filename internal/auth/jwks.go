package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"carbroker/internal/fault"
)

// jwks is the key set at JWT_JWKS_URL, fetched on first use and cached.
//
// A token whose key (kid and alg) is not in the cache, or a cache older than
// Options.JWKSMaxAge, triggers a fetch, but never sooner than
// Options.JWKSMinRefresh after the previous attempt, whatever callers send:
// a stream of tokens with made-up kids costs the provider one request per
// interval. A fetch is bounded in time (JWKSFetchTimeout) and size
// (JWKSMaxBytes); when it fails the previous keys stay in use.
//
// The fetch runs in the goroutine of the request that needs it, on that
// request's context: nothing outlives the request (an SCF instance may be
// frozen right after it answers). Concurrent requests wait for it rather
// than fetch again. A request whose key is cached waits for a refresh at
// most JWKSStaleWait, then goes on with the cached key; a fetch it started
// is then abandoned. An abandoned fetch counts as an attempt for the
// cached keys (a hanging provider costs one short wait per interval), but
// a request whose key is missing may try again at once: it cannot go on
// without one, and it waits as long as its own budget allows.
type jwks struct {
	url        string
	client     *http.Client
	now        func() time.Time
	minRefresh time.Duration
	maxAge     time.Duration
	timeout    time.Duration
	staleWait  time.Duration
	maxBytes   int64

	mu      sync.Mutex // guards the fields below
	keys    map[keyID]any
	fetched time.Time // last successful fetch
	tried   time.Time // start of the last attempt
	err     error     // of the last attempt that got an answer
	// staleAbandoned: the last attempt was a refresh abandoned by a
	// request that went on with its cached key.
	staleAbandoned bool
	flight         *flight // the fetch in progress; nil when none
}

// flight is one fetch in progress; done is closed when it ends.
type flight struct {
	done      chan struct{}
	abandoned bool // set before done is closed: its request stopped waiting before an answer
}

// keyID names a cached key: its kid ("" when the JWK has none) and the one
// algorithm it may verify.
type keyID struct{ kid, alg string }

// maxJWKSKeys bounds the keys taken from one document.
const maxJWKSKeys = 100

func newJWKS(url string, opts Options) *jwks {
	return &jwks{
		url: url, client: opts.HTTPClient, now: opts.Now,
		minRefresh: opts.JWKSMinRefresh, maxAge: opts.JWKSMaxAge,
		timeout: opts.JWKSFetchTimeout, staleWait: opts.JWKSStaleWait, maxBytes: opts.JWKSMaxBytes,
	}
}

func (j *jwks) keyFor(ctx context.Context, kid, alg string) (any, error) {
	k, ok, fl, mine := j.step(kid, alg, false, ctx.Err() == nil)
	wait := ctx
	if ok && fl != nil {
		// A cached key: a refresh may hold this request only briefly.
		var cancel context.CancelFunc
		wait, cancel = context.WithTimeout(ctx, j.staleWait)
		defer cancel()
	}
	for fl != nil {
		if mine {
			j.fetchFor(wait, fl, ok)
			k, ok = j.find(kid, alg)
			break
		}
		select {
		case <-fl.done:
			// A request without its key takes over a fetch abandoned by
			// its request, whatever the interval says.
			k, ok, fl, mine = j.step(kid, alg, fl.abandoned && !ok, wait.Err() == nil)
		case <-wait.Done():
			fl = nil
		}
	}
	if ok {
		return k, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fault.Wrap(fault.Timeout, "the request ran out of time", err)
	}
	j.mu.Lock()
	err := j.err
	j.mu.Unlock()
	if err != nil {
		return nil, fault.Wrap(fault.Unavailable, "cannot fetch the token signing keys; try again later", err)
	}
	return nil, unauthenticated("invalid token")
}

// step finds a key and says what the request should do about the cache:
// nothing (fl == nil), wait for the fetch fl in flight, or run fl itself
// (mine), a fetch it may start now. retry allows a fetch whatever the
// interval (to take over an abandoned one); a request that can no longer
// wait (canWait false) starts none.
func (j *jwks) step(kid, alg string, retry, canWait bool) (key any, ok bool, fl *flight, mine bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	key, ok = j.findLocked(kid, alg)
	now := j.now()
	switch {
	case ok && now.Sub(j.fetched) < j.maxAge:
		return key, ok, nil, false
	case j.flight != nil:
		return key, ok, j.flight, false
	case !canWait:
	case retry || j.tried.IsZero() || now.Sub(j.tried) >= j.minRefresh || now.Before(j.tried) || (!ok && j.staleAbandoned):
		j.flight, j.tried, j.staleAbandoned = &flight{done: make(chan struct{})}, now, false
		return key, ok, j.flight, true
	}
	return key, ok, nil, false
}

func (j *jwks) find(kid, alg string) (any, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.findLocked(kid, alg)
}

// findLocked finds a cached key. A token without kid matches a JWK without
// kid, or else the only key for its alg.
func (j *jwks) findLocked(kid, alg string) (any, bool) {
	if key, ok := j.keys[keyID{kid, alg}]; ok || kid != "" {
		return key, ok
	}
	var key any
	n := 0
	for id, k := range j.keys {
		if id.alg == alg {
			key, n = k, n+1
		}
	}
	if n != 1 {
		return nil, false
	}
	return key, true
}

// fetchFor runs fl, the fetch this request started, bounded by ctx (how
// long the request waits) and the fetch timeout, and records its outcome.
// cached says whether the request had a key to go on with.
func (j *jwks) fetchFor(ctx context.Context, fl *flight, cached bool) {
	keys, err := j.fetch(ctx)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.flight = nil
	switch {
	case err != nil && ctx.Err() != nil:
		// The request stopped waiting before an answer: no verdict on the
		// provider; the previous error, if any, stands.
		fl.abandoned = true
		j.staleAbandoned = cached
	case err != nil:
		j.err = err
	default:
		j.keys, j.fetched, j.err = keys, j.now(), nil
	}
	close(fl.done)
}

func (j *jwks) fetch(ctx context.Context) (map[keyID]any, error) {
	ctx, cancel := context.WithTimeout(ctx, j.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("auth: fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("auth: fetching JWKS: HTTP status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, j.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("auth: reading JWKS: %w", err)
	}
	if int64(len(body)) > j.maxBytes {
		return nil, fmt.Errorf("auth: JWKS larger than %d bytes", j.maxBytes)
	}
	return parseJWKS(body)
}

// parseJWKS returns the usable keys of a JWK Set document (RFC 7517): RSA
// keys for RS256 and EC P-256 keys for ES256, not restricted by "use" or
// "alg" to anything else. Other keys are skipped; a document with no usable
// key is an error.
func parseJWKS(doc []byte) (map[keyID]any, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("auth: JWKS is not a JWK Set: %w", err)
	}
	keys := make(map[keyID]any)
	for _, raw := range set.Keys {
		if len(keys) == maxJWKSKeys {
			break
		}
		k, kid, err := parseJWK(raw)
		if err != nil {
			continue
		}
		id := keyID{kid, k.alg}
		if _, dup := keys[id]; !dup {
			keys[id] = k.key
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: JWKS has no usable RS256 or ES256 key")
	}
	return keys, nil
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func parseJWK(raw json.RawMessage) (pinnedKey, string, error) {
	var j jwk
	if err := json.Unmarshal(raw, &j); err != nil {
		return pinnedKey{}, "", err
	}
	if j.Use != "" && j.Use != "sig" {
		return pinnedKey{}, "", errors.New("not a signing key")
	}
	var pub any
	switch j.Kty {
	case "RSA":
		n, err1 := b64uint(j.N)
		e, err2 := b64uint(j.E)
		if err := errors.Join(err1, err2); err != nil {
			return pinnedKey{}, "", err
		}
		if e.BitLen() > 31 || e.Int64() < 3 || e.Bit(0) == 0 {
			return pinnedKey{}, "", errors.New("bad RSA exponent")
		}
		pub = &rsa.PublicKey{N: n, E: int(e.Int64())}
	case "EC":
		if j.Crv != "P-256" {
			return pinnedKey{}, "", errors.New("unsupported curve")
		}
		x, err1 := b64fixed(j.X, 32)
		y, err2 := b64fixed(j.Y, 32)
		if err := errors.Join(err1, err2); err != nil {
			return pinnedKey{}, "", err
		}
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return pinnedKey{}, "", err
		}
		pub = k
	default:
		return pinnedKey{}, "", errors.New("unsupported key type")
	}
	k, err := pin(pub)
	if err != nil {
		return pinnedKey{}, "", err
	}
	if j.Alg != "" && j.Alg != k.alg {
		return pinnedKey{}, "", errors.New("key restricted to another algorithm")
	}
	return k, j.Kid, nil
}

// b64uint decodes an unsigned big-endian integer in base64url (padding
// tolerated, as some providers emit it).
func b64uint(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) == 0 {
		return nil, errors.New("bad base64url integer")
	}
	return new(big.Int).SetBytes(b), nil
}

// b64fixed decodes a base64url field of exactly n bytes.
func b64fixed(s string, n int) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) != n {
		return nil, errors.New("bad base64url coordinate")
	}
	return b, nil
}
