package scf

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// MaxBodyBytes bounds a decoded request body and a response body: SCF limits
// a synchronous event and its response to 6 MB.
const MaxBodyBytes = 6 << 20

// ErrBodyTooLarge reports a request body over MaxBodyBytes.
var ErrBodyTooLarge = errors.New("the request body exceeds 6 MB")

// Event is an HTTP request decoded from an SCF event.
type Event struct {
	// Request is a server request: URL holds only the path and query,
	// RemoteAddr is "ip:0" from the event's trusted source or "" when unknown.
	Request *http.Request
	// Trigger is "apigw" for an API Gateway trigger event (one with a
	// requestContext) and "url" for a Function URL event.
	Trigger string
	// GatewayRequestID is API Gateway's request id (requestContext.requestId,
	// else the x-api-requestid header), for correlating logs only: the
	// invoke's RequestId is the request's id.
	GatewayRequestID string
}

// forwardingHeaders are removed from every event, so that the only peer
// address is the one from the event's trusted source.
var forwardingHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Real-Ip", "X-Scf-Remote-Addr"}

type wireEvent struct {
	RequestContext        *wireRequestContext        `json:"requestContext"`
	HTTPMethod            *string                    `json:"httpMethod"`
	Path                  string                     `json:"path"`
	Headers               map[string]json.RawMessage `json:"headers"`
	QueryString           map[string]json.RawMessage `json:"queryString"`
	QueryStringParameters map[string]json.RawMessage `json:"queryStringParameters"`
	Body                  *string                    `json:"body"`
	IsBase64Encoded       json.RawMessage            `json:"isBase64Encoded"`
	// A timer trigger's fields (Type "Timer", and no httpMethod).
	TimerEvent
}

// parseEvent reads an invoke's payload once, whichever trigger sent it.
func parseEvent(payload []byte) (wireEvent, error) {
	var ev wireEvent
	if err := json.Unmarshal(payload, &ev); err != nil {
		return ev, fmt.Errorf("the event is not an HTTP event: %v", err)
	}
	return ev, nil
}

// timer reports whether ev is a timer event, and returns it.
func (ev wireEvent) timer() (TimerEvent, bool) {
	return ev.TimerEvent, ev.Type == "Timer" && ev.HTTPMethod == nil
}

type wireRequestContext struct {
	RequestID string `json:"requestId"`
	SourceIP  string `json:"sourceIp"`
}

// DecodeEvent decodes an API Gateway trigger event or a Function URL event.
// It tolerates the shapes real events take: lowercase header keys, header
// and query values that are a string, an array of strings or true (a key
// without a value), queryStringParameters instead of queryString, an absent
// body, isBase64Encoded as true or "true". The path is kept as sent,
// including any API Gateway base path. The peer address comes only from
// requestContext.sourceIp (API Gateway) or the x-scf-remote-addr header
// (Function URL); forwarding headers (Forwarded, X-Forwarded-For, X-Real-Ip,
// X-Scf-Remote-Addr) are removed. The request's context is
// context.Background(); the error, if any, is fit for the caller to see.
func DecodeEvent(payload []byte) (Event, error) {
	ev, err := parseEvent(payload)
	if err != nil {
		return Event{}, err
	}
	return ev.http()
}

