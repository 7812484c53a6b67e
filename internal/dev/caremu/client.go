package caremu

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
)

// Client is what a client needs to reach the emulator in process, handed
// out ready as fake-gcs-server's Server.Client is: the in-process transport
// and a credential the emulator accepts.
type Client struct {
	Transport http.RoundTripper
	SecretID  string
	SecretKey string
	Token     string // "" unless the credential requires one
}

// Getenv reads the credential as the Tencent Cloud SDKs find it in the
// environment (TENCENTCLOUD_SECRETID, TENCENTCLOUD_SECRETKEY,
// TENCENTCLOUD_SESSIONTOKEN); every other variable is "".
func (c Client) Getenv(k string) string {
	switch k {
	case "TENCENTCLOUD_SECRETID":
		return c.SecretID
	case "TENCENTCLOUD_SECRETKEY":
		return c.SecretKey
	case "TENCENTCLOUD_SESSIONTOKEN":
		return c.Token
	}
	return ""
}

// Client returns the transport and a credential the emulator accepts: the
// default one without Options.Credentials, else the first SecretId in
// sorted order.
func (e *Emulator) Client() Client {
	ids := make([]string, 0, len(e.opt.Credentials))
	for id := range e.opt.Credentials {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	id := ids[0] // New always leaves at least one credential
	cred := e.opt.Credentials[id]
	return Client{Transport: e.Transport(), SecretID: id, SecretKey: cred.SecretKey, Token: cred.Token}
}

// RandomCredentials returns one credential nobody can guess: a SecretId of
// prefix and 16 hex digits, a key of 48. An emulator that listens, or that
// stands in for CAR in dev mode, accepts only it; Client hands it out.
func RandomCredentials(prefix string) map[string]Credential {
	return map[string]Credential{prefix + randomHex(8): {SecretKey: randomHex(24)}}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
