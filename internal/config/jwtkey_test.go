package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"strings"
	"testing"

	"carbroker/internal/config"
)

func pkixPEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestParsePEM(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, c := range map[string]struct {
		pem, alg string
	}{
		"RSA PKIX":  {pkixPEM(t, &rsaKey.PublicKey), "RS256"},
		"RSA PKCS1": {string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey.PublicKey)})), "RS256"},
		"EC P-256":  {pkixPEM(t, &ecKey.PublicKey), "ES256"},
	} {
		k, err := config.ParseJWTKey(c.pem)
		if err != nil || k.Alg != c.alg {
			t.Errorf("%s: %+v %v", name, k, err)
		}
	}
}

func TestParsePEMRefuses(t *testing.T) {
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	privDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	for name, p := range map[string]string{
		"RSA 1024":       pkixPEM(t, &small.PublicKey),
		"EC P-384":       pkixPEM(t, &p384.PublicKey),
		"a private key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})),
		"two blocks":     pkixPEM(t, &rsaKey.PublicKey) + pkixPEM(t, &p256.PublicKey),
		"garbage inside": "-----BEGIN PUBLIC KEY-----\n" + base64.StdEncoding.EncodeToString([]byte("junk")) + "\n-----END PUBLIC KEY-----\n",
		"not PEM":        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
	} {
		_, err := config.ParseJWTKey(p)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "MII") {
			t.Errorf("%s: error echoes the key: %v", name, err)
		}
	}
}

func FuzzParsePEM(f *testing.F) {
	f.Add("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n")
	f.Add("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
	f.Add("junk")
	f.Fuzz(func(t *testing.T, s string) {
		if k, err := config.ParseJWTKey(s); err == nil && k.Alg != "RS256" && k.Alg != "ES256" {
			t.Fatalf("pinned to %q", k.Alg)
		}
	})
}
