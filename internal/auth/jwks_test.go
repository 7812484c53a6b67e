package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"carbroker/internal/auth"
	"carbroker/internal/config"
	"carbroker/internal/dev/tc3"
	"carbroker/internal/fault"
)

// jwksServer is an identity provider's JWK Set endpoint: it counts the
// fetches. The fixture reaches it in process (tc3.InProcess: no socket, so
// a test may run in a synctest bubble and time the waits exactly).
type jwksServer struct {
	http.Handler
	hits atomic.Int32

	mu     sync.Mutex
	doc    []byte
	status int
	block  chan struct{} // when set, requests wait for it or for their context
}

func newJWKSServer(t *testing.T, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{status: http.StatusOK}
	s.setKeys(t, keys...)
	s.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		doc, status, block := s.doc, s.status, s.block
		s.mu.Unlock()
		if block != nil {
			select {
			case <-block:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(doc)
	})
	return s
}

func (s *jwksServer) setKeys(t *testing.T, keys ...map[string]any) {
	t.Helper()
	doc, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	s.setDoc(doc, http.StatusOK)
}

func (s *jwksServer) setDoc(doc []byte, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.doc, s.status = doc, status
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, pub *rsa.PublicKey, extra map[string]any) map[string]any {
	k := map[string]any{"kty": "RSA", "n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
	if kid != "" {
		k["kid"] = kid
	}
	for n, v := range extra {
		k[n] = v
	}
	return k
}

func ecJWK(t *testing.T, kid string, pub *ecdsa.PublicKey, extra map[string]any) map[string]any {
	t.Helper()
	b, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	size := (len(b) - 1) / 2
	crv := map[int]string{32: "P-256", 48: "P-384"}[size]
	k := map[string]any{"kty": "EC", "crv": crv, "x": b64(b[1 : 1+size]), "y": b64(b[1+size:])}
	if kid != "" {
		k["kid"] = kid
	}
	for n, v := range extra {
		k[n] = v
	}
	return k
}

type jwksFixture struct {
	c   *clock
	srv *jwksServer
	a   auth.Authenticator
}

func newJWKSFixture(t *testing.T, opts auth.Options, keys ...map[string]any) *jwksFixture {
	t.Helper()
	f := &jwksFixture{c: newClock(), srv: newJWKSServer(t, keys...)}
	opts.Now, opts.HTTPClient = f.c.Now, &http.Client{Transport: tc3.InProcess(f.srv)}
	// The URL is never dialled; were it, nothing listens on port 1.
	f.a = mustNew(t, config.Auth{Mode: config.AuthJWT, JWTJWKSURL: "http://127.0.0.1:1/jwks.json", JWTUserClaim: "sub", JWTLeeway: time.Second}, opts)
	return f
}

// token signs a token for alice with kid ("" for none).
func (f *jwksFixture) token(t *testing.T, m jwt.SigningMethod, key any, kid string) string {
	t.Helper()
	h := map[string]any{"kid": nil}
	if kid != "" {
		h["kid"] = kid
	}
	return sign(t, m, key, claimsAt(f.c, nil), h)
}

func (f *jwksFixture) wantHits(t *testing.T, n int32) {
	t.Helper()
	if got := f.srv.hits.Load(); got != n {
		t.Fatalf("%d JWKS fetches, want %d", got, n)
	}
}

func TestJWKSCacheHit(t *testing.T) {
	t.Parallel()
	k := testKeys()
	f := newJWKSFixture(t, auth.Options{}, rsaJWK("r1", &k.rsa.PublicKey, map[string]any{"use": "sig", "alg": "RS256"}), ecJWK(t, "e1", &k.ec.PublicKey, nil))
	f.wantHits(t, 0) // nothing fetched before first use
	for range 10 {
		if id := authOK(t, f.a, request(auth.OpStart, "", f.token(t, jwt.SigningMethodRS256, k.rsa, "r1"))); id.UserID != "alice" {
			t.Fatalf("RS256: %+v", id)
		}
		authOK(t, f.a, request(auth.OpStart, "alice", f.token(t, jwt.SigningMethodES256, k.ec, "e1")))
		f.c.Advance(time.Minute)
	}
	f.wantHits(t, 1)
}

func TestJWKSRefreshOnUnknownKid(t *testing.T) {
	t.Parallel()
	k := testKeys()
	f := newJWKSFixture(t, auth.Options{JWKSMinRefresh: time.Minute}, rsaJWK("r1", &k.rsa.PublicKey, nil))
	authOK(t, f.a, request(auth.OpStart, "", f.token(t, jwt.SigningMethodRS256, k.rsa, "r1")))
	f.wantHits(t, 1)

	// The provider rotates to r2.
	f.srv.setKeys(t, rsaJWK("r2", &k.rsa2.PublicKey, nil), rsaJWK("r1", &k.rsa.PublicKey, nil))
	r2 := f.token(t, jwt.SigningMethodRS256, k.rsa2, "r2")
	f.c.Advance(59 * time.Second)
	authErr(t, f.a, request(auth.OpStart, "", r2), fault.Unauthenticated) // too soon to refetch
	f.wantHits(t, 1)
	f.c.Advance(time.Second)
	authOK(t, f.a, request(auth.OpStart, "", r2))
	f.wantHits(t, 2)
	authOK(t, f.a, request(auth.OpStart, "", f.token(t, jwt.SigningMethodRS256, k.rsa, "r1")))
	f.wantHits(t, 2)
}

func TestJWKSRefreshIsRateLimited(t *testing.T) {
	t.Parallel()
	k := testKeys()
	f := newJWKSFixture(t, auth.Options{JWKSMinRefresh: time.Minute}, rsaJWK("r1", &k.rsa.PublicKey, nil))
	bogus := func(i int) auth.Request {
		return request(auth.OpStart, "", f.token(t, jwt.SigningMethodRS256, k.rsa2, fmt.Sprintf("bogus-%d", i)))
	}
	for i := range 50 {
		authErr(t, f.a, bogus(i), fault.Unauthenticated)
		f.c.Advance(time.Second)
	}
	f.wantHits(t, 1) // the first use, then nothing for a minute
	f.c.Advance(10 * time.Second)
	for i := range 50 {
		authErr(t, f.a, bogus(i), fault.Unauthenticated)
	}
	f.wantHits(t, 2)
}

func TestJWKSConcurrentMissesShareOneFetch(t *testing.T) {
	t.Parallel()
	k := testKeys()
	f := newJWKSFixture(t, auth.Options{}, rsaJWK("r1", &k.rsa.PublicKey, nil))
	tok := f.token(t, jwt.SigningMethodRS256, k.rsa, "r1")
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Go(func() {
			_, err := f.a.Authenticate(t.Context(), request(auth.OpStart, "", tok))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	f.wantHits(t, 1)
}

func TestJWKSMaxAgeAndStaleKeys(t *testing.T) {
	t.Parallel()
	k := testKeys()
	f := newJWKSFixture(t, auth.Options{JWKSMaxAge: time.Hour}, rsaJWK("r1", &k.rsa.PublicKey, nil))
	tok := func() string { return f.token(t, jwt.SigningMethodRS256, k.rsa, "r1") }
	authOK(t, f.a, request(auth.OpStart, "", tok()))
	f.c.Advance(time.Hour)
	authOK(t, f.a, request(auth.OpStart, "", tok()))
	f.wantHits(t, 2) // refreshed for age

	// The provider fails: the cached keys stay in use, an unknown kid is 503.
	f.srv.setDoc([]byte("oops"), http.StatusInternalServerError)
	f.c.Advance(time.Hour)
	authOK(t, f.a, request(auth.OpStart, "", tok()))
	f.wantHits(t, 3)
	authErr(t, f.a, request(auth.OpStart, "", f.token(t, jwt.SigningMethodRS256, k.rsa2, "r2")), fault.Unavailable)

	// A key removed by the provider stops working after the next refresh.
	f.srv.setKeys(t, rsaJWK("r2", &k.rsa2.PublicKey, nil))
	f.c.Advance(time.Hour)
	authErr(t, f.a, request(auth.OpStart, "", tok()), fault.Unauthenticated)
	authOK(t, f.a, request(auth.OpStart, "", f.token(t, jwt.SigningMethodRS256, k.rsa2, "r2")))
}

func TestJWKSFetchTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := testKeys()
		f := newJWKSFixture(t, auth.Options{JWKSFetchTimeout: 50 * time.Millisecond}, rsaJWK("r1", &k.rsa.PublicKey, nil))
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		f.srv.mu.Lock()
		f.srv.block = release
		f.srv.mu.Unlock()

		start := time.Now()
		authErr(t, f.a, request(auth.OpStart, "", f.token(t, jwt.SigningMethodRS256, k.rsa, "r1")), fault.Unavailable)
		if d := time.Since(start); d != 50*time.Millisecond { // the bubble's clock: exact
			t.Errorf("a hanging JWKS held the caller for %v, want the fetch timeout, 50ms", d)
		}
	})
}

