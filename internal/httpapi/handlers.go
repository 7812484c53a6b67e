package httpapi

import (
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"carbroker/internal/auth"
	"carbroker/internal/broker"
	"carbroker/internal/fault"
)

// authenticate runs the authenticator and records the caller.
func (a *api) authenticate(x *exchange, op auth.Op, userID string, f fields) (auth.Identity, error) {
	id, err := a.auth.Authenticate(x.r.Context(), auth.Request{Op: op, Header: x.r.Header, UserID: userID, Values: f})
	if err != nil {
		return id, err
	}
	x.userID, x.identity = id.UserID, id
	return id, nil
}

// identify authenticates the caller of a request naming its UserId in the
// body (or, for a stop, the query).
func (a *api) identify(x *exchange, op auth.Op, f fields, q url.Values) (auth.Identity, error) {
	userID, err := userIDFrom(f, q)
	if err != nil {
		return auth.Identity{}, err
	}
	return a.authenticate(x, op, userID, f)
}

// prepareStart decodes, validates, authenticates and authorises a start
// request (POST /session, /StartProject, /Enqueue). Nothing reaches CAR
// unless it returns no error.
func (a *api) prepareStart(x *exchange) (broker.StartInput, auth.Identity, error) {
	var in broker.StartInput
	f, err := a.readRequest(x)
	if err != nil {
		return in, auth.Identity{}, err
	}
	validate := validateStart
	if x.route.op == opEnqueue {
		validate = validateLock
	}
	s, err := validate(f)
	if err != nil {
		return in, auth.Identity{}, err
	}
	id, err := a.authenticate(x, auth.OpStart, s.UserID, f)
	if err != nil {
		return in, id, err
	}
	in = broker.StartInput{UserID: id.UserID, ProjectID: s.ProjectID, ApplicationID: s.ApplicationID,
		ApplicationVersionID: s.ApplicationVersionID, ClientSession: s.ClientSession, RunMode: s.RunMode,
		ApplicationParameters: s.ApplicationParameters, HostUserID: s.HostUserID, Role: s.Role}
	if x.route.op == opEnqueue && in.Guest() {
		// A lock is for the caller's own session: a guest locking a
		// concurrency would take one outside the line.
		return in, id, errEnqueueGuest
	}
	if err := a.authorise(&in, s.Invite); err != nil {
		return in, id, err
	}
	if in.UserIP, err = a.clientIP(x.r); err != nil {
		return in, id, err
	}
	return in, id, nil
}

// authorise applies the allow-lists and the invite rule, filling defaults.
func (a *api) authorise(in *broker.StartInput, invite string) error {
	c := a.cfg
	project, err := a.project(in.ProjectID)
	if err != nil {
		return err
	}
	in.ProjectID = project
	if in.ApplicationID == "" {
		in.ApplicationID = c.ApplicationID
	} else if !slices.Contains(c.AllowedAppIDs, in.ApplicationID) && in.ApplicationID != c.ApplicationID {
		return fault.New(fault.Forbidden, "ApplicationId is not allowed (CAR_ALLOWED_APPLICATION_IDS)")
	}
	if in.ApplicationVersionID != "" && !slices.Contains(c.AllowedVersionIDs, in.ApplicationVersionID) {
		return fault.New(fault.Forbidden, "ApplicationVersionId is not allowed (CAR_ALLOWED_VERSION_IDS)")
	}
	if in.ApplicationParameters != "" && (c.AppParamsPattern == nil || !c.AppParamsPattern.MatchString(in.ApplicationParameters)) {
		return fault.New(fault.Forbidden, "ApplicationParameters is not allowed (CAR_ALLOW_APPLICATION_PARAMETERS)")
	}
	if in.RunMode == runWithoutClient && !c.AllowRunWithoutClient {
		return fault.New(fault.Forbidden, "RunMode RunWithoutClient is not allowed (CAR_ALLOW_RUN_WITHOUT_CLIENT)")
	}
	if !in.Guest() {
		if invite != "" {
			return fault.New(fault.Invalid, "Invite is only for joining another user's room (set HostUserId)")
		}
		return nil
	}
	if !a.requireInvites {
		return nil
	}
	if a.invites == nil {
		return fault.New(fault.Forbidden, "joining another user's room needs an invite, and invites are not configured (set AUTH_SECRET)")
	}
	if invite == "" {
		return fault.New(fault.Forbidden, "joining another user's room needs an Invite from its host (POST /session/invite)")
	}
	role, err := a.invites.Verify(invite, in.HostUserID)
	if err != nil {
		return err
	}
	in.Role = role // the invite's role, not the client's
	return nil
}

func (a *api) start(x *exchange) {
	in, id, err := a.prepareStart(x)
	if err != nil {
		a.fail(x, err)
		return
	}
	res, err := a.broker.Start(x.r.Context(), in)
	if err != nil {
		a.fail(x, err)
		return
	}
	ticket, err := a.auth.Credential(id)
	if err != nil {
		a.fail(x, err)
		return
	}
	if res.Place != nil {
		a.wait(x, id, in, res.Place, ticket)
		return
	}
	x.outcome = "started"
	x.expiresAt = res.ExpiresAt
	x.route.style.started(x, id, res.ServerSession, ticket)
}

