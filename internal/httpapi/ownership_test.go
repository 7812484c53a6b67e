package httpapi_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"carbroker/internal/auth"
	"carbroker/internal/dev/caremu"
)

const (
	secretOld = "old-secret-0123456789abcdef0123456789"
	secretNew = "new-secret-0123456789abcdef0123456789"
	jwtSecret = "jwt-secret-0123456789abcdef0123456789"
	signSalt  = "demo-salt"
)

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// noCAR fails the test if the requests made in f called CAR.
func (e *env) noCAR(what string, f func()) {
	e.t.Helper()
	before := e.carCalls("")
	f()
	if n := e.carCalls("") - before; n != 0 {
		e.t.Errorf("%s: %d CAR calls for a refused request", what, n)
	}
}

func TestTicketMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, map[string]string{"AUTH_MODE": "ticket", "AUTH_SECRET": secretNew, "AUTH_TICKET_TTL": "1h"})

	// A new app user: no ticket, no UserId → a server-chosen UserId and a ticket.
	first := e.do("POST", "/session", `{"ClientSession":"cs"}`)
	user, ticket := first.str("UserId"), first.str("Ticket")
	if first.Status != 200 || len(user) < 24 || ticket == "" {
		t.Fatalf("minting start: %d %s", first.Status, first.Raw)
	}
	other := e.do("POST", "/session", `{"ClientSession":"cs"}`)
	if other.str("UserId") == user {
		t.Fatal("two minted UserIds are equal")
	}
	slot := e.slot(user).ID

	// Resume with the ticket: same user, same concurrency, a refreshed ticket.
	e.travel(30 * time.Minute)
	again := e.do("POST", "/session", `{"ClientSession":"cs"}`, bearer(ticket)...)
	if again.Status != 200 || again.str("UserId") != user || e.slot(user).ID != slot || again.str("Ticket") == "" {
		t.Fatalf("resume: %d %s", again.Status, again.Raw)
	}
	refreshed := again.str("Ticket")

	victim := other.str("UserId")
	e.noCAR("take over", func() {
		if r := e.do("POST", "/session", `{"UserId":"`+victim+`","ClientSession":"cs"}`, bearer(ticket)...); r.Status != 403 {
			t.Errorf("start as another user with my ticket: %d %s", r.Status, r.Raw)
		}
		if r := e.do("POST", "/session", `{"UserId":"`+victim+`","ClientSession":"cs"}`); r.Status != 401 {
			t.Errorf("start as another user without a ticket: %d %s", r.Status, r.Raw)
		}
		if r := e.do("DELETE", "/session", `{"UserId":"`+victim+`"}`, bearer(ticket)...); r.Status != 403 {
			t.Errorf("stop another user: %d %s", r.Status, r.Raw)
		}
		if r := e.do("DELETE", "/session?UserId="+victim, ``); r.Status != 401 {
			t.Errorf("stop without a ticket: %d %s", r.Status, r.Raw)
		}
		if r := e.do("POST", "/StopProject", `{"UserId":"`+victim+`"}`); r.str("Code") != "10000" {
			t.Errorf("compat stop without a ticket: %s", r.Raw)
		}
		tampered := ticket[:len(ticket)-2] + flip(ticket[len(ticket)-2:])
		if r := e.do("POST", "/session", `{"ClientSession":"cs"}`, bearer(tampered)...); r.Status != 401 {
			t.Errorf("tampered ticket: %d %s", r.Status, r.Raw)
		}
		if r := e.do("POST", "/session", `{"ClientSession":"cs"}`, "Authorization", "Basic abc"); r.Status != 401 {
			t.Errorf("not a bearer: %d %s", r.Status, r.Raw)
		}
	})

	// The first ticket expires an hour after issue; the refreshed one slides.
	e.travel(45 * time.Minute)
	e.noCAR("expired", func() {
		if r := e.do("POST", "/session", `{"ClientSession":"cs"}`, bearer(ticket)...); r.Status != 401 {
			t.Errorf("expired ticket: %d %s", r.Status, r.Raw)
		}
	})
	if r := e.do("DELETE", "/session", ``, bearer(refreshed)...); r.Status != 200 || r.str("UserId") != user {
		t.Fatalf("stop own session with the refreshed ticket: %d %s", r.Status, r.Raw)
	}
	if s := e.slot(user); s.State != caremu.Stopping {
		t.Errorf("own session is %s after stop", s.State)
	}
	if s := e.slot(victim); s.State != caremu.Session {
		t.Errorf("the victim's session is %s", s.State)
	}
}

