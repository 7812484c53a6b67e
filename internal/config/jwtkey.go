package config

// What a JWT verification key may be: an RSA key of 2048 to 8192 bits,
// which verifies RS256 only, or an EC P-256 key, which verifies ES256 only.
// Load reads JWT_PUBLIC_KEY with it (so its problems are reported with the
// others); auth pins the keys of a JWKS document with it.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// JWTKey is a verification key and the one algorithm it may verify.
type JWTKey struct {
	Alg string // "RS256" or "ES256"
	Key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

// ParseJWTKey reads one PEM block: a PUBLIC KEY (PKIX), an RSA PUBLIC KEY
// (PKCS #1) or a CERTIFICATE, whose key must be one PinJWTKey accepts. Its errors
// never echo the input.
func ParseJWTKey(s string) (JWTKey, error) {
	block, rest := pem.Decode([]byte(s))
	if block == nil {
		return JWTKey{}, errors.New("not a PEM block")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return JWTKey{}, errors.New("must hold a single PEM block")
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
		return JWTKey{}, fmt.Errorf("a %q PEM block is not a public key (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", safeType(block.Type))
	}
	if err != nil {
		return JWTKey{}, err
	}
	return PinJWTKey(pub)
}

// PinJWTKey returns pub with its algorithm: RSA (2048 to 8192 bits) RS256, ECDSA
// P-256 ES256; anything else is refused.
func PinJWTKey(pub any) (JWTKey, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 8192 {
			return JWTKey{}, fmt.Errorf("an RSA key of %d bits (want 2048 to 8192)", n)
		}
		return JWTKey{Alg: "RS256", Key: k}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return JWTKey{}, errors.New("an EC key not on P-256 (only ES256 is supported)")
		}
		return JWTKey{Alg: "ES256", Key: k}, nil
	}
	return JWTKey{}, fmt.Errorf("unsupported key type %T (want RSA or EC P-256)", pub)
}

// safeType renders a PEM block type for a message.
func safeType(t string) string {
	if len(t) > 40 {
		return t[:40] + "…"
	}
	return t
}
