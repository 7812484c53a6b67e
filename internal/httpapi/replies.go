package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"carbroker/internal/auth"
	"carbroker/internal/broker"
	"carbroker/internal/fault"
)

// style renders a route's replies: native, or the drop-in replies of
// Tencent's car-server-demo (compat.go). Handlers decide what happened;
// the style decides how it reads.
type style interface {
	// failed renders an error already recorded. minted is the caller's
	// identity when the server just chose its UserId (zero otherwise), and
	// ticket its credential.
	failed(x *exchange, fe *fault.Error, minted auth.Identity, ticket string)
	started(x *exchange, id auth.Identity, serverSession, ticket string)
	// waiting renders a place in the line (waiting.go).
	waiting(x *exchange, id auth.Identity, in broker.StartInput, p *broker.Place, ticket string)
	stopped(x *exchange, userID string)
	// lenient reports whether fields the route does not read are ignored
	// (as the demo ignores them) rather than refused.
	lenient() bool
}

// record keeps a failure's outcome for the reply and the log line: the
// error itself and its Retry-After. It renders nothing.
func (a *api) record(x *exchange, err error) *fault.Error {
	fe := fault.As(err)
	x.err = fe
	if ra := retryAfter(fe); ra != "" {
		x.w.Header().Set("Retry-After", ra)
	}
	return fe
}

// fail records err and renders it in the route's style. A caller whose
// UserId the server just chose learns it, with its credential, even when
// the start failed: its next try then reuses the concurrency CAR may have
// locked for it.
func (a *api) fail(x *exchange, err error) {
	fe := a.record(x, err)
	var minted auth.Identity
	var ticket string
	if x.identity.Minted {
		if t, err := a.auth.Credential(x.identity); err == nil {
			minted, ticket = x.identity, t
		}
	}
	x.route.style.failed(x, fe, minted, ticket)
}

// retryAfter is the Retry-After header value for an error (whole seconds,
// rounded up, from fault.Error.Wait), "" for none.
func retryAfter(fe *fault.Error) string {
	d := fe.Wait()
	if d <= 0 {
		return ""
	}
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}

// native is the style of the broker's own routes: HTTP statuses from the
// one table (Status, reply.go) and the error body Reply.
type native struct{}

func (native) failed(x *exchange, fe *fault.Error, minted auth.Identity, ticket string) {
	status, body := Render(fe, x.requestID)
	body.UserId, body.Ticket = minted.UserID, ticket
	x.reply(status, body)
}

// startReply is the native POST /session reply.
type startReply struct {
	UserId        string
	ServerSession string
	RequestId     string
	Ticket        string `json:",omitempty"`
	ExpiresAt     string `json:",omitempty"` // the session's lease end (SESSION_MAX), RFC 3339 UTC
}

func (native) started(x *exchange, id auth.Identity, serverSession, ticket string) {
	x.reply(http.StatusOK, startReply{UserId: id.UserID, ServerSession: serverSession, RequestId: x.requestID, Ticket: ticket,
		ExpiresAt: expiresAt(x)})
}

// expiresAt renders the exchange's lease end, "" for none.
func expiresAt(x *exchange) string {
	if x.expiresAt.IsZero() {
		return ""
	}
	return x.expiresAt.UTC().Format(time.RFC3339)
}

func (native) lenient() bool { return false }

func (native) stopped(x *exchange, userID string) {
	x.reply(http.StatusOK, map[string]string{"UserId": userID, "RequestId": x.requestID})
}
