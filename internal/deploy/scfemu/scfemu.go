// Package scfemu emulates the Tencent Cloud SCF (Serverless Cloud Function)
// control-plane API, version 2018-04-16, on the wire, for the actions a
// deployer needs: GetFunction, GetFunctionAddress, CreateFunction,
// UpdateFunctionCode, UpdateFunctionConfiguration, ListTriggers,
// CreateTrigger, UpdateTrigger, DeleteTrigger and DeleteFunction. It imports
// nothing of the product: a client drives it with TC3-signed JSON POSTs, as
// the tencentcloud SDK sends them, and it verifies the signatures with
// package tc3 (the CAR emulator's verifier).
//
// What it owns, its sources and how faithful it is to the live API: FIDELITY.md
// in this folder.
package scfemu

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"carbroker/internal/dev/tc3"
)

// Version is the only API version the emulator serves.
const Version = "2018-04-16"

// The credential accepted when Options.Credentials is empty.
const (
	DefaultSecretID  = "AKIDscfemuEXAMPLE"
	DefaultSecretKey = "scfemuSecretKeyEXAMPLE"
)

// Function statuses: the nine SCF documents.
const (
	Creating      = "Creating"
	CreateFailed  = "CreateFailed"
	Active        = "Active"
	Updating      = "Updating"
	UpdateFailed  = "UpdateFailed"
	Publishing    = "Publishing"
	PublishFailed = "PublishFailed"
	Deleting      = "Deleting"
	DeleteFailed  = "DeleteFailed"
)

// Options configure an Emulator. Zero values take the defaults shown.
type Options struct {
	// Credentials maps a SecretId to its key; empty means
	// {DefaultSecretID: {SecretKey: DefaultSecretKey}}.
	Credentials map[string]tc3.Credential
	CreateDelay time.Duration // how long a new function stays Creating; 0: Active at once
	UpdateDelay time.Duration // how long an update leaves it Updating; 0: Active at once
	// DeleteDelay is how long a deleted function stays Deleting before it is
	// gone; default 100ms: deletion is asynchronous on the live API.
	DeleteDelay time.Duration
	AppID       string // the account's AppId, in Function URLs; default 1250000000
	// URLHost, when set, is the host of every Function URL (e.g. a local
	// server's 127.0.0.1:port, for a smoke test); default
	// <AppID>-<trigger>.<region>.tencentscf.com.
	URLHost          string
	URLScheme        string // scheme of ExtranetUrl/IntranetUrl; default https
	Base64Sha256     bool   // GetFunctionAddress answers CodeSha256 in base64
	SkipPackageCheck bool   // do not check the zip's handler and boot file
	// AddressWhileBusy lets GetFunctionAddress answer while the function is
	// Creating or Updating; by default it answers
	// FailedOperation.FunctionStatusError then, the code the SDK lists for
	// GetFunctionAddress ("函数在部署中,无法做此操作": the function is being
	// deployed). Which statuses the live API refuses is not documented.
	AddressWhileBusy bool
	// VersionGoneWhileDeleting makes GetFunction answer
	// ResourceNotFound.Version while the function is Deleting, as Tencent's
	// Terraform provider expects during a deletion (it keeps waiting on that
	// code, service_tencentcloud_scf.go DeleteFunction). How long the live
	// API answers it is not documented: off by default.
	VersionGoneWhileDeleting bool
}

// StatusReason is one reason a function failed to create or update.
type StatusReason struct{ ErrorCode, ErrorMessage string }

// Variable is one environment variable.
type Variable struct{ Key, Value string }

// Trigger is a snapshot of one trigger.
type Trigger struct {
	Name, Type, Qualifier string
	Desc                  string // TriggerDesc as answered (URLs filled in for http)
	Enable                bool
}

// Function is a snapshot of one function.
type Function struct {
	Name, Namespace, Description, Runtime, Handler, Role, Type string
	MemorySize, Timeout, InitTimeout                           int64
	Variables                                                  []Variable
	VpcID, SubnetID                                            string
	PublicNetStatus                                            string // ENABLE or DISABLE
	Status                                                     string
	Reasons                                                    []StatusReason
	Zip                                                        []byte // the code package received
	Triggers                                                   []Trigger
}

// Call is one request as the emulator saw it.
type Call struct {
	Action    string
	Region    string
	Params    map[string]any // the JSON body; Code.ZipFile / ZipFile replaced by its length
	Code      string         // the error code answered; "" on success
	RequestID string
	Time      time.Time
}

// Write reports whether the call's action changes state.
func (c Call) Write() bool { return writes[c.Action] }

var writes = map[string]bool{
	"CreateFunction": true, "UpdateFunctionCode": true, "UpdateFunctionConfiguration": true,
	"CreateTrigger": true, "UpdateTrigger": true, "DeleteTrigger": true, "DeleteFunction": true,
}

// Emulator is an SCF API emulator, safe for concurrent use; create it with New.
type Emulator struct {
	opt  Options
	auth *tc3.Verifier

	mu        sync.Mutex
	functions map[string]*function // namespace/name →
	calls     []Call
	denied    map[string]bool
	throttle  map[string]int
	errorNext map[string][]error // action → errors the next requests answer
	failNext  []StatusReason
	busyNext  map[string]time.Duration // action → how long it leaves the function Updating
	// namespaces other than default that exist
	namespaces map[string]bool
	urlIDs     map[string]bool // url-ids handed out, so that none repeats
}

// New returns an emulator with no functions.
func New(opt Options) *Emulator {
	creds := tc3.WithDefault(opt.Credentials, DefaultSecretID, DefaultSecretKey)
	opt.Credentials = creds
	if opt.AppID == "" {
		opt.AppID = "1250000000"
	}
	if opt.URLScheme == "" {
		opt.URLScheme = "https"
	}
	if opt.DeleteDelay <= 0 {
		opt.DeleteDelay = 100 * time.Millisecond
	}
	e := &Emulator{opt: opt, auth: &tc3.Verifier{Service: "scf", Credentials: creds}}
	e.Reset()
	return e
}

// Reset removes every function, call, denial, throttle and queued failure.
func (e *Emulator) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.functions = map[string]*function{}
	e.calls = nil
	e.denied = map[string]bool{}
	e.throttle = map[string]int{}
	e.errorNext = map[string][]error{}
	e.failNext = nil
	e.busyNext = map[string]time.Duration{}
	e.namespaces = map[string]bool{}
	e.urlIDs = map[string]bool{}
}

// AddNamespace creates a namespace besides default, as the console would:
// a request naming a namespace that does not exist answers
// ResourceNotFound.Namespace.
func (e *Emulator) AddNamespace(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.namespaces[name] = true
}

// BusyNext makes the next request for action find the function Updating
// for d, as if a change made elsewhere had started just before it: a write
// is refused as SCF refuses writes to a busy function.
func (e *Emulator) BusyNext(action string, d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.busyNext[action] = d
}

// Deny makes every request that needs permission (e.g. "scf:CreateFunction",
// or "cam:PassRole" for a request carrying a Role) answer
// UnauthorizedOperation.CAM; Deny(p, false) grants it again.
func (e *Emulator) Deny(permission string, deny bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.denied[permission] = deny
}

// Throttle makes the next n well-formed requests for action answer
// RequestLimitExceeded.
func (e *Emulator) Throttle(action string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.throttle[action] = n
}

// ErrorNext makes the next n well-formed requests for action answer the
// error code with message, as a failing platform would: any code the SDK's
// errors.go lists for the action (InternalError, ResourceInUse.FunctionName,
// LimitExceeded.Function, ResourceNotFound.Role, …). Nothing changes.
func (e *Emulator) ErrorNext(action, code, message string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for range n {
		e.errorNext[action] = append(e.errorNext[action], errorf(code, "%s", message))
	}
}

// FailNext makes the next create, update or deletion end in CreateFailed,
// UpdateFailed or DeleteFailed with these reasons.
func (e *Emulator) FailNext(reasons ...StatusReason) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failNext = append([]StatusReason{}, reasons...)
}

// Hold puts the function in status (e.g. Updating) for d, as if an update
// made elsewhere were running, then Active. It reports whether the function
// exists.
func (e *Emulator) Hold(namespace, name, status string, d time.Duration) bool {
	return e.Transition(namespace, name, status, d, Active)
}

// Transition puts the function in status during for d, then in end with
// reasons: with it a test reaches every status, e.g. Publishing then
// PublishFailed (versions are not modelled otherwise), or Updating then
// UpdateFailed. It reports whether the function exists.
func (e *Emulator) Transition(namespace, name, during string, d time.Duration, end string, reasons ...StatusReason) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.lookup(namespace, name)
	if f == nil {
		return false
	}
	f.Status, f.until, f.next, f.Reasons, f.nextReasons = during, time.Now().Add(d), end, nil, append([]StatusReason(nil), reasons...)
	f.settle(time.Now())
	return true
}

// AddTrigger attaches a trigger as if made before (e.g. an API Gateway
// trigger, which CreateTrigger refuses). It reports whether the function exists.
func (e *Emulator) AddTrigger(namespace, name string, t Trigger) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.lookup(namespace, name)
	if f == nil {
		return false
	}
	if t.Qualifier == "" {
		t.Qualifier = "$LATEST"
	}
	now := time.Now()
	tr := &trigger{name: t.Name, typ: t.Type, qualifier: t.Qualifier, desc: t.Desc, enable: t.Enable, added: now, modified: now}
	if t.Type == "http" {
		tr.urlID = e.newURLID() // for its URL once UpdateTrigger fills it in
	}
	f.triggers = append(f.triggers, tr)
	return true
}

// Function returns a snapshot of a function ("" namespace means default).
func (e *Emulator) Function(namespace, name string) (Function, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.lookup(namespace, name)
	if f == nil {
		return Function{}, false
	}
	return f.snapshot(e.opt), true
}

// Calls returns the requests served so far, oldest first.
func (e *Emulator) Calls() []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Call(nil), e.calls...)
}

// Listen serves the emulator on addr ("" means 127.0.0.1:0) and returns the
// endpoint as host:port, for HttpProfile.Endpoint with Scheme "HTTP". stop
// closes the server and waits for the requests being served.
func (e *Emulator) Listen(addr string) (endpoint string, stop func(), err error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := httptest.NewUnstartedServer(e)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ReadHeaderTimeout = 10 * time.Second
	srv.Start()
	return ln.Addr().String(), srv.Close, nil
}

// Transport returns an http.RoundTripper that serves requests in process,
// without a socket (tc3.InProcess).
func (e *Emulator) Transport() http.RoundTripper { return tc3.InProcess(e) }

var _ http.Handler = (*Emulator)(nil)
