package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"carbroker/internal/auth"
	"carbroker/internal/fault"
)

// maxRequestBytes is the largest request body accepted (the platform allows
// 6 MB: scf.MaxBodyBytes).
const maxRequestBytes = 256 << 10

// Limits on single fields.
const (
	maxClientSession = 64 << 10
	maxAppParams     = 1 << 10
	maxField         = 256
)

var (
	requestIDPattern  = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
	resourceIDPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// fields are a request's values as received: JSON string/number/bool values
// rendered as strings, or form values.
type fields map[string]string

// readFields decodes the body as JSON whatever the Content-Type (Tencent's
// sample pages send none, browsers then say text/plain), or as a form when
// the Content-Type says application/x-www-form-urlencoded. An empty body
// gives no fields. Query parameters are not read here.
func readFields(r *http.Request) (fields, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxRequestBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fault.New(fault.TooLarge, "the request body is larger than 256 KiB")
		}
		return nil, fault.Wrap(fault.Invalid, "the request body could not be read", err)
	}
	return parseFields(r.Header.Get("Content-Type"), body)
}

func parseFields(contentType string, body []byte) (fields, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	trimmed := bytes.TrimSpace(body)
	// A body that looks like JSON is JSON, whatever it says it is: curl -d
	// labels it a form, Tencent's sample pages send no Content-Type.
	if mt == "application/x-www-form-urlencoded" && !bytes.HasPrefix(trimmed, []byte("{")) && !bytes.HasPrefix(trimmed, []byte("[")) {
		q, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fault.New(fault.Invalid, "the form body is malformed")
		}
		f := make(fields, len(q))
		for k, v := range q {
			if len(v) > 1 {
				return nil, fault.New(fault.Invalid, "field "+safeName(k)+" is given more than once")
			}
			f[k] = v[0]
		}
		return f, nil
	}
	if len(trimmed) == 0 {
		return fields{}, nil
	}
	if trimmed[0] != '{' {
		return nil, fault.New(fault.Invalid, "the body must be a JSON object (or a form), such as {\"ClientSession\":\"…\"}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, fault.New(fault.Invalid, "the body must be a JSON object (or a form)")
	}
	if dec.More() {
		return nil, fault.New(fault.Invalid, "the body must hold exactly one JSON object")
	}
	f := make(fields, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			f[k] = v
		case json.Number:
			f[k] = v.String()
		case bool:
			if v {
				f[k] = "true"
			} else {
				f[k] = "false"
			}
		case nil:
			// null is absent
		default:
			return nil, fault.New(fault.Invalid, "field "+safeName(k)+" must be a string")
		}
	}
	return f, nil
}

// routeFields are the body fields each operation reads, besides RequestId
// and Sign, which any route takes.
var routeFields = map[string][]string{
	opStart: {"UserId", "ClientSession", "ProjectId", "ApplicationId", "ApplicationVersionId", "ApplicationParameters",
		"RunMode", "HostUserId", "Role", "Invite"},
	opEnqueue: {"UserId", "ClientSession", "ProjectId", "ApplicationId", "ApplicationVersionId", "ApplicationParameters",
		"RunMode", "HostUserId", "Role", "Invite"},
	opStop:    {"UserId"},
	opAlive:   {"UserId", "ProjectId"},
	opInvite:  {"UserId", "Role", "ExpiresIn"},
	opDequeue: {"UserId"},
	opRenew:   {"UserId", "ProjectId"},
}

