package resp

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		url, addr, user, password string
		db                        int
		tls                       bool
	}{
		{"redis://127.0.0.1:6379", "127.0.0.1:6379", "", "", 0, false},
		{"redis://10.0.0.5", "10.0.0.5:6379", "", "", 0, false},
		{"REDIS://cache.internal:7000/", "cache.internal:7000", "", "", 0, false},
		{"redis://:s3cretpw@127.0.0.1:1/0", "127.0.0.1:1", "", "s3cretpw", 0, false},
		// TencentDB's custom accounts: the password is "account@password".
		{"rediss://:acct@s3cretpw@10.0.0.5:6379", "10.0.0.5:6379", "", "acct@s3cretpw", 0, true},
		{"redis://:acct%40s3cretpw@10.0.0.5:6379/2", "10.0.0.5:6379", "", "acct@s3cretpw", 2, false},
		{"redis://acct@s3cretpw@10.0.0.5:6379/1", "10.0.0.5:6379", "", "acct@s3cretpw", 1, false},
		// Unescaped "/", "?", "#" in a password: only the last "@" ends it.
		{"redis://:2/Kx+9aBsecret@host:6379/0", "host:6379", "", "2/Kx+9aBsecret", 0, false},
		{"redis://:p?a#s/s@w:rd@host/3", "host:6379", "", "p?a#s/s@w:rd", 3, false},
		{"redis://broker:pa55@host:6380/15", "host:6380", "broker", "pa55", 15, false},
		{"redis://:50%off@host", "host:6379", "", "50%off", 0, false},
		{"redis://:a%2Fb%3Fc@host", "host:6379", "", "a/b?c", 0, false},
		{"redis://[::1]:6379/1", "[::1]:6379", "", "", 1, false},
		{"rediss://[2001:db8::5]", "[2001:db8::5]:6379", "", "", 0, true},
	} {
		o, err := ParseURL(c.url)
		if err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		if o.Addr != c.addr || o.Username != c.user || o.Password != c.password || o.DB != c.db || (o.TLS != nil) != c.tls {
			t.Errorf("%s: got %+v, want addr %s user %q password %q db %d tls %v", c.url, o, c.addr, c.user, c.password, c.db, c.tls)
		}
		if c.tls && (o.TLS.ServerName != strings.Trim(c.addr[:strings.LastIndexByte(c.addr, ':')], "[]") || o.TLS.InsecureSkipVerify) {
			t.Errorf("%s: TLS %+v, want the host's name checked", c.url, o.TLS)
		}
	}
	for _, bad := range []string{"", "localhost:6379", "http://x:1", "redis://", "redis://:s3cret@", "redis://host:0",
		"redis://host:99999", "redis://host:x", "redis://host:+1", "redis://::1:6379", "redis://host/x", "redis://host/-1",
		"redis://host/0?db=1", "redis://host#frag", "redis://ho st:1", "redis://:s3cret/x@host:6379/db",
		"redis://:s3cret@host:6379/0?dial_timeout=1s"} {
		_, err := ParseURL(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "host") && strings.Contains(bad, "host") && strings.Contains(err.Error(), bad) {
			t.Errorf("%q: the error quotes the URL: %v", bad, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"redis://:2/Kx+9aBsecret@host:6379/0":    "redis://:xxxxx@host:6379/0",
		"redis://:s3cret@127.0.0.1:6379":         "redis://:xxxxx@127.0.0.1:6379",
		"redis://broker:s3cret?x#y@h:1/2":        "redis://broker:xxxxx@h:1/2",
		"rediss://:acct@s3cret@10.0.0.5:6379":    "rediss://:xxxxx@10.0.0.5:6379",
		"redis://:acct%40s3cret@10.0.0.5:6379/2": "redis://:xxxxx@10.0.0.5:6379/2",
		"redis://acct@s3cret@h":                  "redis://xxxxx@h",
		"redis://s3cret@h":                       "redis://xxxxx@h",
		"redis://h:6379/0":                       "redis://h:6379/0",
		"redis://:s3cret/x@host:6379/db":         "redis://:xxxxx@host:6379/db", // does not parse: masked all the same
		":s3cret@host:6379":                      ":xxxxx@host:6379",
		"https://u:s3cret@x.example/p":           "https://u:xxxxx@x.example/p",
		"redis://h:6379/0?password=s3cret":       "redis://h:6379/0?xxxxx",
		"redis://:pw@h/0?password=s3cret#x":      "redis://:xxxxx@h/0?xxxxx",
		"redis://h#s3cret":                       "redis://h#xxxxx",
		// An option's password holding the last "@" (other clients read
		// ?password=acct@s3cret): masked from where the options or the
		// password by ParseURL's rule begin, whichever comes first.
		"redis://h:6379/0?password=acct@s3cret": "redis://h:xxxxx",
		"https://idp/jwks?token=acct@s3cret":    "https://xxxxx",
		"redis://:p#w@h:1?pwd=a?b@s3cret":       "redis://:xxxxx",
		"redis://:pa?ss@h:6379":                 "redis://:xxxxx@h:6379",
		"":                                      "",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string][]string{
		"redis://:2/Kx+9aBsecret@host:6379/0": {"2/Kx+9aBsecret"},
		"redis://:acct%40s3cret@h":            {"acct%40s3cret", "acct@s3cret"},
		"redis://u:@h":                        nil,
		"redis://h":                           nil,
		"redis://h/0?password=s3cret":         {"password=s3cret", "s3cret"},
		"redis://:pw@h/0?db=0&auth=a%2Bb#x":   {"pw", "db=0&auth=a%2Bb#x", "a%2Bb", "a+b"},
		"redis://h/0?pass=pa?s3cret":          {"pass=pa?s3cret", "pa", "pa?s3cret"},
		"redis://h/0?password=acct@s3cret":    {"h/0?password=acct", "acct@s3cret"},
	} {
		if got := Secrets(in); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("Secrets(%q) = %q, want %q", in, got, want)
		}
	}
}

// Whatever the URL, what RedactURL shows never holds the password
// ParseURL would send, and neither does ParseURL's error.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"redis://:2/Kx+9aBsecret@host:6379/0", "rediss://:acct@pw@10.0.0.5:6379", "redis://u:a%40b@h/1",
		"redis://[::1]:1", "redis://h?x", "redis://:p#@h#"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		o, err := ParseURL(raw)
		red := RedactURL(raw)
		if err != nil {
			return
		}
		if o.Password == "" || len(o.Password) < 4 {
			return // too short to tell from the rest of the URL
		}
		// What RedactURL may show: the scheme, the user and what follows
		// the last "@", side by side as the redacted URL has them; a
		// password that is part of those cannot be told from them.
		scheme := strings.Index(raw, "://") + 3
		at := strings.LastIndexByte(raw, '@')
		user, _, _ := strings.Cut(raw[scheme:at], ":")
		if shown := raw[:scheme] + user + raw[at:]; strings.Contains(red, o.Password) && !strings.Contains(shown, o.Password) {
			t.Fatalf("RedactURL(%q) = %q shows the password %q", raw, red, o.Password)
		}
	})
}
