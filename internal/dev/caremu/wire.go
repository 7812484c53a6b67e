package caremu

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"carbroker/internal/dev/tc3"
)

// maxBody is the largest request body accepted (CAR's documented POST limit).
const maxBody = 10 << 20

// apiError is an error answered in the CAR envelope.
type apiError struct{ Code, Message string }

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(code, msg string) error { return &apiError{Code: code, Message: msg} }

// rawError makes the handler answer with raw bytes instead of an envelope.
type rawError struct{ r RawReply }

func (e *rawError) Error() string { return "raw reply" }

// actions lists each action's parameters: name → required.
var actions = map[string]map[string]bool{
	"ApplyConcurrent": {
		"UserId": true, "UserIp": true, "ProjectId": true,
		"ApplicationVersionId": false, "ApplicationId": false,
	},
	"CreateSession": {
		"UserId": true, "UserIp": true, "ClientSession": false, "RunMode": false,
		"ApplicationParameters": false, "HostUserId": false, "Role": false,
	},
	"DestroySession":          {"UserId": true},
	"DescribeConcurrentCount": {"ProjectId": false, "ApplicationCategory": false},
}

// ServeHTTP answers one CAR API request. Every answer is HTTP 200 with a JSON
// envelope, except injected raw replies and requests whose client went away.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := Call{Action: r.Header.Get("X-TC-Action"), RequestID: tc3.NewRequestID(), Time: e.Now()}
	fields, err := e.serve(r, &c)

	var ae *apiError
	var raw *rawError
	switch {
	case err == nil:
		fields["RequestId"] = c.RequestID
		writeJSON(w, fields)
	case errors.As(err, &ae):
		c.Code = ae.Code
		writeJSON(w, map[string]any{
			"Error":     map[string]string{"Code": ae.Code, "Message": ae.Message},
			"RequestId": c.RequestID,
		})
	case errors.As(err, &raw):
		c.RequestID = ""
		if raw.r.ContentType != "" {
			w.Header().Set("Content-Type", raw.r.ContentType)
		}
		w.WriteHeader(raw.r.Status)
		_, _ = io.WriteString(w, raw.r.Body)
	default: // the request's context ended: nobody is listening
		c.RequestID = ""
		c.Canceled = true
	}
	e.record(c)
}