func (a *api) stop(x *exchange) {
	f, err := a.readRequest(x)
	if err != nil {
		a.fail(x, err)
		return
	}
	id, err := a.identify(x, auth.OpStop, f, x.r.URL.Query())
	if err != nil {
		a.fail(x, err)
		return
	}
	if err := a.broker.Stop(x.r.Context(), id.UserID); err != nil {
		a.fail(x, err)
		return
	}
	x.outcome = "stopped"
	x.route.style.stopped(x, id.UserID)
}

// project is the ProjectId a request names, CAR_PROJECT_ID when it names
// none, if CAR_ALLOWED_PROJECT_IDS allows it.
func (a *api) project(named string) (string, error) {
	if named == "" {
		named = a.cfg.ProjectID
	}
	if !slices.Contains(a.cfg.AllowedProjectIDs, named) {
		return "", errProjectNotAllowed
	}
	return named, nil
}

var errProjectNotAllowed = fault.New(fault.Forbidden, "ProjectId is not allowed (CAR_ALLOWED_PROJECT_IDS)")

var errEnqueueGuest = fault.New(fault.Invalid,
	"Enqueue locks a concurrency for the caller's own session: HostUserId must be empty or the caller's own UserId (a guest joins its host's room with StartProject)")

// maxInviteSeconds bounds ExpiresIn before it becomes a Duration (no overflow).
const maxInviteSeconds = 366 * 24 * 3600

// invite mints an invite to the caller's own room.
func (a *api) invite(x *exchange) {
	f, err := a.readRequest(x)
	if err != nil {
		a.fail(x, err)
		return
	}
	role := f["Role"]
	if role == "" {
		role = auth.RolePlayer
	}
	if !auth.ValidRole(role) {
		a.fail(x, errBadRole)
		return
	}
	var ttl time.Duration
	if s := f["ExpiresIn"]; s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			a.fail(x, fault.New(fault.Invalid, "ExpiresIn must be a positive number of seconds"))
			return
		}
		ttl = time.Duration(min(n, maxInviteSeconds)) * time.Second // Mint caps it at AUTH_INVITE_TTL
	}
	id, err := a.identify(x, auth.OpInvite, f, nil)
	if err != nil {
		a.fail(x, err)
		return
	}
	if a.invites == nil {
		a.fail(x, fault.New(fault.Forbidden, "invites are not available: they need AUTH_MODE ticket or jwt, and AUTH_SECRET"))
		return
	}
	token, expires, err := a.invites.Mint(id.UserID, role, ttl)
	if err != nil {
		a.fail(x, err)
		return
	}
	x.outcome = "invited"
	x.reply(http.StatusOK, map[string]string{"Invite": token, "HostUserId": id.UserID, "Role": role,
		"ExpiresAt": expires.UTC().Format(time.RFC3339), "RequestId": x.requestID})
}

// readRequest reads the body's fields and the client's RequestId, which is
// kept for the log line (and the compat echo) only when it is safe.
func (a *api) readRequest(x *exchange) (fields, error) {
	f, err := readFields(x.r)
	if err != nil {
		return nil, err
	}
	if err := validateClientRequestID(f["RequestId"]); err != nil {
		return nil, err
	}
	if err := checkFields(f, x.route.op, !x.route.style.lenient()); err != nil {
		return nil, err
	}
	x.clientRequestID = f["RequestId"]
	return f, nil
}

// logRequest writes the request's one log line. It never logs a body, a
// credential, a ClientSession or a ServerSession.
func (a *api) logRequest(x *exchange) {
	level := slog.LevelInfo
	attrs := []slog.Attr{
		slog.String("request_id", x.requestID),
		slog.String("method", safeMethod(x.r.Method)),
		slog.String("route", x.route.path),
		slog.Int("status", x.status),
		slog.Float64("latency_ms", float64(time.Since(x.start).Microseconds())/1000),
	}
	if x.clientRequestID != "" {
		attrs = append(attrs, slog.String("client_request_id", x.clientRequestID))
	}
	if x.userID != "" {
		attrs = append(attrs, slog.String("user_id", x.userID))
	}
	if calls := x.calls.Calls(); len(calls) > 0 {
		attrs = append(attrs, slog.Any("car", x.calls))
	}
	if x.err != nil {
		outcome := x.err.Kind.String()
		// The message is what the client was told (never a secret): an
		// operator reading a 4xx sees why without asking the client.
		attrs = append(attrs, slog.String("outcome", outcome), slog.String("message", x.err.Message))
		if x.err.Code != "" {
			attrs = append(attrs, slog.String("car_code", x.err.Code))
		}
		if x.err.Err != nil {
			attrs = append(attrs, slog.String("cause", x.err.Err.Error()))
		}
		level = x.err.LogLevel()
	} else if x.outcome != "" {
		attrs = append(attrs, slog.String("outcome", x.outcome))
	}
	a.log.LogAttrs(x.r.Context(), level, "request", attrs...)
}
