package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"carbroker/internal/auth"
	"carbroker/internal/config"
	"carbroker/internal/fault"
)

var hsSecret = []byte("jwt-secret-0123456789-0123456789-0123")

type testKeySet struct {
	rsa, rsa2, rsaSmall *rsa.PrivateKey
	ec, ec2             *ecdsa.PrivateKey
	ec384               *ecdsa.PrivateKey
}

var testKeys = sync.OnceValue(func() testKeySet {
	must := func(k any, err error) any {
		if err != nil {
			panic(err)
		}
		return k
	}
	return testKeySet{
		rsa:      must(rsa.GenerateKey(rand.Reader, 2048)).(*rsa.PrivateKey),
		rsa2:     must(rsa.GenerateKey(rand.Reader, 2048)).(*rsa.PrivateKey),
		rsaSmall: must(rsa.GenerateKey(rand.Reader, 1024)).(*rsa.PrivateKey),
		ec:       must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)).(*ecdsa.PrivateKey),
		ec2:      must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)).(*ecdsa.PrivateKey),
		ec384:    must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)).(*ecdsa.PrivateKey),
	}
})

func pkixPEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// parsePEM is JWT_PUBLIC_KEY as config.Load hands it over.
func parsePEM(t testing.TB, s string) *config.JWTKey {
	t.Helper()
	k, err := config.ParseJWTKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return &k
}

func certPEM(t testing.TB, priv *rsa.PrivateKey) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1e9, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// sign returns a JWT; header entries are added to (or, when nil, removed
// from) the token's header.
func sign(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("signing: %v", err)
	}
	return s
}

func claimsAt(c *clock, extra jwt.MapClaims) jwt.MapClaims {
	cl := jwt.MapClaims{"sub": "alice", "iat": c.Now().Unix(), "exp": c.Now().Add(10 * time.Minute).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(cl, k)
		} else {
			cl[k] = v
		}
	}
	return cl
}

func jwtAuth(t *testing.T, c *clock, cfg config.Auth) auth.Authenticator {
	t.Helper()
	cfg.Mode = config.AuthJWT
	if cfg.JWTLeeway == 0 {
		cfg.JWTLeeway = 30 * time.Second
	}
	return mustNew(t, cfg, auth.Options{Now: c.Now})
}

// staticModes are the JWT configurations with a single key, each with a
// signer for good tokens and the forged tokens it must refuse.
func staticModes(t *testing.T) []struct {
	name   string
	cfg    config.Auth
	method jwt.SigningMethod
	key    any
	forged func(jwt.MapClaims) map[string]string
} {
	k := testKeys()
	rsaPEM := pkixPEM(t, &k.rsa.PublicKey)
	ecPEM := pkixPEM(t, &k.ec.PublicKey)
	rsaDER, _ := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)}))
	rsaForged := func(cl jwt.MapClaims) map[string]string {
		return map[string]string{
			"HS256 with the PEM as secret": sign(t, jwt.SigningMethodHS256, []byte(rsaPEM), cl, nil),
			"HS256 with the DER as secret": sign(t, jwt.SigningMethodHS256, rsaDER, cl, nil),
			"HS256 with the PKCS1 PEM":     sign(t, jwt.SigningMethodHS256, []byte(pkcs1), cl, nil),
			"RS256 by another key":         sign(t, jwt.SigningMethodRS256, k.rsa2, cl, nil),
			"RS384 by the key":             sign(t, jwt.SigningMethodRS384, k.rsa, cl, nil),
			"PS256 by the key":             sign(t, jwt.SigningMethodPS256, k.rsa, cl, nil),
			"ES256":                        sign(t, jwt.SigningMethodES256, k.ec, cl, nil),
			"HS256 with the JWT secret":    sign(t, jwt.SigningMethodHS256, hsSecret, cl, nil),
		}
	}
	type mode = struct {
		name   string
		cfg    config.Auth
		method jwt.SigningMethod
		key    any
		forged func(jwt.MapClaims) map[string]string
	}
	return []mode{
		{"HS256 secret", config.Auth{JWTSecret: hsSecret}, jwt.SigningMethodHS256, hsSecret, func(cl jwt.MapClaims) map[string]string {
			return map[string]string{
				"HS256 with another secret": sign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789-0123456789"), cl, nil),
				"HS384 with the secret":     sign(t, jwt.SigningMethodHS384, hsSecret, cl, nil),
				"HS512 with the secret":     sign(t, jwt.SigningMethodHS512, hsSecret, cl, nil),
				"RS256":                     sign(t, jwt.SigningMethodRS256, k.rsa, cl, nil),
				"ES256":                     sign(t, jwt.SigningMethodES256, k.ec, cl, nil),
			}
		}},
		{"RSA PKIX PEM", config.Auth{JWTPublicKey: parsePEM(t, rsaPEM)}, jwt.SigningMethodRS256, k.rsa, rsaForged},
		{"RSA PKCS1 PEM", config.Auth{JWTPublicKey: parsePEM(t, pkcs1)}, jwt.SigningMethodRS256, k.rsa, rsaForged},
		{"RSA certificate", config.Auth{JWTPublicKey: parsePEM(t, certPEM(t, k.rsa))}, jwt.SigningMethodRS256, k.rsa, rsaForged},
		{"EC P-256 PEM", config.Auth{JWTPublicKey: parsePEM(t, ecPEM)}, jwt.SigningMethodES256, k.ec, func(cl jwt.MapClaims) map[string]string {
			return map[string]string{
				"HS256 with the PEM as secret": sign(t, jwt.SigningMethodHS256, []byte(ecPEM), cl, nil),
				"ES256 by another key":         sign(t, jwt.SigningMethodES256, k.ec2, cl, nil),
				"RS256":                        sign(t, jwt.SigningMethodRS256, k.rsa, cl, nil),
			}
		}},
	}
}

