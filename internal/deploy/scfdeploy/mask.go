package scfdeploy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"carbroker/internal/config"
)

// secretName matches the variables named like a key, token, password or
// salt: their values are never printed, as the broker's own secrets are.
var secretName = regexp.MustCompile(`(?i)(SECRET|PASSWORD|PASSWD|TOKEN|SALT|API_?KEY|ACCESS_?KEY|PRIVATE)`)

// Secret reports whether the variable's value must be masked: a setting the
// broker declares secret (config.Secret), or a name like a secret's.
func Secret(key string) bool { return config.Secret(key) || secretName.MatchString(key) }

// userinfo splits a URL-like value around its credentials: everything
// between "://" and the LAST "@". A Redis password may hold an unescaped
// "/", "?", "#" or "@" (TencentDB's account@password), which a URL parser
// would read as the path, query, fragment or host; the last "@" is where the
// host begins. ok is false when the value has no credentials.
func userinfo(v string) (scheme, user, password, rest string, hasPassword, ok bool) {
	i := strings.Index(v, "://")
	if i < 0 {
		return "", "", "", "", false, false
	}
	j := strings.LastIndex(v, "@")
	if j < i+3 {
		return "", "", "", "", false, false
	}
	info := v[i+3 : j]
	user, password, hasPassword = strings.Cut(info, ":")
	return v[:i+3], user, password, v[j:], hasPassword, true
}

// secretQuery matches the query parameters of a URL-like value that carry
// a credential (?password=…, a form some Redis clients read).
var secretQuery = regexp.MustCompile(`(?i)(^(pass|pwd|auth)$|SECRET|PASSWORD|PASSWD|TOKEN|SALT|API_?KEY|ACCESS_?KEY|PRIVATE)`)

// queryCredentials returns the values of a URL-like value's query
// parameters that carry a credential, as written.
func queryCredentials(v string) []string {
	i := strings.Index(v, "://")
	if i < 0 {
		return nil
	}
	_, query, ok := strings.Cut(v[i:], "?")
	if !ok {
		return nil
	}
	query, _, _ = strings.Cut(query, "#")
	var out []string
	for _, kv := range strings.Split(query, "&") {
		k, val, _ := strings.Cut(kv, "=")
		if val != "" && secretQuery.MatchString(k) {
			out = append(out, val)
		}
	}
	return out
}

// Masked returns a variable's value as the plan may print it: a secret as
// "<secret>", a URL's password (QUEUE_REDIS_URL, in its userinfo or its
// query) as <secret>, whole, anything else as it is.
func Masked(key, value string) string {
	if Secret(key) {
		return "<secret>"
	}
	for _, q := range queryCredentials(value) {
		value = strings.ReplaceAll(value, "="+q, "=<secret>")
	}
	scheme, user, _, rest, hasPassword, ok := userinfo(value)
	switch {
	case !ok:
		return value
	case hasPassword:
		return scheme + user + ":<secret>" + rest
	default:
		// redis://password@host: a single field is the password to Redis
		// clients that take one (AUTH password), so it is masked too.
		return scheme + "<secret>" + rest
	}
}

// secretParts returns what of a variable's value must never be shown: all of
// a secret; a URL's credentials, its password as written and decoded.
func secretParts(v Variable) []string {
	if Secret(v.Key) {
		return []string{v.Value}
	}
	var parts []string
	for _, q := range queryCredentials(v.Value) {
		parts = append(parts, q)
		if dec, err := url.QueryUnescape(q); err == nil && dec != q {
			parts = append(parts, dec)
		}
	}
	_, user, pw, _, hasPassword, ok := userinfo(v.Value)
	if !ok {
		return parts
	}
	if !hasPassword {
		pw, user = user, ""
	}
	if pw == "" {
		return parts
	}
	parts = append(parts, user+":"+pw, pw)
	if dec, err := url.PathUnescape(pw); err == nil && dec != pw {
		parts = append(parts, dec)
	}
	return parts
}

// redactor replaces every secret value of a spec in text.
type redactor struct{ secrets []string }

func newRedactor(s *Spec) redactor {
	var r redactor
	for _, v := range s.Variables {
		for _, p := range secretParts(v) {
			if len(p) < 3 { // shorter would blank out common text; such a secret is no secret
				continue
			}
			// An API error may quote what it refused JSON-encoded: " \ < > &
			// escaped, and / as \/ by encoders that escape it (how the live
			// API encodes is not documented).
			for _, form := range escapedForms(p) {
				if !slices.Contains(r.secrets, form) {
					r.secrets = append(r.secrets, form)
				}
			}
		}
	}
	// Longest first, so that a secret holding another is replaced whole.
	slices.SortStableFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
	return r
}

// escapedForms returns p as written, JSON-encoded, and with / escaped as \/.
func escapedForms(p string) []string {
	forms := []string{p}
	if b, err := json.Marshal(p); err == nil {
		forms = append(forms, string(b[1:len(b)-1]))
	}
	for _, f := range slices.Clone(forms) {
		forms = append(forms, strings.ReplaceAll(f, "/", `\/`))
	}
	return slices.Compact(forms)
}

func (r redactor) text(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, "<secret>")
	}
	return s
}

// redact replaces, in an error's text, every secret value s deploys: an API
// error message could quote what it refused.
func redact(err error, s *Spec) error {
	if err == nil {
		return nil
	}
	msg := newRedactor(s).text(err.Error())
	if msg == err.Error() {
		return err
	}
	return redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

// redactingWriter passes every line written through the redactor: the plan,
// the progress and SCF's StatusReasons reach stdout only this way. It
// buffers up to a newline, so that a secret split across writes is caught.
type redactingWriter struct {
	w   io.Writer
	r   redactor
	buf []byte
}

func (rw *redactingWriter) Write(p []byte) (int, error) {
	rw.buf = append(rw.buf, p...)
	if i := bytes.LastIndexByte(rw.buf, '\n'); i >= 0 {
		line := rw.buf[:i+1]
		if _, err := io.WriteString(rw.w, rw.r.text(string(line))); err != nil {
			return 0, err
		}
		rw.buf = append(rw.buf[:0], rw.buf[i+1:]...)
	}
	return len(p), nil
}

// Flush writes what is left without a newline.
func (rw *redactingWriter) Flush() {
	if len(rw.buf) > 0 {
		_, _ = io.WriteString(rw.w, rw.r.text(string(rw.buf)))
		rw.buf = rw.buf[:0]
	}
}
