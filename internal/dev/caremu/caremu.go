// Package caremu emulates the Tencent Cloud Application Rendering (CAR) API,
// version 2022-01-10, on the wire, so that the real tencentcloud SDK can drive
// tests of code that calls CAR.
//
// What it owns, its sources and how faithful it is to the live API: FIDELITY.md
// in this folder.
package caremu

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"

	"carbroker/internal/dev/tc3"
)

// Version is the only API version the emulator serves.
const Version = "2022-01-10"

// The credential accepted when Options.Credentials is empty.
const (
	DefaultSecretID  = "AKIDcaremuEXAMPLE"
	DefaultSecretKey = "caremuSecretKeyEXAMPLE"
)

// Roles and run modes of CreateSession.
const (
	RolePlayer       = "Player"
	RoleViewer       = "Viewer"
	RunWithoutClient = "RunWithoutClient"
)

// State is the state of one concurrency (slot) of the pool.
type State string

// Slot states.
const (
	Idle     State = "idle"     // free for anyone
	Locked   State = "locked"   // reserved by ApplyConcurrent until Slot.Until
	Session  State = "session"  // CreateSession succeeded; its client has connected, or has until Slot.Until to
	Retained State = "retained" // the client left; kept for a reconnect until Slot.Until
	Stopping State = "stopping" // DestroySession was called; idle again at Slot.Until
)

// Credential is a key the emulator accepts for one SecretId (see tc3.Credential).
type Credential = tc3.Credential

// Options configure an Emulator. Zero values take the defaults shown.
type Options struct {
	Concurrency int           // pool size; default 4
	Retention   time.Duration // how long a disconnected session waits for a reconnect; default 90s (CAR's documented default)
	// ClientWait is how long a new session waits for its client to connect
	// (Connect) before it is retained as if the client had left; default 30s,
	// the emulator's approximation (CAR does not document it). Negative: a
	// session counts as connected from CreateSession on (only Disconnect
	// ends it).
	ClientWait time.Duration
	LockTime   time.Duration // how long an ApplyConcurrent lock waits for CreateSession; default 30s
	StopTime   time.Duration // how long a slot stays stopping after DestroySession; default 2s
	Projects   []string      // accepted ProjectIds; empty accepts any
	// Credentials maps a SecretId to its key; empty means
	// {DefaultSecretID: {SecretKey: DefaultSecretKey}}.
	Credentials    map[string]Credential
	MaxPlayers     int  // Player seats per room, the host's included; default 4
	MaxViewers     int  // Viewers per room; 0 means unlimited
	GuestNeedsLock bool // guests must ApplyConcurrent before joining a room; default false
	// RateLimits caps each action's requests per second (a sliding second
	// of real time, counting every signed request); beyond it the action
	// answers RequestLimitExceeded. Nil: no limit. RateLimitsCAR holds CAR's
	// documented limits.
	RateLimits map[string]int
}

// RateLimitsCAR are CAR's documented limits: 100 requests/s for
// ApplyConcurrent, CreateSession and DestroySession, 20/s for
// DescribeConcurrentCount.
var RateLimitsCAR = map[string]int{"ApplyConcurrent": 100, "CreateSession": 100, "DestroySession": 100,
	"DescribeConcurrentCount": 20}

// Slot is a snapshot of one concurrency.
type Slot struct {
	ID     int
	State  State
	UserID string // the owner; "" when idle
	// Until is when a locked, retained or stopping state ends, or when a
	// session whose client has not connected is retained (pool clock); zero
	// otherwise.
	Until     time.Time
	Connected bool              // in session: the owner's client has connected
	Guests    map[string]string // guests in the owner's room: UserId → Role
}

// Call is one request as the emulator saw it. ClientSession and
// ServerSession contents are never kept.
type Call struct {
	Action           string            // X-TC-Action as received
	UserID           string            // the UserId parameter, if the body was read
	Params           map[string]string // the parameters received, ClientSession left out
	ClientSessionLen int               // length of the ClientSession parameter
	Code             string            // the error code answered; "" on success, raw reply or no answer
	RequestID        string            // the RequestId answered; "" for a raw reply or no answer
	Fault            string            // the injected fault applied: "", "error", "delay", "hang" or "raw"
	Canceled         bool              // the client went away before it was answered
	Time             time.Time         // pool clock on arrival
}

