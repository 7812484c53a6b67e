// Package tc3 holds what the emulators of Tencent Cloud API v3 services (CAR,
// SCF) share: request signature verification (TC3-HMAC-SHA256), the error
// and RequestId forms of the answers, and a transport that reaches an
// emulator in process. It imports nothing of the product.
//
// Verify checks, in this order, and answers the first failure as a Tencent
// Cloud error code: the Authorization header's format
// (AuthFailure.InvalidAuthorization), X-TC-Timestamp present
// (MissingParameter) and numeric (InvalidParameterValue), within MaxSkew of
// the clock (AuthFailure.SignatureExpire), the credential scope naming the
// service and the timestamp's UTC date (AuthFailure.SignatureFailure), a
// known SecretId (AuthFailure.SecretIdNotFound), the signature
// (AuthFailure.SignatureFailure) and the session token
// (AuthFailure.TokenFailure).
//
// Not covered: the older HmacSHA1/HmacSHA256 signatures and GET requests with
// a query string (the canonical query string is taken as empty).
package tc3

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Algorithm is the only signature method verified.
const Algorithm = "TC3-HMAC-SHA256"

// DefaultMaxSkew is how far X-TC-Timestamp may be from the clock.
const DefaultMaxSkew = 5 * time.Minute

// Credential is a key accepted for one SecretId.
type Credential struct {
	SecretKey string
	// Token is the session token callers must send in X-TC-Token; when it is
	// empty, a request carrying X-TC-Token is refused.
	Token string
}

// Error is a Tencent Cloud API error: its code and message, as answered in
// {"Response": {"Error": {"Code", "Message"}, "RequestId"}}.
type Error struct{ Code, Message string }

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Verifier checks the signatures of requests to one service.
type Verifier struct {
	Service     string                // the credential scope's service, e.g. "car"
	Credentials map[string]Credential // SecretId → key; read only, never modified
	MaxSkew     time.Duration         // 0 means DefaultMaxSkew
	Now         func() time.Time      // nil means time.Now
}

// authorization is a parsed TC3 Authorization header.
type authorization struct {
	secretID, date, service string
	signedHeaders           []string
	signature               []byte
}

// parseAuthorization reads
// "TC3-HMAC-SHA256 Credential=<id>/<date>/<service>/tc3_request, SignedHeaders=<h1;h2>, Signature=<hex>".
func parseAuthorization(h string) (authorization, bool) {
	var a authorization
	rest, ok := strings.CutPrefix(h, Algorithm+" ")
	if !ok {
		return a, false
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, false
		}
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 4 || scope[0] == "" || scope[3] != "tc3_request" {
		return a, false
	}
	a.secretID, a.date, a.service = scope[0], scope[1], scope[2]
	a.signedHeaders = strings.Split(fields["SignedHeaders"], ";")
	if !slices.Contains(a.signedHeaders, "content-type") || !slices.Contains(a.signedHeaders, "host") {
		return a, false
	}
	sig, err := hex.DecodeString(fields["Signature"])
	if err != nil || len(sig) != sha256.Size {
		return a, false
	}
	a.signature = sig
	return a, true
}

func fail(code, msg string) error { return &Error{Code: code, Message: msg} }

