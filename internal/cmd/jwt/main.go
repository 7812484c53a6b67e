// Command jwt mints a JWT for trying AUTH_MODE=jwt locally, against the
// JWT_SECRET (HS256) the server runs with:
//
//	AUTH_MODE=jwt JWT_SECRET=… make run     # one shell
//	JWT_SECRET=… make jwt USER=alice        # another: prints the token
//	curl -s -X POST http://127.0.0.1:9000/session -H "Authorization: Bearer $TOKEN" -d '{"ClientSession":"…"}'
//
// It reads JWT_SECRET, and JWT_ISSUER, JWT_AUDIENCE and JWT_USER_CLAIM when
// set, from the environment, so the token carries what the server checks.
// The token goes to stdout alone (TOKEN=$(make -s jwt USER=alice)); how to
// use it goes to stderr. It is a development tool: the deployed binary
// (make build) does not contain it, and a production login issues its own
// tokens (or publishes a JWKS: JWT_JWKS_URL).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"carbroker/internal/auth"
	"carbroker/internal/config"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr, time.Now))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer, now func() time.Time) int {
	fs := flag.NewFlagSet("jwt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "the UserId the token names (make jwt USER=…)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	token, err := mint(*user, *ttl, getenv, now())
	if err != nil {
		fmt.Fprintf(stderr, "jwt: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, token)
	fmt.Fprintf(stderr, "a JWT for UserId %s, valid for %v (HS256 with JWT_SECRET); send it as\n  -H 'Authorization: Bearer <the token above>'\n"+
		"to a server running AUTH_MODE=jwt with the same JWT_SECRET (make run, or your function)\n", *user, *ttl)
	return 0
}

func mint(user string, ttl time.Duration, getenv func(string) string, now time.Time) (string, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	secret := get("JWT_SECRET")
	switch {
	case secret == "":
		return "", errors.New("JWT_SECRET is not set: use the one the server runs with (AUTH_MODE=jwt JWT_SECRET=… make run); " +
			"a server verifying with JWT_PUBLIC_KEY or JWT_JWKS_URL needs tokens from your identity provider")
	case len(secret) < 32:
		return "", errors.New("JWT_SECRET must be at least 32 characters, as the server requires (openssl rand -base64 48)")
	case user == "":
		return "", errors.New("no UserId: make jwt USER=alice (or -user alice)")
	case ttl <= 0:
		return "", errors.New("-ttl must be positive")
	}
	hashed, _ := strconv.ParseBool(get("JWT_HASH_USER_ID"))
	if !hashed && !auth.ValidUserID(user) {
		return "", fmt.Errorf("the UserId must be %s (the server refuses others)", auth.UserIDRule)
	}
	claim := get("JWT_USER_CLAIM")
	if claim == "" {
		claim = config.Defaults().Auth.JWTUserClaim
	}
	claims := jwt.MapClaims{claim: user, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	if iss := get("JWT_ISSUER"); iss != "" {
		claims["iss"] = iss
	}
	if aud := get("JWT_AUDIENCE"); aud != "" {
		claims["aud"] = aud
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
}