// algNone is an unsigned token.
func algNone(t testing.TB, cl jwt.MapClaims) string {
	return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, cl, nil)
}

func TestJWTStaticKeys(t *testing.T) {
	t.Parallel()
	for _, m := range staticModes(t) {
		t.Run(m.name, func(t *testing.T) {
			c := newClock()
			a := jwtAuth(t, c, m.cfg)
			good := sign(t, m.method, m.key, claimsAt(c, nil), nil)

			if id := authOK(t, a, request(auth.OpStart, "", good)); id.UserID != "alice" || id.Minted {
				t.Fatalf("good token: %+v", id)
			}
			authOK(t, a, request(auth.OpStop, "alice", good))
			authErr(t, a, request(auth.OpStart, "bob", good), fault.Forbidden)
			authErr(t, a, request(auth.OpStart, "alice", ""), fault.Unauthenticated)
			authErr(t, a, request(auth.OpStart, "", ""), fault.Unauthenticated)
			if s, err := a.Credential(auth.Identity{UserID: "alice"}); s != "" || err != nil {
				t.Errorf("Credential = %q, %v", s, err)
			}

			// A token for bob with alice's signature.
			h, _, _ := strings.Cut(good, ".")
			sig := good[strings.LastIndexByte(good, '.')+1:]
			bobClaims := strings.Split(sign(t, m.method, m.key, claimsAt(c, jwt.MapClaims{"sub": "bob"}), nil), ".")[1]

			refused := map[string]string{
				"alg none":                    algNone(t, claimsAt(c, nil)),
				"alg none, alice's signature": strings.TrimSuffix(algNone(t, claimsAt(c, nil)), ".") + "." + sig,
				"claims swapped":              h + "." + bobClaims + "." + sig,
				"signature removed":           strings.TrimSuffix(good, sig),
				"expired":                     sign(t, m.method, m.key, claimsAt(c, jwt.MapClaims{"exp": c.Now().Add(-31 * time.Second).Unix()}), nil),
				"no exp":                      sign(t, m.method, m.key, claimsAt(c, jwt.MapClaims{"exp": nil}), nil),
				"not yet valid":               sign(t, m.method, m.key, claimsAt(c, jwt.MapClaims{"nbf": c.Now().Add(time.Minute).Unix()}), nil),
				"issued in future":            sign(t, m.method, m.key, claimsAt(c, jwt.MapClaims{"iat": c.Now().Add(time.Minute).Unix()}), nil),
				"crit header":                 sign(t, m.method, m.key, claimsAt(c, nil), map[string]any{"crit": []string{"exp"}}),
				"kid not a string":            sign(t, m.method, m.key, claimsAt(c, nil), map[string]any{"kid": 7}),
				"no sub":                      sign(t, m.method, m.key, claimsAt(c, jwt.MapClaims{"sub": nil}), nil),
				"numeric sub":                 sign(t, m.method, m.key, claimsAt(c, jwt.MapClaims{"sub": 42}), nil),
				"sub outside charset":         sign(t, m.method, m.key, claimsAt(c, jwt.MapClaims{"sub": "auth0|123"}), nil),
				"padded segments":             strings.Replace(good, ".", "=.", 1),
				"trailing junk":               good + ".x",
				"garbage":                     "a.b.c",
			}
			for name, tok := range m.forged(claimsAt(c, nil)) {
				refused[name] = tok
			}
			for name, tok := range refused {
				t.Run(name, func(t *testing.T) {
					authErr(t, a, request(auth.OpStart, "", tok), fault.Unauthenticated)
					authErr(t, a, request(auth.OpStart, "alice", tok), fault.Unauthenticated)
				})
			}
		})
	}
}

