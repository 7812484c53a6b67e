package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"carbroker/internal/auth"
	"carbroker/internal/config"
	"carbroker/internal/fault"
)

const inviteTTL = time.Hour

// invites returns ticket mode's invites.
func invites(t *testing.T, c *clock, secrets ...[]byte) *auth.Invites {
	t.Helper()
	return invitesIn(t, config.AuthTicket, c, secrets...)
}

func invitesIn(t *testing.T, mode string, c *clock, secrets ...[]byte) *auth.Invites {
	t.Helper()
	v, err := auth.NewInvites(config.Auth{Mode: mode, Secrets: secrets, InviteTTL: inviteTTL}, auth.Options{Now: c.Now})
	if err != nil || v == nil {
		t.Fatalf("NewInvites: %v, %v", v, err)
	}
	return v
}

func mint(t *testing.T, v *auth.Invites, host, role string, ttl time.Duration) string {
	t.Helper()
	tok, _, err := v.Mint(host, role, ttl)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return tok
}

func TestInviteForHostAndRoleOnly(t *testing.T) {
	t.Parallel()
	v := invites(t, newClock(), secretA)
	for _, role := range []string{auth.RolePlayer, auth.RoleViewer} {
		tok := mint(t, v, "host-1", role, 0)
		if got, err := v.Verify(tok, "host-1"); err != nil || got != role {
			t.Errorf("Verify(%s invite) = %q, %v", role, got, err)
		}
		_, err := v.Verify(tok, "host-2")
		wantKind(t, err, fault.Forbidden, tok)
		_, err = v.Verify(tok, "")
		wantKind(t, err, fault.Forbidden, tok)
	}
}

func TestInviteMintRefusesBadInput(t *testing.T) {
	t.Parallel()
	v := invites(t, newClock(), secretA)
	for _, tc := range []struct {
		host, role string
		ttl        time.Duration
	}{
		{"host", "Owner", 0},
		{"host", "player", 0},
		{"host", "", 0},
		{"", auth.RolePlayer, 0},
		{"a b", auth.RolePlayer, 0},
		{strings.Repeat("h", 65), auth.RolePlayer, 0},
		{"host", auth.RolePlayer, -time.Second},
	} {
		_, _, err := v.Mint(tc.host, tc.role, tc.ttl)
		wantKind(t, err, fault.Invalid)
	}
}

func TestInviteLifetime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ttl, want time.Duration
	}{
		{0, inviteTTL},
		{10 * time.Minute, 10 * time.Minute},
		{inviteTTL, inviteTTL},
		{48 * time.Hour, inviteTTL}, // clamped to AUTH_INVITE_TTL
	} {
		c := newClock()
		v := invites(t, c, secretA)
		tok, exp, err := v.Mint("host", auth.RoleViewer, tc.ttl)
		if err != nil {
			t.Fatal(err)
		}
		if !exp.Equal(c.Now().Add(tc.want)) {
			t.Errorf("ttl %v: expires %v, want %v", tc.ttl, exp, c.Now().Add(tc.want))
		}
		c.Advance(tc.want - time.Second)
		if _, err := v.Verify(tok, "host"); err != nil {
			t.Errorf("ttl %v: refused a second before expiry: %v", tc.ttl, err)
		}
		c.Advance(time.Second)
		_, err = v.Verify(tok, "host")
		wantKind(t, err, fault.Forbidden)
	}
}

func TestInviteLoweredTTL(t *testing.T) {
	t.Parallel()
	c := newClock()
	tok := mint(t, invites(t, c, secretA), "host", auth.RolePlayer, 0)
	short, err := auth.NewInvites(config.Auth{Mode: config.AuthTicket, Secrets: [][]byte{secretA}, InviteTTL: 10 * time.Minute}, auth.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	c.Advance(10 * time.Minute)
	_, err = short.Verify(tok, "host")
	wantKind(t, err, fault.Forbidden)
}

func TestInviteRefused(t *testing.T) {
	t.Parallel()
	c := newClock()
	v := invites(t, c, secretA)
	good := mint(t, v, "host", auth.RoleViewer, 0)
	ticket := ticketFor(t, ticketAuth(t, c, secretA), "host")
	for name, tok := range map[string]string{
		"unknown key":   mint(t, invites(t, c, secretC), "host", auth.RoleViewer, 0),
		"a ticket":      ticket,
		"empty":         "",
		"trailing junk": good + "A",
		"no mac":        strings.Split(good, ".")[0],
		"garbage":       "x.y",
	} {
		_, err := v.Verify(tok, "host")
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		wantKind(t, err, fault.Forbidden, tok)
	}
	// A Viewer invite cannot be turned into a Player one: every one-character
	// change is refused.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
	for i := range len(good) {
		ch := alphabet[(strings.IndexByte(alphabet, good[i])+1)%len(alphabet)]
		if role, err := v.Verify(good[:i]+string(ch)+good[i+1:], "host"); err == nil {
			t.Fatalf("tampered invite (position %d) accepted as %s", i, role)
		}
	}
	// An invite is not a ticket either.
	authErr(t, ticketAuth(t, c, secretA), request(auth.OpStart, "", good), fault.Unauthenticated)
}

// Security review: an invite minted by a none- or sign-mode function (where
// anyone may name any host) was accepted by a ticket-mode function sharing
// its AUTH_SECRET. Invites exist only where the host is proven, and each
// mode's invites are sealed under their own key.
func TestInviteBoundToMode(t *testing.T) {
	t.Parallel()
	c := newClock()
	for _, mode := range []string{config.AuthNone, config.AuthSign} {
		v, err := auth.NewInvites(config.Auth{Mode: mode, Secrets: [][]byte{secretA}, InviteTTL: inviteTTL}, auth.Options{Now: c.Now})
		if v != nil || !errors.Is(err, auth.ErrInvitesUnsupported) {
			t.Errorf("%s mode: NewInvites = %v, %v; want ErrInvitesUnsupported", mode, v, err)
		}
		if auth.HasInvites(mode) {
			t.Errorf("HasInvites(%s)", mode)
		}
	}
	ticket, jwt := invitesIn(t, config.AuthTicket, c, secretA), invitesIn(t, config.AuthJWT, c, secretA)
	for _, tc := range []struct {
		name         string
		minter, host *auth.Invites
	}{{"jwt invite in ticket mode", jwt, ticket}, {"ticket invite in jwt mode", ticket, jwt}} {
		tok := mint(t, tc.minter, "host", auth.RolePlayer, 0)
		if _, err := tc.minter.Verify(tok, "host"); err != nil {
			t.Fatalf("%s: refused by its own mode: %v", tc.name, err)
		}
		_, err := tc.host.Verify(tok, "host")
		wantKind(t, err, fault.Forbidden, tok)
	}
}

func TestInviteRotation(t *testing.T) {
	t.Parallel()
	c := newClock()
	old := mint(t, invites(t, c, secretA), "host", auth.RolePlayer, 0)
	if _, err := invites(t, c, secretB, secretA).Verify(old, "host"); err != nil {
		t.Errorf("old invite after adding a secret: %v", err)
	}
	_, err := invites(t, c, secretB).Verify(old, "host")
	wantKind(t, err, fault.Forbidden)
}
