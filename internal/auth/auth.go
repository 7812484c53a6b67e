// Package auth decides who the caller is. One Authenticator per AUTH_MODE
// yields the UserId the caller may act as (or a refusal); the HTTP handlers
// never branch on the mode.
//
// The modes, built by New:
//   - none: the UserId the request names, unchecked (development, or behind a
//     gateway that authenticates callers).
//   - ticket: apps without a login. The server mints the UserId and a signed,
//     expiring ticket bound to it; see ticket.go.
//   - jwt: apps with a login. A JWT from the app's identity provider names the
//     UserId; see jwt.go and jwks.go.
//   - sign: car-server-demo's request signature, for its unmodified clients.
//     Weak: anyone holding a client can sign anything; see sign.go.
//
// Every mode is stateless. A refusal is Unauthenticated when the credential is
// missing or bad, Forbidden when a good credential names another UserId than
// the request, and Invalid when a mode without credentials gets no UserId.
//
// Invites let a host admit others to its multiplayer room.
//
// Tickets and invites are sealed tokens; their format is in seal.go.
package auth

import (
	"context"
	"net/http"
)

// Op is what the caller is trying to do; some modes treat them differently
// (ticket mode mints a new UserId only to start a session).
type Op int

// Operations.
const (
	OpStart  Op = iota // start or resume a session (POST /session, /StartProject, /Enqueue)
	OpStop             // stop a session (DELETE /session, /StopProject)
	OpInvite           // mint an invite to the caller's own room (POST /session/invite)
	// OpRead reads public figures (GET /capacity): any authenticated caller
	// in ticket and jwt modes, anyone (an empty Identity) in none and sign modes.
	OpRead
	OpAlive // a heartbeat of the caller's own session (POST /session/alive): owner-only, like a stop
)

// Request is what an authenticator may look at.
type Request struct {
	Op     Op
	Header http.Header // the Authorization header among them
	// UserID is the UserId the request names ("" if none).
	UserID string
	// Values are the request's fields exactly as received (JSON body values
	// rendered as strings, or form values). Only the compat signature uses them.
	Values map[string]string
}

// Identity is an authenticated caller.
type Identity struct {
	UserID string
	Minted bool // the UserId was chosen by the server for this request (ticket mode)
}

// Authenticator yields the caller's identity. A refusal is a *fault.Error of
// kind Unauthenticated (no or bad credential) or Forbidden (a valid credential
// for another UserId); it never echoes the credential.
type Authenticator interface {
	Authenticate(ctx context.Context, r Request) (Identity, error)
	// Credential returns what the caller should present next time, issued
	// fresh on every success ("" for modes without one).
	Credential(id Identity) (string, error)
}

// UserIDRule says in words what ValidUserID accepts, for messages.
const UserIDRule = "1-64 characters of A-Z a-z 0-9 _ . @ : -"

// ValidUserID reports whether s is a UserId: 1 to 64 of [A-Za-z0-9_.@:-].
// It is the one rule, for the UserIds callers send and for those the
// authenticators issue or accept.
func ValidUserID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '.', c == '@', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidRole reports whether r is a role in a host's room: RolePlayer or
// RoleViewer.
func ValidRole(r string) bool { return r == RolePlayer || r == RoleViewer }
