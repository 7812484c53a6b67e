package caremu_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	"go.uber.org/goleak"

	"carbroker/internal/dev/caremu"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the pool clock's start in tests; signatures use the real clock.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// newClient returns an SDK client: in process through rt, or over HTTP to endpoint.
func newClient(rt http.RoundTripper, endpoint, id, key, token string) *common.Client {
	prof := profile.NewClientProfile()
	prof.HttpProfile.ReqTimeout = 5
	if endpoint != "" {
		prof.HttpProfile.Endpoint = endpoint
		prof.HttpProfile.Scheme = "HTTP"
	}
	return common.NewCommonClient(common.NewTokenCredential(id, key, token), "", prof).WithHttpTransport(rt)
}

// send makes one CAR call with the SDK and returns the Response object.
func send(ctx context.Context, c *common.Client, action string, params map[string]any) (map[string]any, error) {
	req := tchttp.NewCommonRequest("car", caremu.Version, action)
	if err := req.SetActionParameters(params); err != nil {
		return nil, err
	}
	req.SetContext(ctx)
	resp := tchttp.NewCommonResponse()
	if err := c.Send(req, resp); err != nil {
		return nil, err
	}
	var out struct{ Response map[string]any }
	if err := json.Unmarshal(resp.GetBody(), &out); err != nil {
		return nil, err
	}
	return out.Response, nil
}

// code returns the SDK error code of err ("" for nil).
func code(err error) string {
	var e *tcerr.TencentCloudSDKError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return "not an SDK error: " + err.Error()
	}
}

// env is an emulator on a stopped pool clock with an in-process SDK client.
type env struct {
	t  *testing.T
	em *caremu.Emulator
	c  *common.Client
}

func newEnv(t *testing.T, opt caremu.Options) *env {
	t.Helper()
	em := caremu.New(opt)
	em.SetNow(t0)
	cl := em.Client()
	return &env{t: t, em: em, c: newClient(cl.Transport, "", cl.SecretID, cl.SecretKey, cl.Token)}
}

func (v *env) call(action string, params map[string]any) (map[string]any, string) {
	v.t.Helper()
	resp, err := send(context.Background(), v.c, action, params)
	return resp, code(err)
}

func (v *env) apply(user string) string {
	v.t.Helper()
	_, c := v.call("ApplyConcurrent", map[string]any{"UserId": user, "UserIp": "203.0.113.7", "ProjectId": "cap-test"})
	return c
}

// create calls CreateSession; extra parameters are added to the defaults.
func (v *env) create(user string, extra map[string]any) (string, string) {
	v.t.Helper()
	p := map[string]any{"UserId": user, "UserIp": "203.0.113.7", "ClientSession": "client-session-of-" + user}
	for k, x := range extra {
		p[k] = x
	}
	resp, c := v.call("CreateSession", p)
	s, _ := resp["ServerSession"].(string)
	return s, c
}

func (v *env) destroy(user string) string {
	v.t.Helper()
	_, c := v.call("DestroySession", map[string]any{"UserId": user})
	return c
}

// start applies and creates a session for user, failing the test otherwise.
func (v *env) start(user string) caremu.Slot {
	v.t.Helper()
	if c := v.apply(user); c != "" {
		v.t.Fatalf("ApplyConcurrent(%s) = %s", user, c)
	}
	if _, c := v.create(user, nil); c != "" {
		v.t.Fatalf("CreateSession(%s) = %s", user, c)
	}
	return v.slot(user, caremu.Session)
}

// slot returns user's slot and checks its state.
func (v *env) slot(user string, want caremu.State) caremu.Slot {
	v.t.Helper()
	s, ok := v.em.SlotOf(user)
	if !ok || s.State != want {
		v.t.Fatalf("SlotOf(%s) = %+v, %v; want state %s", user, s, ok, want)
	}
	return s
}