// checkFields refuses fields that op does not read, so that a misspelt
// field is not silently ignored. A field that differs from a known one only
// in case ("userId") is refused on every route, naming the expected
// spelling; other unknown fields are refused when strict (the native
// routes), and ignored on the demo's routes, as the demo ignores them.
func checkFields(f fields, op string, strict bool) error {
	known := append(slices.Clone(routeFields[op]), "RequestId", "Sign")
	var bad []string
	for k := range f {
		if slices.Contains(known, k) {
			continue
		}
		i := slices.IndexFunc(known, func(n string) bool { return strings.EqualFold(n, k) })
		switch {
		case i >= 0:
			bad = append(bad, safeName(k)+" (did you mean "+known[i]+"?)")
		case strict:
			bad = append(bad, safeName(k))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	msg := "unknown field " + bad[0]
	if len(bad) > 1 {
		msg = "unknown fields " + strings.Join(bad[:min(len(bad), 5)], ", ")
	}
	return fault.New(fault.Invalid, msg+"; field names are case-sensitive: "+strings.Join(known, ", "))
}

// safeName renders a client-chosen field name for a message.
func safeName(k string) string {
	if len(k) > 40 || !resourceIDPattern.MatchString(k) {
		return "(unnamed)"
	}
	return k
}

// startFields is a validated start request.
type startFields struct {
	UserID, ClientSession                          string
	ProjectID, ApplicationID, ApplicationVersionID string
	ApplicationParameters, RunMode                 string
	HostUserID, Role, Invite                       string
	ClientRequestID                                string
}

const runWithoutClient = "RunWithoutClient"

// validateStart checks a start request: the shape of every field, and a
// ClientSession unless the app runs without a client. Policy (allow-lists)
// is checked later, after the caller is authenticated.
func validateStart(f fields) (startFields, error) {
	s, err := validateLock(f)
	if err == nil && s.RunMode != runWithoutClient && s.ClientSession == "" {
		if len(f) == 0 {
			return s, fault.New(fault.Invalid, "the body is empty: send a JSON object such as {\"ClientSession\":\"…\"}, "+
				"the value of TCGSDK.getClientSession() from the client SDK")
		}
		return s, fault.New(fault.Invalid, "ClientSession is required: pass TCGSDK.getClientSession() from the client SDK")
	}
	return s, err
}

// validateLock checks the shape of every field of a lock request
// (/Enqueue), which goes without a ClientSession.
func validateLock(f fields) (startFields, error) {
	s := startFields{
		UserID: f["UserId"], ClientSession: f["ClientSession"], ProjectID: f["ProjectId"],
		ApplicationID: f["ApplicationId"], ApplicationVersionID: f["ApplicationVersionId"],
		ApplicationParameters: f["ApplicationParameters"], RunMode: f["RunMode"],
		HostUserID: f["HostUserId"], Role: f["Role"], Invite: f["Invite"],
	}
	if s.UserID != "" && !auth.ValidUserID(s.UserID) {
		return s, badUserID("UserId")
	}
	if s.HostUserID != "" && !auth.ValidUserID(s.HostUserID) {
		return s, badUserID("HostUserId")
	}
	for name, v := range map[string]string{"ProjectId": s.ProjectID, "ApplicationId": s.ApplicationID,
		"ApplicationVersionId": s.ApplicationVersionID} {
		if v != "" && !resourceIDPattern.MatchString(v) {
			return s, fault.New(fault.Invalid, name+" is not a valid CAR id")
		}
	}
	switch s.RunMode {
	case "", runWithoutClient:
	default:
		return s, fault.New(fault.Invalid, "RunMode must be empty or RunWithoutClient")
	}
	if s.Role != "" && !auth.ValidRole(s.Role) {
		return s, errBadRole
	}
	if len(s.ClientSession) > maxClientSession {
		return s, fault.New(fault.Invalid, "ClientSession is longer than 64 KiB")
	}
	if strings.ContainsAny(s.ClientSession, "\x00\r\n") {
		return s, fault.New(fault.Invalid, "ClientSession contains control characters")
	}
	if len(s.ApplicationParameters) > maxAppParams {
		return s, fault.New(fault.Invalid, "ApplicationParameters is longer than 1 KiB")
	}
	if strings.ContainsFunc(s.ApplicationParameters, unicode.IsControl) {
		return s, fault.New(fault.Invalid, "ApplicationParameters contains control characters")
	}
	if len(s.Invite) > 2048 {
		return s, fault.New(fault.Invalid, "Invite is malformed")
	}
	return s, nil
}

func badUserID(field string) error {
	return fault.New(fault.Invalid, field+" must be "+auth.UserIDRule)
}

var errBadRole = fault.New(fault.Invalid, "Role must be "+auth.RolePlayer+" or "+auth.RoleViewer)

func validateClientRequestID(id string) error {
	if id != "" && !requestIDPattern.MatchString(id) {
		return fault.New(fault.Invalid, "RequestId must be 1-64 characters of A-Z a-z 0-9 _ . : -")
	}
	return nil
}

// userIDFrom reads the UserId of a stop request from the body or the query;
// both present and different is an error.
func userIDFrom(f fields, q url.Values) (string, error) {
	body, query := f["UserId"], q.Get("UserId")
	if len(q["UserId"]) > 1 {
		return "", fault.New(fault.Invalid, "UserId is given more than once")
	}
	if body != "" && query != "" && body != query {
		return "", fault.New(fault.Invalid, "UserId in the body and in the query differ")
	}
	id := body
	if id == "" {
		id = query
	}
	if id != "" && !auth.ValidUserID(id) {
		return "", badUserID("UserId")
	}
	return id, nil
}
