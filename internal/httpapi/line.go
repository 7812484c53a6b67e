package httpapi

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"carbroker/internal/auth"
	"carbroker/internal/broker"
	"carbroker/internal/fault"
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

// aliveReply is POST /session/alive.
type aliveReply struct {
	UserId           string
	Holding          bool
	HeartbeatSeconds int
	RequestId        string
}

// alive is a client's heartbeat while its app runs: owner-only like a
// stop, one Redis call, no CAR call. Holding says whether the user holds a
// mark through us (its reconnects skip the line): false tells the client to
// stop heartbeating (no mark, or the line is off: HeartbeatSeconds 0). The
// project is ProjectId, default CAR_PROJECT_ID, and must be allowed.
func (a *api) alive(x *exchange) {
	id, project, err := a.ownerRequest(x, auth.OpAlive)
	if err != nil {
		a.fail(x, err)
		return
	}
	holding, every, err := a.broker.Alive(x.r.Context(), project, id.UserID)
	if err != nil {
		a.fail(x, err)
		return
	}
	x.outcome = "alive"
	if !holding {
		x.outcome = "not holding"
	}
	x.reply(http.StatusOK, aliveReply{UserId: id.UserID, Holding: holding,
		HeartbeatSeconds: int(every / time.Second), RequestId: x.requestID})
}

// ownerRequest reads an owner-only request about one of the caller's own
// projects (a heartbeat, a renewal): the UserId (body, or query), the
// credential for op, and ProjectId (default CAR_PROJECT_ID), which must be
// allowed; authentication comes first, so an anonymous caller learns
// nothing of the allow-list.
func (a *api) ownerRequest(x *exchange, op auth.Op) (auth.Identity, string, error) {
	f, err := a.readRequest(x)
	if err != nil {
		return auth.Identity{}, "", err
	}
	project := f["ProjectId"]
	if project != "" && !resourceIDPattern.MatchString(project) {
		return auth.Identity{}, "", fault.New(fault.Invalid, "ProjectId is not a valid CAR id")
	}
	id, err := a.identify(x, op, f, x.r.URL.Query())
	if err != nil {
		return auth.Identity{}, "", err
	}
	if project == "" {
		project = a.cfg.ProjectID
	}
	if !slices.Contains(a.cfg.AllowedProjectIDs, project) {
		return auth.Identity{}, "", fault.New(fault.Forbidden, "ProjectId is not allowed (CAR_ALLOWED_PROJECT_IDS)")
	}
	return id, project, nil
}

// capacityReply is GET /capacity.
type capacityReply struct {
	Total, Running, Idle, Waiting int
	RequestId                     string
}

// capacity answers a project's pool (from CAR's DescribeConcurrentCount,
// never more than 1 s old) and its line. ProjectId defaults to
// CAR_PROJECT_ID and must be allowed. Any authenticated caller may read it
// in ticket and jwt modes; anyone in none and sign modes.
func (a *api) capacity(x *exchange) {
	q := x.r.URL.Query()
	project := q.Get("ProjectId")
	if len(q["ProjectId"]) > 1 {
		a.fail(x, fault.New(fault.Invalid, "ProjectId is given more than once"))
		return
	}
	// Authentication first: an anonymous caller learns nothing, not even
	// which ProjectIds are allowed.
	id, err := a.auth.Authenticate(x.r.Context(), auth.Request{Op: auth.OpRead, Header: x.r.Header})
	if err != nil {
		a.fail(x, err)
		return
	}
	x.userID = id.UserID
	if project == "" {
		project = a.cfg.ProjectID
	}
	if !slices.Contains(a.cfg.AllowedProjectIDs, project) {
		a.fail(x, fault.New(fault.Forbidden, "ProjectId is not allowed (CAR_ALLOWED_PROJECT_IDS)"))
		return
	}
	c, err := a.broker.Capacity(x.r.Context(), project)
	if err != nil {
		a.fail(x, err)
		return
	}
	x.outcome = "capacity"
	x.reply(http.StatusOK, capacityReply{Total: c.Total, Running: c.Running, Idle: c.Idle, Waiting: c.Waiting, RequestId: x.requestID})
}

// health answers GET /healthz; with the line on, Queue says whether Redis
// is reachable ("ok") or the line is degraded to stateless starts.
//
// Auth names the AUTH_MODE in force, so a client (make smoke) knows what
// the server asks for. Where credentials come with each invoke (event
// mode), Credentials says whether this one brought them: "missing" is a
// 503, as the function cannot call CAR.
func (a *api) health(x *exchange) {
	body := map[string]string{"Status": "ok", "Version": a.version, "Auth": string(a.cfg.Auth.Mode)}
	if q := a.broker.Health(x.r.Context()); q != "" {
		body["Queue"] = q
	}
	status := http.StatusOK
	if a.credentials != nil {
		body["Credentials"] = "ok"
		if !a.credentials(x.r.Context()) {
			body["Status"], body["Credentials"] = "unavailable", "missing"
			status = http.StatusServiceUnavailable
		}
	}
	x.reply(status, body)
}

// renew answers POST /session/renew: the owner extends its session lease
// by SESSION_MAX from now (SESSION_RENEW), in ProjectId (default
// CAR_PROJECT_ID). Owner-only, like a stop.
func (a *api) renew(x *exchange) {
	id, project, err := a.ownerRequest(x, auth.OpStop)
	if err != nil {
		a.fail(x, err)
		return
	}
	r, err := a.broker.Renew(x.r.Context(), id.UserID, project)
	if err != nil {
		a.fail(x, err)
		return
	}
	x.outcome = "renewed"
	x.expiresAt = r.ExpiresAt
	x.reply(http.StatusOK, renewReply{UserId: id.UserID, ExpiresAt: expiresAt(x), RenewalsLeft: r.RenewalsLeft, RequestId: x.requestID})
}

// renewReply is the POST /session/renew reply.
type renewReply struct {
	UserId       string
	ExpiresAt    string
	RenewalsLeft int
	RequestId    string
}
