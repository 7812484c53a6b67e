package httpapi

import (
	"net/http"

	"carbroker/internal/auth"
	"carbroker/internal/fault"
)

// compat is the style of the drop-in routes of Tencent's car-server-demo
// (/StartProject, /StopProject, /Enqueue, /Dequeue): always HTTP 200, the
// outcome in a numeric Code, the client's RequestId echoed.
type compat struct{}

// Compat codes of Tencent's car-server-demo.
const (
	compatOK           = 0
	compatBadSign      = 10000
	compatBadParams    = 10001
	compatQueuing      = 10100
	compatQueueDone    = 10101
	compatCreateFailed = 10200
	compatStopFailed   = 10201
	compatApplyFailed  = 10202
)

// compatReply is the car-server-demo reply.
type compatReply struct {
	RequestId       string
	Code            int
	Msg             string
	SessionDescribe *compatSession `json:",omitempty"`
	Data            *compatQueue   `json:",omitempty"`
	UserId          string         `json:",omitempty"` // only a UserId the server just chose
	Ticket          string         `json:",omitempty"`
	ExpiresAt       string         `json:",omitempty"` // an extra field: the session's lease end (SESSION_MAX)
}

type compatSession struct {
	ServerSession string
	RequestId     string
}

type compatQueue struct {
	Index     int
	UserId    string
	ProjectId string
}

// compatCode renders an error as the demo's numeric code for the operation.
func compatCode(fe *fault.Error, op string) int {
	switch fe.Kind {
	case fault.Invalid, fault.TooLarge:
		return compatBadParams
	case fault.Unauthenticated, fault.Forbidden:
		return compatBadSign
	}
	switch {
	case op == opStop:
		return compatStopFailed
	case fe.Action == "ApplyConcurrent" || op == opEnqueue:
		return compatApplyFailed
	}
	return compatCreateFailed
}

// reply writes a compat reply, echoing the client's RequestId (else ours).
func (compat) reply(x *exchange, r compatReply) {
	r.RequestId = x.requestID
	if x.clientRequestID != "" {
		r.RequestId = x.clientRequestID
	}
	x.reply(http.StatusOK, r)
}

func (c compat) failed(x *exchange, fe *fault.Error, minted auth.Identity, ticket string) {
	c.reply(x, compatReply{Code: compatCode(fe, x.route.op), Msg: fe.Message, UserId: minted.UserID, Ticket: ticket})
}

func (c compat) started(x *exchange, id auth.Identity, serverSession, ticket string) {
	c.reply(x, compatReply{Code: compatOK, Msg: "ok", SessionDescribe: &compatSession{ServerSession: serverSession, RequestId: x.requestID},
		UserId: mintedOnly(id), Ticket: ticket, ExpiresAt: expiresAt(x)})
}

func (compat) lenient() bool { return true }

func (c compat) stopped(x *exchange, _ string) {
	c.reply(x, compatReply{Code: compatOK, Msg: "ok"})
}

// mintedOnly returns the UserId when the server chose it (the client must
// learn it); compat replies otherwise carry no UserId, as the demo's.
func mintedOnly(id auth.Identity) string {
	if id.Minted {
		return id.UserID
	}
	return ""
}

// enqueue is the demo's /Enqueue: it joins or polls the project's line, and
// locks a concurrency with ApplyConcurrent when the user's turn comes.
// Success is "queue done" (10101, call StartProject now); waiting is
// "queuing" (10100) with the 0-based Index of the user's place, -1 while
// Redis is in trouble (the place is unknown). With the line off, no idle
// concurrency is "queuing" with Index 1: the function then keeps no line
// and cannot know a position.
func (a *api) enqueue(x *exchange) {
	in, _, err := a.prepareStart(x)
	if err != nil {
		a.fail(x, err)
		return
	}
	data := &compatQueue{UserId: in.UserID, ProjectId: in.ProjectID}
	ticket, err := a.auth.Credential(x.identity)
	if err != nil {
		a.fail(x, err)
		return
	}
	reply := compatReply{Code: compatQueueDone, Msg: "concurrency locked; call StartProject now", Data: data,
		UserId: mintedOnly(x.identity), Ticket: ticket}
	x.outcome = "locked"
	res, err := a.broker.Lock(x.r.Context(), in)
	if res.Place != nil {
		a.wait(x, x.identity, in, res.Place, ticket)
		return
	}
	if err != nil {
		if fault.KindOf(err) != fault.NoIdle {
			a.fail(x, err)
			return
		}
		a.record(x, err) // Retry-After, and the error for the log line
		data.Index = 1
		reply.Code, reply.Msg, x.outcome = compatQueuing, "no idle concurrency; poll Enqueue again", "queuing"
	}
	compat{}.reply(x, reply)
}

// dequeue is the demo's /Dequeue: it leaves the line (of every allowed
// project) and destroys nothing: a concurrency CAR locked for the user
// stays its own until CAR's lock expires. Anyone may dequeue in none mode
// (as in the demo); in ticket and jwt modes only the owner of the place.
func (a *api) dequeue(x *exchange) {
	f, err := a.readRequest(x)
	if err != nil {
		a.fail(x, err)
		return
	}
	userID, err := userIDFrom(f, nil)
	if err != nil {
		a.fail(x, err)
		return
	}
	if userID != "" || x.r.Header.Get("Authorization") != "" {
		id, err := a.authenticate(x, auth.OpStop, userID, f)
		if err != nil {
			a.fail(x, err)
			return
		}
		a.broker.Leave(x.r.Context(), id.UserID)
	}
	x.outcome = "dequeued"
	compat{}.reply(x, compatReply{Code: compatOK, Msg: "ok"})
}
