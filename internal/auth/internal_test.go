package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"carbroker/internal/fault"
)

func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","e":"AQAB","n":"` + strings.Repeat("A", 342) + `"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		keys, err := parseJWKS(doc)
		if err != nil {
			return
		}
		for id, k := range keys {
			switch k.(type) {
			case *rsa.PublicKey:
				if id.alg != "RS256" {
					t.Fatalf("RSA key pinned to %s", id.alg)
				}
			case *ecdsa.PublicKey:
				if id.alg != "ES256" {
					t.Fatalf("EC key pinned to %s", id.alg)
				}
			default:
				t.Fatalf("key of type %T", k)
			}
		}
	})
}

// FuzzCompareUTF16 checks the demo's key order against a reference built on
// unicode/utf16.
func FuzzCompareUTF16(f *testing.F) {
	f.Add("😀", "！")
	f.Add("a", "B")
	f.Add("ab", "a")
	f.Add("\xff", "\xfe")
	f.Fuzz(func(t *testing.T, a, b string) {
		got := compareUTF16(a, b)
		if got != -compareUTF16(b, a) || (got == 0) != (a == b) {
			t.Fatalf("compareUTF16(%q, %q) = %d: not a total order", a, b, got)
		}
		if utf8.ValidString(a) && utf8.ValidString(b) {
			want := slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
			if want != 0 && got != want {
				t.Fatalf("compareUTF16(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	})
}

func TestStaticKeyPinsAlgorithm(t *testing.T) {
	t.Parallel()
	k := staticKey{alg: "RS256", key: &rsa.PublicKey{}}
	for _, alg := range []string{"HS256", "ES256", "PS256", "none", ""} {
		if _, err := k.keyFor(context.Background(), "", alg); err == nil {
			t.Errorf("RS256 key handed out for %s", alg)
		}
	}
}

func TestLive(t *testing.T) {
	t.Parallel()
	const ttl = 100
	for _, tc := range []struct {
		iat, exp, now int64
		want          bool
	}{
		{1000, 1100, 1000, true},
		{1000, 1100, 1099, true},
		{1000, 1100, 1100, false},
		{1000, 1200, 1100, false}, // the configured lifetime is shorter than exp
		{1100, 1000, 1050, false}, // exp before iat
		{1061, 1100, 1000, false}, // issued over a minute ahead
		{1060, 1100, 1000, true},
		{-5, 10, 0, false},
	} {
		if got := live(tc.iat, tc.exp, tc.now, ttl); got != tc.want {
			t.Errorf("live(%d, %d, %d) = %v", tc.iat, tc.exp, tc.now, got)
		}
	}
}

// TestSealedPayloadStrict signs malformed payloads with the right key: the
// MAC holds, the layout does not, and they are refused.
func TestSealedPayloadStrict(t *testing.T) {
	t.Parallel()
	secrets := [][]byte{[]byte("secret-A-0123456789-0123456789-0123456789")}
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	tickets := &ticketAuth{seal: newSealer(secrets, ticketKind, "ticket"), ttl: time.Hour, now: clock}
	invites := &Invites{seal: newSealer(secrets, inviteKind, "invite/ticket"), maxTTL: time.Hour, now: clock}
	iat, exp := now.Unix(), now.Unix()+60

	ticket := func(id string, extra ...byte) []byte {
		p := putTime(putTime([]byte{ticketKind}, iat), exp)
		return append(putString(p, id), extra...)
	}
	if _, ok := tickets.open(tickets.seal.seal(ticket("alice"))); !ok {
		t.Fatal("well-formed ticket refused")
	}
	for name, p := range map[string][]byte{
		"trailing byte":    ticket("alice", 0),
		"length too long":  append(putTime(putTime([]byte{ticketKind}, iat), exp), 9, 'a'),
		"no UserId":        ticket(""),
		"UserId charset":   ticket("a|b"),
		"kind only":        {ticketKind},
		"times cut short":  {ticketKind, 0, 0, 0},
		"UserId too long":  ticket(strings.Repeat("a", 65)),
		"expired":          putString(putTime(putTime([]byte{ticketKind}, iat-120), iat-60), "alice"),
		"exp before iat":   putString(putTime(putTime([]byte{ticketKind}, iat), iat-1), "alice"),
		"a larger payload": append(ticket("alice"), make([]byte, 200)...),
		"an invite's kind": append([]byte{inviteKind}, ticket("alice")[1:]...),
	} {
		if id, ok := tickets.open(tickets.seal.seal(p)); ok {
			t.Errorf("%s: accepted as %q", name, id)
		}
	}

	invite := func(role byte, host string, extra ...byte) []byte {
		p := append(putTime(putTime([]byte{inviteKind}, iat), exp), role)
		return append(putString(p, host), extra...)
	}
	if role, err := invites.Verify(invites.seal.seal(invite(2, "host")), "host"); err != nil || role != RoleViewer {
		t.Fatalf("well-formed invite: %q, %v", role, err)
	}
	for name, p := range map[string][]byte{
		"role 0":        invite(0, "host"),
		"role 3":        invite(3, "host"),
		"trailing byte": invite(1, "host", 0),
		"no host":       invite(1, ""),
		"bad host":      invite(1, "h st"),
		"no role":       putString(putTime(putTime([]byte{inviteKind}, iat), exp), "host"),
	} {
		_, err := invites.Verify(invites.seal.seal(p), "host")
		if fault.KindOf(err) != fault.Forbidden {
			t.Errorf("%s: %v, want Forbidden", name, err)
		}
	}
}

func TestDefaultClientRedirects(t *testing.T) {
	t.Parallel()
	req := func(u string) *http.Request {
		r, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	first := []*http.Request{req("https://idp.example/jwks")}
	if err := sameScheme(req("https://cdn.example/jwks"), first); err != nil {
		t.Errorf("https to https: %v", err)
	}
	if err := sameScheme(req("http://cdn.example/jwks"), first); err == nil {
		t.Error("https to http followed")
	}
	if err := sameScheme(req("https://x/"), slices.Repeat(first, 5)); err == nil {
		t.Error("sixth redirect followed")
	}
	// Plain http is allowed only to a loopback host: a redirect must not
	// carry it anywhere else.
	local := []*http.Request{req("http://127.0.0.1:8080/jwks")}
	if err := sameScheme(req("http://evil.example/jwks"), local); err == nil {
		t.Error("plain-http redirect from loopback to another host followed")
	}
	if err := sameScheme(req("http://127.0.0.1:8080/keys"), local); err != nil {
		t.Errorf("plain-http redirect on the same host: %v", err)
	}
	if c := (Options{}).withDefaults().HTTPClient; c.CheckRedirect == nil || c.Timeout != 5*time.Second ||
		!c.Transport.(*http.Transport).DisableKeepAlives {
		t.Errorf("default client: %+v", c)
	}
}
