package auth_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"carbroker/internal/auth"
	"carbroker/internal/config"
	"carbroker/internal/fault"
	"carbroker/internal/testing/testkit"
)

// clock is a settable clock for Options.Now.
type clock = testkit.Clock

func newClock() *clock { return testkit.NewClock(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)) }

var (
	secretA = []byte("secret-A-0123456789-0123456789-0123456789")
	secretB = []byte("secret-B-0123456789-0123456789-0123456789")
	secretC = []byte("secret-C-0123456789-0123456789-0123456789")
)

// withDefaults fills what cfg leaves unset with config.Load's defaults, as
// the function hands auth.New a loaded configuration.
func withDefaults(t testing.TB, cfg config.Auth) config.Auth {
	t.Helper()
	loaded, err := config.Load(func(k string) string {
		return map[string]string{"CAR_PROJECT_ID": "cap-1", "AUTH_MODE": "none"}[k]
	}, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := loaded.Auth
	if cfg.JWTUserClaim == "" {
		cfg.JWTUserClaim = d.JWTUserClaim
	}
	return cfg
}

func mustNew(t testing.TB, cfg config.Auth, opts auth.Options) auth.Authenticator {
	t.Helper()
	a, err := auth.New(withDefaults(t, cfg), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

// request builds a Request; bearer "" sends no Authorization header.
func request(op auth.Op, userID, bearer string) auth.Request {
	h := http.Header{}
	if bearer != "" {
		h.Set("Authorization", "Bearer "+bearer)
	}
	return auth.Request{Op: op, Header: h, UserID: userID}
}

// wantKind fails unless err is a *fault.Error of kind k whose message does
// not contain any of the secrets.
func wantKind(t *testing.T, err error, k fault.Kind, secrets ...string) {
	t.Helper()
	var fe *fault.Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T), want a *fault.Error of kind %v", err, err, k)
	}
	if fe.Kind != k {
		t.Fatalf("kind %v (%v), want %v", fe.Kind, fe, k)
	}
	for _, s := range secrets {
		if s != "" && len(s) > 8 && strings.Contains(fe.Message, s) {
			t.Fatalf("message %q echoes a credential", fe.Message)
		}
	}
}

func authOK(t *testing.T, a auth.Authenticator, r auth.Request) auth.Identity {
	t.Helper()
	id, err := a.Authenticate(context.Background(), r)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	return id
}

func authErr(t *testing.T, a auth.Authenticator, r auth.Request, k fault.Kind) {
	t.Helper()
	_, err := a.Authenticate(context.Background(), r)
	if err == nil {
		t.Fatalf("Authenticate succeeded, want %v", k)
	}
	wantKind(t, err, k, r.Header.Get("Authorization"))
}

// validUserID checks the UserId charset [A-Za-z0-9_.@:-]{1,64}.
func validUserID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '.' || c == '@' || c == ':' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}