// http is the HTTP event ev holds.
func (ev wireEvent) http() (Event, error) {
	if ev.HTTPMethod == nil || *ev.HTTPMethod == "" {
		return Event{}, errors.New("the event is not an HTTP event: it has no httpMethod")
	}
	r, err := http.NewRequest(*ev.HTTPMethod, "/", nil)
	if err != nil {
		return Event{}, fmt.Errorf("invalid httpMethod %q", *ev.HTTPMethod)
	}

	h := make(http.Header, len(ev.Headers))
	for _, k := range slices.Sorted(maps.Keys(ev.Headers)) {
		vs, err := values(ev.Headers[k])
		if err != nil {
			return Event{}, fmt.Errorf("header %q: %v", k, err)
		}
		for _, v := range vs {
			h.Add(k, v)
		}
	}

	query := ev.QueryString
	if len(query) == 0 {
		query = ev.QueryStringParameters
	}
	q := make(url.Values, len(query))
	for _, k := range slices.Sorted(maps.Keys(query)) {
		vs, err := values(query[k])
		if err != nil {
			return Event{}, fmt.Errorf("query parameter %q: %v", k, err)
		}
		if len(vs) > 0 {
			q[k] = append(q[k], vs...)
		}
	}

	var body []byte
	if ev.Body != nil {
		if isTrue(ev.IsBase64Encoded) {
			if body, err = decodeBase64(*ev.Body); err != nil {
				return Event{}, fmt.Errorf("the body is not valid base64: %v", err)
			}
		} else {
			body = []byte(*ev.Body)
		}
	}
	if len(body) > MaxBodyBytes {
		return Event{}, ErrBodyTooLarge
	}

	out := Event{Request: r, Trigger: "url"}
	var peer string
	if rc := ev.RequestContext; rc != nil {
		out.Trigger = "apigw"
		peer = rc.SourceIP
		out.GatewayRequestID = rc.RequestID
		if out.GatewayRequestID == "" {
			out.GatewayRequestID = h.Get("X-Api-Requestid")
		}
	} else if vs := h.Values("X-Scf-Remote-Addr"); len(vs) == 1 {
		peer = vs[0] // several values: a client added its own, trust none
	}
	for _, k := range forwardingHeaders {
		h.Del(k)
	}
	r.RemoteAddr = remoteAddr(peer)

	r.Host = h.Get("Host")
	h.Del("Host")
	r.Header = h
	path, rawPath := requestPath(ev.Path)
	r.URL = &url.URL{Path: path, RawPath: rawPath, RawQuery: q.Encode()}
	r.RequestURI = r.URL.RequestURI()
	r.ContentLength = int64(len(body))
	r.Body = http.NoBody
	if len(body) > 0 {
		r.Body = readCloser{bytes.NewReader(body)}
	}
	return out, nil
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// values reads a header or query value: a string, an array of strings, true
// (present without a value), false or null (absent); numbers are kept as
// written.
func values(raw json.RawMessage) ([]string, error) {
	if len(raw) > 0 && raw[0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return nil, err
		}
		var vs []string
		for _, e := range elems {
			v, ok, err := scalar(e)
			if err != nil {
				return nil, err
			}
			if ok {
				vs = append(vs, v)
			}
		}
		return vs, nil
	}
	v, ok, err := scalar(raw)
	if !ok || err != nil {
		return nil, err
	}
	return []string{v}, nil
}

func scalar(raw json.RawMessage) (string, bool, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return "", false, err
	}
	switch v := v.(type) {
	case string:
		return v, true, nil
	case json.Number:
		return v.String(), true, nil
	case bool:
		return "", v, nil
	case nil:
		return "", false, nil
	default:
		return "", false, errors.New("not a string, an array of strings or true")
	}
}

// isTrue reads isBase64Encoded: true or the string "true".
func isTrue(raw json.RawMessage) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(strings.TrimSpace(v), "true")
	}
	return false
}

// decodeBase64 accepts standard base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b2, err2 := base64.RawStdEncoding.DecodeString(s); err2 == nil {
			return b2, nil
		}
	}
	return b, err
}

// requestPath reads the event's path, which may or may not be
// percent-encoded (undocumented): an encoded path is decoded and kept as the
// raw path; anything else is taken literally.
func requestPath(p string) (path, rawPath string) {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if u, err := url.PathUnescape(p); err == nil && u != p {
		return u, p
	}
	return p, ""
}

// remoteAddr returns "ip:0" for an IP address, with or without a port, and
// "" for anything else.
func remoteAddr(s string) string {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return ""
		}
		a = ap.Addr()
	}
	if a.Zone() != "" {
		return ""
	}
	return net.JoinHostPort(a.Unmap().String(), "0")
}
