package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"carbroker/internal/config"
	"carbroker/internal/fault"
)

// JWT mode, for apps with a login of their own: the caller presents
// "Authorization: Bearer <JWT>" issued by the app's identity provider, and
// acts as the UserId in one of its claims.
//
// Each key verifies one algorithm only: JWT_SECRET HS256, an RSA key RS256,
// an EC P-256 key ES256. Tokens must carry exp; iss and aud are checked when
// JWT_ISSUER and JWT_AUDIENCE are set; nbf and iat are checked when present;
// every time check allows JWT_LEEWAY. Tokens with a "crit" header are
// refused (no extension is understood).
type jwtAuth struct {
	parser *jwt.Parser
	keys   keySource
	claim  string
	hash   bool
}

// pinnedKey is a verification key and the one algorithm it may verify.
type pinnedKey struct {
	alg string
	key any
}

// keySource finds the key for a token's kid and alg; its errors are
// *fault.Error.
type keySource interface {
	keyFor(ctx context.Context, kid, alg string) (any, error)
}

// staticKey is the only key there is (JWT_SECRET or JWT_PUBLIC_KEY); it
// ignores kid.
type staticKey pinnedKey

func (k staticKey) keyFor(_ context.Context, _, alg string) (any, error) {
	if alg != k.alg {
		return nil, unauthenticated("invalid token")
	}
	return k.key, nil
}

func newJWTAuth(cfg config.Auth, opts Options) (*jwtAuth, error) {
	var src keySource
	var algs []string
	n := 0
	if len(cfg.JWTSecret) > 0 {
		n++
		src, algs = staticKey{alg: "HS256", key: cfg.JWTSecret}, []string{"HS256"}
	}
	if cfg.JWTPublicKey != "" {
		n++
		k, err := parsePublicKeyPEM(cfg.JWTPublicKey)
		if err != nil {
			return nil, err
		}
		src, algs = staticKey(k), []string{k.alg}
	}
	if cfg.JWTJWKSURL != "" {
		n++
		src, algs = newJWKS(cfg.JWTJWKSURL, opts), []string{"RS256", "ES256"}
	}
	if n != 1 {
		return nil, errors.New("auth: jwt mode needs exactly one of JWT_SECRET, JWT_JWKS_URL, JWT_PUBLIC_KEY")
	}
	po := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.JWTLeeway),
		jwt.WithTimeFunc(opts.Now),
		jwt.WithStrictDecoding(),
	}
	if cfg.JWTIssuer != "" {
		po = append(po, jwt.WithIssuer(cfg.JWTIssuer))
	}
	if cfg.JWTAudience != "" {
		po = append(po, jwt.WithAudience(cfg.JWTAudience))
	}
	claim := cfg.JWTUserClaim
	if claim == "" {
		claim = "sub"
	}
	return &jwtAuth{parser: jwt.NewParser(po...), keys: src, claim: claim, hash: cfg.JWTHashUserID}, nil
}

func (a *jwtAuth) Authenticate(ctx context.Context, r Request) (Identity, error) {
	tok, present, err := bearer(r.Header)
	if err != nil {
		return Identity{}, err
	}
	if !present {
		return Identity{}, unauthenticated("missing token: send Authorization: Bearer <JWT>")
	}
	claims := jwt.MapClaims{}
	_, err = a.parser.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, errors.New("crit header not supported")
		}
		kid, ok := t.Header["kid"].(string)
		if _, present := t.Header["kid"]; present && !ok {
			return nil, errors.New("kid is not a string")
		}
		return a.keys.keyFor(ctx, kid, t.Method.Alg())
	})
	if err != nil {
		return Identity{}, jwtRefusal(err)
	}
	id, err := a.userID(claims)
	if err != nil {
		return Identity{}, err
	}
	if r.UserID != "" && r.UserID != id {
		return Identity{}, forbidden("the token is for another UserId")
	}
	return Identity{UserID: id}, nil
}

func (*jwtAuth) Credential(Identity) (string, error) { return "", nil }

