package scfdeploy

import (
	"net/url"
	"regexp"
	"strings"
)

// secretName matches the variables whose values are never printed: the
// broker's secrets (AUTH_SECRET, JWT_SECRET, COMPAT_SIGN_SALT) and anything
// named like a key, token, password or salt.
var secretName = regexp.MustCompile(`(?i)(SECRET|PASSWORD|PASSWD|TOKEN|SALT|API_?KEY|ACCESS_?KEY|PRIVATE)`)

// Secret reports whether the variable's value must be masked.
func Secret(key string) bool { return secretName.MatchString(key) }

// Masked returns a variable's value as the plan may print it: a secret as
// "<secret>", a URL with its password replaced (QUEUE_REDIS_URL), anything
// else as it is.
func Masked(key, value string) string {
	if Secret(key) {
		return "<secret>"
	}
	if strings.Contains(value, "://") {
		u, err := url.Parse(value)
		if err != nil {
			return "<secret>" // a URL that does not parse may hide a password anywhere
		}
		if u.User != nil {
			if _, has := u.User.Password(); has {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
				return strings.Replace(u.String(), "xxxxx", "<secret>", 1)
			}
		}
	}
	return value
}

// redact replaces, in an error's text, every secret value s deploys: an API
// error message could quote what it refused.
func redact(err error, s *Spec) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, v := range s.Variables {
		for _, secret := range secretParts(v) {
			msg = strings.ReplaceAll(msg, secret, "<secret>")
		}
	}
	if msg == err.Error() {
		return err
	}
	return redactedError{msg: msg, err: err}
}

// secretParts returns what of a variable's value must never be shown: all of
// a secret, the password of a URL.
func secretParts(v Variable) []string {
	if Secret(v.Key) {
		return []string{v.Value}
	}
	if !strings.Contains(v.Value, "://") {
		return nil
	}
	u, err := url.Parse(v.Value)
	if err != nil {
		return []string{v.Value}
	}
	if u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			// The password as written in the URL too (percent-encoded).
			return []string{u.User.String(), pw}
		}
	}
	return nil
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }
