package auth_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"carbroker/internal/auth"
	"carbroker/internal/config"
	"carbroker/internal/fault"
)

const ticketTTL = 24 * time.Hour

func ticketAuth(t *testing.T, c *clock, secrets ...[]byte) auth.Authenticator {
	t.Helper()
	return mustNew(t, config.Auth{Mode: config.AuthTicket, Secrets: secrets, TicketTTL: ticketTTL, InviteTTL: time.Hour}, auth.Options{Now: c.Now})
}

func ticketFor(t *testing.T, a auth.Authenticator, userID string) string {
	t.Helper()
	tok, err := a.Credential(auth.Identity{UserID: userID})
	if err != nil || tok == "" {
		t.Fatalf("Credential(%q) = %q, %v", userID, tok, err)
	}
	return tok
}

func TestTicketMint(t *testing.T) {
	t.Parallel()
	a := ticketAuth(t, newClock(), secretA)
	seen := map[string]bool{}
	for range 1000 {
		id := authOK(t, a, request(auth.OpStart, "", ""))
		if !id.Minted || !validUserID(id.UserID) || !strings.HasPrefix(id.UserID, "u-") || len(id.UserID) != 28 {
			t.Fatalf("minted %+v: want Minted and u- plus 26 charset-valid characters", id)
		}
		if seen[id.UserID] {
			t.Fatalf("minted %q twice", id.UserID)
		}
		seen[id.UserID] = true
		// The minted id gets a ticket that works.
		tok := ticketFor(t, a, id.UserID)
		if got := authOK(t, a, request(auth.OpStop, "", tok)); got.UserID != id.UserID || got.Minted {
			t.Fatalf("ticket for minted id yields %+v", got)
		}
	}
}

func TestTicketMintRandomness(t *testing.T) {
	t.Parallel()
	// A deterministic source gives a known id; a failing one an Internal error.
	a := mustNew(t, config.Auth{Mode: config.AuthTicket, Secrets: [][]byte{secretA}, TicketTTL: ticketTTL},
		auth.Options{Rand: bytes.NewReader(make([]byte, 16))})
	if id := authOK(t, a, request(auth.OpStart, "", "")); id.UserID != "u-aaaaaaaaaaaaaaaaaaaaaaaaaa" {
		t.Fatalf("zero bytes minted %q", id.UserID)
	}
	authErr(t, a, request(auth.OpStart, "", ""), fault.Internal) // the reader is exhausted
}

func TestTicketActsOnlyAsItsUser(t *testing.T) {
	t.Parallel()
	c := newClock()
	a := ticketAuth(t, c, secretA)
	alice := ticketFor(t, a, "alice")
	for _, op := range []auth.Op{auth.OpStart, auth.OpStop, auth.OpInvite} {
		if id := authOK(t, a, request(op, "", alice)); id.UserID != "alice" || id.Minted {
			t.Errorf("op %d without UserId: %+v", op, id)
		}
		if id := authOK(t, a, request(op, "alice", alice)); id.UserID != "alice" {
			t.Errorf("op %d with own UserId: %+v", op, id)
		}
		authErr(t, a, request(op, "bob", alice), fault.Forbidden)
		// A UserId without a ticket is never trusted, and only OpStart mints.
		authErr(t, a, request(op, "bob", ""), fault.Unauthenticated)
		if op != auth.OpStart {
			authErr(t, a, request(op, "", ""), fault.Unauthenticated)
		}
	}
}

