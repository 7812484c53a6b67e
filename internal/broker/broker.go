// Package broker is the use case: start (or resume) a user's CAR session,
// lock a concurrency for it, stop it, and read a project's capacity, through
// the launch-day waiting line and under session leases when they are on.
//
// One Service answers every verb. Its concerns sit in their own files:
// car.go calls CAR with the retry policy of retry.go; line.go decides who
// goes to CAR now and who waits (docs/queue.md); count.go shares a
// project's DescribeConcurrentCount; lease.go ends sessions when
// SESSION_MAX says (docs/lease.md). No goroutine outlives the call that
// started it.
package broker

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"carbroker/internal/car"
	"carbroker/internal/config"
	"carbroker/internal/queue"
)

// CAR is the part of the CAR client the use case calls.
type CAR interface {
	ApplyConcurrent(ctx context.Context, in car.ApplyConcurrentInput) (string, error)
	CreateSession(ctx context.Context, in car.CreateSessionInput) (car.CreateSessionOutput, error)
	DestroySession(ctx context.Context, userID string) (string, error)
	DescribeConcurrentCount(ctx context.Context, projectID, category string) (car.ConcurrentCount, error)
}

var _ CAR = (*car.Client)(nil)

// Configured returns o with what the configuration sets: the allowed
// projects, the CAR policy, the leases and, when st is the store cfg
// names, the stores: the line (unless cfg keeps it off: dev mode's DEV_QUEUE=false; stamped by
// the store's clock) and the leases. The tuning o holds besides (backoff,
// logger) is kept.
func (o Options) Configured(cfg config.Config, st *queue.Store) Options {
	o.Projects, o.GuestApply, o.NoIdleWait = cfg.AllowedProjectIDs, cfg.GuestApply, cfg.NoIdleWait
	o.AttemptTimeout, o.SessionMax, o.Cooldown = cfg.AttemptTimeout, cfg.Lease.Max, cfg.Lease.Cooldown
	o.Renew, o.RenewMax = cfg.Lease.Renew, cfg.Lease.RenewMax
	o.Line, o.Leases = nil, nil
	if st != nil {
		if !cfg.Queue.LineOff {
			o.Line, o.Now = st, st.Clock()
		}
		o.Leases = st
	}
	return o
}

// Options configure a Service. Only Projects is needed; the rest is off or
// has a default when zero.
type Options struct {
	// Projects are the allowed ProjectIds: a stop leaves the line and ends
	// the lease in each, the timer sweeps each.
	Projects []string
	// Line keeps the waiting lines (nil: the line is off, every start is
	// stateless).
	Line LineStore
	// Leases keeps the session leases (nil, or SessionMax zero: no leases).
	Leases LeaseStore

	// GuestApply makes a guest joining another user's room call
	// ApplyConcurrent for itself first (CAR_GUEST_APPLY; undocumented
	// upstream); its starts then wait their turn in the line.
	GuestApply bool
	// NoIdleWait is how long a start keeps retrying while CAR has no idle
	// concurrency (CAR_NOIDLE_WAIT); zero answers NoIdle at once. It
	// applies with the line off only: in line, users wait with a place.
	NoIdleWait time.Duration
	// AttemptTimeout bounds a request's CAR attempts until one succeeds
	// (CAR_ATTEMPT_TIMEOUT; zero: no bound but the budget): a pooled
	// connection that died silently then costs this much, not the whole
	// budget, before the call is repeated on a fresh connection. Once an
	// attempt succeeded or was cut short, later attempts get the rest of
	// the budget, so a CAR that never answers still ends in a timeout at
	// the deadline and a slow but live CAR is cut short at most once.
	AttemptTimeout time.Duration
	// MinBackoff and MaxBackoff bound the jittered backoff between retries
	// (defaults 50 ms and 1 s).
	MinBackoff, MaxBackoff time.Duration
	// MaxAttempts bounds the calls of one action for transient errors
	// (default 6); the deadline usually ends retries first.
	MaxAttempts int
	// MinAttempt is the least time worth starting another CAR call with
	// (default 250 ms): with less left, the last answer stands rather than
	// a timeout. Start also keeps this much for CreateSession when it
	// retries ApplyConcurrent.
	MinAttempt time.Duration

	// SessionMax ends each session this long after its start (SESSION_MAX;
	// zero: leases off); Cooldown then refuses a new start for a while
	// (SESSION_COOLDOWN); Renew lets the owner extend its lease
	// (SESSION_RENEW), at most RenewMax times (SESSION_RENEW_MAX).
	SessionMax, Cooldown time.Duration
	Renew                bool
	RenewMax             int

	Logger *slog.Logger     // the sweeps' lines (default: discard)
	Jitter func() float64   // a number in [0, 1) for Retry-After (default math/rand)
	Now    func() time.Time // stamps counts; the line's store's clock (default time.Now)
}

