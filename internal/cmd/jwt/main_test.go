package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"carbroker/internal/auth"
	"carbroker/internal/config"
)

// A minted token is accepted by the server's own jwt mode, configured as
// the environment says, as the UserId asked for.
func TestMintedTokenIsAccepted(t *testing.T) {
	env := map[string]string{"CAR_PROJECT_ID": "cap-abc123", "AUTH_MODE": "jwt",
		"JWT_SECRET": "a-dev-secret-of-at-least-32-characters", "JWT_ISSUER": "https://login.example.com", "JWT_AUDIENCE": "carbroker",
		"JWT_USER_CLAIM": "uid"}
	getenv := func(k string) string { return env[k] }
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-user", "alice"}, getenv, &stdout, &stderr, time.Now); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	token := strings.TrimSpace(stdout.String())
	if strings.Count(token, ".") != 2 || strings.Contains(token, "\n") {
		t.Fatalf("stdout is not one token: %q", stdout.String())
	}
	if !strings.Contains(stderr.String(), "Authorization: Bearer") {
		t.Errorf("no usage on stderr: %s", stderr.String())
	}
	cfg, err := config.Load(getenv, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(cfg.Auth, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Authorization": {"Bearer " + token}}
	id, err := a.Authenticate(context.Background(), auth.Request{Op: auth.OpStart, Header: h})
	if err != nil || id.UserID != "alice" {
		t.Fatalf("the server's jwt mode: %+v, %v", id, err)
	}
	// Expired after its -ttl.
	stdout.Reset()
	past := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	if code := run([]string{"-user", "alice", "-ttl", "1h"}, getenv, &stdout, &stderr, past); code != 0 {
		t.Fatal(stderr.String())
	}
	h = http.Header{"Authorization": {"Bearer " + strings.TrimSpace(stdout.String())}}
	if _, err := a.Authenticate(context.Background(), auth.Request{Op: auth.OpStart, Header: h}); err == nil {
		t.Error("an expired token was accepted")
	}
}

func TestMintRefuses(t *testing.T) {
	secret := "a-dev-secret-of-at-least-32-characters"
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{}, []string{"-user", "alice"}, "JWT_SECRET is not set"},
		{map[string]string{"JWT_SECRET": "short"}, []string{"-user", "alice"}, "at least 32"},
		{map[string]string{"JWT_SECRET": secret}, nil, "USER=alice"},
		{map[string]string{"JWT_SECRET": secret}, []string{"-user", "bad user!"}, "UserId must be"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, func(k string) string { return c.env[k] }, &stdout, &stderr, time.Now)
		if code != 2 || stdout.Len() != 0 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v %v: exit %d, stdout %q, stderr %q", c.env, c.args, code, stdout.String(), stderr.String())
		}
	}
}

// Without JWT_USER_CLAIM the token names the UserId in the claim the server
// reads by default.
func TestMintedTokenDefaultClaim(t *testing.T) {
	env := map[string]string{"CAR_PROJECT_ID": "cap-abc123", "AUTH_MODE": "jwt", "JWT_SECRET": "a-dev-secret-of-at-least-32-characters"}
	getenv := func(k string) string { return env[k] }
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-user", "alice"}, getenv, &stdout, &stderr, time.Now); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	cfg, err := config.Load(getenv, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(cfg.Auth, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Authorization": {"Bearer " + strings.TrimSpace(stdout.String())}}
	if id, err := a.Authenticate(context.Background(), auth.Request{Op: auth.OpStart, Header: h}); err != nil || id.UserID != "alice" {
		t.Fatalf("the server's jwt mode with its default claim: %+v, %v", id, err)
	}
}
