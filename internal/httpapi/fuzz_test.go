package httpapi

import (
	"net/netip"
	"net/url"
	"testing"
)

// FuzzParseFields: the body decoder never panics, and whatever it accepts
// validates without panicking either.
func FuzzParseFields(f *testing.F) {
	for _, s := range []string{`{"UserId":"u1","ClientSession":"cs"}`, `UserId=u1&ClientSession=cs`, `{"a":1.5e3,"b":true,"c":null}`, `{`, `[]`, ``, `{"UserId":"u1"}{}`} {
		f.Add("", []byte(s))
		f.Add("application/x-www-form-urlencoded", []byte(s))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		fs, err := parseFields(contentType, body)
		if err != nil {
			return
		}
		_, _ = validateStart(fs)
		_, _ = validateLock(fs)
		_, _ = userIDFrom(fs, url.Values{"UserId": {fs["UserId"]}})
	})
}

// FuzzClientIP: the client-IP rule never panics and always answers an
// address when the peer is one.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:80", "1.2.3.4, 10.0.0.2")
	f.Add("[::1]:1", "garbage,,")
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		p, peerOK := parseAddr(peer)
		ip, ok := clientIP(peer, []string{xff}, trusted)
		if ok != peerOK {
			t.Fatalf("peer %q parses %v but clientIP answered %v", peer, peerOK, ok)
		}
		// Only a trusted peer can hand over to X-Forwarded-For.
		if ok && !inAny(p, trusted) && ip != p {
			t.Fatalf("untrusted peer %q, X-Forwarded-For %q: client %v", peer, xff, ip)
		}
	})
}