func want(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

// waitFor polls cond; the emulator's handlers run on other goroutines.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

// signed builds a request signed the TC3 way, as the Node SDK does when
// signedHost is the bare hostname.
func signed(t *testing.T, url, action string, body []byte, key string, ts time.Time, signedHost string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if signedHost == "" {
		signedHost = r.Host
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-TC-Action", action)
	r.Header.Set("X-TC-Version", caremu.Version)
	r.Header.Set("X-TC-Timestamp", strconv.FormatInt(ts.Unix(), 10))

	hash := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	mac := func(k []byte, s string) []byte { m := hmac.New(sha256.New, k); m.Write([]byte(s)); return m.Sum(nil) }
	date := ts.UTC().Format("2006-01-02")
	canonical := "POST\n/\n\ncontent-type:application/json\nhost:" + signedHost + "\n\ncontent-type;host\n" + hash(body)
	sts := "TC3-HMAC-SHA256\n" + r.Header.Get("X-TC-Timestamp") + "\n" + date + "/car/tc3_request\n" + hash([]byte(canonical))
	k := mac(mac(mac([]byte("TC3"+key), date), "car"), "tc3_request")
	r.Header.Set("Authorization", "TC3-HMAC-SHA256 Credential="+caremu.DefaultSecretID+"/"+date+
		"/car/tc3_request, SignedHeaders=content-type;host, Signature="+hex.EncodeToString(mac(k, sts)))
	return r
}

// envelope is a decoded CAR answer.
type envelope struct {
	Response struct {
		Error     struct{ Code, Message string }
		RequestId string
	}
}

// serve runs r through the handler and checks the envelope's form.
func serve(t *testing.T, h http.Handler, r *http.Request) envelope {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	var e envelope
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("not JSON: %q", rec.Body)
	}
	if !uuidV4.MatchString(e.Response.RequestId) {
		t.Fatalf("RequestId %q is not a UUID v4", e.Response.RequestId)
	}
	return e
}

func TestSDKCredentials(t *testing.T) {
	em := caremu.New(caremu.Options{Credentials: map[string]caremu.Credential{
		"AKIDplain": {SecretKey: "key1"},
		"AKIDtoken": {SecretKey: "key2", Token: "tok"},
	}})
	for _, tc := range []struct{ id, key, token, want string }{
		{"AKIDplain", "key1", "", ""},
		{"AKIDtoken", "key2", "tok", ""},
		{"AKIDplain", "wrong", "", "AuthFailure.SignatureFailure"},
		{"AKIDother", "key1", "", "AuthFailure.SecretIdNotFound"},
		{"AKIDplain", "key1", "tok", "AuthFailure.TokenFailure"},
		{"AKIDtoken", "key2", "", "AuthFailure.TokenFailure"},
		{"AKIDtoken", "key2", "other", "AuthFailure.TokenFailure"},
	} {
		c := newClient(em.Transport(), "", tc.id, tc.key, tc.token)
		_, err := send(context.Background(), c, "DescribeConcurrentCount", map[string]any{})
		want(t, tc.id+"/"+tc.key+"/"+tc.token, code(err), tc.want)
	}
}

// Client hands out a credential the emulator accepts, token included, and
// reads it as the SDKs read the environment.
func TestClientIsReady(t *testing.T) {
	for _, creds := range []map[string]caremu.Credential{
		nil,
		{"AKIDtoken": {SecretKey: "key2", Token: "tok"}, "AKIDzzz": {SecretKey: "other"}},
	} {
		cl := caremu.New(caremu.Options{Credentials: creds}).Client()
		c := common.NewCommonClient(common.NewTokenCredential(cl.Getenv("TENCENTCLOUD_SECRETID"), cl.Getenv("TENCENTCLOUD_SECRETKEY"),
			cl.Getenv("TENCENTCLOUD_SESSIONTOKEN")), "", profile.NewClientProfile()).WithHttpTransport(cl.Transport)
		if _, err := send(context.Background(), c, "DescribeConcurrentCount", map[string]any{}); err != nil {
			t.Errorf("%v: %v", creds, err)
		}
		if cl.Getenv("PATH") != "" {
			t.Error("Getenv reads more than the credential")
		}
	}
}

func TestSDKOverListener(t *testing.T) {
	em := caremu.New(caremu.Options{})
	endpoint, stop, err := em.Listen("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := newClient(tr, endpoint, caremu.DefaultSecretID, caremu.DefaultSecretKey, "")
	ctx := context.Background()

	if _, err := send(ctx, c, "ApplyConcurrent", map[string]any{"UserId": "u", "UserIp": "203.0.113.7", "ProjectId": "cap-1"}); err != nil {
		t.Fatal(err)
	}
	resp, err := send(ctx, c, "CreateSession", map[string]any{"UserId": "u", "UserIp": "203.0.113.7", "ClientSession": "cs"})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := resp["ServerSession"].(string); len(s) < 200 {
		t.Fatalf("ServerSession %q", s)
	}

	// The Node SDK signs the bare hostname while its Host header has the port.
	body := []byte(`{}`)
	for _, tc := range []struct{ signedHost, want string }{
		{"", ""},          // the Host header as sent
		{"127.0.0.1", ""}, // port stripped
		{"car.tencentcloudapi.com", "AuthFailure.SignatureFailure"},
	} {
		r := signed(t, "http://"+endpoint+"/", "DescribeConcurrentCount", body, caremu.DefaultSecretKey, time.Now(), tc.signedHost)
		r.RequestURI = ""
		res, err := tr.RoundTrip(r)
		if err != nil {
			t.Fatal(err)
		}
		var e envelope
		err = json.NewDecoder(res.Body).Decode(&e)
		_ = res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		want(t, "signed host "+tc.signedHost, e.Response.Error.Code, tc.want)
	}
}

func TestHandSignedRequests(t *testing.T) {
	em := caremu.New(caremu.Options{Projects: []string{"cap-ok"}})
	const url = "http://car.test:8080/"
	now := time.Now()
	apply := `{"UserId":"u","UserIp":"203.0.113.7","ProjectId":"cap-ok"}`
	for _, tc := range []struct {
		name, action, body string
		ts                 time.Time
		edit               func(r *http.Request)
		want               string
	}{
		{name: "ok", action: "ApplyConcurrent", body: apply, ts: now},
		{name: "skew within 5 min", action: "DescribeConcurrentCount", body: `{}`, ts: now.Add(-4 * time.Minute)},
		{name: "old", action: "DescribeConcurrentCount", body: `{}`, ts: now.Add(-6 * time.Minute), want: "AuthFailure.SignatureExpire"},
		{name: "future", action: "DescribeConcurrentCount", body: `{}`, ts: now.Add(6 * time.Minute), want: "AuthFailure.SignatureExpire"},
		{name: "no authorization", action: "DescribeConcurrentCount", body: `{}`, ts: now,
			edit: func(r *http.Request) { r.Header.Del("Authorization") }, want: "AuthFailure.InvalidAuthorization"},
		{name: "garbled authorization", action: "DescribeConcurrentCount", body: `{}`, ts: now,
			edit: func(r *http.Request) { r.Header.Set("Authorization", "TC3-HMAC-SHA256 Credential=x") }, want: "AuthFailure.InvalidAuthorization"},
		{name: "tampered body", action: "DescribeConcurrentCount", body: `{}`, ts: now,
			edit: func(r *http.Request) { r.Body = http.NoBody }, want: "AuthFailure.SignatureFailure"},
		{name: "wrong version", action: "DescribeConcurrentCount", body: `{}`, ts: now,
			edit: func(r *http.Request) { r.Header.Set("X-TC-Version", "2020-01-01") }, want: "NoSuchVersion"},
		{name: "unknown action", action: "RunEverything", body: `{}`, ts: now, want: "InvalidAction"},
		{name: "no action", action: "", body: `{}`, ts: now, want: "MissingParameter"},
		{name: "no timestamp", action: "DescribeConcurrentCount", body: `{}`, ts: now,
			edit: func(r *http.Request) { r.Header.Del("X-TC-Timestamp") }, want: "MissingParameter"},
		{name: "GET", action: "DescribeConcurrentCount", body: `{}`, ts: now,
			edit: func(r *http.Request) { r.Method = http.MethodGet }, want: "UnsupportedProtocol"},
		{name: "bad JSON", action: "ApplyConcurrent", body: `{"UserId":`, ts: now, want: "InvalidParameter.JsonParseError"},
		{name: "not an object", action: "ApplyConcurrent", body: `[]`, ts: now, want: "InvalidParameter.JsonParseError"},
		{name: "missing UserId", action: "ApplyConcurrent", body: `{"UserIp":"203.0.113.7","ProjectId":"cap-ok"}`, ts: now, want: "MissingParameter"},
		{name: "unknown parameter", action: "DestroySession", body: `{"UserId":"u","RequestId":"x"}`, ts: now, want: "UnknownParameter"},
		{name: "number UserId", action: "DestroySession", body: `{"UserId":7}`, ts: now, want: "InvalidParameter"},
		{name: "empty UserId", action: "DestroySession", body: `{"UserId":""}`, ts: now, want: "InvalidParameterValue"},
		{name: "bad UserIp", action: "ApplyConcurrent", body: `{"UserId":"u","UserIp":"1.2.3.4:5","ProjectId":"cap-ok"}`, ts: now, want: "InvalidParameterValue"},
		{name: "unknown project", action: "ApplyConcurrent", body: `{"UserId":"u","UserIp":"203.0.113.7","ProjectId":"cap-no"}`, ts: now, want: "InvalidParameterValue"},
		{name: "empty ClientSession", action: "CreateSession", body: `{"UserId":"u","UserIp":"203.0.113.7","ClientSession":""}`, ts: now, want: "InvalidParameterValue"},
		{name: "RunWithoutClient", action: "CreateSession", body: `{"UserId":"u","UserIp":"203.0.113.7","RunMode":"RunWithoutClient"}`, ts: now},
		{name: "bad role", action: "CreateSession", body: `{"UserId":"u","UserIp":"203.0.113.7","ClientSession":"c","Role":"King"}`, ts: now, want: "InvalidParameterValue"},
		{name: "bad category", action: "DescribeConcurrentCount", body: `{"ApplicationCategory":"TV"}`, ts: now, want: "InvalidParameterValue"},
		{name: "bare host signed", action: "DescribeConcurrentCount", body: `{}`, ts: now,
			edit: func(r *http.Request) {
				*r = *signed(t, url, "DescribeConcurrentCount", []byte(`{}`), caremu.DefaultSecretKey, now, "car.test")
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := signed(t, url, tc.action, []byte(tc.body), caremu.DefaultSecretKey, tc.ts, "")
			if tc.edit != nil {
				tc.edit(r)
			}
			e := serve(t, em, r)
			want(t, "code", e.Response.Error.Code, tc.want)
			if tc.want != "" && e.Response.Error.Message == "" {
				t.Error("no message")
			}
		})
	}
	seen := map[string]bool{}
	for _, c := range em.Calls() {
		if seen[c.RequestID] {
			t.Fatalf("RequestId %s answered twice", c.RequestID)
		}
		seen[c.RequestID] = true
	}
}

func TestFirstStartAndCount(t *testing.T) {
	v := newEnv(t, caremu.Options{})
	s := v.start("alice")
	if s.UserID != "alice" {
		t.Fatalf("slot %+v", s)
	}
	resp, c := v.call("DescribeConcurrentCount", map[string]any{"ProjectId": "cap-test", "ApplicationCategory": "DESKTOP"})
	want(t, "DescribeConcurrentCount", c, "")
	if resp["Total"] != 4.0 || resp["Running"] != 1.0 {
		t.Fatalf("count %v", resp)
	}
}

func TestServerSessionAndCalls(t *testing.T) {
	v := newEnv(t, caremu.Options{})
	v.start("u")
	v.apply("u")
	s1, _ := v.create("u", map[string]any{"ClientSession": "secret-client-session"})
	v.apply("u")
	s2, _ := v.create("u", nil)
	if s1 == s2 {
		t.Fatal("ServerSession repeated")
	}
	if b, err := base64.StdEncoding.DecodeString(s1); err != nil || len(b) < 200 {
		t.Fatalf("ServerSession %q: %v", s1, err)
	}
	calls := v.em.Calls()
	dump := fmt.Sprintf("%+v", calls)
	if strings.Contains(dump, "secret-client-session") || strings.Contains(dump, s1) {
		t.Fatal("Calls keep session contents")
	}
	c := calls[3]
	if c.Action != "CreateSession" || c.UserID != "u" || c.ClientSessionLen != len("secret-client-session") ||
		c.Params["UserIp"] != "203.0.113.7" || !c.Time.Equal(t0) || !uuidV4.MatchString(c.RequestID) {
		t.Fatalf("call %+v", c)
	}
}

func TestReconnectWhileConnected(t *testing.T) {
	v := newEnv(t, caremu.Options{})
	first := v.start("u")
	second := v.start("u")
	if first.ID != second.ID {
		t.Fatalf("slot %d then %d", first.ID, second.ID)
	}
	if n := v.em.Takeovers("u"); n != 1 {
		t.Fatalf("takeovers %d", n)
	}
	if !v.em.Connect("u") || v.em.Connect("u") {
		t.Fatal("Connect: want true once, then false")
	}
	// A lock on a live session that is not followed by CreateSession leaves the session.
	want(t, "apply", v.apply("u"), "")
	v.slot("u", caremu.Locked)
	v.em.Advance(31 * time.Second)
	v.slot("u", caremu.Session)
}

func TestReconnectWithinRetention(t *testing.T) {
	v := newEnv(t, caremu.Options{})
	first := v.start("u")
	if !v.em.Disconnect("u") {
		t.Fatal("Disconnect changed nothing")
	}
	s := v.slot("u", caremu.Retained)
	if !s.Until.Equal(t0.Add(90 * time.Second)) {
		t.Fatalf("retained until %v", s.Until)
	}
	v.em.Advance(89 * time.Second)
	if again := v.start("u"); again.ID != first.ID {
		t.Fatalf("slot %d then %d", first.ID, again.ID)
	}
	if n := v.em.Takeovers("u"); n != 0 {
		t.Fatalf("takeovers %d", n)
	}
}

// A session whose client never connects is retained after ClientWait, then
// freed after Retention, evaluated from the pool clock alone.
func TestClientNeverConnects(t *testing.T) {
	v := newEnv(t, caremu.Options{Concurrency: 1, ClientWait: 20 * time.Second, Retention: 60 * time.Second})
	first := v.start("u")
	if s := v.slot("u", caremu.Session); s.Connected || !s.Until.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("new session %+v", s)
	}
	v.em.Advance(19 * time.Second)
	v.slot("u", caremu.Session)
	v.em.Advance(time.Second)
	if s := v.slot("u", caremu.Retained); !s.Until.Equal(t0.Add(80 * time.Second)) {
		t.Fatalf("retained %+v", s)
	}
	want(t, "other user while retained", v.apply("other"), "ResourceNotFound.NoIdle")
	v.em.Advance(59 * time.Second)
	if again := v.start("u"); again.ID != first.ID {
		t.Fatalf("reconnect within retention: slot %d then %d", first.ID, again.ID)
	}
	// One inspection long after the deadline carries the slot through
	// retention to idle at once.
	v.em.Advance(20*time.Second + 60*time.Second)
	if st := v.em.State()[first.ID]; st.State != caremu.Idle || st.UserID != "" {
		t.Fatalf("after wait and retention %+v", st)
	}
	if v.em.Connect("u") {
		t.Fatal("Connect without a session reported a change")
	}
}

func TestConnectedSessionStays(t *testing.T) {
	v := newEnv(t, caremu.Options{ClientWait: 5 * time.Second})
	v.start("u")
	if !v.em.Connect("u") {
		t.Fatal("Connect changed nothing")
	}
	if s := v.slot("u", caremu.Session); !s.Connected || !s.Until.IsZero() {
		t.Fatalf("connected session %+v", s)
	}
	v.em.Advance(24 * time.Hour)
	v.slot("u", caremu.Session)
	// Disconnect retains it; a reconnect's new session waits for its client again.
	v.em.Disconnect("u")
	v.slot("u", caremu.Retained)
	v.start("u")
	if s := v.slot("u", caremu.Session); s.Connected || s.Until.IsZero() {
		t.Fatalf("session after reconnect %+v", s)
	}
	// Disconnect before the client connected retains it too.
	if !v.em.Disconnect("u") {
		t.Fatal("Disconnect of a session without its client changed nothing")
	}
	v.slot("u", caremu.Retained)
}

func TestClientWaitNegativeMeansConnected(t *testing.T) {
	v := newEnv(t, caremu.Options{ClientWait: -1})
	v.start("u")
	if s := v.slot("u", caremu.Session); !s.Connected || !s.Until.IsZero() {
		t.Fatalf("session %+v", s)
	}
	v.em.Advance(24 * time.Hour)
	v.slot("u", caremu.Session)
}

func TestReconnectAfterRetention(t *testing.T) {
	v := newEnv(t, caremu.Options{Concurrency: 1, Retention: 10 * time.Second})
	first := v.start("u")
	v.em.Disconnect("u")
	want(t, "other user while retained", v.apply("other"), "ResourceNotFound.NoIdle")
	v.em.Advance(10 * time.Second)
	if _, ok := v.em.SlotOf("u"); ok {
		t.Fatal("slot still held after retention")
	}
	if st := v.em.State()[first.ID].State; st != caremu.Idle {
		t.Fatalf("old slot %s", st)
	}
	v.start("u")
}

func TestNoIdleAndLockExpiry(t *testing.T) {
	v := newEnv(t, caremu.Options{Concurrency: 2, LockTime: 5 * time.Second})
	want(t, "a", v.apply("a"), "")
	want(t, "b", v.apply("b"), "")
	want(t, "c", v.apply("c"), "ResourceNotFound.NoIdle")
	if s := v.slot("a", caremu.Locked); !s.Until.Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("locked until %v", s.Until)
	}
	v.em.Advance(5 * time.Second)
	want(t, "c after the locks expired", v.apply("c"), "")
}