// Verify checks the request's signature over body; a failure is an *Error.
func (v *Verifier) Verify(r *http.Request, body []byte) error {
	a, ok := parseAuthorization(r.Header.Get("Authorization"))
	if !ok {
		return fail("AuthFailure.InvalidAuthorization", "the Authorization header is missing or not in the TC3-HMAC-SHA256 format")
	}
	tsText := r.Header.Get("X-TC-Timestamp")
	if tsText == "" {
		return fail("MissingParameter", "the request is missing the X-TC-Timestamp header")
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fail("InvalidParameterValue", "X-TC-Timestamp is not a Unix time in seconds")
	}
	now, skew := time.Now, v.MaxSkew
	if v.Now != nil {
		now = v.Now
	}
	if skew <= 0 {
		skew = DefaultMaxSkew
	}
	signedAt := time.Unix(ts, 0)
	if d := now().Sub(signedAt); d > skew || d < -skew {
		return fail("AuthFailure.SignatureExpire", "the signature has expired: the timestamp is more than "+describe(skew)+" from the server time")
	}
	if a.service != v.Service || a.date != signedAt.UTC().Format(time.DateOnly) {
		return fail("AuthFailure.SignatureFailure", "the credential scope does not match the service or the timestamp's date")
	}
	cred, ok := v.Credentials[a.secretID]
	if !ok {
		return fail("AuthFailure.SecretIdNotFound", "the SecretId does not exist")
	}

	// The Go SDK signs the Host it sends; the Node SDK signs the bare hostname.
	hosts := []string{r.Host}
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		hosts = append(hosts, h)
	}
	payloadHash := sha256Hex(body)
	if r.Header.Get("X-TC-Content-SHA256") == "UNSIGNED-PAYLOAD" {
		payloadHash = sha256Hex([]byte("UNSIGNED-PAYLOAD"))
	}
	key := signingKey(cred.SecretKey, a.date, a.service)
	valid := false
	for _, host := range hosts {
		sts := stringToSign(r, host, a, tsText, payloadHash)
		if hmac.Equal(hmacSHA256(key, sts), a.signature) {
			valid = true
			break
		}
	}
	if !valid {
		return fail("AuthFailure.SignatureFailure", "the request signature does not match")
	}
	if got := r.Header.Get("X-TC-Token"); got != cred.Token {
		return fail("AuthFailure.TokenFailure", "the token is missing, unexpected or invalid")
	}
	return nil
}

// describe writes whole minutes as "5 minutes", anything else as Go does.
func describe(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + " minutes"
	}
	return d.String()
}

// stringToSign builds TC3's string to sign for the request as if sent to host.
func stringToSign(r *http.Request, host string, a authorization, ts, payloadHash string) string {
	var canon strings.Builder
	canon.WriteString(r.Method + "\n/\n\n")
	for _, h := range a.signedHeaders {
		v := r.Header.Get(h)
		if h == "host" {
			v = host
		}
		canon.WriteString(h + ":" + strings.ToLower(strings.TrimSpace(v)) + "\n")
	}
	canon.WriteString("\n" + strings.Join(a.signedHeaders, ";") + "\n" + payloadHash)
	scope := a.date + "/" + a.service + "/tc3_request"
	return Algorithm + "\n" + ts + "\n" + scope + "\n" + sha256Hex([]byte(canon.String()))
}

// signingKey derives TC3's key: HMAC chain "TC3"+key → date → service → "tc3_request".
func signingKey(secretKey, date, service string) []byte {
	k := hmacSHA256([]byte("TC3"+secretKey), date)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "tc3_request")
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// NewRequestID returns a random UUID version 4, the form of the RequestId
// every Tencent Cloud API v3 answer carries.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// CheckRequest verifies the signature over body, then the common headers:
// X-TC-Version must be version (MissingParameter, NoSuchVersion) and
// X-TC-Action an action known reports true for (MissingParameter,
// InvalidAction). A failure is an *Error.
func (v *Verifier) CheckRequest(r *http.Request, body []byte, version string, known func(action string) bool) error {
	if err := v.Verify(r, body); err != nil {
		return err
	}
	switch got := r.Header.Get("X-TC-Version"); got {
	case "":
		return fail("MissingParameter", "the request is missing the X-TC-Version header")
	case version:
	default:
		return fail("NoSuchVersion", "version `"+got+"` does not exist for "+v.Service)
	}
	switch action := r.Header.Get("X-TC-Action"); {
	case action == "":
		return fail("MissingParameter", "the request is missing the X-TC-Action header")
	case !known(action):
		return fail("InvalidAction", "action `"+action+"` does not exist")
	}
	return nil
}

// WithDefault returns a copy of creds, or {id: {SecretKey: key}} when creds is empty.
func WithDefault(creds map[string]Credential, id, key string) map[string]Credential {
	out := make(map[string]Credential, len(creds)+1)
	for k, c := range creds {
		out[k] = c
	}
	if len(out) == 0 {
		out[id] = Credential{SecretKey: key}
	}
	return out
}