// Service is the use case. It is safe for concurrent use and meant to live
// as long as the process: it remembers, per instance, the count of each
// project and the line's trouble.
type Service struct {
	car CAR
	o   Options

	mu     sync.Mutex
	counts map[string]*counting // per-project DescribeConcurrentCount of this instance (count.go)

	// This instance's current trouble with the line's store, on the line's
	// clock: when it began and when a call last failed; zero while the line
	// answers (line.go).
	troubleAt, failedAt time.Time
	held                []heldGrant // sessions handed out while the store did not answer, not yet marked
}

// New returns a Service calling c.
func New(c CAR, o Options) *Service {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 50 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(time.Second, o.MinBackoff)
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.MinAttempt <= 0 {
		o.MinAttempt = 250 * time.Millisecond
	}
	if o.Line != nil {
		o.NoIdleWait = 0 // in line, users wait with a place
	}
	if o.SessionMax <= 0 {
		o.Leases = nil
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{car: c, o: o, counts: map[string]*counting{}}
}

// StartInput is a validated, authorised start request.
type StartInput struct {
	UserID, UserIP                      string
	ProjectID                           string
	ApplicationID, ApplicationVersionID string
	ClientSession, RunMode              string
	ApplicationParameters               string
	HostUserID, Role                    string
}

// Guest reports whether the request joins another user's room.
func (in StartInput) Guest() bool { return in.HostUserID != "" && in.HostUserID != in.UserID }

// Result is a start's outcome: a ServerSession (or, for a lock, nothing),
// or a place in the line.
type Result struct {
	ServerSession string
	Place         *Place // not nil: the user waits
	// ExpiresAt is when the session's lease ends; zero: no lease applies.
	ExpiresAt time.Time
}

// Place is a user's place in the line.
type Place struct {
	Position   int           // 1 is next; 0 when the place is unknown (Redis trouble: the start was not served)
	ETA        time.Duration // an estimate; meaningful only when ETAKnown
	ETAKnown   bool
	RetryAfter time.Duration // when to poll again: whole seconds, 1 to 5, at most a third of QUEUE_ABANDON
}

// goal is what a start asks CAR for.
type goal int

const (
	toStart goal = iota // a ServerSession: ApplyConcurrent, then CreateSession (Start)
	toLock              // a concurrency locked for the user, no session: ApplyConcurrent alone (Lock)
)

// Start starts the user's session, or gives the user its place in the
// line: CAR's retained app if CAR still holds the user's concurrency; a
// lease's end in the reply when leases are on.
func (s *Service) Start(ctx context.Context, in StartInput) (Result, error) {
	return s.leased(ctx, in, toStart)
}

// Lock locks a concurrency for the user without a session (the compat
// /Enqueue), or gives the user its place in the line; a later Start
// creates the session on it.
func (s *Service) Lock(ctx context.Context, in StartInput) (Result, error) {
	return s.leased(ctx, in, toLock)
}

// Health is "" with the line off, else "ok" or "degraded".
func (s *Service) Health(ctx context.Context) string {
	switch {
	case s.o.Line == nil:
		return ""
	case s.o.Line.Check(ctx):
		return "ok"
	}
	return "degraded"
}