func TestLockTimeout(t *testing.T) {
	v := newEnv(t, caremu.Options{})
	_, c := v.create("u", nil)
	want(t, "without apply", c, "FailedOperation.LockTimeout")
	v.apply("u")
	v.em.Advance(30 * time.Second)
	_, c = v.create("u", nil)
	want(t, "after lock expiry", c, "FailedOperation.LockTimeout")
	v.apply("u")
	v.em.Advance(29 * time.Second)
	_, c = v.create("u", nil)
	want(t, "within the lock", c, "")
}

func TestDestroyStopping(t *testing.T) {
	v := newEnv(t, caremu.Options{Concurrency: 1})
	want(t, "destroy without slot", v.destroy("nobody"), "")
	v.start("a")
	want(t, "destroy", v.destroy("a"), "")
	s := v.slot("a", caremu.Stopping)
	want(t, "destroy again", v.destroy("a"), "")
	if again := v.slot("a", caremu.Stopping); !again.Until.Equal(s.Until) {
		t.Fatal("second destroy restarted the stop time")
	}
	want(t, "a while stopping", v.apply("a"), "UnsupportedOperation.Stopping")
	want(t, "b while stopping", v.apply("b"), "ResourceNotFound.NoIdle")
	if _, running := v.em.Count(); running != 1 {
		t.Fatalf("running %d", running)
	}
	v.em.Advance(2 * time.Second)
	v.start("b")
}