func TestJWTLeeway(t *testing.T) {
	t.Parallel()
	c := newClock()
	a := jwtAuth(t, c, config.Auth{JWTSecret: hsSecret, JWTLeeway: 30 * time.Second})
	for _, tc := range []struct {
		name   string
		claims jwt.MapClaims
		ok     bool
	}{
		{"expired within leeway", jwt.MapClaims{"exp": c.Now().Add(-29 * time.Second).Unix()}, true},
		{"expired beyond leeway", jwt.MapClaims{"exp": c.Now().Add(-31 * time.Second).Unix()}, false},
		{"nbf within leeway", jwt.MapClaims{"nbf": c.Now().Add(29 * time.Second).Unix()}, true},
		{"nbf beyond leeway", jwt.MapClaims{"nbf": c.Now().Add(31 * time.Second).Unix()}, false},
		{"iat within leeway", jwt.MapClaims{"iat": c.Now().Add(29 * time.Second).Unix()}, true},
		{"iat beyond leeway", jwt.MapClaims{"iat": c.Now().Add(31 * time.Second).Unix()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request(auth.OpStart, "", sign(t, jwt.SigningMethodHS256, hsSecret, claimsAt(c, tc.claims), nil))
			if tc.ok {
				authOK(t, a, r)
			} else {
				authErr(t, a, r, fault.Unauthenticated)
			}
		})
	}
	// The clock moves; the token does not.
	tok := sign(t, jwt.SigningMethodHS256, hsSecret, claimsAt(c, nil), nil)
	c.Advance(10*time.Minute + 29*time.Second)
	authOK(t, a, request(auth.OpStart, "", tok))
	c.Advance(2 * time.Second)
	authErr(t, a, request(auth.OpStart, "", tok), fault.Unauthenticated)
}

func TestJWTIssuerAudience(t *testing.T) {
	t.Parallel()
	c := newClock()
	a := jwtAuth(t, c, config.Auth{JWTSecret: hsSecret, JWTIssuer: "https://idp.example", JWTAudience: "carbroker"})
	for _, tc := range []struct {
		name   string
		claims jwt.MapClaims
		ok     bool
	}{
		{"both match", jwt.MapClaims{"iss": "https://idp.example", "aud": "carbroker"}, true},
		{"audience list", jwt.MapClaims{"iss": "https://idp.example", "aud": []string{"other", "carbroker"}}, true},
		{"wrong issuer", jwt.MapClaims{"iss": "https://evil.example", "aud": "carbroker"}, false},
		{"no issuer", jwt.MapClaims{"aud": "carbroker"}, false},
		{"wrong audience", jwt.MapClaims{"iss": "https://idp.example", "aud": "other"}, false},
		{"no audience", jwt.MapClaims{"iss": "https://idp.example"}, false},
		{"numeric audience", jwt.MapClaims{"iss": "https://idp.example", "aud": 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request(auth.OpStart, "", sign(t, jwt.SigningMethodHS256, hsSecret, claimsAt(c, tc.claims), nil))
			if tc.ok {
				authOK(t, a, r)
			} else {
				authErr(t, a, r, fault.Unauthenticated)
			}
		})
	}
	// Unset, neither is checked.
	open := jwtAuth(t, c, config.Auth{JWTSecret: hsSecret})
	authOK(t, open, request(auth.OpStart, "", sign(t, jwt.SigningMethodHS256, hsSecret, claimsAt(c, jwt.MapClaims{"iss": "any", "aud": "any"}), nil)))
}

