// Package car is the typed client of Tencent Cloud Application Rendering
// (service "car", version 2022-01-10), built on the SDK's common package.
//
// Credentials are read per call (SCF rotates them per invocation): from the
// request's context when the composition root attached an invoke's own,
// else from the process environment (credentials.go). CAR and SDK errors
// are converted here, once, into *fault.Error; nothing above this package
// sees an SDK error, whose text can embed a raw response body (a
// ServerSession). Each call is recorded in the request's CallLog for the
// request's log line (calllog.go).
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
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"

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
	// StaleAfter is how long the client may go without calling CAR before
	// it drops its idle connections rather than trust them (default 30 s).
	// CAR's and the NAT's idle timeouts are not documented; an SCF instance
	// frozen between invocations does not see them close the connection.
	StaleAfter time.Duration
}

// Client calls CAR. It is safe for concurrent use and meant to live as long
// as the process: its transport keeps connections to CAR alive across
// requests and invocations.
type Client struct {
	profile   *profile.ClientProfile
	transport http.RoundTripper
	getenv    func(string) string

	staleAfter time.Duration

	mu       sync.Mutex
	sdk      *common.Client // the SDK client for the last credential triple seen
	sdkFor   Credentials
	lastCall time.Time // when the last call (or Warm) started; monotonic and wall readings
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
	c := &Client{profile: p, transport: o.Transport, getenv: o.Getenv, staleAfter: o.StaleAfter}
	if c.staleAfter <= 0 {
		c.staleAfter = 30 * time.Second
	}
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
func (c *Client) sdkClient(t Credentials) *common.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sdk == nil || c.sdkFor != t {
		c.sdk = common.NewCommonClient(common.NewTokenCredential(t.ID, t.Key, t.Token), "", c.profile).
			WithHttpTransport(c.transport)
		c.sdkFor = t
	}
	return c.sdk
}

func (c *Client) credentials(ctx context.Context) Credentials {
	if t, ok := CredentialsFrom(ctx); ok {
		return t
	}
	return EnvCredentials(c.getenv)
}

// Warm opens a connection to the endpoint ahead of the first request, so the
// first invocation does not pay for DNS, TCP and TLS. Errors are ignored: it
// is an optimisation only.
func (c *Client) Warm(ctx context.Context) {
	c.dropStale(time.Now())
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
		return &fault.Error{Kind: fault.Internal, Message: fault.InternalMessage, Action: action, Code: "MissingCredentials",
			Err: errors.New("no Tencent Cloud credentials: set an execution role (TENCENTCLOUD_SECRETID/SECRETKEY)")}
	}
	req.SetContext(ctx)
	start := time.Now()
	c.dropStale(start)
	err := c.sdkClient(t).Send(req, resp)
	var fe *fault.Error
	rec := Call{Action: action, Duration: time.Since(start), Attempt: AttemptOf(ctx)}
	if err != nil {
		fe = convert(ctx, action, err)
		rec.Code, rec.RequestID = fe.Code, fe.RequestID
		if fe.Code == "ClientError.NetworkError" {
			// The connection failed or went silent: others idle since the
			// same time may be dead too, so the next attempt dials afresh.
			c.closeIdle()
		}
	} else {
		rec.RequestID = requestID()
	}
	record(ctx, rec)
	if fe != nil {
		return fe
	}
	return nil
}

// dropStale closes the idle connections when no call started for longer
// than staleAfter, measured on the monotonic clock and on the wall clock:
// the wall clock jumps ahead of the monotonic one when the instance was
// frozen or suspended. It runs in the caller's goroutine: a frozen instance
// has no timer to rely on.
func (c *Client) dropStale(now time.Time) {
	c.mu.Lock()
	last := c.lastCall
	c.lastCall = now
	c.mu.Unlock()
	if last.IsZero() {
		return
	}
	if gap := max(now.Sub(last), now.Round(0).Sub(last.Round(0))); gap > c.staleAfter {
		c.closeIdle()
	}
}

// closeIdle drops the transport's idle connections, if it pools any.
func (c *Client) closeIdle() {
	if t, ok := c.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}
