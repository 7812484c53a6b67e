package httpapi

import (
	"net/http"
	"time"

	"carbroker/internal/auth"
	"carbroker/internal/fault"
)

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
	if project, err = a.project(project); err != nil {
		return auth.Identity{}, "", err
	}
	return id, project, nil
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
