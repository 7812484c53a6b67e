package car

import "context"

// Credentials are a Tencent Cloud SecretId, SecretKey and optional session
// Token.
//
// SCF delivers the execution role's temporary credentials in the
// environment and rotates them between invocations, so the client reads
// them per call: from the request's context when the composition root
// attached an invoke's own (WithCredentials), else from the environment.
type Credentials struct {
	ID, Key, Token string
}

// Valid reports whether the credentials can sign a request.
func (c Credentials) Valid() bool { return c.ID != "" && c.Key != "" }

// EnvCredentials reads the credentials from an environment lookup. The
// names SCF sets (TENCENTCLOUD_SECRETID, …) win; the SDK's names
// (TENCENTCLOUD_SECRET_ID, …) are accepted too.
func EnvCredentials(getenv func(string) string) Credentials {
	c := Credentials{
		ID:    getenv("TENCENTCLOUD_SECRETID"),
		Key:   getenv("TENCENTCLOUD_SECRETKEY"),
		Token: getenv("TENCENTCLOUD_SESSIONTOKEN"),
	}
	if c.ID == "" && c.Key == "" {
		c.ID = getenv("TENCENTCLOUD_SECRET_ID")
		c.Key = getenv("TENCENTCLOUD_SECRET_KEY")
		if c.Token == "" {
			c.Token = getenv("TENCENTCLOUD_SESSION_TOKEN")
		}
	}
	return c
}

type credentialsKey struct{}

// WithCredentials returns ctx carrying c: the client signs the calls made
// with it with c.
func WithCredentials(ctx context.Context, c Credentials) context.Context {
	return context.WithValue(ctx, credentialsKey{}, c)
}

// CredentialsFrom returns the credentials attached to ctx, if any.
func CredentialsFrom(ctx context.Context) (Credentials, bool) {
	c, ok := ctx.Value(credentialsKey{}).(Credentials)
	return c, ok
}
