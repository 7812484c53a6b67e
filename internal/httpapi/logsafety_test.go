package httpapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"carbroker/internal/auth"
	"carbroker/internal/dev/caremu"
)

// TestNoSecretInLogsInAnyMode runs a full flow in every mode — starts,
// resumes, invites, joins, stops, refusals and CAR failures — and searches
// the captured logs and error bodies for every secret that went by.
func TestNoSecretInLogsInAnyMode(t *testing.T) {
	t.Parallel()
	const cs = "CS-SENTINEL-0123456789abcdef"
	modes := []struct {
		name string
		vars map[string]string
		flow func(e *env) (secrets []string)
	}{
		{"none", map[string]string{"AUTH_SECRET": secretNew}, func(e *env) []string {
			r := e.do("POST", "/session", `{"UserId":"host","ClientSession":"`+cs+`"}`)
			e.do("POST", "/session/invite", `{"UserId":"host"}`) // refused: no invites in none mode
			g := e.do("POST", "/session", `{"UserId":"g","ClientSession":"`+cs+`","HostUserId":"host"}`)
			e.do("DELETE", "/session", `{"UserId":"host"}`)
			return []string{r.str("ServerSession"), g.str("ServerSession"), secretNew}
		}},
		{"ticket", map[string]string{"AUTH_MODE": "ticket", "AUTH_SECRET": secretNew}, func(e *env) []string {
			r := e.do("POST", "/session", `{"ClientSession":"`+cs+`"}`)
			tk := r.str("Ticket")
			r2 := e.do("POST", "/session", `{"ClientSession":"`+cs+`"}`, bearer(tk)...)
			inv := e.do("POST", "/session/invite", `{"Role":"Viewer"}`, bearer(tk)...).str("Invite")
			g := e.do("POST", "/session", `{"ClientSession":"`+cs+`"}`)
			e.do("POST", "/session", `{"ClientSession":"`+cs+`","HostUserId":"`+r.str("UserId")+`","Invite":"`+inv+`"}`, bearer(g.str("Ticket"))...)
			e.do("POST", "/session", `{"ClientSession":"`+cs+`","HostUserId":"`+r.str("UserId")+`","Invite":"`+inv+`x"}`, bearer(g.str("Ticket"))...)
			e.do("POST", "/session", `{"ClientSession":"`+cs+`"}`, bearer(tk+"x")...)
			e.emu.Inject("CreateSession", caremu.Raw(500, "text/html", cs))
			e.do("POST", "/session", `{"ClientSession":"`+cs+`"}`, bearer(r2.str("Ticket"))...)
			e.do("DELETE", "/session", ``, bearer(r2.str("Ticket"))...)
			return []string{tk, r2.str("Ticket"), g.str("Ticket"), inv, r.str("ServerSession"), r2.str("ServerSession"), secretNew}
		}},
		{"jwt", map[string]string{"AUTH_MODE": "jwt", "JWT_SECRET": jwtSecret, "AUTH_SECRET": secretNew}, func(e *env) []string {
			tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte(jwtSecret))
			expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(-time.Hour).Unix()}).SignedString([]byte(jwtSecret))
			r := e.do("POST", "/session", `{"ClientSession":"`+cs+`"}`, bearer(tok)...)
			e.do("POST", "/session", `{"ClientSession":"`+cs+`"}`, bearer(expired)...)
			e.do("POST", "/session", `{"UserId":"bob","ClientSession":"`+cs+`"}`, bearer(tok)...)
			inv := e.do("POST", "/session/invite", `{}`, bearer(tok)...).str("Invite")
			e.do("DELETE", "/session", ``, bearer(tok)...)
			return []string{tok, expired, inv, r.str("ServerSession"), jwtSecret, secretNew}
		}},
		{"sign", map[string]string{"AUTH_MODE": "sign", "COMPAT_SIGN_SALT": signSalt}, func(e *env) []string {
			v := map[string]string{"UserId": "alice", "ClientSession": cs, "RequestId": "r1"}
			sig := auth.DemoSign(v, signSalt)
			r := e.do("POST", "/StartProject", `{"UserId":"alice","ClientSession":"`+cs+`","RequestId":"r1","Sign":"`+sig+`"}`)
			e.do("POST", "/StartProject", `{"UserId":"mallory","ClientSession":"`+cs+`","RequestId":"r1","Sign":"`+sig+`"}`)
			stop := map[string]string{"UserId": "alice", "RequestId": "r2"}
			e.do("POST", "/StopProject", `{"UserId":"alice","RequestId":"r2","Sign":"`+auth.DemoSign(stop, signSalt)+`"}`)
			return []string{sig, signSalt, r.str("SessionDescribe", "ServerSession")}
		}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := newEnv(t, caremu.Options{}, m.vars)
			secrets := append(m.flow(e), cs, testSecretKey)
			logs := e.logs.String()
			if strings.Count(logs, `"msg":"request"`) < 3 {
				t.Fatalf("the flow did not run:\n%s", logs)
			}
			for _, s := range secrets {
				if s == "" {
					t.Errorf("a secret of the flow is empty: the flow failed")
					continue
				}
				if strings.Contains(logs, s) {
					t.Errorf("the logs hold %.16q…", s)
				}
			}
		})
	}
}