func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func TestTicketRotation(t *testing.T) {
	t.Parallel()
	old := newEnv(t, caremu.Options{}, map[string]string{"AUTH_MODE": "ticket", "AUTH_SECRET": secretOld})
	r := old.do("POST", "/session", `{"ClientSession":"cs"}`)
	ticket := r.str("Ticket")

	// New secret first (it signs), old still listed: old tickets still work
	// and the reply carries a ticket signed by the new secret.
	both := newEnv(t, caremu.Options{}, map[string]string{"AUTH_MODE": "ticket", "AUTH_SECRET": secretNew + "," + secretOld})
	r2 := both.do("POST", "/session", `{"ClientSession":"cs"}`, bearer(ticket)...)
	if r2.Status != 200 || r2.str("UserId") != r.str("UserId") {
		t.Fatalf("old ticket during rotation: %d %s", r2.Status, r2.Raw)
	}
	// Old secret removed: its tickets are revoked, the re-issued one works.
	only := newEnv(t, caremu.Options{}, map[string]string{"AUTH_MODE": "ticket", "AUTH_SECRET": secretNew})
	only.noCAR("revoked", func() {
		if r := only.do("POST", "/session", `{"ClientSession":"cs"}`, bearer(ticket)...); r.Status != 401 {
			t.Errorf("ticket of a removed secret: %d %s", r.Status, r.Raw)
		}
	})
	if r := only.do("POST", "/session", `{"ClientSession":"cs"}`, bearer(r2.str("Ticket"))...); r.Status != 200 {
		t.Errorf("re-issued ticket: %d %s", r.Status, r.Raw)
	}
}

