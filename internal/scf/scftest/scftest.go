// Package scftest is the platform's side of the SCF Go1 runtime, for tests:
// the net/rpc messages as the platform declares them, and the integration
// response as API Gateway and Function URLs read it. It keeps them in one
// place, as aws-lambda-go keeps lambda/messages.
//
// The messages are declared here independently of package scf's own: gob
// matches fields by name, so a field renamed on either side shows up as a
// failing test rather than passing silently.
package scftest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/rpc"
	"time"
)

// Timestamp is an absolute Unix time.
type Timestamp struct{ Seconds, Nanos int64 }

// At is t as a Timestamp.
func At(t time.Time) Timestamp { return Timestamp{Seconds: t.Unix(), Nanos: int64(t.Nanosecond())} }

// Ping is the argument and reply of Function.Ping.
type Ping struct{}

// InvokeRequest is the argument of Function.Invoke.
type InvokeRequest struct {
	Payload               []byte
	RequestId             string
	TraceId               string
	Deadline              Timestamp
	InvokedFunctionUnique string
	ClientContext         []byte
	Namespace             string
	FunctionName          string
	FunctionVersion       string
	MemoryLimitInMb       int32
	TimeLimitInMs         int32
	Environment           string // JSON object of string → string
	TencentcloudRegion    string
	TencentcloudAppID     string
	TencentcloudUin       string
	FunctionTrace         string
}

// InvokeResponse is the reply of Function.Invoke.
type InvokeResponse struct {
	Payload []byte
	Error   *InvokeError
}

// InvokeError is a failed invoke (a panic).
type InvokeError struct {
	Message    string
	Type       string
	StackTrace []*Frame
	ShouldExit bool
}

// Frame is one frame of a panic's stack.
type Frame struct {
	Path  string
	Line  int32
	Label string
}

// Invoke calls Function.Invoke as the platform does.
func Invoke(c *rpc.Client, req InvokeRequest) (InvokeResponse, error) {
	var resp InvokeResponse
	err := c.Call("Function.Invoke", req, &resp)
	return resp, err
}

// Environment is the JSON of an invoke's Environment: key, value pairs.
func Environment(kv ...string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	b, _ := json.Marshal(m) // strings only: cannot fail
	return string(b)
}

// Response is an integration response as the platform reads it, with a
// base64 body already decoded.
type Response struct {
	IsBase64Encoded bool           `json:"isBase64Encoded"`
	StatusCode      int            `json:"statusCode"`
	Headers         map[string]any `json:"headers"`
	Body            string         `json:"body"`
}

// Decode reads an invoke's Payload as an integration response.
func Decode(payload []byte) (Response, error) {
	var r Response
	if err := json.Unmarshal(payload, &r); err != nil {
		return r, fmt.Errorf("payload %q is not an integration response: %w", payload, err)
	}
	if r.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(r.Body)
		if err != nil {
			return r, fmt.Errorf("body is not base64: %w", err)
		}
		r.Body = string(b)
	}
	return r, nil
}
