package scfdeploy

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"slices"
	"strings"

	"carbroker/internal/config"
	"carbroker/internal/resp"
)

// secretName matches the variables named like a key, token, password or
// salt: their values are never printed, as the broker's own secrets are.
var secretName = regexp.MustCompile(`(?i)(SECRET|PASSWORD|PASSWD|TOKEN|SALT|API_?KEY|ACCESS_?KEY|PRIVATE)`)

// Secret reports whether the variable's value must be masked: a setting the
// broker declares secret (config.Secret), or a name like a secret's.
func Secret(key string) bool { return config.Secret(key) || secretName.MatchString(key) }

// secretMask stands for what the plan and the errors do not show.
const secretMask = "<secret>"

// Masked returns a variable's value as the plan may print it: a secret as
// "<secret>"; a URL's password and options (QUEUE_REDIS_URL's) masked by
// the broker's own rule (resp.RedactURL), shown as <secret>; anything else
// as it is.
func Masked(key, value string) string {
	switch {
	case Secret(key):
		return secretMask
	case strings.Contains(value, "://"):
		return resp.RedactURLWith(value, secretMask)
	}
	return value
}

// secretParts returns what of a variable's value must never be shown: all of
// a secret; what resp.Secrets finds in a URL.
func secretParts(v Variable) []string {
	switch {
	case Secret(v.Key):
		return []string{v.Value}
	case strings.Contains(v.Value, "://"):
		return resp.Secrets(v.Value)
	}
	return nil
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
		s = strings.ReplaceAll(s, secret, secretMask)
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
