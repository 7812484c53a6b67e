package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"carbroker/internal/fault"
)

// statusOf is the one table from error kind to HTTP status.
var statusOf = map[fault.Kind]int{
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
}

// Status returns the HTTP status for an error kind.
func Status(k fault.Kind) int {
	if s, ok := statusOf[k]; ok {
		return s
	}
	return http.StatusInternalServerError
}

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

// retryAfter is the Retry-After header value for an error, "" for none.
func retryAfter(fe *fault.Error) string {
	d := fe.RetryAfter
	if d <= 0 {
		switch fe.Kind {
		case fault.RateLimited:
			d = time.Second
		case fault.NoIdle, fault.Unavailable:
			d = 2 * time.Second
		default:
			return ""
		}
	}
	return strconv.Itoa(int((d + time.Second - 1) / time.Second))
}

// nativeError is the body of every native error reply.
type nativeError struct {
	Error     errorBody
	RequestId string
	UserId    string `json:",omitempty"` // only for a UserId the server just chose
	Ticket    string `json:",omitempty"` // its credential
}

type errorBody struct {
	Code    string
	Message string
}