func TestJWTModeHS256(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, map[string]string{"AUTH_MODE": "jwt", "JWT_SECRET": jwtSecret, "JWT_ISSUER": "https://login.example.com", "JWT_AUDIENCE": "car"})
	mint := func(sub string, method jwt.SigningMethod, key any, mod func(jwt.MapClaims)) string {
		c := jwt.MapClaims{"sub": sub, "iss": "https://login.example.com", "aud": "car", "exp": time.Now().Add(time.Hour).Unix()}
		if mod != nil {
			mod(c)
		}
		s, err := jwt.NewWithClaims(method, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	alice := mint("alice", jwt.SigningMethodHS256, []byte(jwtSecret), nil)
	if r := e.do("POST", "/session", `{"ClientSession":"cs"}`, bearer(alice)...); r.Status != 200 || r.str("UserId") != "alice" {
		t.Fatalf("start: %d %s", r.Status, r.Raw)
	}
	if r := e.start("bob"); r.Status != 401 {
		t.Fatalf("no token: %d", r.Status)
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	refusals := []struct {
		name   string
		tok    string
		body   string
		status int
	}{
		{"another user's UserId", alice, `{"UserId":"bob","ClientSession":"cs"}`, 403},
		{"expired", mint("alice", jwt.SigningMethodHS256, []byte(jwtSecret), func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), `{"ClientSession":"cs"}`, 401},
		{"wrong key", mint("alice", jwt.SigningMethodHS256, []byte("another-secret-0123456789abcdef0123"), nil), `{"ClientSession":"cs"}`, 401},
		{"alg none", none, `{"ClientSession":"cs"}`, 401},
		{"wrong issuer", mint("alice", jwt.SigningMethodHS256, []byte(jwtSecret), func(c jwt.MapClaims) { c["iss"] = "https://evil" }), `{"ClientSession":"cs"}`, 401},
		{"wrong audience", mint("alice", jwt.SigningMethodHS256, []byte(jwtSecret), func(c jwt.MapClaims) { c["aud"] = "other" }), `{"ClientSession":"cs"}`, 401},
		{"tampered", alice[:len(alice)-3] + "abc", `{"ClientSession":"cs"}`, 401},
		{"sub outside the charset", mint("auth0|123", jwt.SigningMethodHS256, []byte(jwtSecret), nil), `{"ClientSession":"cs"}`, 401},
	}
	for _, c := range refusals {
		e.noCAR(c.name, func() {
			if r := e.do("POST", "/session", c.body, bearer(c.tok)...); r.Status != c.status {
				t.Errorf("%s: %d %s", c.name, r.Status, r.Raw)
			}
		})
	}
	e.noCAR("stop another", func() {
		if r := e.do("DELETE", "/session?UserId=bob", ``, bearer(alice)...); r.Status != 403 {
			t.Errorf("stop another user: %d %s", r.Status, r.Raw)
		}
	})
	if r := e.do("DELETE", "/session", ``, bearer(alice)...); r.Status != 200 || r.str("UserId") != "alice" {
		t.Errorf("stop own: %d %s", r.Status, r.Raw)
	}
}

func TestJWTModeHashedUserID(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, map[string]string{"AUTH_MODE": "jwt", "JWT_SECRET": jwtSecret, "JWT_HASH_USER_ID": "true"})
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "auth0|123", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(jwtSecret))
	r := e.do("POST", "/session", `{"ClientSession":"cs"}`, bearer(tok)...)
	if r.Status != 200 || r.str("UserId") != auth.HashUserID("auth0|123") {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
}

func TestJWTModeAsymmetricKeysRefuseAlgorithmConfusion(t *testing.T) {
	t.Parallel()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, k := range []struct {
		name   string
		priv   any
		pub    any
		method jwt.SigningMethod
	}{
		{"RS256", rsaKey, &rsaKey.PublicKey, jwt.SigningMethodRS256},
		{"ES256", ecKey, &ecKey.PublicKey, jwt.SigningMethodES256},
	} {
		t.Run(k.name, func(t *testing.T) {
			der, _ := x509.MarshalPKIXPublicKey(k.pub)
			pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			e := newEnv(t, caremu.Options{}, map[string]string{"AUTH_MODE": "jwt", "JWT_PUBLIC_KEY": pemKey})
			claims := jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}
			good, _ := jwt.NewWithClaims(k.method, claims).SignedString(k.priv)
			if r := e.do("POST", "/session", `{"ClientSession":"cs"}`, bearer(good)...); r.Status != 200 {
				t.Fatalf("valid %s: %d %s", k.name, r.Status, r.Raw)
			}
			// HS256 "signed" with the public key's PEM: the classic confusion.
			confused, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(pemKey))
			e.noCAR("confused", func() {
				if r := e.do("POST", "/session", `{"ClientSession":"cs"}`, bearer(confused)...); r.Status != 401 {
					t.Errorf("HS256 with the public key: %d %s", r.Status, r.Raw)
				}
			})
		})
	}
}

func TestSignMode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, map[string]string{"AUTH_MODE": "sign", "COMPAT_SIGN_SALT": signSalt})
	values := map[string]string{"ProjectId": testProject, "UserId": "alice", "ClientSession": "cs", "RequestId": "r1"}
	sign := auth.DemoSign(values, signSalt)
	form := url.Values{}
	for k, v := range values {
		form.Set(k, v)
	}
	form.Set("Sign", sign)
	r := e.do("POST", "/StartProject", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if r.str("Code") != "0" {
		t.Fatalf("signed StartProject: %s", r.Raw)
	}
	body := `{"ProjectId":"` + testProject + `","UserId":"alice","ClientSession":"cs","RequestId":"r1","Sign":"` + sign + `"}`
	if r := e.do("POST", "/session", body); r.Status != 200 {
		t.Fatalf("signed JSON: %d %s", r.Status, r.Raw)
	}
	e.noCAR("bad signatures", func() {
		tampered := strings.Replace(body, `"alice"`, `"mallory"`, 1)
		if r := e.do("POST", "/StartProject", tampered); r.str("Code") != "10000" {
			t.Errorf("tampered: %s", r.Raw)
		}
		unsigned := `{"UserId":"alice","ClientSession":"cs","RequestId":"r1"}`
		if r := e.do("POST", "/session", unsigned); r.Status != 401 {
			t.Errorf("unsigned: %d %s", r.Status, r.Raw)
		}
	})
}

