// Package credential carries the Tencent Cloud credential triple of one call.
//
// SCF delivers the execution role's temporary credentials in the environment
// and rotates them between invocations, so they are read per call and travel
// with the request's context. An adapter that applies a new environment reads
// the triple once, atomically with applying it, and attaches it to the
// context; everything else falls back to reading the process environment.
package credential

import "context"

// Triple is a SecretId, SecretKey and optional session Token.
type Triple struct {
	ID, Key, Token string
}

// Valid reports whether the triple can sign a request.
func (t Triple) Valid() bool { return t.ID != "" && t.Key != "" }

// FromEnv reads the triple from an environment lookup. The names SCF sets
// (TENCENTCLOUD_SECRETID, …) win; the SDK's names (TENCENTCLOUD_SECRET_ID, …)
// are accepted too.
func FromEnv(getenv func(string) string) Triple {
	t := Triple{
		ID:    getenv("TENCENTCLOUD_SECRETID"),
		Key:   getenv("TENCENTCLOUD_SECRETKEY"),
		Token: getenv("TENCENTCLOUD_SESSIONTOKEN"),
	}
	if t.ID == "" && t.Key == "" {
		t.ID = getenv("TENCENTCLOUD_SECRET_ID")
		t.Key = getenv("TENCENTCLOUD_SECRET_KEY")
		if t.Token == "" {
			t.Token = getenv("TENCENTCLOUD_SESSION_TOKEN")
		}
	}
	return t
}

type ctxKey struct{}

// NewContext returns ctx carrying t.
func NewContext(ctx context.Context, t Triple) context.Context {
	return context.WithValue(ctx, ctxKey{}, t)
}

// FromContext returns the triple attached to ctx, if any.
func FromContext(ctx context.Context) (Triple, bool) {
	t, ok := ctx.Value(ctxKey{}).(Triple)
	return t, ok
}
