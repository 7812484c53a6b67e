package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"

	"carbroker/internal/fault"
)

// statusOf is the one table from error kind to HTTP status.
var statusOf = [...]int{
	fault.Internal:         http.StatusInternalServerError,
	fault.Invalid:          http.StatusBadRequest,
	fault.TooLarge:         http.StatusRequestEntityTooLarge,
	fault.Unauthenticated:  http.StatusUnauthorized,
	fault.Forbidden:        http.StatusForbidden,
	fault.NotFound:         http.StatusNotFound,
	fault.MethodNotAllowed: http.StatusMethodNotAllowed,
	fault.RoleFull:         http.StatusConflict,
	fault.RateLimited:      http.StatusTooManyRequests,
	fault.NoIdle:           http.StatusServiceUnavailable,
	fault.Unavailable:      http.StatusServiceUnavailable,
	fault.Timeout:          http.StatusGatewayTimeout,
	fault.Upstream:         http.StatusBadGateway,
	fault.SessionEnded:     http.StatusForbidden,
}

// Status is the HTTP status of an error kind.
func Status(k fault.Kind) int {
	if k < 0 || int(k) >= len(statusOf) {
		return http.StatusInternalServerError
	}
	return statusOf[k]
}

// Reply is the JSON body of every native error reply, whoever renders it
// (the HTTP API, the SCF runtime for an event it cannot decode, a
// misconfigured function, the dev console).
type Reply struct {
	Error     ReplyError
	RequestId string
	UserId    string `json:",omitempty"` // only for a UserId the server just chose
	Ticket    string `json:",omitempty"` // its credential
}

// ReplyError is what the caller may read of an error.
type ReplyError struct {
	Code    string
	Message string
}

// Render returns the status and the body of err's reply: the kind's code
// and the caller-safe message only, never the cause.
func Render(err error, requestID string) (int, Reply) {
	fe := fault.As(err)
	return Status(fe.Kind), Reply{Error: ReplyError{Code: fe.Kind.String(), Message: fe.Message}, RequestId: requestID}
}

// WriteError writes err's reply (see Render).
func WriteError(w http.ResponseWriter, err error, requestID string) {
	status, body := Render(err, requestID)
	if requestID != "" {
		w.Header().Set("X-Request-Id", requestID)
	}
	WriteJSON(w, status, body)
}

// WriteJSON writes body as JSON with status and the headers every JSON
// reply of the function carries (never cached, never sniffed): the one JSON
// writer of the function's replies. It does not escape <, > and & (the
// replies are application/json and nosniff, never HTML): a message reads
// "Bearer <ticket>" as written, not "Bearer \u003cticket\u003e".
func WriteJSON(w http.ResponseWriter, status int, body any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(body)
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"Error":{"Code":"InternalError","Message":"`+fault.InternalMessage+`"},"RequestId":""}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
