// Package auth decides who the caller is. One Authenticator per AUTH_MODE
// yields the UserId the caller may act as (or a refusal); the HTTP handlers
// never branch on the mode.
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
