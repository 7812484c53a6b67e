package app

import (
	"strings"
	"testing"
)

// The start-up warning never shows a Redis password, however it is written.
func TestMaskedURLHidesThePassword(t *testing.T) {
	for _, c := range []struct{ url, secret, want string }{
		{"redis://:s3cretpw@10.0.0.5:6379/0", "s3cretpw", "redis://xxxxx@10.0.0.5:6379/0"},
		{"rediss://:acct@s3cretpw@10.0.0.5:6379", "s3cretpw", "rediss://xxxxx@10.0.0.5:6379"},
		{"redis://:2/Kx+9aBsecret@host:6379/0", "Kx+9aBsecret", "redis://xxxxx@host:6379/0"},
		{"redis://:a?b#csecret@host:6379", "csecret", "redis://xxxxx@host:6379"},
		{"redis://host:6379", "", "redis://host:6379"},
	} {
		got := maskedURL(c.url)
		if got != c.want || (c.secret != "" && strings.Contains(got, c.secret)) {
			t.Errorf("maskedURL(%q) = %q, want %q", c.url, got, c.want)
		}
	}
}
