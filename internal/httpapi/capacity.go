package httpapi

import (
	"net/http"

	"carbroker/internal/auth"
	"carbroker/internal/fault"
)

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
	if project, err = a.project(project); err != nil {
		a.fail(x, err)
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
