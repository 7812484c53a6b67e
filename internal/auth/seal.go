package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strings"
)

// sealer signs and opens the sealed tokens of one kind.
//
// Tickets and invites are sealed tokens, base64url(payload) "."
// base64url(MAC), unpadded, where MAC is HMAC-SHA256 of the payload under a key derived per kind from
// each AUTH_SECRET, HMAC-SHA256(secret, "carbroker/ticket/v1") or
// HMAC-SHA256(secret, "carbroker/invite/<mode>/v1") with the AUTH_MODE
// (ticket or jwt), so neither can pass for the other, and an invite is good
// only in the mode that minted it. The first secret signs, every secret
// verifies: adding a secret in front rotates, removing one revokes what it signed. Payloads (times are
// big-endian int64 Unix seconds; strings a length byte and the bytes):
//
//	ticket: 0x01 | issued-at | expires | UserId
//	invite: 0x02 | issued-at | expires | role (1 Player, 2 Viewer) | host UserId
//
// Decoding is strict: canonical base64url only, exact lengths, no trailing
// bytes, a valid UserId. A token is live while now < expires and
// now < issued-at + the configured lifetime (so lowering AUTH_TICKET_TTL or
// AUTH_INVITE_TTL shortens tokens already issued), and refused if issued more
// than a minute in the future.
type sealer struct {
	kind byte
	keys [][]byte
}

var b64 = base64.RawURLEncoding.Strict()

const macLen = sha256.Size

func newSealer(secrets [][]byte, kind byte, label string) sealer {
	s := sealer{kind: kind}
	for _, secret := range secrets {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("carbroker/" + label + "/v1"))
		s.keys = append(s.keys, m.Sum(nil))
	}
	return s
}

func (s sealer) mac(key, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(payload)
	return m.Sum(nil)
}

// seal signs payload, whose first byte must be s.kind, with the first key.
func (s sealer) seal(payload []byte) string {
	return b64.EncodeToString(payload) + "." + b64.EncodeToString(s.mac(s.keys[0], payload))
}

// open returns the payload of tok if tok is exactly a sealed token of this
// kind, at most maxPayload bytes, whose MAC holds under one of the keys.
// Anything else (bad base64, non-canonical encoding, wrong length, other
// kind, unknown key) yields ok == false.
func (s sealer) open(tok string, maxPayload int) (payload []byte, ok bool) {
	p64, m64, found := strings.Cut(tok, ".")
	if !found || len(p64) > b64.EncodedLen(maxPayload) || len(m64) != b64.EncodedLen(macLen) {
		return nil, false
	}
	payload, err := b64.DecodeString(p64)
	if err != nil || len(payload) == 0 || payload[0] != s.kind || b64.EncodeToString(payload) != p64 {
		return nil, false // the re-encoding check refuses ignored newlines and the like
	}
	mac, err := b64.DecodeString(m64)
	if err != nil || len(mac) != macLen || b64.EncodeToString(mac) != m64 {
		return nil, false
	}
	for _, key := range s.keys {
		if hmac.Equal(mac, s.mac(key, payload)) {
			return payload, true
		}
	}
	return nil, false
}

// Payload helpers: big-endian int64 Unix seconds and a length-prefixed string.

func putTime(b []byte, unix int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(unix)) }

func putString(b []byte, s string) []byte { return append(append(b, byte(len(s))), s...) }

// reader consumes a payload; any short read marks it bad.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) time() int64 {
	if len(r.b) < 8 {
		r.bad = true
		return 0
	}
	v := int64(binary.BigEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

func (r *reader) string() string {
	n := int(r.byte())
	if r.bad || len(r.b) < n {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// done reports whether the whole payload was read without error.
func (r *reader) done() bool { return !r.bad && len(r.b) == 0 }

// live reports whether a token issued at iat and expiring at exp (Unix
// seconds) is valid at now under the current maximum lifetime maxTTL
// (seconds): lowering the configured lifetime shortens tokens already issued.
// A token issued more than a minute in the future (clock skew between
// instances) is refused.
func live(iat, exp, now, maxTTL int64) bool {
	return 0 <= iat && iat < exp && iat <= now+60 && now < exp && now-iat < maxTTL
}
