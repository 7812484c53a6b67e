package scf

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"carbroker/internal/fault"
	"carbroker/internal/httpapi"
)

// integrationResponse is what API Gateway (isIntegratedResponse: true) and
// Function URLs take as an HTTP response.
type integrationResponse struct {
	IsBase64Encoded bool              `json:"isBase64Encoded"`
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers"`
	Body            string            `json:"body"`
}

// EncodeResponse encodes an HTTP response as an integration response: every
// header value a string, a repeated header's values joined with ", " (as
// scf-go-lib's map[string]string: an array breaks clients built on its
// types, and Tencent documents strings only), and a body that is not valid
// UTF-8 in base64 with isBase64Encoded true. Set-Cookie cannot be joined
// safely; the API never sets one.
func EncodeResponse(status int, header http.Header, body []byte) []byte {
	resp := integrationResponse{StatusCode: status, Headers: make(map[string]string, len(header))}
	for k, vs := range header {
		if len(vs) > 0 {
			resp.Headers[k] = strings.Join(vs, ", ")
		}
	}
	if utf8.Valid(body) {
		resp.Body = string(body)
	} else {
		resp.IsBase64Encoded = true
		resp.Body = base64.StdEncoding.EncodeToString(body)
	}
	b, err := json.Marshal(resp)
	if err != nil { // cannot happen: strings only
		return []byte(`{"isBase64Encoded":false,"statusCode":500,"headers":{},"body":""}`)
	}
	return b
}

// errorResponse is the integration response of one of the runtime's own
// failures, rendered by the function's one error renderer.
func errorResponse(err error, requestID string) []byte {
	w := newResponseBuffer()
	httpapi.WriteError(w, err, requestID)
	return w.result(requestID, false)
}

var errResponseTooLarge = errors.New("scf: response body exceeds 6 MB")

// responseBuffer is an http.ResponseWriter that keeps the response in
// memory, with net/http's semantics: the first status wins, headers are
// fixed when it is written, 1xx statuses are not relayed, and a missing
// Content-Type is sniffed from the body.
type responseBuffer struct {
	header   http.Header
	sent     http.Header // header as of the status line; nil before
	status   int
	body     bytes.Buffer
	tooLarge bool
}

func newResponseBuffer() *responseBuffer { return &responseBuffer{header: make(http.Header)} }

func (b *responseBuffer) Header() http.Header { return b.header }

func (b *responseBuffer) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code)) // as net/http
	}
	if b.status != 0 || code < 200 {
		return
	}
	b.status = code
	b.sent = b.header.Clone()
}

func (b *responseBuffer) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.WriteHeader(http.StatusOK)
	}
	if b.body.Len()+len(p) > MaxBodyBytes {
		b.tooLarge = true
		return 0, errResponseTooLarge
	}
	return b.body.Write(p)
}

// result is the integration response for what the handler wrote; a reply
// to HEAD carries no body, as over HTTP.
func (b *responseBuffer) result(requestID string, head bool) []byte {
	if head {
		b.body.Reset()
	}
	if b.tooLarge {
		return errorResponse(fault.New(fault.Internal, "the response exceeds 6 MB"), requestID)
	}
	if b.status == 0 {
		b.WriteHeader(http.StatusOK)
	}
	if _, ok := b.sent["Content-Type"]; !ok && b.body.Len() > 0 {
		b.sent.Set("Content-Type", http.DetectContentType(b.body.Bytes()))
	}
	return EncodeResponse(b.status, b.sent, b.body.Bytes())
}
