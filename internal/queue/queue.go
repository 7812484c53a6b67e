// Package queue keeps the launch-day waiting line of each CAR project in
// Redis (TencentDB for Redis in production), so that every instance of the
// function sees the same line and no state lives in an instance.
//
// Each project's line is a handful of keys sharing one hash tag (so it works
// on cluster editions), all read and changed by one Lua script (line.lua)
// that receives its keys through KEYS only: every step is atomic, and a poll
// is one round trip. Every key has a TTL, and abandoned places are pruned
// inside the polls: there is no background work.
//
// The Store never blocks a start or a stop on Redis: each call has a small
// budget (100 ms by default), and after two failures in a row the Store
// answers ErrDegraded without calling Redis for a second, then tries again.
// It logs the trouble at most once a minute, with the password masked.
package queue

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"carbroker/internal/config"
	"carbroker/internal/resp"
)

//go:embed line.lua
var lineSource string

var lineScript = resp.NewScript(lineSource)

// ErrDegraded is returned while Redis is unreachable or too slow: the
// caller answers without the line (a start waits with its place unknown,
// a stop goes to CAR alone).
var ErrDegraded = errors.New("queue: Redis unavailable")

// The defaults of the options that are settings (QUEUE_*, CAR_LOCK_WINDOW,
// CAR_RETENTION) are the settings' own: config.Defaults.
const (
	DefaultCallTimeout = 100 * time.Millisecond
	// RetryAfterFailure is how long the Store leaves Redis alone after a
	// failure before it tries again: with the call budget, the line resumes
	// within 2 s of Redis returning.
	RetryAfterFailure = time.Second
	// openAfter consecutive failures make the Store leave Redis alone for
	// RetryAfterFailure: one slow answer (a busy moment) does not take the
	// line away from everyone for a second, a Redis that keeps failing
	// costs one call budget a second, not one per request.
	openAfter = 2
	logEvery  = time.Minute
)

// OpenFor opens the store of the line and the leases that cfg names, with
// what cfg sets (the URL, the prefix, the line's times and cap) over the
// tuning in o (clock, call budget, logger); nil, and no error, when cfg
// names no Redis (QUEUE_REDIS_URL unset).
func OpenFor(cfg config.Config, o Options) (*Store, error) {
	if cfg.Queue.RedisURL == "" {
		return nil, nil
	}
	o.URL, o.Prefix, o.Abandon = cfg.Queue.RedisURL, cfg.Queue.KeyPrefix, cfg.Queue.Abandon
	o.MaxPerIP, o.HoldTTL = cfg.Queue.MaxPerIP, cfg.Queue.HoldTTL
	o.LockWindow, o.Retention = cfg.LockWindow, cfg.Retention
	return Open(o)
}

// Options configure a Store. An option left zero takes its setting's
// default (config.Defaults).
type Options struct {
	URL         string        // redis:// or rediss:// (QUEUE_REDIS_URL)
	Prefix      string        // key prefix (QUEUE_KEY_PREFIX)
	Abandon     time.Duration // a place not polled for this long is dropped (QUEUE_ABANDON)
	MaxPerIP    int           // places per client IP (QUEUE_MAX_PER_IP)
	HoldTTL     time.Duration // how long a holder is remembered after a start (QUEUE_HOLD_TTL)
	LockWindow  time.Duration // how long a lock-only grant lets its user start (CAR_LOCK_WINDOW)
	Retention   time.Duration // CAR's retention (CAR_RETENTION): a holder's mark after a heartbeat, the rebuild window
	CallTimeout time.Duration // budget of one Redis call; default 100 ms
	Logger      *slog.Logger
	Now         func() time.Time // the clock written into the line (tests); default time.Now
}

// Store is the waiting lines of every project. It is safe for concurrent use.
type Store struct {
	o       Options
	rdb     *resp.Client
	secrets []string // the URL's password (decoded, as written), masked in every log line
	where   string   // the URL with its password masked, for logs
	epochs  epochs   // the store each project's line was last seen in

	mu       sync.Mutex
	downAt   time.Time // first failure of the current trouble; zero while healthy
	fails    int       // consecutive failed calls
	lastTry  time.Time // last call sent to Redis
	lastLog  time.Time
	reported bool // a failure was logged since the last recovery
}

// Open returns a Store; it does not connect (the first call does). It
// parses the URL to connect with it: config.Load is what checks
// QUEUE_REDIS_URL, with the same rule (resp.ParseURL), so a configuration
// that loaded opens.
func Open(o Options) (*Store, error) {
	d := config.Defaults()
	if o.Prefix == "" {
		o.Prefix = d.Queue.KeyPrefix
	}
	if o.Abandon <= 0 {
		o.Abandon = d.Queue.Abandon
	}
	if o.MaxPerIP <= 0 {
		o.MaxPerIP = d.Queue.MaxPerIP
	}
	if o.HoldTTL <= 0 {
		o.HoldTTL = d.Queue.HoldTTL
	}
	if o.LockWindow <= 0 {
		o.LockWindow = d.LockWindow
	}
	if o.Retention <= 0 {
		o.Retention = d.Retention
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ro, err := resp.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("queue: Redis URL %s: %v", resp.RedactURL(o.URL), err)
	}
	return &Store{o: o, rdb: resp.New(ro), where: resp.RedactURL(o.URL), secrets: resp.Secrets(o.URL)}, nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.rdb.Close() }

