package auth_test

import (
	"encoding/json"
	"strings"
	"testing"

	"carbroker/internal/auth"
	"carbroker/internal/config"
	"carbroker/internal/fault"
)

// Vectors computed with Node.js 20 the way car-server-demo's sign.js does:
// JSON.parse the body, drop Sign, sort the names with Array.prototype.sort,
// hash String(value) of each, then the salt.
var demoVectors = []struct {
	body, salt, sign string
}{
	{`{"UserId":"user-1","ProjectId":"cap-12345","ClientSession":"abc==","RequestId":"req-1","Sign":"x"}`, "my-salt",
		"d6b836f90b8de7c73b8a2e50039dbe2bd08fb8243c623bdceb159f0f6b0e17dd"},
	// UTF-16 order puts U+1F600 (a surrogate pair, D83D...) before U+FF01.
	{`{"！":"A","😀":"B","UserId":"u"}`, "s",
		"1bdb7af7518a790d20da544e09197ca38bb601ce97444b0b2b6857329cc9e813"},
	// Only "Sign" is dropped; names sort by case (B < a < b < sign).
	{`{"b":"2","a":"1","B":"3","sign":"4"}`, "salt",
		"003dcd386e9b5cdc7d2a9f66ac8d99165841a2c26b37348e6582cc1daa03535e"},
}

func values(t *testing.T, body string) map[string]string {
	t.Helper()
	var v map[string]string
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDemoSignVectors(t *testing.T) {
	t.Parallel()
	for _, v := range demoVectors {
		if got := auth.DemoSign(values(t, v.body), v.salt); got != v.sign {
			t.Errorf("DemoSign(%s, %q) = %s, want %s", v.body, v.salt, got, v.sign)
		}
	}
}

func signed(vals map[string]string, salt string) auth.Request {
	vals["Sign"] = auth.DemoSign(vals, salt)
	return auth.Request{Op: auth.OpStart, UserID: vals["UserId"], Values: vals}
}

func TestSign(t *testing.T) {
	t.Parallel()
	const salt = "the-salt"
	a := mustNew(t, config.Auth{Mode: config.AuthSign, SignSalt: salt}, auth.Options{})
	base := func() map[string]string {
		return map[string]string{"UserId": "alice", "ProjectId": "cap-1", "ClientSession": "cs", "RequestId": "r-1"}
	}

	if id := authOK(t, a, signed(base(), salt)); id.UserID != "alice" || id.Minted {
		t.Fatalf("valid signature: %+v", id)
	}
	if s, err := a.Credential(auth.Identity{UserID: "alice"}); s != "" || err != nil {
		t.Errorf("Credential = %q, %v", s, err)
	}

	cases := map[string]struct {
		req  func() auth.Request
		kind fault.Kind
	}{
		"no Sign": {func() auth.Request {
			return auth.Request{UserID: "alice", Values: base()}
		}, fault.Unauthenticated},
		"empty Sign": {func() auth.Request {
			v := base()
			v["Sign"] = ""
			return auth.Request{UserID: "alice", Values: v}
		}, fault.Unauthenticated},
		"wrong salt": {func() auth.Request { return signed(base(), "other") }, fault.Unauthenticated},
		"uppercase hex (the demo compares exactly)": {func() auth.Request {
			r := signed(base(), salt)
			r.Values["Sign"] = strings.ToUpper(r.Values["Sign"])
			return r
		}, fault.Unauthenticated},
		"another user's UserId in the body": {func() auth.Request {
			r := signed(base(), salt)
			r.Values["UserId"], r.UserID = "bob", "bob"
			return r
		}, fault.Unauthenticated},
		"a value changed": {func() auth.Request {
			r := signed(base(), salt)
			r.Values["ClientSession"] = "other"
			return r
		}, fault.Unauthenticated},
		"a field added": {func() auth.Request {
			r := signed(base(), salt)
			r.Values["ApplicationId"] = "app-1"
			return r
		}, fault.Unauthenticated},
		"UserId outside the signed values": {func() auth.Request {
			r := signed(base(), salt)
			r.UserID = "bob"
			return r
		}, fault.Forbidden},
		"UserId not signed at all": {func() auth.Request {
			v := base()
			delete(v, "UserId")
			r := signed(v, salt)
			r.UserID = "alice"
			return r
		}, fault.Forbidden},
		"no UserId": {func() auth.Request {
			r := signed(base(), salt)
			r.UserID = ""
			return r
		}, fault.Invalid},
		"nil values": {func() auth.Request { return auth.Request{UserID: "alice"} }, fault.Unauthenticated},
		"a signed field outside the demo's": {func() auth.Request {
			v := base()
			v["A"] = "x"
			return signed(v, salt)
		}, fault.Invalid},
		"a lowercase spelling": {func() auth.Request {
			v := base()
			v["userId"] = "alice"
			return signed(v, salt)
		}, fault.Invalid},
		"a start field on a stop": {func() auth.Request {
			r := signed(base(), salt)
			r.Op = auth.OpStop
			return r
		}, fault.Invalid},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := tc.req()
			_, err := a.Authenticate(t.Context(), r)
			if err == nil {
				t.Fatal("accepted")
			}
			wantKind(t, err, tc.kind, r.Values["Sign"], salt)
		})
	}
}
