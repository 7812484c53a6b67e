package resp

import (
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ParseURL reads a Redis URL:
//
//	redis://[[user]:password@]host[:port][/db]
//	rediss://…                                   (TLS, the server's name checked against the system's roots)
//
// The credentials are everything between "://" and the LAST "@", so a
// password may hold "@", "/", "?", "#" unescaped: TencentDB for Redis's
// custom accounts log in with "account@password" as the password
// (redis://:account@password@host:6379/0). The password ends at nothing
// but that last "@"; the user, if any, is what comes before the first ":".
// Credentials without a ":" are a password, as redis-cli reads them.
// Percent escapes are decoded ("%40" is "@"); a "%" that starts no escape
// is kept as written. The port defaults to 6379 and the database to 0.
//
// Its errors name what is wrong, never a part of the URL: pass the URL
// through RedactURL to show it.
func ParseURL(raw string) (Options, error) {
	var o Options
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return o, errors.New("a Redis URL starts with redis:// or rediss://")
	}
	switch strings.ToLower(scheme) {
	case "redis":
	case "rediss":
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	default:
		return o, errors.New("a Redis URL starts with redis:// or rediss://")
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		creds := rest[:at]
		rest = rest[at+1:]
		if user, pass, ok := strings.Cut(creds, ":"); ok {
			o.Username, o.Password = unescape(user), unescape(pass)
		} else {
			o.Password = unescape(creds)
		}
	}
	hostport, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		hostport, tail = rest[:i], rest[i:]
	}
	host, port := hostport, "6379"
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1] // [::1] without a port
	} else if strings.Contains(hostport, ":") {
		return o, errors.New("the host must be host:port, with an IPv6 address in brackets ([::1]:6379)")
	}
	if host == "" || strings.ContainsAny(host, " \t\r\n[]") {
		return o, errors.New("the URL names no host")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '+' || port[0] == '-' {
		return o, errors.New("the port must be a number from 1 to 65535")
	}
	o.Addr = net.JoinHostPort(host, port)
	if o.TLS != nil {
		o.TLS.ServerName = host
	}
	if strings.HasPrefix(tail, "/") {
		db := tail[1:]
		if i := strings.IndexAny(db, "?#"); i >= 0 {
			db, tail = db[:i], db[i:]
		} else {
			tail = ""
		}
		if db != "" {
			n, err := strconv.Atoi(db)
			if err != nil || n < 0 || db[0] == '+' || db[0] == '-' {
				return o, errors.New("the path must be the database number (/0, /1, …)")
			}
			o.DB = n
		}
	}
	switch {
	case strings.HasPrefix(tail, "?"):
		return o, errors.New("the URL takes no ?options")
	case strings.HasPrefix(tail, "#"):
		return o, errors.New("the URL takes no #fragment")
	}
	return o, nil
}

// unescape decodes percent escapes, or keeps s as written when it holds a
// "%" that starts no escape (a password such as "50%off").
func unescape(s string) string {
	if d, err := url.PathUnescape(s); err == nil {
		return d
	}
	return s
}

// Masked stands for a password in RedactURL's output.
const Masked = "xxxxx"

// RedactURL returns a URL fit for a log line or an error: its password
// replaced whole by "xxxxx". It applies ParseURL's rule to any URL, whether
// it parses or not: the credentials are everything between "://" (or the
// start, without one) and the LAST "@"; the user is what comes before
// their first ":", kept; all the rest is the password, masked, whatever
// it holds ("/", "?", "#", "@", escapes). Credentials without a ":" are
// masked whole. Options after the host ("?password=…", which ParseURL
// refuses, but other clients read) are masked whole too; so is all from
// where the password or the options begin when an option named like a
// credential holds the last "@" (?password=account@password), as other
// clients read the URL.
func RedactURL(raw string) string { return RedactURLWith(raw, Masked) }

// RedactURLWith is RedactURL with mask standing for what is masked.
func RedactURLWith(raw, mask string) string {
	start, at, ok := credentials(raw)
	out, host := raw, 0
	if ok {
		if user, _, ok := strings.Cut(raw[start:at], ":"); ok {
			out = raw[:start] + user + ":" + mask + raw[at:]
		} else {
			out = raw[:start] + mask + raw[at:]
		}
		host = strings.LastIndexByte(out, '@') + 1
	} else if i := strings.Index(raw, "://"); i >= 0 {
		host = i + 3
	}
	if q := strings.IndexAny(out[host:], "?#"); q >= 0 {
		out = out[:host+q+1] + mask
	}
	if qs := optionsBeforeAt(raw); qs != nil {
		// Read as other clients read it, the last "@" is inside an option
		// (?password=acct@pw): mask from where either reading's secret
		// begins, the password's (ParseURL's) or the options'.
		from := start
		if user, _, ok := strings.Cut(raw[start:at], ":"); ok {
			from += len(user) + 1
		}
		for _, q := range qs {
			from = min(from, q+1)
		}
		out = raw[:from] + mask
	}
	return out
}

