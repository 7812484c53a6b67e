package auth_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"carbroker/internal/auth"
	"carbroker/internal/config"
	"carbroker/internal/fault"
)

// The fuzz targets feed outside input to every decoder here; none may panic,
// and whatever is accepted must be a well-formed identity.

func FuzzTicketAuthorization(f *testing.F) {
	c := newClock()
	a := mustNew(f, config.Auth{Mode: config.AuthTicket, Secrets: [][]byte{secretA, secretB}, TicketTTL: ticketTTL}, auth.Options{Now: c.Now})
	tok, _ := a.Credential(auth.Identity{UserID: "alice"})
	for _, s := range []string{"Bearer " + tok, "bearer " + tok + "x", "Bearer " + strings.ToUpper(tok), "Basic x", "Bearer a.b", "", "Bearer ."} {
		f.Add(s, "")
	}
	f.Add("Bearer "+tok, "alice")
	f.Fuzz(func(t *testing.T, header, userID string) {
		for _, op := range []auth.Op{auth.OpStart, auth.OpStop} {
			r := auth.Request{Op: op, Header: http.Header{"Authorization": {header}}, UserID: userID}
			id, err := a.Authenticate(context.Background(), r)
			if err != nil {
				continue
			}
			if !validUserID(id.UserID) || (userID != "" && id.UserID != userID) || (id.Minted && op != auth.OpStart) {
				t.Fatalf("accepted %+v for %q", id, header)
			}
		}
	})
}

func FuzzInviteVerify(f *testing.F) {
	c := newClock()
	v, err := auth.NewInvites(config.Auth{Mode: config.AuthTicket, Secrets: [][]byte{secretA}, InviteTTL: time.Hour}, auth.Options{Now: c.Now})
	if err != nil {
		f.Fatal(err)
	}
	tok, _, _ := v.Mint("host", auth.RolePlayer, 0)
	f.Add(tok, "host")
	f.Add(tok+"A", "host")
	f.Add("", "")
	f.Add("x.y", "host")
	f.Fuzz(func(t *testing.T, token, host string) {
		role, err := v.Verify(token, host)
		if err == nil && (role != auth.RolePlayer && role != auth.RoleViewer || !validUserID(host)) {
			t.Fatalf("accepted role %q for host %q", role, host)
		}
	})
}

func FuzzJWT(f *testing.F) {
	k := testKeys()
	c := newClock()
	var as []auth.Authenticator
	for _, cfg := range []config.Auth{
		{JWTSecret: hsSecret, JWTHashUserID: true},
		{JWTPublicKey: parsePEM(f, pkixPEM(f, &k.rsa.PublicKey)), JWTIssuer: "iss", JWTAudience: "aud"},
		{JWTPublicKey: parsePEM(f, pkixPEM(f, &k.ec.PublicKey)), JWTUserClaim: "uid"},
	} {
		cfg.Mode = config.AuthJWT
		a, err := auth.New(withDefaults(f, cfg), auth.Options{Now: c.Now})
		if err != nil {
			f.Fatal(err)
		}
		as = append(as, a)
	}
	cl := claimsAt(c, jwt.MapClaims{"iss": "iss", "aud": "aud", "uid": "u"})
	f.Add(sign(f, jwt.SigningMethodHS256, hsSecret, cl, nil))
	f.Add(sign(f, jwt.SigningMethodRS256, k.rsa, cl, nil))
	f.Add(sign(f, jwt.SigningMethodES256, k.ec, cl, map[string]any{"kid": "x"}))
	f.Add(sign(f, jwt.SigningMethodHS256, hsSecret, claimsAt(c, jwt.MapClaims{"sub": "a|b"}), nil))
	f.Add(algNone(f, cl))
	f.Add("e30.e30.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		for _, a := range as {
			r := auth.Request{Op: auth.OpStart, Header: http.Header{"Authorization": {"Bearer " + token}}}
			if id, err := a.Authenticate(context.Background(), r); err == nil && !validUserID(id.UserID) {
				t.Fatalf("accepted UserId %q", id.UserID)
			}
		}
	})
}

var demoStartFields = map[string]bool{"ApplicationId": true, "ApplicationVersionId": true, "ClientSession": true,
	"HostUserId": true, "ProjectId": true, "RequestId": true, "Role": true, "Sign": true, "UserId": true}

func FuzzDemoSign(f *testing.F) {
	const salt = "fuzz-salt"
	a := mustNew(f, config.Auth{Mode: config.AuthSign, SignSalt: salt}, auth.Options{})
	f.Add("UserId\x00alice\x00ProjectId\x00cap-1\x00Sign\x00abc", "RequestId")
	f.Add("UserId\x00alice\x00ProjectId\x00cap-1\x00Sign\x00abc", "")
	f.Add("😀\x00B\x00！\x00A\x00UserId\x00u", "")
	f.Add("\xff\x00a\x00\xfe\x00b", "Sign")
	f.Fuzz(func(t *testing.T, fields, extraKey string) {
		parts := strings.Split(fields, "\x00")
		vals, copyVals := map[string]string{}, map[string]string{}
		for i := 0; i+1 < len(parts); i += 2 {
			vals[parts[i]] = parts[i+1]
		}
		for k, v := range vals {
			copyVals[k] = v
		}
		s := auth.DemoSign(vals, salt)
		if len(s) != 64 || s != auth.DemoSign(copyVals, salt) {
			t.Fatalf("DemoSign not deterministic or not 64 hex: %q", s)
		}
		// Whatever arrives, Authenticate must not panic.
		r := auth.Request{Op: auth.OpStart, UserID: vals["UserId"], Values: vals}
		a.Authenticate(context.Background(), r)
		// Signed properly, it is accepted as its UserId if it has only the
		// demo's fields, and refused as invalid otherwise.
		vals[extraKey] = "x"
		vals["Sign"] = auth.DemoSign(vals, salt)
		r = auth.Request{Op: auth.OpStart, UserID: vals["UserId"], Values: vals}
		demo := true
		for k := range vals {
			demo = demo && demoStartFields[k]
		}
		id, err := a.Authenticate(context.Background(), r)
		switch {
		case r.UserID == "":
		case demo && (err != nil || id.UserID != r.UserID):
			t.Fatalf("signed request refused: %v", err)
		case !demo && fault.KindOf(err) != fault.Invalid:
			t.Fatalf("a field outside the demo's: %v, want Invalid", err)
		}
	})
}