func TestJWKSBadDocuments(t *testing.T) {
	t.Parallel()
	k := testKeys()
	good, _ := json.Marshal(map[string]any{"keys": []any{rsaJWK("r1", &k.rsa.PublicKey, nil)}})
	for name, tc := range map[string]struct {
		doc    []byte
		status int
	}{
		"too large":      {append(good, []byte(strings.Repeat(" ", 2048))...), http.StatusOK},
		"not found":      {good, http.StatusNotFound},
		"not JSON":       {[]byte("<html>"), http.StatusOK},
		"no keys":        {[]byte(`{"keys":[]}`), http.StatusOK},
		"keys not array": {[]byte(`{"keys":{}}`), http.StatusOK},
		"only unusable": {mustJSON(t, map[string]any{"keys": []any{
			rsaJWK("r1", &k.rsa.PublicKey, map[string]any{"use": "enc"}),
			rsaJWK("r1", &k.rsa.PublicKey, map[string]any{"alg": "RS512"}),
			rsaJWK("r1", &k.rsaSmall.PublicKey, nil),
			ecJWK(t, "r1", &k.ec384.PublicKey, nil),
			map[string]any{"kty": "oct", "kid": "r1", "k": b64(hsSecret)},
			map[string]any{"kty": "RSA", "kid": "r1", "n": "!!", "e": "AQAB"},
			map[string]any{"kty": "RSA", "kid": "r1", "n": b64(k.rsa.N.Bytes()), "e": "AA"},
			map[string]any{"kty": "EC", "kid": "r1", "crv": "P-256", "x": b64(make([]byte, 32)), "y": b64(make([]byte, 32))},
			map[string]any{"kty": 7},
		}}), http.StatusOK},
	} {
		t.Run(name, func(t *testing.T) {
			f := newJWKSFixture(t, auth.Options{JWKSMaxBytes: 1024})
			f.srv.setDoc(tc.doc, tc.status)
			authErr(t, f.a, request(auth.OpStart, "", f.token(t, jwt.SigningMethodRS256, k.rsa, "r1")), fault.Unavailable)
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJWKSKeySelection(t *testing.T) {
	t.Parallel()
	k := testKeys()
	f := newJWKSFixture(t, auth.Options{},
		rsaJWK("r1", &k.rsa.PublicKey, nil),
		ecJWK(t, "r1", &k.ec.PublicKey, nil), // same kid, other algorithm
		rsaJWK("enc", &k.rsa2.PublicKey, map[string]any{"use": "enc"}),
		rsaJWK("r512", &k.rsa2.PublicKey, map[string]any{"alg": "RS512"}),
		rsaJWK("small", &k.rsaSmall.PublicKey, nil),
	)
	tok := func(m jwt.SigningMethod, key any, kid string) auth.Request {
		return request(auth.OpStart, "", f.token(t, m, key, kid))
	}
	authOK(t, f.a, tok(jwt.SigningMethodRS256, k.rsa, "r1"))
	authOK(t, f.a, tok(jwt.SigningMethodES256, k.ec, "r1"))
	// No kid: the only key of the token's algorithm.
	authOK(t, f.a, tok(jwt.SigningMethodRS256, k.rsa, ""))
	authOK(t, f.a, tok(jwt.SigningMethodES256, k.ec, ""))

	for name, r := range map[string]auth.Request{
		"encryption key":             tok(jwt.SigningMethodRS256, k.rsa2, "enc"),
		"key pinned to RS512":        tok(jwt.SigningMethodRS256, k.rsa2, "r512"),
		"RS512 token":                tok(jwt.SigningMethodRS512, k.rsa2, "r512"),
		"1024-bit key":               tok(jwt.SigningMethodRS256, k.rsaSmall, "small"),
		"HS256 with the modulus":     tok(jwt.SigningMethodHS256, k.rsa.N.Bytes(), "r1"),
		"HS256 with the PEM":         tok(jwt.SigningMethodHS256, []byte(pkixPEM(t, &k.rsa.PublicKey)), "r1"),
		"HS256 with the JWK JSON":    tok(jwt.SigningMethodHS256, mustJSON(t, rsaJWK("r1", &k.rsa.PublicKey, nil)), "r1"),
		"PS256 with the RSA key":     tok(jwt.SigningMethodPS256, k.rsa, "r1"),
		"RS256 by another key":       tok(jwt.SigningMethodRS256, k.rsa2, "r1"),
		"ES256 by another key":       tok(jwt.SigningMethodES256, k.ec2, "r1"),
		"alg none":                   request(auth.OpStart, "", algNone(t, claimsAt(f.c, nil))),
		"RS256 under an EC-only kid": tok(jwt.SigningMethodRS256, k.rsa, "missing"),
	} {
		t.Run(name, func(t *testing.T) { authErr(t, f.a, r, fault.Unauthenticated) })
	}
	f.wantHits(t, 1)

	// Two keys of one algorithm: a token without kid is ambiguous.
	f.srv.setKeys(t, rsaJWK("a", &k.rsa.PublicKey, nil), rsaJWK("b", &k.rsa2.PublicKey, nil))
	f.c.Advance(2 * time.Hour)
	authErr(t, f.a, tok(jwt.SigningMethodRS256, k.rsa, ""), fault.Unauthenticated)
	authOK(t, f.a, tok(jwt.SigningMethodRS256, k.rsa, "a"))
}

// A caller that gives up neither poisons the cache for the others nor waits
// past its own deadline for a slow provider.
func TestJWKSCallerDeadlineIsItsOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := testKeys()
		f := newJWKSFixture(t, auth.Options{JWKSFetchTimeout: 2 * time.Second}, rsaJWK("r1", &k.rsa.PublicKey, nil))
		tok := f.token(t, jwt.SigningMethodRS256, k.rsa, "r1")

		// A request whose client already went away starts no fetch, and does
		// not count as an attempt: the next request fetches.
		gone, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := f.a.Authenticate(gone, request(auth.OpStart, "", tok)); err == nil {
			t.Fatal("a cancelled request was served")
		}
		f.wantHits(t, 0)
		authOK(t, f.a, request(auth.OpStart, "", tok))
		f.wantHits(t, 1)

		// With a slow provider, a caller with a short deadline leaves on time.
		release := make(chan struct{})
		f.srv.mu.Lock()
		f.srv.block = release
		f.srv.mu.Unlock()
		f.c.Advance(2 * time.Hour) // keys too old: a refresh is due
		ctx, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel2()
		start := time.Now()
		_, err := f.a.Authenticate(ctx, request(auth.OpStart, "", f.token(t, jwt.SigningMethodRS256, k.rsa, "r9")))
		if d := time.Since(start); d != 100*time.Millisecond { // the bubble's clock: exact
			t.Errorf("waited %v, want the 100ms deadline", d)
		}
		if fault.KindOf(err) != fault.Timeout {
			t.Errorf("err = %v, want a timeout", err)
		}
		close(release)
		f.wantHits(t, 2) // the fetch ran on the request's own time, and ended with it
	})
}

// awaitHits waits until the provider has seen n fetches.
func (f *jwksFixture) awaitHits(t *testing.T, n int32) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); f.srv.hits.Load() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d JWKS fetches after 10 s, want %d", f.srv.hits.Load(), n)
		}
	}
}