// Security review: the demo hashes the values with no separator, so a
// captured signature also covers any other split of the same characters.
// With fields of their own choosing, an attacker cut another user's UserId
// out of a captured ClientSession and stopped that user. Sign mode now takes
// only the demo's fields.
func TestSignModeTakesOnlyTheDemosFields(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, map[string]string{"AUTH_MODE": "sign", "COMPAT_SIGN_SALT": signSalt})
	signedBody := func(v map[string]string) string {
		v["Sign"] = auth.DemoSign(v, signSalt)
		b, _ := json.Marshal(v)
		return string(b)
	}
	if r := e.do("POST", "/StartProject", signedBody(map[string]string{"UserId": "bob", "ProjectId": testProject, "ClientSession": "cs", "RequestId": "b1"})); r.str("Code") != "0" {
		t.Fatalf("bob's start: %s", r.Raw)
	}
	// Alice's start, captured: "CSbobCS" + "cap-test0001" + "r1" + "alice".
	captured := map[string]string{"UserId": "alice", "ProjectId": testProject, "ClientSession": "CSbobCS", "RequestId": "r1"}
	sig := auth.DemoSign(captured, signSalt)
	if r := e.do("POST", "/StartProject", signedBody(captured)); r.str("Code") != "0" {
		t.Fatalf("alice's start: %s", r.Raw)
	}
	forged := `{"A":"CS","UserId":"bob","Z":"CS` + testProject + `r1alice","Sign":"` + sig + `"}`
	e.noCAR("a forged stop", func() {
		if r := e.do("POST", "/StopProject", forged); r.str("Code") != "10001" || !strings.Contains(r.str("Msg"), "unexpected: A, Z") {
			t.Errorf("forged StopProject: %s", r.Raw)
		}
		if r := e.do("DELETE", "/session", forged); r.Status != 400 {
			t.Errorf("forged DELETE /session: %d %s", r.Status, r.Raw)
		}
		// A start field on a stop is refused too.
		if r := e.do("POST", "/StopProject", signedBody(map[string]string{"UserId": "bob", "ClientSession": "x"})); r.str("Code") != "10001" {
			t.Errorf("ClientSession on a stop: %s", r.Raw)
		}
	})
	if _, ok := e.emu.SlotOf("bob"); !ok {
		t.Error("bob's session was stopped")
	}
	// The demo's own stop still works; in sign mode a guest joins without an
	// invite (there are none), in the role it asks for.
	if r := e.do("POST", "/StopProject", signedBody(map[string]string{"UserId": "bob", "RequestId": "b2"})); r.str("Code") != "0" {
		t.Errorf("bob's stop: %s", r.Raw)
	}
	if r := e.do("POST", "/StartProject", signedBody(map[string]string{"UserId": "carol", "ProjectId": testProject, "ClientSession": "cs",
		"HostUserId": "alice", "Role": "Viewer", "RequestId": "c1"})); r.str("Code") != "0" {
		t.Errorf("a guest in sign mode: %s", r.Raw)
	}
}

func TestInvites(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, map[string]string{"AUTH_MODE": "ticket", "AUTH_SECRET": secretNew, "AUTH_INVITE_TTL": "10m"})
	host := e.do("POST", "/session", `{"ClientSession":"cs"}`)
	hostID, hostTicket := host.str("UserId"), host.str("Ticket")
	guest := e.do("POST", "/session", `{"ClientSession":"cs"}`)
	guestID, guestTicket := guest.str("UserId"), guest.str("Ticket")

	inv := e.do("POST", "/session/invite", `{"Role":"Viewer"}`, bearer(hostTicket)...)
	invite := inv.str("Invite")
	if inv.Status != 200 || invite == "" || inv.str("HostUserId") != hostID || inv.str("Role") != "Viewer" {
		t.Fatalf("mint: %d %s", inv.Status, inv.Raw)
	}
	if r := e.do("POST", "/session/invite", `{}`); r.Status != 401 {
		t.Errorf("minting without a ticket: %d", r.Status)
	}

	e.noCAR("joins refused", func() {
		for _, c := range []struct{ name, body string }{
			{"no invite", `{"ClientSession":"cs","HostUserId":"` + hostID + `","Role":"Player"}`},
			{"invite for another host", `{"ClientSession":"cs","HostUserId":"u-somebody-else","Invite":"` + invite + `"}`},
			{"tampered invite", `{"ClientSession":"cs","HostUserId":"` + hostID + `","Invite":"` + invite[:len(invite)-2] + flip(invite[len(invite)-2:]) + `"}`},
			{"a ticket as an invite", `{"ClientSession":"cs","HostUserId":"` + hostID + `","Invite":"` + hostTicket + `"}`},
		} {
			if r := e.do("POST", "/session", c.body, bearer(guestTicket)...); r.Status != 403 {
				t.Errorf("%s: %d %s", c.name, r.Status, r.Raw)
			}
		}
	})

	// The role is the invite's, whatever the client asks.
	join := e.do("POST", "/session", `{"ClientSession":"cs","HostUserId":"`+hostID+`","Role":"Player","Invite":"`+invite+`"}`, bearer(guestTicket)...)
	if join.Status != 200 {
		t.Fatalf("join: %d %s", join.Status, join.Raw)
	}
	calls := e.emu.Calls()
	last := calls[len(calls)-1]
	if last.Action != "CreateSession" || last.Params["Role"] != "Viewer" || last.Params["HostUserId"] != hostID || last.UserID != guestID {
		t.Errorf("CreateSession for the guest: %+v", last)
	}

	e.travel(11 * time.Minute)
	e.noCAR("expired invite", func() {
		r := e.do("POST", "/session", `{"ClientSession":"cs","HostUserId":"`+hostID+`","Invite":"`+invite+`"}`, bearer(guestTicket)...)
		if r.Status != 403 {
			t.Errorf("expired invite: %d %s", r.Status, r.Raw)
		}
	})
}