// Where is the Redis URL with its password masked.
func (s *Store) Where() string { return s.where }

// Abandon is how long a place lasts without a poll.
func (s *Store) Abandon() time.Duration { return s.o.Abandon }

// Clock is the clock the store writes into the line (Options.Now).
func (s *Store) Clock() func() time.Time { return s.o.Now }

// Degraded reports whether the last Redis call failed.
func (s *Store) Degraded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.downAt.IsZero()
}

// Check reports whether the line is healthy: whether Redis accepts a
// write now, as a poll's script needs (within the call budget; not while a
// failure is younger than RetryAfterFailure, when the answer is no). A
// PING would answer while every write fails: at maxmemory with
// noeviction (OOM), on a replica after a failover (READONLY), during
// CLIENT PAUSE WRITE, after a failed snapshot (MISCONF). The probe is
// "SET <prefix>health 1 XX PX 1000": Redis checks all of those before it
// runs a write, and XX writes nothing when the key does not exist (it
// never does), so it leaves no key and replicates nothing.
func (s *Store) Check(ctx context.Context) bool {
	return s.do(ctx, func(ctx context.Context) error {
		_, err := s.rdb.Do(ctx, "SET", s.o.Prefix+"health", "1", "XX", "PX", 1000)
		return err
	}) == nil
}

// do runs one Redis call within the budget, keeping the health state.
func (s *Store) do(ctx context.Context, call func(context.Context) error) error {
	now := time.Now() // health follows the real clock, whatever Options.Now says
	s.mu.Lock()
	if s.fails >= openAfter && now.Sub(s.lastTry) < RetryAfterFailure && now.Sub(s.lastTry) >= 0 {
		s.mu.Unlock()
		return ErrDegraded
	}
	s.lastTry = now
	s.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, s.o.CallTimeout)
	err := call(cctx)
	cancel()
	if err == nil {
		s.recovered()
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err() // the request ended: not Redis's fault
	}
	s.failed(err)
	return fmt.Errorf("%w: %s", ErrDegraded, s.mask(err.Error()))
}

func (s *Store) recovered() {
	s.mu.Lock()
	was, logged := !s.downAt.IsZero(), s.reported
	s.downAt, s.reported, s.fails = time.Time{}, false, 0
	s.mu.Unlock()
	if was && logged {
		s.o.Logger.Info("queue: Redis is back; the waiting line resumes", "redis", s.where)
	}
}

func (s *Store) failed(err error) {
	now := time.Now()
	s.mu.Lock()
	if s.downAt.IsZero() {
		s.downAt = now
	}
	s.fails++
	logIt := s.lastLog.IsZero() || now.Sub(s.lastLog) >= logEvery
	if logIt {
		s.lastLog, s.reported = now, true
	}
	s.mu.Unlock()
	if logIt {
		s.o.Logger.Warn("queue: Redis unavailable; starts wait with their place unknown (202), stops go to CAR, until it returns",
			"redis", s.where, "err", s.mask(err.Error()))
	}
}

func (s *Store) mask(msg string) string {
	for _, p := range s.secrets {
		msg = strings.ReplaceAll(msg, p, resp.Masked)
	}
	return msg
}

// keys returns the line's keys for a project (and the user's holder and
// lock keys).
func (s *Store) keys(project, user string) []string {
	base := s.base(project)
	return []string{base + "line", base + "seen", base + "ipof", base + "ipn", base + "seq",
		base + "cap", base + "lease", base + "grants", base + "tries", base + "hold:" + user,
		base + "lock:" + user, base + "epoch", base + "rebuild"}
}

// base is what every key of a project's line and leases begins with: the
// prefix and the project, as the Redis Cluster hash tag unless the prefix
// holds one, so that one script's keys share a slot.
func (s *Store) base(project string) string {
	if hasHashTag(s.o.Prefix) {
		return s.o.Prefix + project + ":"
	}
	return s.o.Prefix + "{" + project + "}:"
}

// hasHashTag reports whether a key prefix holds a Redis Cluster hash tag
// ("{…}" with something inside), which then decides the slot of every key.
func hasHashTag(p string) bool {
	i := strings.IndexByte(p, '{')
	if i < 0 {
		return false
	}
	j := strings.IndexByte(p[i+1:], '}')
	return j > 0
}