// Emulator is a CAR API emulator. It is safe for concurrent use; create it
// with New.
type Emulator struct {
	opt  Options
	auth *tc3.Verifier // checks signatures against the real clock

	mu        sync.Mutex
	now       time.Time // the pool clock; zero means real time
	slots     []*slot
	faults    map[string][]Fault
	latency   map[string]time.Duration
	busy      map[string]bool // UserIds with a call being served
	inflight  int
	calls     []Call
	takeovers map[string]int
	rates     map[string][]time.Time // Options.RateLimits: each action's requests in the last second
}

// New returns an emulator with every slot idle.
func New(opt Options) *Emulator {
	if opt.Concurrency <= 0 {
		opt.Concurrency = 4
	}
	if opt.Retention <= 0 {
		opt.Retention = 90 * time.Second
	}
	if opt.ClientWait == 0 {
		opt.ClientWait = 30 * time.Second
	}
	if opt.LockTime <= 0 {
		opt.LockTime = 30 * time.Second
	}
	if opt.StopTime <= 0 {
		opt.StopTime = 2 * time.Second
	}
	if opt.MaxPlayers <= 0 {
		opt.MaxPlayers = 4
	}
	creds := tc3.WithDefault(opt.Credentials, DefaultSecretID, DefaultSecretKey)
	opt.Credentials = creds
	opt.Projects = append([]string(nil), opt.Projects...)
	e := &Emulator{opt: opt, auth: &tc3.Verifier{Service: "car", Credentials: creds}}
	e.Reset()
	return e
}

// Reset returns the emulator to its state after New: every slot idle, no
// faults, latency, calls or takeovers, and the pool clock on real time.
func (e *Emulator) Reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = time.Time{}
	e.slots = make([]*slot, e.opt.Concurrency)
	for i := range e.slots {
		e.slots[i] = &slot{id: i, base: Idle}
	}
	e.faults = map[string][]Fault{}
	e.latency = map[string]time.Duration{}
	e.calls = nil
	e.takeovers = map[string]int{}
	e.rates = map[string][]time.Time{}
	if e.busy == nil { // calls being served keep their marks across a Reset
		e.busy = map[string]bool{}
	}
}

// Now returns the pool clock.
func (e *Emulator) Now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nowLocked()
}

// SetNow stops the pool clock at t. The pool clock decides lock, retention
// and stop expiry only: signatures and delays use real time.
func (e *Emulator) SetNow(t time.Time) {
	e.mu.Lock()
	e.now = t
	e.mu.Unlock()
}

// Advance moves the pool clock forward by d, stopping it first at the real
// time if it was running.
func (e *Emulator) Advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.nowLocked().Add(d)
	e.mu.Unlock()
}

func (e *Emulator) nowLocked() time.Time {
	if e.now.IsZero() {
		return time.Now()
	}
	return e.now
}

// Calls returns the requests served so far, oldest first.
func (e *Emulator) Calls() []Call {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Call, len(e.calls))
	copy(out, e.calls)
	return out
}

// Takeovers returns how many times a connected device of userID was
// disconnected by a new CreateSession for the same UserId.
func (e *Emulator) Takeovers(userID string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.takeovers[userID]
}

// InFlight returns how many well-formed requests are being served now
// (waiting on latency, a delay or a hang, or being processed).
func (e *Emulator) InFlight() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.inflight
}

func (e *Emulator) record(c Call) {
	e.mu.Lock()
	e.calls = append(e.calls, c)
	e.mu.Unlock()
}

// Listen serves the emulator on addr ("" means 127.0.0.1:0, a free port) and
// returns the endpoint as host:port, ready for HttpProfile.Endpoint with
// HttpProfile.Scheme "HTTP". stop closes the listener and every connection,
// and returns once every handler has returned.
func (e *Emulator) Listen(addr string) (endpoint string, stop func(), err error) {
	return e.Serve(ServeOptions{Addr: addr})
}

// newServerSession returns an opaque random base64 string (384 characters).
func newServerSession() string {
	b := make([]byte, 288)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