// Security review: an invite minted by a none-mode function sharing
// AUTH_SECRET let an attacker join a ticket user's room as Player. Only
// ticket and jwt mode mint invites, and each mode's invites are its own.
func TestInvitesDoNotCrossModes(t *testing.T) {
	t.Parallel()
	target := newEnv(t, caremu.Options{}, map[string]string{"AUTH_MODE": "ticket", "AUTH_SECRET": secretNew})
	host := target.do("POST", "/session", `{"ClientSession":"cs"}`)
	hostID := host.str("UserId")
	guestTicket := target.do("POST", "/session", `{"ClientSession":"cs"}`).str("Ticket")
	join := func(hostID, invite string) reply {
		return target.do("POST", "/session", `{"ClientSession":"cs","HostUserId":"`+hostID+`","Invite":"`+invite+`"}`, bearer(guestTicket)...)
	}

	// The attacker's functions share the secret; none and sign mode mint nothing.
	none := newEnv(t, caremu.Options{}, map[string]string{"AUTH_MODE": "none", "AUTH_SECRET": secretNew})
	if r := none.do("POST", "/session/invite", `{"UserId":"`+hostID+`"}`); r.Status != 403 || r.str("Invite") != "" {
		t.Errorf("none mode minted an invite: %d %s", r.Status, r.Raw)
	}
	sign := newEnv(t, caremu.Options{}, map[string]string{"AUTH_MODE": "sign", "COMPAT_SIGN_SALT": signSalt, "AUTH_SECRET": secretNew})
	v := map[string]string{"UserId": hostID}
	if r := sign.do("POST", "/session/invite", `{"UserId":"`+hostID+`","Sign":"`+auth.DemoSign(v, signSalt)+`"}`); r.Status != 403 || r.str("Invite") != "" {
		t.Errorf("sign mode minted an invite: %d %s", r.Status, r.Raw)
	}

	// A jwt-mode invite (its UserIds are another namespace) is refused in ticket mode.
	jwtEnv := newEnv(t, caremu.Options{}, map[string]string{"AUTH_MODE": "jwt", "JWT_SECRET": jwtSecret, "AUTH_SECRET": secretNew})
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": hostID, "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(jwtSecret))
	inv := jwtEnv.do("POST", "/session/invite", `{}`, bearer(tok)...)
	if inv.Status != 200 || inv.str("Invite") == "" {
		t.Fatalf("jwt mode: %d %s", inv.Status, inv.Raw)
	}
	target.noCAR("an invite from another mode", func() {
		if r := join(hostID, inv.str("Invite")); r.Status != 403 {
			t.Errorf("jwt-mode invite accepted in ticket mode: %d %s", r.Status, r.Raw)
		}
	})
}

