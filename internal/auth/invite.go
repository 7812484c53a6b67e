package auth

import (
	"errors"
	"time"

	"carbroker/internal/config"
	"carbroker/internal/fault"
)

// Roles an invite can grant, as CAR's CreateSession names them.
const (
	RolePlayer = "Player"
	RoleViewer = "Viewer"
)

// ErrInvitesUnconfigured is returned by NewInvites when AUTH_SECRET is empty.
var ErrInvitesUnconfigured = errors.New("invites are not configured (set AUTH_SECRET)")

// ErrInvitesUnsupported is returned by NewInvites in a mode without invites.
var ErrInvitesUnsupported = errors.New("invites need AUTH_MODE ticket or jwt")

// HasInvites reports whether guests of mode need an invite from their host:
// only in ticket and jwt mode, where the host is proven. In none and sign
// mode anyone can act as any UserId, host included, so an invite would prove
// nothing: there are none, and a guest joins in the role it asks for.
func HasInvites(mode string) bool { return mode == config.AuthTicket || mode == config.AuthJWT }

// Invites mints and checks invitations to a multiplayer room.
//
// An invite is a sealed token (seal.go) bound to a host UserId,
// a role and an expiry. It is a bearer token: anyone holding it may join
// the host's room in its role, any number of times, until it expires. Being
// stateless, it cannot count or limit uses, nor be revoked alone: removing
// its secret from AUTH_SECRET revokes it (with the tickets that secret signed),
// and lowering AUTH_INVITE_TTL shortens invites already issued.
//
// The invite key is derived from each secret and the mode: an invite minted
// by a function in one mode is refused by a function in another that shares
// its AUTH_SECRET (the hosts' UserIds do not mean the same there).
//
// Every refusal by Verify is a Forbidden fault: malformed, tampered, signed by
// an unknown secret or in another mode, expired or for another host alike.
type Invites struct {
	seal   sealer
	maxTTL time.Duration
	now    func() time.Time
}

const (
	inviteKind       = 0x02
	maxInvitePayload = 1 + 8 + 8 + 1 + 1 + 64
)

// NewInvites returns the invites of cfg.Secrets in cfg.Mode with lifetimes up
// to cfg.InviteTTL (checked by config.Load); or nil and ErrInvitesUnsupported
// in a mode without invites (see HasInvites), or ErrInvitesUnconfigured
// without secrets.
func NewInvites(cfg config.Auth, opts Options) (*Invites, error) {
	if !HasInvites(cfg.Mode) {
		return nil, ErrInvitesUnsupported
	}
	if len(cfg.Secrets) == 0 {
		return nil, ErrInvitesUnconfigured
	}
	opts = opts.withDefaults()
	return &Invites{seal: newSealer(cfg.Secrets, inviteKind, "invite/"+cfg.Mode), maxTTL: cfg.InviteTTL, now: opts.Now}, nil
}

// Mint returns an invite to host's room in role (RolePlayer or RoleViewer),
// valid for ttl, or for the longest lifetime allowed when ttl is zero or
// longer than that, and when it expires.
func (v *Invites) Mint(host, role string, ttl time.Duration) (token string, expires time.Time, err error) {
	code := roleCode(role)
	switch {
	case code == 0:
		return "", time.Time{}, fault.New(fault.Invalid, "Role must be Player or Viewer")
	case !ValidUserID(host):
		return "", time.Time{}, fault.New(fault.Invalid, "the host UserId is not valid")
	case ttl < 0:
		return "", time.Time{}, fault.New(fault.Invalid, "the invite lifetime must not be negative")
	case ttl == 0 || ttl > v.maxTTL:
		ttl = v.maxTTL
	}
	if ttl < time.Second {
		ttl = time.Second
	}
	iat := v.now().Unix()
	exp := iat + int64(ttl/time.Second)
	p := append(make([]byte, 0, maxInvitePayload), inviteKind)
	p = putTime(p, iat)
	p = putTime(p, exp)
	p = append(p, code)
	p = putString(p, host)
	return v.seal.seal(p), time.Unix(exp, 0), nil
}

// Verify returns the role an invite grants in host's room, or a Forbidden
// fault.
func (v *Invites) Verify(token, host string) (role string, err error) {
	p, ok := v.seal.open(token, maxInvitePayload)
	if !ok {
		return "", badInvite()
	}
	r := reader{b: p[1:]}
	iat, exp, code, inviteHost := r.time(), r.time(), r.byte(), r.string()
	role = roleName(code)
	if !r.done() || role == "" || !ValidUserID(inviteHost) {
		return "", badInvite()
	}
	if !live(iat, exp, v.now().Unix(), int64(v.maxTTL/time.Second)) {
		return "", forbidden("the invite has expired")
	}
	if inviteHost != host {
		return "", forbidden("the invite is for another host")
	}
	return role, nil
}

func badInvite() error { return forbidden("invalid invite") }

func roleCode(role string) byte {
	switch role {
	case RolePlayer:
		return 1
	case RoleViewer:
		return 2
	}
	return 0
}

func roleName(code byte) string {
	switch code {
	case 1:
		return RolePlayer
	case 2:
		return RoleViewer
	}
	return ""
}
