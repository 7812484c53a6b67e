// Package car is the typed client of Tencent Cloud Application Rendering
// (service "car", version 2022-01-10), built on the SDK's common package.
//
// Credentials are read per call (SCF rotates them per invocation): from the
// request's context when an adapter attached them, else from the process
// environment. CAR and SDK errors are converted here, once, into
// *fault.Error; nothing above this package sees an SDK error, whose text can
// embed a raw response body (a ServerSession). Each call is recorded in the
// request's calllog for the request's log line.
package car

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"

	"carbroker/internal/calllog"
	"carbroker/internal/credential"
	"carbroker/internal/fault"
)

const (
	service = "car"
	version = "2022-01-10"
)

// Options configure a Client.
type Options struct {
	Host   string // host[:port] of the CAR endpoint, e.g. car.tencentcloudapi.com
	Scheme string // "HTTPS" (default) or "HTTP"
	// Transport carries every call; nil means a shared keep-alive transport
	// built once. Tests pass the emulator's in-process transport.
	Transport http.RoundTripper
	// Getenv is where credentials are read when the context carries none
	// (default os.Getenv).
	Getenv func(string) string
}

// Client calls CAR. It is safe for concurrent use and meant to live as long
// as the process: its transport keeps connections to CAR alive across
// requests and invocations.
type Client struct {
	profile   *profile.ClientProfile
	transport http.RoundTripper
	getenv    func(string) string

	mu     sync.Mutex
	sdk    *common.Client // the SDK client for the last credential triple seen
	sdkFor credential.Triple
}

// New returns a Client.
func New(o Options) *Client {
	p := profile.NewClientProfile()
	p.HttpProfile.Endpoint = o.Host
	p.HttpProfile.Scheme = "HTTPS"
	if strings.EqualFold(o.Scheme, "HTTP") {
		p.HttpProfile.Scheme = "HTTP"
	}
	p.HttpProfile.ReqTimeout = 60 // a backstop; every call carries its own deadline
	p.Language = "en-US"
	p.DisableRegionBreaker = true
	p.RateLimitExceededMaxRetries = 0 // the SDK sleeps ignoring the context: we retry ourselves
	p.NetworkFailureMaxRetries = 0
	c := &Client{profile: p, transport: o.Transport, getenv: o.Getenv}
	if c.transport == nil {
		c.transport = NewTransport()
	}
	if c.getenv == nil {
		c.getenv = os.Getenv
	}
	return c
}

// NewTransport returns the keep-alive transport a Client shares across calls.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// sdkClient returns an SDK client signing with t. SDK clients hold their
// credential, so one is built per distinct triple; all share the transport.
func (c *Client) sdkClient(t credential.Triple) *common.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sdk == nil || c.sdkFor != t {
		c.sdk = common.NewCommonClient(common.NewTokenCredential(t.ID, t.Key, t.Token), "", c.profile).
			WithHttpTransport(c.transport)
		c.sdkFor = t
	}
	return c.sdk
}

func (c *Client) credentials(ctx context.Context) credential.Triple {
	if t, ok := credential.FromContext(ctx); ok {
		return t
	}
	return credential.FromEnv(c.getenv)
}

// Warm opens a connection to the endpoint ahead of the first request, so the
// first invocation does not pay for DNS, TCP and TLS. Errors are ignored: it
// is an optimisation only.
func (c *Client) Warm(ctx context.Context) {
	scheme := strings.ToLower(c.profile.HttpProfile.Scheme)
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, scheme+"://"+c.profile.HttpProfile.Endpoint+"/", nil)
	if err != nil {
		return
	}
	if resp, err := c.transport.RoundTrip(req); err == nil {
		resp.Body.Close()
	}
}

// call signs and sends one action, recording it in the request's call log.
func (c *Client) call(ctx context.Context, req tchttp.Request, resp tchttp.Response, requestID func() string) error {
	t := c.credentials(ctx)
	action := req.GetAction()
	if !t.Valid() {
		return &fault.Error{Kind: fault.Internal, Message: "internal error", Action: action, Code: "MissingCredentials",
			Err: errors.New("no Tencent Cloud credentials: set an execution role (TENCENTCLOUD_SECRETID/SECRETKEY)")}
	}
	req.SetContext(ctx)
	start := time.Now()
	err := c.sdkClient(t).Send(req, resp)
	var fe *fault.Error
	rec := calllog.Call{Action: action, Duration: time.Since(start)}
	if err != nil {
		fe = convert(ctx, action, err)
		rec.Code, rec.RequestID = fe.Code, fe.RequestID
	} else {
		rec.RequestID = requestID()
	}
	calllog.Record(ctx, rec)
	if fe != nil {
		return fe
	}
	return nil
}