func TestCountIncludesEveryBusyState(t *testing.T) {
	v := newEnv(t, caremu.Options{})
	v.apply("locked")
	v.start("session")
	v.start("retained")
	v.em.Disconnect("retained")
	v.start("stopping")
	v.destroy("stopping")
	if total, running := v.em.Count(); total != 4 || running != 4 {
		t.Fatalf("count %d/%d", running, total)
	}
	v.em.Advance(2 * time.Second) // stopping ends
	if _, running := v.em.Count(); running != 3 {
		t.Fatalf("running %d", running)
	}
}

func TestMultiplayer(t *testing.T) {
	v := newEnv(t, caremu.Options{Concurrency: 2})
	join := func(guest, role string) string {
		_, c := v.create(guest, map[string]any{"HostUserId": "host", "Role": role})
		return c
	}
	want(t, "guest without host", join("g1", "Player"), "ResourceNotFound.SessionNotFound")
	v.apply("host")
	_, c := v.create("host", map[string]any{"HostUserId": "host", "Role": "Player"})
	want(t, "host", c, "")
	for _, g := range []string{"g1", "g2", "g3"} {
		want(t, g, join(g, "Player"), "")
	}
	want(t, "fifth player", join("g4", ""), "LimitExceeded.Role")
	want(t, "viewer", join("v1", "Viewer"), "")
	want(t, "g1 again", join("g1", "Player"), "")
	if n := v.em.Takeovers("g1"); n != 1 {
		t.Fatalf("takeovers %d", n)
	}
	if s := v.slot("g2", caremu.Session); s.UserID != "host" || len(s.Guests) != 4 {
		t.Fatalf("room %+v", s)
	}
	want(t, "g2 leaves", v.destroy("g2"), "")
	want(t, "g4 now", join("g4", "Player"), "")
	if _, running := v.em.Count(); running != 1 {
		t.Fatalf("guests hold concurrencies: running %d", running)
	}
	v.em.Disconnect("host")
	want(t, "host disconnected", join("g5", "Viewer"), "ResourceNotFound.SessionNotFound")
}

