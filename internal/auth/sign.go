package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"carbroker/internal/fault"
)

// Sign mode checks the optional request signature of Tencent's
// car-server-demo, so its unmodified clients keep working.
//
// It is weak, and documented as such: the salt ships inside every client, so
// anyone can sign any request, for any UserId; a signature carries no time,
// so any signed request can be replayed forever. It stops only casual
// tampering. Prefer ticket or jwt mode.
//
// The demo hashes the values with no separator, so the same signature holds
// for any other split of the same characters among the fields. Only the
// demo's fields are accepted (signFields), which leaves little to split: on
// a stop, RequestId and UserId only.
type signAuth struct{ salt string }

// signFields are the fields a car-server-demo client sends per operation:
// the demo's own, plus the optional ones its clients may add (ApplicationId,
// ApplicationVersionId, and HostUserId and Role for multiplayer rooms).
var signFields = map[Op][]string{
	OpStart:  {"ApplicationId", "ApplicationVersionId", "ClientSession", "HostUserId", "ProjectId", "RequestId", "Role", "Sign", "UserId"},
	OpStop:   {"RequestId", "Sign", "UserId"},
	OpInvite: {"ExpiresIn", "RequestId", "Role", "Sign", "UserId"},
	OpAlive:  {"ProjectId", "RequestId", "Sign", "UserId"}, // ours: the demo has no heartbeat
}

func (s signAuth) Authenticate(_ context.Context, r Request) (Identity, error) {
	if r.Op == OpRead {
		return Identity{}, nil // the demo signs nothing a reader could send
	}
	if r.UserID == "" {
		return Identity{}, userIDRequired() // the demo checks required fields before the signature
	}
	if err := onlyFields(r.Values, signFields[r.Op]); err != nil {
		return Identity{}, err
	}
	got, ok := r.Values["Sign"]
	if !ok || got == "" {
		return Identity{}, unauthenticated("missing Sign")
	}
	want := DemoSign(r.Values, s.salt)
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return Identity{}, unauthenticated("invalid signature")
	}
	if v, ok := r.Values["UserId"]; !ok || v != r.UserID {
		return Identity{}, forbidden("the signature does not cover this UserId")
	}
	return Identity{UserID: r.UserID}, nil
}

func (signAuth) Credential(Identity) (string, error) { return "", nil }

// onlyFields refuses values with a name outside allowed (sorted).
func onlyFields(values map[string]string, allowed []string) error {
	var extra []string
	for k := range values {
		if _, found := slices.BinarySearch(allowed, k); !found {
			extra = append(extra, fieldName(k))
		}
	}
	if len(extra) == 0 {
		return nil
	}
	slices.Sort(extra)
	return fault.New(fault.Invalid, "sign mode accepts only car-server-demo's fields here ("+strings.Join(allowed, ", ")+
		"); unexpected: "+strings.Join(slices.Compact(extra), ", "))
}

// fieldName renders a client-chosen field name for a message.
func fieldName(k string) string {
	if len(k) == 0 || len(k) > 40 {
		return "(unnamed)"
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return "(unnamed)"
		}
	}
	return k
}

// DemoSign is car-server-demo's request signature (cloud_rendering_lib/sign.js):
// the lowercase hex SHA-256 of the values of every field but "Sign",
// concatenated without separators in the order of their sorted names, then
// the salt. Names sort as JavaScript's Array.prototype.sort does, by UTF-16
// code units (the same as byte order for ASCII names).
//
// The values must be what the demo hashes, String(value) of the parsed
// field: strings as they are; numbers as JavaScript prints them (1, 1.5,
// 1e+21); booleans "true"/"false"; arrays their elements joined by ","
// (repeated form fields are arrays); objects "[object Object]". The demo
// fails on a null value.
func DemoSign(values map[string]string, salt string) string {
	keys := make([]string, 0, len(values))
	for k := range values {
		if k != "Sign" {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, compareUTF16)
	h := sha256.New()
	for _, k := range keys {
		io.WriteString(h, values[k])
	}
	io.WriteString(h, salt)
	return hex.EncodeToString(h.Sum(nil))
}

// compareUTF16 orders strings by their UTF-16 code units, with byte order as
// the tie-break so the order is total even for invalid UTF-8.
func compareUTF16(a, b string) int {
	x, y := a, b
	for x != "" && y != "" {
		ra, na := utf8.DecodeRuneInString(x)
		rb, nb := utf8.DecodeRuneInString(y)
		if ra != rb {
			if ua, ub := firstUnit(ra), firstUnit(rb); ua != ub {
				return cmp.Compare(ua, ub)
			}
			return cmp.Compare(ra, rb) // same high surrogate: the low ones order as the runes
		}
		x, y = x[na:], y[nb:]
	}
	if x != "" || y != "" {
		return cmp.Compare(len(x), len(y))
	}
	return strings.Compare(a, b)
}

// firstUnit is the first UTF-16 code unit of r.
func firstUnit(r rune) rune {
	if r >= 0x10000 {
		return 0xD800 + (r-0x10000)>>10
	}
	return r
}