// convert turns an SDK error into the one error vocabulary. It never copies
// the SDK's message into the caller-facing Message.
func convert(ctx context.Context, action string, err error) *fault.Error {
	fe := &fault.Error{Action: action, Err: scrub(err)}
	var sdk *tcerr.TencentCloudSDKError
	if errors.As(err, &sdk) {
		fe.Code, fe.RequestID = sdk.Code, sdk.RequestId
	} else {
		fe.Code = "ClientError"
	}
	deadline := errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded)
	switch code := fe.Code; {
	case deadline:
		fe.Kind, fe.Message = fault.Timeout, "CAR did not answer in time; try again"
	case errors.Is(err, context.Canceled):
		fe.Kind, fe.Message = fault.Timeout, "the request was cancelled"
	case code == "ClientError.NetworkError":
		fe.Kind, fe.Message = fault.Upstream, "CAR could not be reached; try again"
	case strings.HasPrefix(code, "ClientError"):
		fe.Kind, fe.Message = fault.Upstream, "CAR answered with an unreadable reply; try again"
	case code == "ResourceNotFound.NoIdle":
		fe.Kind, fe.Message, fe.RetryAfter = fault.NoIdle, "no idle concurrency: all cloud instances are busy; try again shortly", 5*time.Second
	case strings.HasPrefix(code, "RequestLimitExceeded"):
		fe.Kind, fe.Message, fe.RetryAfter = fault.RateLimited, "too many requests to CAR; slow down", time.Second
	case code == "FailedOperation.SlowDown":
		fe.Kind, fe.Message, fe.RetryAfter = fault.RateLimited, "a request for this user is already in progress; try again shortly", time.Second
	case code == "UnsupportedOperation.Stopping":
		fe.Kind, fe.Message, fe.RetryAfter = fault.Unavailable, "the session is being stopped; try again shortly", 2*time.Second
	case code == "ResourceUnavailable.Initialization":
		fe.Kind, fe.Message, fe.RetryAfter = fault.Unavailable, "the cloud instance is initialising; try again shortly", 2*time.Second
	case code == "LimitExceeded.Role":
		fe.Kind, fe.Message = fault.RoleFull, "the room has no free seat for this role"
	case code == "ResourceNotFound.SessionNotFound":
		fe.Kind, fe.Message = fault.Upstream, "CAR found no session for this user"
	case strings.HasPrefix(code, "InvalidParameter") || strings.HasPrefix(code, "MissingParameter"):
		fe.Kind, fe.Message = fault.Invalid, "CAR rejected the request's parameters; get a fresh ClientSession from the client SDK and try again"
	case strings.HasPrefix(code, "OperationDenied"):
		fe.Kind, fe.Message = fault.Forbidden, "CAR refused the operation"
	case strings.HasPrefix(code, "AuthFailure") || strings.HasPrefix(code, "UnauthorizedOperation"):
		// our credentials, or an execution role without CAR permissions
		fe.Kind, fe.Message = fault.Internal, "internal error"
	default: // InternalError, FailedOperation*, ProcessTimeout, ResourceUnavailable.AccessFailed, unknown codes
		fe.Kind, fe.Message = fault.Upstream, "CAR failed to process the request; try again"
	}
	return fe
}

// scrub keeps an SDK error's code and request id for operators but drops its
// message, which may embed a raw response body; the transport cause (which
// carries the deadline and connection errors) stays reachable.
func scrub(err error) error {
	var sdk *tcerr.TencentCloudSDKError
	if !errors.As(err, &sdk) {
		return err
	}
	return &sdkError{code: sdk.Code, requestID: sdk.RequestId, cause: errors.Unwrap(sdk)}
}

type sdkError struct {
	code, requestID string
	cause           error
}

func (e *sdkError) Error() string {
	s := "CAR error " + e.code
	if e.requestID != "" {
		s += " (RequestId " + e.requestID + ")"
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *sdkError) Unwrap() error { return e.cause }
