package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"carbroker/internal/auth"
	"carbroker/internal/broker"
)

// wait answers a user who has a place in the line: Retry-After, then the
// route's style.
func (a *api) wait(x *exchange, id auth.Identity, in broker.StartInput, p *broker.Place, ticket string) {
	x.w.Header().Set("Retry-After", strconv.Itoa(int(p.RetryAfter/time.Second)))
	x.outcome = "waiting"
	x.route.style.waiting(x, id, in, p, ticket)
}

// waitReply is the native 202 reply of POST /session for a user in line.
type waitReply struct {
	UserId    string
	Queue     any // queuePlace, or an empty object while the place is unknown
	RequestId string
	Ticket    string `json:",omitempty"` // the credential of a UserId the server just chose
}

type queuePlace struct {
	Position   int
	Ahead      int
	EtaSeconds *int `json:",omitempty"` // omitted while the line has no rate of grants yet
}

// waiting answers 202. A place unknown (Redis trouble: the start was not
// served) is "Queue":{} without Position: the client keeps polling per
// Retry-After.
func (native) waiting(x *exchange, id auth.Identity, _ broker.StartInput, p *broker.Place, ticket string) {
	if p.Position < 1 {
		x.reply(http.StatusAccepted, waitReply{UserId: id.UserID, Queue: struct{}{}, RequestId: x.requestID, Ticket: ticket})
		return
	}
	q := queuePlace{Position: p.Position, Ahead: p.Position - 1}
	if p.ETAKnown {
		s := int((p.ETA + time.Second - 1) / time.Second)
		q.EtaSeconds = &s
	}
	x.reply(http.StatusAccepted, waitReply{UserId: id.UserID, Queue: q, RequestId: x.requestID, Ticket: ticket})
}

// waiting is "queuing" (10100, Data.Index the demo's 0-based rank, -1
// while the place is unknown) for /Enqueue; for /StartProject it is the
// demo's apply-failed answer (10202): the user now has a place, and its
// /Enqueue polls report it.
func (c compat) waiting(x *exchange, id auth.Identity, in broker.StartInput, p *broker.Place, ticket string) {
	data := &compatQueue{Index: max(p.Position, 0) - 1, UserId: in.UserID, ProjectId: in.ProjectID}
	r := compatReply{Code: compatQueuing, Msg: "waiting in line; poll Enqueue again", Data: data,
		UserId: mintedOnly(id), Ticket: ticket}
	switch {
	case x.route.op == opStart && data.Index < 0:
		r.Code, r.Msg = compatApplyFailed, "waiting: the line is briefly unavailable; poll Enqueue"
	case x.route.op == opStart:
		r.Code, r.Msg = compatApplyFailed, "others are waiting: you are in line at index "+strconv.Itoa(data.Index)+"; poll Enqueue"
	case data.Index < 0:
		r.Msg = "waiting: the line is briefly unavailable; poll Enqueue again"
	}
	c.reply(x, r)
}