func TestGuestNeedsLock(t *testing.T) {
	v := newEnv(t, caremu.Options{Concurrency: 2, GuestNeedsLock: true, MaxViewers: 1})
	v.start("host")
	_, c := v.create("guest", map[string]any{"HostUserId": "host", "Role": "Viewer"})
	want(t, "guest without lock", c, "FailedOperation.LockTimeout")
	v.apply("guest")
	_, c = v.create("guest", map[string]any{"HostUserId": "host", "Role": "Viewer"})
	want(t, "guest with lock", c, "")
	if _, running := v.em.Count(); running != 1 {
		t.Fatalf("the guest's lock was not released: running %d", running)
	}
	v.apply("second")
	_, c = v.create("second", map[string]any{"HostUserId": "host", "Role": "Viewer"})
	want(t, "second viewer", c, "LimitExceeded.Role")
}

func TestInjectionOrder(t *testing.T) {
	v := newEnv(t, caremu.Options{})
	v.em.Inject("ApplyConcurrent",
		caremu.Fail("ResourceNotFound.NoIdle", "busy"),
		caremu.Fail("ResourceNotFound.NoIdle", ""))
	want(t, "1st", v.apply("u"), "ResourceNotFound.NoIdle")
	if _, ok := v.em.SlotOf("u"); ok {
		t.Fatal("an injected failure changed the pool")
	}
	want(t, "2nd", v.apply("u"), "ResourceNotFound.NoIdle")
	want(t, "3rd", v.apply("u"), "")
	if n := v.em.Pending("ApplyConcurrent"); n != 0 {
		t.Fatalf("pending %d", n)
	}
	var got []string
	for _, c := range v.em.Calls() {
		got = append(got, c.Code+"/"+c.Fault)
	}
	want(t, "calls", strings.Join(got, " "), "ResourceNotFound.NoIdle/error ResourceNotFound.NoIdle/error /")
}