func TestRoleFull(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{MaxPlayers: 2}, nil)
	if r := e.start("host"); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	if r := e.do("POST", "/session", `{"UserId":"g1","ClientSession":"cs","HostUserId":"host","Role":"Player"}`); r.Status != 200 {
		t.Fatalf("first guest: %d %s", r.Status, r.Raw)
	}
	r := e.do("POST", "/session", `{"UserId":"g2","ClientSession":"cs","HostUserId":"host","Role":"Player"}`)
	if r.Status != 409 || r.code() != "RoleFull" {
		t.Fatalf("room full: %d %s", r.Status, r.Raw)
	}
}

// Demo clients in ticket mode: Enqueue mints the user and hands over its
// ticket, StartProject and StopProject then act as that user only.
func TestTicketModeCompatRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{Concurrency: 1}, map[string]string{"AUTH_MODE": "ticket", "AUTH_SECRET": secretNew})
	q := e.do("POST", "/Enqueue", `{"RequestId":"q1"}`)
	user, ticket := q.str("UserId"), q.str("Ticket")
	if q.str("Code") != "10101" || user == "" || ticket == "" || q.str("Data", "UserId") != user {
		t.Fatalf("Enqueue: %s", q.Raw)
	}
	s := e.do("POST", "/StartProject", `{"ClientSession":"cs","RequestId":"s1"}`, bearer(ticket)...)
	if s.str("Code") != "0" || e.slot(user).State != caremu.Session {
		t.Fatalf("StartProject with the Enqueue ticket: %s", s.Raw)
	}
	e.noCAR("compat refusals", func() {
		if r := e.do("POST", "/StopProject", `{"UserId":"`+user+`","RequestId":"x"}`); r.str("Code") != "10000" {
			t.Errorf("StopProject without a ticket: %s", r.Raw)
		}
		if r := e.do("POST", "/StartProject", `{"ClientSession":"cs","ProjectId":"cap-evil0001"}`, bearer(ticket)...); r.str("Code") != "10000" {
			t.Errorf("allow-list refusal on a compat route: %s", r.Raw)
		}
	})
	if r := e.do("POST", "/StopProject", `{"RequestId":"x"}`, bearer(ticket)...); r.str("Code") != "0" {
		t.Errorf("StopProject with the ticket: %s", r.Raw)
	}
}

// A minted user whose start failed still learns its UserId and ticket, so
// its retry reuses whatever CAR locked for it.
func TestMintedUserLearnsItsTicketOnFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, map[string]string{"AUTH_MODE": "ticket", "AUTH_SECRET": secretNew})
	e.emu.Inject("CreateSession", caremu.Fail("InternalError", ""))
	r := e.do("POST", "/session", `{"ClientSession":"cs"}`)
	if r.Status != 502 || r.str("UserId") == "" || r.str("Ticket") == "" {
		t.Fatalf("%d %s", r.Status, r.Raw)
	}
	again := e.do("POST", "/session", `{"ClientSession":"cs"}`, bearer(r.str("Ticket"))...)
	if again.Status != 200 || again.str("UserId") != r.str("UserId") {
		t.Fatalf("retry: %d %s", again.Status, again.Raw)
	}
	// A known caller's failure carries no credential.
	e.emu.Inject("CreateSession", caremu.Fail("InternalError", ""))
	if r := e.do("POST", "/session", `{"ClientSession":"cs"}`, bearer(again.str("Ticket"))...); r.str("Ticket") != "" || r.str("UserId") != "" {
		t.Errorf("failure of a known caller: %s", r.Raw)
	}
}

func TestInviteExpiresInIsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, caremu.Options{}, map[string]string{"AUTH_MODE": "ticket", "AUTH_SECRET": secretNew, "AUTH_INVITE_TTL": "10m"})
	tk := e.do("POST", "/session", `{"ClientSession":"cs"}`).str("Ticket")
	for _, n := range []string{"18446744074", "9300000000", "999999999999999999999"} {
		r := e.do("POST", "/session/invite", `{"ExpiresIn":"`+n+`"}`, bearer(tk)...)
		if n == "999999999999999999999" {
			if r.Status != 400 {
				t.Errorf("ExpiresIn %s: %d %s", n, r.Status, r.Raw)
			}
			continue
		}
		exp, err := time.Parse(time.RFC3339, r.str("ExpiresAt"))
		if r.Status != 200 || err != nil || exp.Before(time.Now().Add(9*time.Minute)) || exp.After(time.Now().Add(11*time.Minute)) {
			t.Errorf("ExpiresIn %s: %d %s", n, r.Status, r.Raw)
		}
	}
}