// optionsBeforeAt returns where a URL's options may begin, read as other
// clients read a URL (from the first "?", or the first "#", after "://"),
// when an option named like a credential starts there before the last
// "@", which ParseURL's rule takes for the end of the credentials: the
// option's value may then hold that "@" (?password=account@password).
func optionsBeforeAt(raw string) []int {
	_, at, ok := credentials(raw)
	if !ok {
		return nil
	}
	host := 0
	if i := strings.Index(raw, "://"); i >= 0 {
		host = i + 3
	}
	var out []int
	for _, sep := range []string{"?", "#"} {
		q := strings.Index(raw[host:], sep)
		if q < 0 || host+q >= at {
			continue
		}
		q += host
		for _, kv := range strings.FieldsFunc(raw[q+1:at], func(r rune) bool { return r == '&' || r == '#' || r == '?' }) {
			if k, _, ok := strings.Cut(kv, "="); ok && credentialName.MatchString(k) {
				out = append(out, q)
				break
			}
		}
	}
	return out
}

// Secrets returns what of a URL must never be shown (RedactURL's rule):
// its password as written and, when escapes change it, as decoded; its
// options whole, and the value of each option named like a credential
// (?password=…, a form some clients read), as written and decoded, also
// when its value holds a "?" or the last "@". Use it to mask a message that
// might quote them.
func Secrets(raw string) []string {
	var secrets []string
	host := 0
	if i := strings.Index(raw, "://"); i >= 0 {
		host = i + 3
	}
	start, at, ok := credentials(raw)
	if ok {
		host = at + 1
	}
	if q := strings.IndexAny(raw[host:], "?#"); q >= 0 && host+q+1 < len(raw) {
		options := raw[host+q+1:]
		secrets = append(secrets, options)
		secrets = appendCredentialOptions(secrets, options)
	}
	for _, q := range optionsBeforeAt(raw) {
		// The options as other clients read them, the last "@" inside.
		secrets = appendCredentialOptions(secrets, raw[q+1:])
	}
	if !ok {
		return secrets
	}
	pw := raw[start:at]
	if _, p, ok := strings.Cut(pw, ":"); ok {
		pw = p
	}
	if pw == "" {
		return secrets
	}
	return append(appendDecoded(nil, pw, unescape), secrets...)
}

// appendCredentialOptions appends the value of each option named like a
// credential, as written and decoded: options split at "&", "#" and "?",
// and at "&" alone up to the first "#" (a value may hold a "?").
func appendCredentialOptions(to []string, options string) []string {
	add := func(kv string) {
		if k, v, _ := strings.Cut(kv, "="); v != "" && credentialName.MatchString(k) {
			for _, s := range appendDecoded(nil, v, queryUnescape) {
				if !slices.Contains(to, s) {
					to = append(to, s)
				}
			}
		}
	}
	for _, kv := range strings.FieldsFunc(options, func(r rune) bool { return r == '&' || r == '#' || r == '?' }) {
		add(kv)
	}
	query, _, _ := strings.Cut(options, "#")
	for _, kv := range strings.Split(query, "&") {
		add(kv)
	}
	return to
}

// credentialName matches the names of options that carry a credential.
var credentialName = regexp.MustCompile(`(?i)(^(pass|pwd|auth)$|SECRET|PASSWORD|PASSWD|TOKEN|SALT|API_?KEY|ACCESS_?KEY|PRIVATE)`)

// appendDecoded appends s and, when decode changes it, its decoded form.
func appendDecoded(to []string, s string, decode func(string) string) []string {
	to = append(to, s)
	if d := decode(s); d != s && d != "" {
		to = append(to, d)
	}
	return to
}

func queryUnescape(s string) string {
	if d, err := url.QueryUnescape(s); err == nil {
		return d
	}
	return s
}

// credentials locates a URL's credentials: raw[start:at], where at is the
// last "@" and start follows the "://" before it (or is 0).
func credentials(raw string) (start, at int, ok bool) {
	at = strings.LastIndexByte(raw, '@')
	if at < 0 {
		return 0, 0, false
	}
	if i := strings.Index(raw[:at], "://"); i >= 0 {
		start = i + len("://")
	}
	return start, at, true
}