func TestRawReplies(t *testing.T) {
	v := newEnv(t, caremu.Options{})
	v.em.Inject("DescribeConcurrentCount",
		caremu.Raw(http.StatusInternalServerError, "text/html", "<html><body>502 Bad Gateway</body></html>"),
		caremu.Raw(http.StatusOK, "application/json", `{"Response":{"Total":`),
		caremu.Raw(http.StatusOK, "", ""),
		caremu.Raw(http.StatusServiceUnavailable, "application/json",
			`{"Response":{"Error":{"Code":"InternalError","Message":"x"},"RequestId":"r"}}`))
	for _, w := range []string{"ClientError.ParseJsonError", "ClientError.ParseJsonError", "ClientError.ParseJsonError", "InternalError"} {
		_, c := v.call("DescribeConcurrentCount", map[string]any{})
		want(t, "raw", c, w)
	}
	for _, c := range v.em.Calls() {
		if c.Fault != "raw" || c.RequestID != "" {
			t.Fatalf("call %+v", c)
		}
	}
}

func TestHangHonoursContextAndSlowDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newEnv(t, caremu.Options{})
		v.em.Inject("ApplyConcurrent", caremu.Hang())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := send(ctx, v.c, "ApplyConcurrent", map[string]any{"UserId": "u", "UserIp": "203.0.113.7", "ProjectId": "cap-test"})
			done <- err
		}()
		synctest.Wait() // the call hangs
		if n := v.em.InFlight(); n != 1 {
			t.Fatalf("%d calls in flight, want the hung one", n)
		}
		want(t, "same user meanwhile", v.apply("u"), "FailedOperation.SlowDown")
		want(t, "other user meanwhile", v.apply("other"), "")
		cancel()
		if err := <-done; code(err) != "ClientError.NetworkError" || !errors.Is(err, context.Canceled) {
			t.Fatalf("hung call: %v", err)
		}
		synctest.Wait()
		if n := v.em.InFlight(); n != 0 {
			t.Fatalf("%d calls in flight after the cancel", n)
		}
		want(t, "same user after", v.apply("u"), "")
		var hung *caremu.Call
		for _, c := range v.em.Calls() {
			if c.Fault == "hang" {
				hung = &c
			}
		}
		if hung == nil || !hung.Canceled {
			t.Fatalf("calls %+v", v.em.Calls())
		}
	})
}

func TestLatencyCausesSlowDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newEnv(t, caremu.Options{})
		v.em.SetLatency("ApplyConcurrent", 200*time.Millisecond)
		done := make(chan string, 1)
		go func() { done <- v.apply("u") }()
		synctest.Wait() // the first call sits in its latency
		if n := v.em.InFlight(); n != 1 {
			t.Fatalf("%d calls in flight, want 1", n)
		}
		want(t, "overlapping", v.apply("u"), "FailedOperation.SlowDown")
		want(t, "first", <-done, "")
		v.em.SetLatency("ApplyConcurrent", 0)
	})
}

func TestDelayAndHangOverListener(t *testing.T) {
	t.Parallel() // its own emulator or proxy; waits out deadlines
	em := caremu.New(caremu.Options{})
	endpoint, stop, err := em.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	defer stop()
	c := newClient(tr, endpoint, caremu.DefaultSecretID, caremu.DefaultSecretKey, "")
	em.Inject("DescribeConcurrentCount", caremu.Delay(time.Hour), caremu.Delay(time.Millisecond), caremu.Hang())

	// The deadline leaves a loaded machine time to deliver the call, which
	// must take the hour's delay before the next call comes.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := send(ctx, c, "DescribeConcurrentCount", map[string]any{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("delayed call: %v", err)
	}
	waitFor(t, func() bool { return em.Pending("DescribeConcurrentCount") == 2 })
	if _, err := send(context.Background(), c, "DescribeConcurrentCount", map[string]any{}); err != nil {
		t.Fatalf("short delay: %v", err)
	}
	// A call hanging when the server stops returns, and stop waits for it.
	errc := make(chan error, 1)
	go func() {
		_, err := send(context.Background(), c, "DescribeConcurrentCount", map[string]any{})
		errc <- err
	}()
	waitFor(t, func() bool { return em.InFlight() == 1 })
	stop()
	if err := <-errc; code(err) != "ClientError.NetworkError" {
		t.Fatalf("hung call after stop: %v", err)
	}
	if n := em.InFlight(); n != 0 {
		t.Fatalf("in flight after stop: %d", n)
	}
}