// blockJWKS makes the provider hang until the returned release is called.
func (s *jwksServer) blockJWKS(t *testing.T) (release func()) {
	t.Helper()
	ch := make(chan struct{})
	s.mu.Lock()
	s.block = ch
	s.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			s.mu.Lock()
			s.block = nil
			s.mu.Unlock()
			close(ch)
		})
	}
	t.Cleanup(release)
	return release
}

// Security review: with the identity provider hanging, 20 valid requests
// whose key was cached each waited for the refresh (5 s), and with a 2 s
// budget got 504. Now a refresh holds them at most JWKSStaleWait, they go on
// with the cached key, a later request tries again, and nothing started for
// a request outlives it.
func TestJWKSStaleRefreshHoldsCachedKeysBriefly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := testKeys()
		f := newJWKSFixture(t, auth.Options{JWKSMaxAge: time.Hour, JWKSMinRefresh: time.Minute}, rsaJWK("r1", &k.rsa.PublicKey, nil))
		authOK(t, f.a, request(auth.OpStart, "", f.token(t, jwt.SigningMethodRS256, k.rsa, "r1")))
		f.wantHits(t, 1)
		before := goleak.IgnoreCurrent()

		release := f.srv.blockJWKS(t)
		f.c.Advance(2 * time.Hour) // the keys are due for a refresh
		tok := f.token(t, jwt.SigningMethodRS256, k.rsa, "r1")
		var wg sync.WaitGroup
		var slowest atomic.Int64
		for range 20 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				start := time.Now()
				_, err := f.a.Authenticate(ctx, request(auth.OpStart, "", tok))
				d := time.Since(start)
				for old := slowest.Load(); int64(d) > old && !slowest.CompareAndSwap(old, int64(d)); old = slowest.Load() {
				}
				if err != nil {
					t.Errorf("a request with a cached key failed while the provider hangs: %v", err)
				}
			})
		}
		wg.Wait()
		// Each was held at most JWKSStaleWait (200 ms), far within its budget
		// (the bubble's clock is exact).
		if d := time.Duration(slowest.Load()); d != 200*time.Millisecond {
			t.Errorf("the slowest request took %v, want JWKSStaleWait, 200ms", d)
		}
		f.wantHits(t, 2) // one refresh for all twenty
		// Nothing the requests started is still running.
		goleak.VerifyNone(t, before)

		// Within the interval, requests do not try again (so nothing holds
		// them: a request waits only for a fetch).
		authOK(t, f.a, request(auth.OpStart, "", tok))
		f.wantHits(t, 2)

		// A later request tries again, and still gets through.
		f.c.Advance(time.Minute)
		authOK(t, f.a, request(auth.OpStart, "", f.token(t, jwt.SigningMethodRS256, k.rsa, "r1")))
		f.wantHits(t, 3)

		// Once the provider answers, the cache is fresh again.
		release()
		f.c.Advance(time.Minute)
		authOK(t, f.a, request(auth.OpStart, "", f.token(t, jwt.SigningMethodRS256, k.rsa, "r1")))
		authOK(t, f.a, request(auth.OpStart, "", f.token(t, jwt.SigningMethodRS256, k.rsa, "r1")))
		f.wantHits(t, 4)
		goleak.VerifyNone(t, before)
	})
}

