package auth

import (
	"context"
	"encoding/base32"
	"fmt"
	"io"
	"time"

	"carbroker/internal/config"
	"carbroker/internal/fault"
)

// Ticket mode, for apps without a login of their own.
//
// A caller that starts a session with neither a ticket nor a UserId gets a
// UserId chosen by the server ("u-" and 26 base32 characters: 128 random
// bits) and a ticket for it. From then on it presents
// "Authorization: Bearer <ticket>" and may act as that UserId only. Every
// success returns a fresh ticket, so the expiry slides while the user keeps
// coming back; an unused ticket dies after AUTH_TICKET_TTL.
//
// Tickets are sealed tokens (seal.go), 106 characters for a
// minted UserId.
type ticketAuth struct {
	seal sealer
	ttl  time.Duration
	now  func() time.Time
	rand io.Reader
}

const (
	ticketKind       = 0x01
	maxTicketPayload = 1 + 8 + 8 + 1 + 64
)

// newTicketAuth builds ticket mode from secrets and a lifetime that
// config.Load checked.
func newTicketAuth(cfg config.Auth, opts Options) *ticketAuth {
	return &ticketAuth{
		seal: newSealer(cfg.Secrets, ticketKind, "ticket"),
		ttl:  cfg.TicketTTL,
		now:  opts.Now,
		rand: opts.Rand,
	}
}

func (t *ticketAuth) Authenticate(_ context.Context, r Request) (Identity, error) {
	tok, present, err := bearer(r.Header)
	if err != nil {
		return Identity{}, err
	}
	if !present {
		switch {
		case r.UserID != "":
			return Identity{}, unauthenticated("a UserId needs its ticket: send Authorization: Bearer <ticket>")
		case r.Op != OpStart:
			return Identity{}, unauthenticated("missing ticket: send Authorization: Bearer <ticket>")
		}
		id, err := t.mint()
		if err != nil {
			return Identity{}, fault.Wrap(fault.Internal, fault.InternalMessage, err)
		}
		return Identity{UserID: id, Minted: true}, nil
	}
	id, ok := t.open(tok)
	if !ok {
		return Identity{}, unauthenticated("invalid or expired ticket")
	}
	if r.UserID != "" && r.UserID != id {
		return Identity{}, forbidden("the ticket is for another UserId")
	}
	return Identity{UserID: id}, nil
}

// Credential issues a ticket for id.UserID valid for AUTH_TICKET_TTL from now.
func (t *ticketAuth) Credential(id Identity) (string, error) {
	if !ValidUserID(id.UserID) {
		return "", fault.Wrap(fault.Internal, fault.InternalMessage, fmt.Errorf("auth: no ticket for an invalid UserId"))
	}
	iat := t.now().Unix()
	p := append(make([]byte, 0, maxTicketPayload), ticketKind)
	p = putTime(p, iat)
	p = putTime(p, iat+int64(t.ttl/time.Second))
	p = putString(p, id.UserID)
	return t.seal.seal(p), nil
}

// open returns the UserId of a valid, unexpired ticket.
func (t *ticketAuth) open(tok string) (string, bool) {
	p, ok := t.seal.open(tok, maxTicketPayload)
	if !ok {
		return "", false
	}
	r := reader{b: p[1:]}
	iat, exp, id := r.time(), r.time(), r.string()
	if !r.done() || !ValidUserID(id) || !live(iat, exp, t.now().Unix(), int64(t.ttl/time.Second)) {
		return "", false
	}
	return id, true
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// mint returns a fresh random UserId: "u-" and 16 random bytes in lowercase
// unpadded base32 (28 characters).
func (t *ticketAuth) mint() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(t.rand, b[:]); err != nil {
		return "", fmt.Errorf("auth: reading randomness: %w", err)
	}
	return "u-" + idEncoding.EncodeToString(b[:]), nil
}