func TestReset(t *testing.T) {
	v := newEnv(t, caremu.Options{})
	v.start("u")
	v.em.Inject("CreateSession", caremu.Hang())
	v.em.Reset()
	if _, running := v.em.Count(); running != 0 || len(v.em.Calls()) != 0 || v.em.Pending("CreateSession") != 0 {
		t.Fatal("Reset kept state")
	}
}

func TestUnknownActionPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	caremu.New(caremu.Options{}).Inject("ApplyConcurent", caremu.Hang())
}

// FuzzServeHTTP feeds well-signed requests with arbitrary actions and bodies:
// every answer must be an HTTP 200 CAR envelope.
func FuzzServeHTTP(f *testing.F) {
	f.Add("ApplyConcurrent", []byte(`{"UserId":"u","UserIp":"203.0.113.7","ProjectId":"cap"}`))
	f.Add("CreateSession", []byte(`{"UserId":"u","UserIp":"::1","ClientSession":"c","HostUserId":"h","Role":"Viewer"}`))
	f.Add("DestroySession", []byte(`{"UserId":null}`))
	f.Add("DescribeConcurrentCount", []byte(`{"ProjectId":["x"]}`))
	f.Add("", []byte(``))
	em := caremu.New(caremu.Options{})
	f.Fuzz(func(t *testing.T, action string, body []byte) {
		if strings.ContainsAny(action, "\r\n\x00") {
			return // not a valid header value
		}
		serve(t, em, signed(t, "http://car.test/", action, body, caremu.DefaultSecretKey, time.Now(), ""))
	})
}

func Example() {
	em := caremu.New(caremu.Options{Concurrency: 2})
	em.Inject("ApplyConcurrent", caremu.Fail("ResourceNotFound.NoIdle", "no idle concurrency"))
	client := common.NewCommonClient(
		common.NewCredential(caremu.DefaultSecretID, caremu.DefaultSecretKey), "", profile.NewClientProfile(),
	).WithHttpTransport(em.Transport())

	for range 2 {
		req := tchttp.NewCommonRequest("car", caremu.Version, "ApplyConcurrent") // one request per call
		_ = req.SetActionParameters(map[string]any{"UserId": "alice", "UserIp": "203.0.113.7", "ProjectId": "cap-demo"})
		err := client.Send(req, tchttp.NewCommonResponse())
		var sdkErr *tcerr.TencentCloudSDKError
		if errors.As(err, &sdkErr) {
			fmt.Println("error:", sdkErr.Code)
		} else {
			fmt.Println("ok:", err == nil)
		}
	}
	s, _ := em.SlotOf("alice")
	fmt.Println("slot", s.ID, s.State)
	// Output:
	// error: ResourceNotFound.NoIdle
	// ok: true
	// slot 0 locked
}

func TestRandomCredentialsAreFreshAndAccepted(t *testing.T) {
	a, b := caremu.RandomCredentials("AKIDx"), caremu.RandomCredentials("AKIDx")
	for id := range a {
		if _, same := b[id]; same || len(id) != len("AKIDx")+16 || len(a[id].SecretKey) != 48 {
			t.Fatalf("credentials %v and %v", a, b)
		}
	}
	cl := caremu.New(caremu.Options{Credentials: a}).Client()
	if _, ok := a[cl.SecretID]; !ok || cl.SecretKey != a[cl.SecretID].SecretKey {
		t.Fatalf("Client hands out %+v, not the credential given", cl)
	}
}

// With RateLimits, an action answers RequestLimitExceeded beyond its
// requests per second, and the others are not counted against it.
func TestRateLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := newEnv(t, caremu.Options{Concurrency: 8, RateLimits: map[string]int{"ApplyConcurrent": 3}})
		for _, u := range []string{"a", "b", "c"} {
			want(t, "within the limit", v.apply(u), "")
		}
		want(t, "beyond the limit", v.apply("d"), "RequestLimitExceeded")
		want(t, "another action", v.destroy("a"), "")
		calls := v.em.Calls()
		if last := calls[len(calls)-2]; last.Action != "ApplyConcurrent" || last.Code != "RequestLimitExceeded" {
			t.Fatalf("the refused call is not logged: %+v", last)
		}
		time.Sleep(time.Second - time.Millisecond) // the window is a second of real time (the bubble's)
		want(t, "within the second", v.apply("d"), "RequestLimitExceeded")
		time.Sleep(time.Millisecond)
		want(t, "a second later", v.apply("d"), "")
		if caremu.RateLimitsCAR["ApplyConcurrent"] != 100 || caremu.RateLimitsCAR["DescribeConcurrentCount"] != 20 {
			t.Fatalf("CAR's documented limits: %v", caremu.RateLimitsCAR)
		}
	})
}