// jwtRefusal turns a parse error into a fault: a key source's own fault
// (e.g. Unavailable when the JWKS cannot be fetched) as it is, anything else
// Unauthenticated with a hint that names no part of the token.
func jwtRefusal(err error) error {
	var fe *fault.Error
	if errors.As(err, &fe) && fe.Kind != fault.Unauthenticated {
		return fe
	}
	msg := "invalid token"
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		msg = "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		msg = "token not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		msg = "token has the wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		msg = "token has the wrong audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		msg = "token lacks a required claim (exp, or iss/aud when configured)"
	}
	return fault.Wrap(fault.Unauthenticated, msg, err)
}

// userID maps the user claim to a UserId.
func (a *jwtAuth) userID(claims jwt.MapClaims) (string, error) {
	v, ok := claims[a.claim].(string)
	switch {
	case !ok || v == "":
		return "", unauthenticated("the token has no string " + a.claim + " claim")
	case validUserID(v):
		if a.hash && isHashedUserID(v) {
			// Reserved, or a user able to choose this claim could take the
			// UserId of one whose claim hashes to it.
			return "", unauthenticated("the token's user id has the reserved form of a hashed id")
		}
		return v, nil
	case a.hash:
		return HashUserID(v), nil
	}
	return "", unauthenticated("the token's user id is not a valid UserId (the broker can map it: JWT_HASH_USER_ID=true)")
}

// HashUserID is the UserId of a JWT user claim outside the UserId charset
// [A-Za-z0-9_.@:-]{1,64} (e.g. "auth0|123") when JWT_HASH_USER_ID is on:
// "h-" followed by the lowercase hex of the first 20 bytes of SHA-256 of the
// claim's UTF-8 value, 42 characters in all. The issuer is not hashed in, so
// ids survive a change of JWT_ISSUER; tokens of several issuers sharing one
// key set already share one UserId space, hashed or not. Claims that
// already have this form are refused in hash mode.
func HashUserID(claim string) string {
	sum := sha256.Sum256([]byte(claim))
	return "h-" + hex.EncodeToString(sum[:20])
}

func isHashedUserID(s string) bool {
	if len(s) != 42 || !strings.HasPrefix(s, "h-") {
		return false
	}
	for _, c := range s[2:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// parsePublicKeyPEM reads JWT_PUBLIC_KEY: one PEM block, a PUBLIC KEY (PKIX),
// RSA PUBLIC KEY (PKCS #1) or CERTIFICATE (only its key is used; its dates and
// issuer are not checked).
func parsePublicKeyPEM(s string) (pinnedKey, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil {
		return pinnedKey{}, errors.New("auth: JWT_PUBLIC_KEY is not a PEM block")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return pinnedKey{}, errors.New("auth: JWT_PUBLIC_KEY must hold a single PEM block")
	}
	var pub any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return pinnedKey{}, fmt.Errorf("auth: JWT_PUBLIC_KEY: a %q PEM block is not a public key (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", block.Type)
	}
	if err != nil {
		return pinnedKey{}, fmt.Errorf("auth: JWT_PUBLIC_KEY: %w", err)
	}
	k, err := pin(pub)
	if err != nil {
		return pinnedKey{}, fmt.Errorf("auth: JWT_PUBLIC_KEY: %w", err)
	}
	return k, nil
}

// pin returns pub with its algorithm: RSA (2048 to 8192 bits) RS256, ECDSA
// P-256 ES256; anything else is refused.
func pin(pub any) (pinnedKey, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 8192 {
			return pinnedKey{}, fmt.Errorf("an RSA key of %d bits (want 2048 to 8192)", n)
		}
		return pinnedKey{alg: "RS256", key: k}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return pinnedKey{}, errors.New("an EC key not on P-256 (only ES256 is supported)")
		}
		return pinnedKey{alg: "ES256", key: k}, nil
	}
	return pinnedKey{}, fmt.Errorf("unsupported key type %T (want RSA or EC P-256)", pub)
}