func TestJWTUserClaim(t *testing.T) {
	t.Parallel()
	c := newClock()
	a := jwtAuth(t, c, config.Auth{JWTSecret: hsSecret, JWTUserClaim: "uid"})
	tok := func(extra jwt.MapClaims) string {
		return sign(t, jwt.SigningMethodHS256, hsSecret, claimsAt(c, extra), nil)
	}
	if id := authOK(t, a, request(auth.OpStart, "", tok(jwt.MapClaims{"uid": "bob"}))); id.UserID != "bob" {
		t.Errorf("uid claim: %+v", id)
	}
	authErr(t, a, request(auth.OpStart, "", tok(nil)), fault.Unauthenticated) // sub alone is not enough
	authErr(t, a, request(auth.OpStart, "", tok(jwt.MapClaims{"uid": 7})), fault.Unauthenticated)
	authErr(t, a, request(auth.OpStart, "", tok(jwt.MapClaims{"uid": ""})), fault.Unauthenticated)
	authErr(t, a, request(auth.OpStart, "", tok(jwt.MapClaims{"uid": []string{"bob"}})), fault.Unauthenticated)
}

func TestHashUserIDVectors(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"auth0|123":                "h-4043445eadeeeb2a5d885af3c133f60ef57523a1",
		"google-oauth2|1234567890": "h-71ec52a0bc3fee9956e500006d4a89c4dd83d554",
		"用户":                       "h-0d0e1a86b3aa787709b00329fcd32b5baf036c87",
	} {
		if got := auth.HashUserID(in); got != want || !validUserID(got) {
			t.Errorf("HashUserID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestJWTHashedUserIDs(t *testing.T) {
	t.Parallel()
	c := newClock()
	hashed := jwtAuth(t, c, config.Auth{JWTSecret: hsSecret, JWTHashUserID: true})
	plain := jwtAuth(t, c, config.Auth{JWTSecret: hsSecret})
	tok := func(sub string) string {
		return sign(t, jwt.SigningMethodHS256, hsSecret, claimsAt(c, jwt.MapClaims{"sub": sub}), nil)
	}
	reserved := "h-4043445eadeeeb2a5d885af3c133f60ef57523a1"
	long := strings.Repeat("x", 65)

	for _, tc := range []struct {
		sub  string
		a    auth.Authenticator
		want string // "" for refused
	}{
		{"auth0|123", hashed, "h-4043445eadeeeb2a5d885af3c133f60ef57523a1"},
		{"auth0|123", plain, ""},
		{"alice@example.com", hashed, "alice@example.com"},
		{long, hashed, auth.HashUserID(long)},
		{long, plain, ""},
		{reserved, hashed, ""}, // could impersonate auth0|123
		{reserved, plain, reserved},
		{"H-4043445EADEEEB2A5D885AF3C133F60EF57523A1", hashed, "H-4043445EADEEEB2A5D885AF3C133F60EF57523A1"},
	} {
		r := request(auth.OpStart, "", tok(tc.sub))
		if tc.want == "" {
			authErr(t, tc.a, r, fault.Unauthenticated)
			continue
		}
		if id := authOK(t, tc.a, r); id.UserID != tc.want {
			t.Errorf("sub %q: UserId %q, want %q", tc.sub, id.UserID, tc.want)
		}
	}
	// The body names the mapped id, never the raw claim.
	authOK(t, hashed, request(auth.OpStart, "h-4043445eadeeeb2a5d885af3c133f60ef57523a1", tok("auth0|123")))
	authErr(t, hashed, request(auth.OpStart, "auth0|123", tok("auth0|123")), fault.Forbidden)
}
