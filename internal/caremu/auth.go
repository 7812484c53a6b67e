package caremu

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxSkew is how far X-TC-Timestamp may be from the real clock.
const maxSkew = 5 * time.Minute

const algorithm = "TC3-HMAC-SHA256"

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
	rest, ok := strings.CutPrefix(h, algorithm+" ")
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

// verify checks the request's TC3-HMAC-SHA256 signature against the real clock.
func (e *Emulator) verify(r *http.Request, body []byte) error {
	a, ok := parseAuthorization(r.Header.Get("Authorization"))
	if !ok {
		return errorf("AuthFailure.InvalidAuthorization", "the Authorization header is missing or not in the TC3-HMAC-SHA256 format")
	}
	tsText := r.Header.Get("X-TC-Timestamp")
	if tsText == "" {
		return errorf("MissingParameter", "the request is missing the X-TC-Timestamp header")
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return errorf("InvalidParameterValue", "X-TC-Timestamp is not a Unix time in seconds")
	}
	signedAt := time.Unix(ts, 0)
	if d := time.Since(signedAt); d > maxSkew || d < -maxSkew {
		return errorf("AuthFailure.SignatureExpire", "the signature has expired: the timestamp is more than 5 minutes from the server time")
	}
	if a.service != "car" || a.date != signedAt.UTC().Format(time.DateOnly) {
		return errorf("AuthFailure.SignatureFailure", "the credential scope does not match the service or the timestamp's date")
	}
	cred, ok := e.opt.Credentials[a.secretID]
	if !ok {
		return errorf("AuthFailure.SecretIdNotFound", "the SecretId does not exist")
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
		return errorf("AuthFailure.SignatureFailure", "the request signature does not match")
	}
	if got := r.Header.Get("X-TC-Token"); got != cred.Token {
		return errorf("AuthFailure.TokenFailure", "the token is missing, unexpected or invalid")
	}
	return nil
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
	return algorithm + "\n" + ts + "\n" + scope + "\n" + sha256Hex([]byte(canon.String()))
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