func TestTicketRefused(t *testing.T) {
	t.Parallel()
	c := newClock()
	a := ticketAuth(t, c, secretA)
	good := ticketFor(t, a, "alice")
	other := ticketFor(t, ticketAuth(t, c, secretC), "alice")
	invites, err := auth.NewInvites(config.Auth{Mode: config.AuthTicket, Secrets: [][]byte{secretA}, InviteTTL: time.Hour}, auth.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	invite, _, err := invites.Mint("alice", auth.RolePlayer, 0)
	if err != nil {
		t.Fatal(err)
	}
	payload, mac, _ := strings.Cut(good, ".")
	for name, tok := range map[string]string{
		"unknown key":         other,
		"an invite":           invite,
		"no dot":              payload + mac,
		"two dots":            good + ".x",
		"trailing junk":       good + "A",
		"padding":             good + "=",
		"newline in payload":  payload[:10] + "\n" + payload[10:] + "." + mac,
		"std base64 alphabet": strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+",
		"truncated mac":       good[:len(good)-1],
		"truncated payload":   payload[1:] + "." + mac,
		"empty payload":       "." + mac,
		"swapped halves":      mac + "." + payload,
		"garbage":             "not-a-ticket",
		"mac of other ticket": payload + "." + strings.SplitN(ticketFor(t, a, "bob"), ".", 2)[1],
	} {
		t.Run(name, func(t *testing.T) {
			authErr(t, a, request(auth.OpStart, "", tok), fault.Unauthenticated)
			authErr(t, a, request(auth.OpStop, "alice", tok), fault.Unauthenticated)
		})
	}
	// Every single-character change is refused.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
	for i := range len(good) {
		for _, ch := range []byte{alphabet[(strings.IndexByte(alphabet, good[i])+1)%len(alphabet)], alphabet[(strings.IndexByte(alphabet, good[i])+33)%len(alphabet)]} {
			tampered := good[:i] + string(ch) + good[i+1:]
			if _, err := a.Authenticate(context.Background(), request(auth.OpStart, "", tampered)); err == nil {
				t.Fatalf("tampered ticket (position %d) accepted", i)
			} else {
				wantKind(t, err, fault.Unauthenticated, tampered)
			}
		}
	}
}

func TestTicketAuthorizationHeader(t *testing.T) {
	t.Parallel()
	a := ticketAuth(t, newClock(), secretA)
	tok := ticketFor(t, a, "alice")
	for _, v := range []string{"bearer " + tok, "BEARER " + tok, "  Bearer " + tok + " "} {
		h := http.Header{"Authorization": {v}}
		if id := authOK(t, a, auth.Request{Op: auth.OpStop, Header: h}); id.UserID != "alice" {
			t.Errorf("%q: %+v", v, id)
		}
	}
	for _, h := range []http.Header{
		{"Authorization": {"Basic " + tok}},
		{"Authorization": {"Bearer"}},
		{"Authorization": {"Bearer  " + tok}},
		{"Authorization": {"Bearer " + tok + " x"}},
		{"Authorization": {tok}},
		{"Authorization": {"Bearer " + tok, "Bearer " + tok}},
		{"Authorization": {"Bearer " + strings.Repeat("A", 9000)}},
	} {
		authErr(t, a, auth.Request{Op: auth.OpStart, Header: h}, fault.Unauthenticated)
	}
	// A blank header is no header: OpStart mints.
	if id := authOK(t, a, auth.Request{Op: auth.OpStart, Header: http.Header{"Authorization": {" "}}}); !id.Minted {
		t.Errorf("blank Authorization: %+v", id)
	}
}

func TestTicketExpiry(t *testing.T) {
	t.Parallel()
	c := newClock()
	a := ticketAuth(t, c, secretA)
	tok := ticketFor(t, a, "alice")
	c.Advance(ticketTTL - time.Second)
	authOK(t, a, request(auth.OpStart, "", tok))
	c.Advance(time.Second)
	authErr(t, a, request(auth.OpStart, "", tok), fault.Unauthenticated)

	// Issued more than a minute in the future (a clock far ahead): refused.
	c2 := newClock()
	c2.Advance(2 * time.Minute)
	future := ticketFor(t, ticketAuth(t, c2, secretA), "alice")
	authErr(t, ticketAuth(t, newClock(), secretA), request(auth.OpStart, "", future), fault.Unauthenticated)
	c3 := newClock()
	c3.Advance(time.Minute)
	authOK(t, ticketAuth(t, newClock(), secretA), request(auth.OpStart, "", ticketFor(t, ticketAuth(t, c3, secretA), "alice")))
}

func TestTicketSlidingRefresh(t *testing.T) {
	t.Parallel()
	c := newClock()
	a := ticketAuth(t, c, secretA)
	tok := ticketFor(t, a, "alice")
	// Each visit before expiry yields a fresh ticket that lives TTL from now.
	for range 5 {
		c.Advance(ticketTTL - time.Minute)
		id := authOK(t, a, request(auth.OpStart, "", tok))
		next, err := a.Credential(id)
		if err != nil {
			t.Fatal(err)
		}
		if next == tok {
			t.Fatal("Credential returned the same ticket")
		}
		tok = next
	}
	c.Advance(ticketTTL - time.Minute)
	authOK(t, a, request(auth.OpStart, "", tok))
	c.Advance(time.Minute)
	authErr(t, a, request(auth.OpStart, "", tok), fault.Unauthenticated)
}

func TestTicketLoweredTTL(t *testing.T) {
	t.Parallel()
	c := newClock()
	tok := ticketFor(t, ticketAuth(t, c, secretA), "alice")
	short := mustNew(t, config.Auth{Mode: config.AuthTicket, Secrets: [][]byte{secretA}, TicketTTL: time.Hour}, auth.Options{Now: c.Now})
	c.Advance(time.Hour - time.Second)
	authOK(t, short, request(auth.OpStart, "", tok))
	c.Advance(time.Second)
	authErr(t, short, request(auth.OpStart, "", tok), fault.Unauthenticated)
}

func TestTicketRotation(t *testing.T) {
	t.Parallel()
	c := newClock()
	old := ticketFor(t, ticketAuth(t, c, secretA), "alice")

	// B added in front: B signs, A still verifies.
	rotated := ticketAuth(t, c, secretB, secretA)
	authOK(t, rotated, request(auth.OpStart, "alice", old))
	fresh := ticketFor(t, rotated, "alice")
	authOK(t, ticketAuth(t, c, secretB), request(auth.OpStart, "alice", fresh))
	authErr(t, ticketAuth(t, c, secretA), request(auth.OpStart, "alice", fresh), fault.Unauthenticated)

	// A removed: its tickets are revoked.
	authErr(t, ticketAuth(t, c, secretB), request(auth.OpStart, "alice", old), fault.Unauthenticated)
}

// TestTicketFormat pins the documented format by building a ticket by hand.
func TestTicketFormat(t *testing.T) {
	t.Parallel()
	c := newClock()
	a := ticketAuth(t, c, secretA)
	key := hmac.New(sha256.New, secretA)
	key.Write([]byte("carbroker/ticket/v1"))
	m := hmac.New(sha256.New, key.Sum(nil))
	iat := c.Now().Unix()
	p := []byte{0x01}
	p = binary.BigEndian.AppendUint64(p, uint64(iat))
	p = binary.BigEndian.AppendUint64(p, uint64(iat+int64(ticketTTL/time.Second)))
	p = append(p, byte(len("alice")))
	p = append(p, "alice"...)
	m.Write(p)
	want := base64.RawURLEncoding.EncodeToString(p) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	if got := ticketFor(t, a, "alice"); got != want {
		t.Fatalf("ticket\n%s, want\n%s", got, want)
	}
	minted := ticketFor(t, a, "u-aaaaaaaaaaaaaaaaaaaaaaaaaa")
	if len(minted) != 106 {
		t.Errorf("ticket of a minted id has %d characters, want 106", len(minted))
	}
}

func TestTicketCredentialRefusesBadUserID(t *testing.T) {
	t.Parallel()
	a := ticketAuth(t, newClock(), secretA)
	for _, id := range []string{"", "a b", strings.Repeat("x", 65), "auth0|1"} {
		if _, err := a.Credential(auth.Identity{UserID: id}); err == nil {
			t.Errorf("Credential(%q) succeeded", id)
		}
	}
}

// New takes a configuration config.Load validated (config's tests refuse
// the rest); it refuses only a mode it does not know.
func TestNewRefusesAnUnknownMode(t *testing.T) {
	t.Parallel()
	if _, err := auth.New(config.Auth{Mode: "magic"}, auth.Options{}); err == nil {
		t.Error("New succeeded")
	}
	if _, err := auth.NewInvites(config.Auth{Mode: config.AuthTicket, InviteTTL: time.Hour}, auth.Options{}); !errors.Is(err, auth.ErrInvitesUnconfigured) {
		t.Errorf("NewInvites without secrets: %v", err)
	}
}

func TestNone(t *testing.T) {
	t.Parallel()
	a := mustNew(t, config.Auth{Mode: config.AuthNone}, auth.Options{})
	if id := authOK(t, a, request(auth.OpStart, "anyone", "")); id.UserID != "anyone" || id.Minted {
		t.Errorf("none: %+v", id)
	}
	authErr(t, a, request(auth.OpStart, "", ""), fault.Invalid)
	if s, err := a.Credential(auth.Identity{UserID: "anyone"}); s != "" || err != nil {
		t.Errorf("Credential = %q, %v", s, err)
	}
}