// A token whose key is missing cannot go on without a fetch: it takes over a
// refresh abandoned by a request with a cached key, even within the
// interval, and waits as long as its own budget allows.
func TestJWKSMissingKeyTakesOverAnAbandonedRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := testKeys()
		f := newJWKSFixture(t, auth.Options{JWKSMaxAge: time.Hour, JWKSMinRefresh: time.Minute}, rsaJWK("r1", &k.rsa.PublicKey, nil))
		authOK(t, f.a, request(auth.OpStart, "", f.token(t, jwt.SigningMethodRS256, k.rsa, "r1")))

		release := f.srv.blockJWKS(t)
		f.c.Advance(2 * time.Hour)
		f.srv.setKeys(t, rsaJWK("r1", &k.rsa.PublicKey, nil), rsaJWK("r2", &k.rsa2.PublicKey, nil)) // the provider rotates
		r1, r2 := f.token(t, jwt.SigningMethodRS256, k.rsa, "r1"), f.token(t, jwt.SigningMethodRS256, k.rsa2, "r2")

		// r1 (cached) and r2 (new) arrive together; r1's refresh is abandoned
		// after its short wait, r2's request carries on with it.
		var wg sync.WaitGroup
		wg.Go(func() { authOK(t, f.a, request(auth.OpStart, "", r1)) })
		f.awaitHits(t, 2)
		var err2 error
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err2 = f.a.Authenticate(ctx, request(auth.OpStart, "", r2))
		})
		f.awaitHits(t, 3)
		release()
		wg.Wait()
		if err2 != nil {
			t.Fatalf("the new key's request: %v", err2)
		}
		f.wantHits(t, 3)
		authOK(t, f.a, request(auth.OpStart, "", r2))
		f.wantHits(t, 3)
	})
}
