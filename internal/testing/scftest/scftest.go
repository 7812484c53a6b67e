// Package scftest is the platform's side of the SCF Go1 runtime, for tests:
// invoking the runtime as the platform does (over net/rpc, with the
// runtime's own messages) and reading the integration response as API
// Gateway and Function URLs read it.
package scftest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/rpc"
	"time"

	"carbroker/internal/scf"
)

// The messages of the Go1 runtime: one declaration, package scf's, shared by
// the runtime and the platform's side as aws-lambda-go's lambda/messages is.
// TestWireIsThePlatforms pins their field names and types to the
// platform's, which gob matches by name.
type (
	Timestamp      = scf.Timestamp
	Ping           = scf.PingRequest
	InvokeRequest  = scf.InvokeRequest
	InvokeResponse = scf.InvokeResponse
	InvokeError    = scf.InvokeResponseError
	Frame          = scf.InvokeResponseErrorStackFrame
)

// At is t as a Timestamp.
func At(t time.Time) Timestamp { return Timestamp{Seconds: t.Unix(), Nanos: int64(t.Nanosecond())} }

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
	IsBase64Encoded bool              `json:"isBase64Encoded"`
	StatusCode      int               `json:"statusCode"`
	Headers         map[string]string `json:"headers"` // strings only, as scf-go-lib's APIGatewayResponse
	Body            string            `json:"body"`
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