func writeJSON(w http.ResponseWriter, response map[string]any) {
	b, _ := json.Marshal(map[string]any{"Response": response}) // plain maps of strings and ints
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// serve checks the request, applies latency and faults, then runs the action.
func (e *Emulator) serve(r *http.Request, c *Call) (map[string]any, error) {
	if r.Method != http.MethodPost {
		return nil, errorf("UnsupportedProtocol", "only POST with a JSON body is supported")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, err // the client went away
	}
	if len(body) > maxBody {
		return nil, errorf("InvalidParameter", "the request body exceeds 10 MB")
	}
	known := func(a string) bool { _, ok := actions[a]; return ok }
	if err := e.auth.CheckRequest(r, body, Version, known); err != nil {
		var te *tc3.Error
		if errors.As(err, &te) {
			return nil, errorf(te.Code, te.Message)
		}
		return nil, err
	}
	if !e.admit(c.Action) {
		return nil, errorf("RequestLimitExceeded", "the request rate of "+c.Action+" exceeds its limit")
	}
	spec := actions[c.Action]
	p, err := decodeParams(body, spec)
	if err != nil {
		return nil, err
	}
	c.UserID = p["UserId"]
	c.ClientSessionLen = len(p["ClientSession"])
	c.Params = make(map[string]string, len(p))
	for k, v := range p {
		if k != "ClientSession" {
			c.Params[k] = v
		}
	}
	if err := e.validate(c.Action, p); err != nil {
		return nil, err
	}

	if !e.enter(c.UserID) {
		return nil, errorf("FailedOperation.SlowDown", "a request for this UserId is already in progress")
	}
	defer e.leave(c.UserID)
	if err := e.inject(r.Context(), c); err != nil {
		return nil, err
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	switch c.Action {
	case "ApplyConcurrent":
		return map[string]any{}, e.applyConcurrent(p)
	case "CreateSession":
		s, err := e.createSession(p)
		return map[string]any{"ServerSession": s}, err
	case "DestroySession":
		return map[string]any{}, e.destroySession(p["UserId"])
	default:
		total, running := e.countLocked()
		return map[string]any{"Total": total, "Running": running}, nil
	}
}

// decodeParams reads a JSON object of string parameters, checked against spec.
func decodeParams(body []byte, spec map[string]bool) (map[string]string, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil, errorf("InvalidParameter.JsonParseError", "the request body is not a JSON object")
	}
	p := make(map[string]string, len(raw))
	for k, v := range raw {
		if _, ok := spec[k]; !ok {
			return nil, errorf("UnknownParameter", "the parameter `"+k+"` is not recognized")
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, errorf("InvalidParameter", "the parameter `"+k+"` must be a string")
		}
		p[k] = s
	}
	names := make([]string, 0, len(spec))
	for k := range spec {
		names = append(names, k)
	}
	slices.Sort(names) // report the same missing parameter every time
	for _, k := range names {
		if _, ok := p[k]; spec[k] && !ok {
			return nil, errorf("MissingParameter", "the request is missing the parameter `"+k+"`")
		}
	}
	return p, nil
}

// validate checks parameter values that do not depend on the pool.
func (e *Emulator) validate(action string, p map[string]string) error {
	if v, ok := p["UserId"]; ok && v == "" {
		return errorf("InvalidParameterValue", "UserId must not be empty")
	}
	if v, ok := p["UserIp"]; ok {
		if _, err := netip.ParseAddr(v); err != nil {
			return errorf("InvalidParameterValue", "UserIp is not an IP address")
		}
	}
	if v, ok := p["ProjectId"]; ok && len(e.opt.Projects) > 0 && !slices.Contains(e.opt.Projects, v) {
		return errorf("InvalidParameterValue", "ProjectId `"+v+"` does not exist")
	}
	switch action {
	case "CreateSession":
		switch p["RunMode"] {
		case "":
			if p["ClientSession"] == "" {
				return errorf("InvalidParameterValue", "ClientSession must not be empty unless RunMode is RunWithoutClient")
			}
		case RunWithoutClient:
		default:
			return errorf("InvalidParameterValue", "RunMode must be empty or RunWithoutClient")
		}
		if r := p["Role"]; r != "" && r != RolePlayer && r != RoleViewer {
			return errorf("InvalidParameterValue", "Role must be Player or Viewer")
		}
	case "DescribeConcurrentCount":
		if c := p["ApplicationCategory"]; c != "" && c != "DESKTOP" && c != "MOBILE" {
			return errorf("InvalidParameterValue", "ApplicationCategory must be DESKTOP or MOBILE")
		}
	}
	return nil
}

// admit applies Options.RateLimits: it reports whether one more request of
// action fits in the last second (real time), and records it if so.
func (e *Emulator) admit(action string) bool {
	limit, ok := e.opt.RateLimits[action]
	if !ok {
		return true
	}
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	recent := e.rates[action]
	i := 0
	for i < len(recent) && now.Sub(recent[i]) >= time.Second {
		i++
	}
	recent = recent[i:]
	if len(recent) >= limit {
		e.rates[action] = recent
		return false
	}
	e.rates[action] = append(recent, now)
	return true
}

// enter marks a call as in progress, for userID if it is not "". It reports
// false when another call for the same UserId is in progress.
func (e *Emulator) enter(userID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if userID != "" {
		if e.busy[userID] {
			return false
		}
		e.busy[userID] = true
	}
	e.inflight++
	return true
}

func (e *Emulator) leave(userID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.busy, userID)
	e.inflight--
}

// Transport returns an http.RoundTripper that serves requests in process,
// without a socket (tc3.InProcess).
func (e *Emulator) Transport() http.RoundTripper { return tc3.InProcess(e) }
