package tc3_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"

	"carbroker/internal/dev/tc3"
)

// server answers every request with the verifier's verdict in Tencent's envelope.
func server(v *tc3.Verifier) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		var te *tc3.Error
		if err := v.Verify(r, body); errors.As(err, &te) {
			_, _ = io.WriteString(w, `{"Response":{"Error":{"Code":"`+te.Code+`","Message":"x"},"RequestId":"r"}}`)
			return
		}
		_, _ = io.WriteString(w, `{"Response":{"RequestId":"r"}}`)
	})
}

// call signs one request with the SDK, as a client of service would.
func call(t *testing.T, h http.Handler, service, id, key, token string) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	p := profile.NewClientProfile()
	p.HttpProfile.Endpoint = srv.Listener.Addr().String()
	p.HttpProfile.Scheme = "HTTP"
	c := common.NewCommonClient(common.NewTokenCredential(id, key, token), "ap-guangzhou", p)
	req := tchttp.NewCommonRequest(service, "2018-04-16", "GetFunction")
	if err := req.SetActionParameters(map[string]any{"FunctionName": "f"}); err != nil {
		t.Fatal(err)
	}
	err := c.Send(req, tchttp.NewCommonResponse())
	var sdkErr *tcerr.TencentCloudSDKError
	if errors.As(err, &sdkErr) {
		return sdkErr.Code
	} else if err != nil {
		t.Fatal(err)
	}
	return ""
}

func TestVerifySDKSignatures(t *testing.T) {
	v := &tc3.Verifier{Service: "scf", Credentials: map[string]tc3.Credential{
		"AKIDplain": {SecretKey: "k1"}, "AKIDtoken": {SecretKey: "k2", Token: "tok"},
	}}
	for _, c := range []struct{ service, id, key, token, want string }{
		{"scf", "AKIDplain", "k1", "", ""},
		{"scf", "AKIDtoken", "k2", "tok", ""},
		{"car", "AKIDplain", "k1", "", "AuthFailure.SignatureFailure"}, // another service's scope
		{"scf", "AKIDplain", "wrong", "", "AuthFailure.SignatureFailure"},
		{"scf", "AKIDnone", "k1", "", "AuthFailure.SecretIdNotFound"},
		{"scf", "AKIDplain", "k1", "tok", "AuthFailure.TokenFailure"},
		{"scf", "AKIDtoken", "k2", "", "AuthFailure.TokenFailure"},
	} {
		if got := call(t, server(v), c.service, c.id, c.key, c.token); got != c.want {
			t.Errorf("%s %s/%s/%s: %q, want %q", c.service, c.id, c.key, c.token, got, c.want)
		}
	}
}

func TestVerifyClockAndFormat(t *testing.T) {
	creds := map[string]tc3.Credential{"AKIDplain": {SecretKey: "k1"}}
	for _, c := range []struct {
		name string
		now  time.Time
		skew time.Duration
		want string
	}{
		{"now", time.Now(), 0, ""},
		{"six minutes late", time.Now().Add(6 * time.Minute), 0, "AuthFailure.SignatureExpire"},
		{"six minutes early", time.Now().Add(-6 * time.Minute), 0, "AuthFailure.SignatureExpire"},
		{"within a wider skew", time.Now().Add(6 * time.Minute), 10 * time.Minute, ""},
	} {
		v := &tc3.Verifier{Service: "scf", Credentials: creds, MaxSkew: c.skew, Now: func() time.Time { return c.now }}
		if got := call(t, server(v), "scf", "AKIDplain", "k1", ""); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}

	v := &tc3.Verifier{Service: "scf", Credentials: creds}
	for _, c := range []struct{ name, auth, ts, want string }{
		{"no header", "", "1", "AuthFailure.InvalidAuthorization"},
		{"other algorithm", "HmacSHA256 x", "1", "AuthFailure.InvalidAuthorization"},
		{"short scope", "TC3-HMAC-SHA256 Credential=x, SignedHeaders=content-type;host, Signature=00", "1", "AuthFailure.InvalidAuthorization"},
		{"no timestamp", "TC3-HMAC-SHA256 Credential=AKIDplain/2026-01-01/scf/tc3_request, SignedHeaders=content-type;host, Signature=" + string(bytes.Repeat([]byte("ab"), 32)), "", "MissingParameter"},
		{"bad timestamp", "TC3-HMAC-SHA256 Credential=AKIDplain/2026-01-01/scf/tc3_request, SignedHeaders=content-type;host, Signature=" + string(bytes.Repeat([]byte("ab"), 32)), "soon", "InvalidParameterValue"},
	} {
		r := httptest.NewRequest(http.MethodPost, "http://scf.tencentcloudapi.com/", nil)
		r.Header.Set("Authorization", c.auth)
		r.Header.Set("X-TC-Timestamp", c.ts)
		err := v.Verify(r, nil)
		var te *tc3.Error
		if !errors.As(err, &te) || te.Code != c.want {
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
	}
}
