package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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

// newJWTAuth builds jwt mode from exactly one key source, as config.Load
// guarantees.
func newJWTAuth(cfg config.Auth, opts Options) *jwtAuth {
	var src keySource
	var algs []string
	switch {
	case len(cfg.JWTSecret) > 0:
		src, algs = staticKey{alg: "HS256", key: cfg.JWTSecret}, []string{"HS256"}
	case cfg.JWTPublicKey != nil:
		src, algs = staticKey{alg: cfg.JWTPublicKey.Alg, key: cfg.JWTPublicKey.Key}, []string{cfg.JWTPublicKey.Alg}
	default:
		src, algs = newJWKS(cfg.JWTJWKSURL, opts), []string{"RS256", "ES256"}
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
	return &jwtAuth{parser: jwt.NewParser(po...), keys: src, claim: cfg.JWTUserClaim, hash: cfg.JWTHashUserID}
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
	case ValidUserID(v):
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

// pin returns pub with the one algorithm it may verify (see config.PinJWTKey).
func pin(pub any) (pinnedKey, error) {
	k, err := config.PinJWTKey(pub)
	return pinnedKey{alg: k.Alg, key: k.Key}, err
}
