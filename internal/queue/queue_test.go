package queue_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"carbroker/internal/config"
	"carbroker/internal/queue"
	"carbroker/internal/resp"
	"carbroker/internal/testing/redistest"
	"carbroker/internal/testing/testkit"
)

const project = "cap-q0001"

type fixture struct {
	t     *testing.T
	srv   *redistest.Server
	store *queue.Store
	clock *testkit.Clock
	logs  *testkit.Buffer
	raw   *resp.Client
}

func newFixture(t *testing.T, o queue.Options) *fixture {
	t.Helper()
	srv := redistest.Start(t)
	f := &fixture{t: t, srv: srv, clock: testkit.NewClock(time.Now()), logs: &testkit.Buffer{}}
	if o.URL == "" {
		o.URL = srv.URL()
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = 2 * time.Second // these tests are about the line, not the budget: hold under load
	}
	o.Now = f.clock.Now
	o.Logger = slog.New(slog.NewTextHandler(f.logs, nil))
	s, err := queue.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.store = s
	f.raw = resp.New(resp.Options{Addr: srv.Addr()})
	t.Cleanup(func() { f.raw.Close() })
	return f
}

func (f *fixture) poll(user, ip string) queue.Decision {
	f.t.Helper()
	d, err := f.store.Poll(context.Background(), project, user, ip)
	if err != nil {
		f.t.Fatalf("poll %s: %v", user, err)
	}
	return d
}

// count stores a fresh DescribeConcurrentCount (as a refresher would).
func (f *fixture) count(total, running int) {
	f.t.Helper()
	c := &queue.Count{Total: total, Running: running, At: f.clock.Now()}
	if _, err := f.store.Capacity(context.Background(), project, c); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) done(user string, o queue.Outcome) queue.Decision {
	f.t.Helper()
	d, err := f.store.Done(context.Background(), project, user, "198.51.100.1", o)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// A stale count hands one caller the lease to refresh it; meanwhile a
// newcomer to an empty line becomes its head, which always may try.
func TestRefreshLease(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	if d := f.poll("alice", "198.51.100.1"); d.Verdict != queue.Refresh {
		t.Fatalf("first poll with no count: %+v, want Refresh", d)
	}
	d := f.poll("bob", "198.51.100.2")
	if d.Verdict != queue.Go || d.Position != 1 {
		t.Fatalf("bob while alice refreshes: %+v, want Go at position 1 (the head may)", d)
	}
	c := &queue.Count{Total: 2, Running: 2, At: f.clock.Now()}
	d, err := f.store.Repoll(context.Background(), project, "alice", "198.51.100.1", c)
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != queue.Wait || d.Position != 2 || d.Idle != 0 || d.Total != 2 {
		t.Fatalf("alice with a full pool: %+v, want Wait at 2", d)
	}
}

// Newcomers to an empty line go to CAR while the count shows idle
// concurrencies not already being tried; the rest join the line, and a
// newcomer never tries while others wait.
func TestEmptyLineGoesToCAR(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	f.count(4, 2)
	for _, u := range []string{"a", "b"} {
		if d := f.poll(u, "198.51.100.1"); d.Verdict != queue.Go || d.Position != 0 {
			t.Fatalf("%s: %+v, want Go without a place", u, d)
		}
	}
	if d := f.poll("c", "198.51.100.2"); d.Verdict != queue.Go || d.Position != 1 {
		t.Fatalf("c: %+v, want Go as the head (both idle ones are being tried)", d)
	}
	if d := f.poll("d", "198.51.100.2"); d.Verdict != queue.Wait || d.Position != 2 {
		t.Fatalf("d: %+v, want Wait at 2", d)
	}
	// a and b got theirs: the line counts them even before CAR's count does.
	f.done("a", queue.Granted)
	f.done("b", queue.Granted)
	if d := f.poll("d", "198.51.100.2"); d.Verdict != queue.Wait || d.Idle != 0 {
		t.Fatalf("d after two grants: %+v, want Wait with idle 0", d)
	}
}

// Positions follow the join order, never increase while users poll, and a
// user at position p may try only when p is within the idle count.
func TestFIFOAndPositions(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	f.count(3, 3)
	users := []string{"u1", "u2", "u3", "u4", "u5"}
	for i, u := range users {
		d := f.poll(u, "198.51.100."+string(rune('1'+i)))
		want := queue.Wait
		if i == 0 {
			want = queue.Go
		}
		if d.Verdict != want || d.Position != i+1 || d.Waiting != i+1 {
			t.Fatalf("%s: %+v, want %v at %d", u, d, want, i+1)
		}
	}
	// Two concurrencies free up: the count says so a second later.
	f.clock.Advance(1100 * time.Millisecond)
	f.count(3, 1)
	if d := f.poll("u2", "198.51.100.2"); d.Verdict != queue.Go || d.Position != 2 {
		t.Fatalf("u2 with 2 idle: %+v, want Go at 2", d)
	}
	if d := f.poll("u3", "198.51.100.3"); d.Verdict != queue.Wait || d.Position != 3 {
		t.Fatalf("u3 with 2 idle: %+v, want Wait at 3", d)
	}
	f.done("u2", queue.Granted)
	if d := f.poll("u3", "198.51.100.3"); d.Position != 2 || d.Verdict != queue.Wait || d.Idle != 1 {
		t.Fatalf("u3 after u2's grant: %+v, want Wait at 2 with idle 1", d)
	}
	// The head learns from CAR that nothing is idle: nobody behind tries for a second.
	if d := f.done("u1", queue.NoIdle); d.Verdict != queue.Wait || d.Position != 1 {
		t.Fatalf("u1 after NoIdle: %+v, want Wait at 1", d)
	}
	if d := f.poll("u3", "198.51.100.3"); d.Verdict != queue.Wait || d.Idle != 0 {
		t.Fatalf("u3 after the head's NoIdle: %+v, want Wait with idle 0", d)
	}
	if d := f.poll("u1", "198.51.100.1"); d.Verdict != queue.Wait || d.Position != 1 {
		t.Fatalf("the head within a second of a NoIdle: %+v, want Wait at 1 (one try a second)", d)
	}
	f.clock.Advance(1100 * time.Millisecond)
	f.count(3, 2) // still nothing idle
	if d := f.poll("u1", "198.51.100.1"); d.Verdict != queue.Go {
		t.Fatalf("the head a second after the NoIdle may try again: %+v", d)
	}
	if d := f.poll("late", "198.51.100.9"); d.Position != 5 || d.Verdict != queue.Wait {
		t.Fatalf("a newcomer joins the end: %+v", d)
	}
}

// A user who stops polling for QUEUE_ABANDON loses the place; those behind
// move up and its IP's count is given back.
func TestAbandon(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{Abandon: 2 * time.Second, MaxPerIP: 1})
	f.count(1, 1)
	f.poll("gone", "198.51.100.1")
	f.poll("stays", "198.51.100.2")
	f.clock.Advance(1500 * time.Millisecond)
	f.poll("stays", "198.51.100.2")
	f.clock.Advance(600 * time.Millisecond)
	d := f.poll("stays", "198.51.100.2")
	if d.Position != 1 || d.Waiting != 1 {
		t.Fatalf("after gone abandoned: %+v, want stays at 1 of 1", d)
	}
	if d := f.poll("other", "198.51.100.1"); d.Verdict == queue.Full {
		t.Fatalf("the abandoned place still counts for its IP: %+v", d)
	}
}

func TestMaxPerIP(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{MaxPerIP: 2})
	f.count(1, 1)
	f.poll("a", "198.51.100.1")
	f.poll("b", "198.51.100.1")
	if d := f.poll("c", "198.51.100.1"); d.Verdict != queue.Full {
		t.Fatalf("third place from one IP: %+v, want Full", d)
	}
	if d := f.poll("a", "198.51.100.1"); d.Position != 1 {
		t.Fatalf("a poll of an existing place is not capped: %+v", d)
	}
	if err := f.store.Leave(context.Background(), project, "a"); err != nil {
		t.Fatal(err)
	}
	if d := f.poll("c", "198.51.100.1"); d.Verdict == queue.Full || d.Position != 2 {
		t.Fatalf("after a left: %+v, want a place", d)
	}
}

// Options left zero take the settings' defaults, config's: the per-IP cap
// (QUEUE_MAX_PER_IP), the abandonment (QUEUE_ABANDON) and the key prefix
// (QUEUE_KEY_PREFIX) of a function that sets none.
func TestZeroOptionsAreTheSettingsDefaults(t *testing.T) {
	d := config.Defaults().Queue
	f := newFixture(t, queue.Options{})
	if f.store.Abandon() != d.Abandon {
		t.Errorf("Abandon %v, want QUEUE_ABANDON's default %v", f.store.Abandon(), d.Abandon)
	}
	f.count(1, 1)
	for i := range d.MaxPerIP {
		if v := f.poll(fmt.Sprint("u", i), "198.51.100.1"); v.Verdict == queue.Full {
			t.Fatalf("place %d from one IP: Full, want QUEUE_MAX_PER_IP's default %d", i+1, d.MaxPerIP)
		}
	}
	if v := f.poll("over", "198.51.100.1"); v.Verdict != queue.Full {
		t.Errorf("place %d from one IP: %+v, want Full (QUEUE_MAX_PER_IP's default %d)", d.MaxPerIP+1, v, d.MaxPerIP)
	}
	line, _ := queue.LineKeys(d.KeyPrefix, project)
	if n, err := f.raw.Do(context.Background(), "ZCARD", line); err != nil || n != int64(d.MaxPerIP) {
		t.Errorf("ZCARD %s: %v %v, want the %d places under QUEUE_KEY_PREFIX's default", line, n, err, d.MaxPerIP)
	}
	if l2, _ := queue.LineKeys("", project); l2 != line {
		t.Errorf("LineKeys without a prefix: %s, want %s", l2, line)
	}
}

// An address that is not public (no trusted proxy told the function the
// client's: every user looks like 127.0.0.1 or a private proxy) is not
// capped: otherwise the whole line would hold QUEUE_MAX_PER_IP places.
func TestMaxPerIPSkipsNonPublicAddresses(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{MaxPerIP: 1})
	f.count(1, 1)
	users := []struct{ user, ip string }{{"a", "127.0.0.1"}, {"b", "127.0.0.1"}, {"c", "10.1.2.3"}, {"d", "10.1.2.3"},
		{"e", "::1"}, {"f", "::1"}, {"g", "fd00::1"}, {"h", "fd00::2"}, {"i", "192.168.0.9"}, {"j", "192.168.0.9"}}
	for i, u := range users {
		if d := f.poll(u.user, u.ip); d.Verdict == queue.Full || d.Position != i+1 {
			t.Fatalf("%s from %s: %+v, want place %d", u.user, u.ip, d, i+1)
		}
	}
	if d := f.poll("k", "198.51.100.1"); d.Verdict == queue.Full {
		t.Fatalf("first place from a public address: %+v", d)
	}
	if d := f.poll("l", "198.51.100.1"); d.Verdict != queue.Full {
		t.Fatalf("a public address is still capped: %+v, want Full", d)
	}
	if err := f.store.Leave(context.Background(), project, "a"); err != nil {
		t.Fatal(err)
	}
	if d := f.poll("k", "198.51.100.1"); d.Position != 10 {
		t.Fatalf("after an uncapped user left: %+v, want k at 10", d)
	}
}

// One IPv6 client holds a whole /64: the cap counts its addresses together.
func TestMaxPerIPv6Prefix(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{MaxPerIP: 2})
	f.count(1, 1)
	f.poll("a", "2001:db8:1:2::1")
	f.poll("b", "2001:db8:1:2::2")
	if d := f.poll("c", "2001:db8:1:2:ffff::3"); d.Verdict != queue.Full {
		t.Fatalf("third place from one /64: %+v, want Full", d)
	}
	if d := f.poll("d", "2001:db8:1:3::1"); d.Verdict == queue.Full {
		t.Fatalf("another /64 is another client: %+v", d)
	}
}

// A granted user is remembered as a holder until it stops or the mark
// expires, and holders skip the line.
func TestHolders(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{HoldTTL: 300 * time.Millisecond})
	f.count(1, 1)
	f.poll("waiter", "198.51.100.1")
	f.done("h", queue.Granted)
	if d := f.poll("h", "198.51.100.2"); d.Verdict != queue.Holder {
		t.Fatalf("holder: %+v", d)
	}
	if err := f.store.Quit(context.Background(), project, "h"); err != nil {
		t.Fatal(err)
	}
	if d := f.poll("h", "198.51.100.2"); d.Verdict != queue.Wait || d.Position != 2 {
		t.Fatalf("after stop: %+v, want a place behind waiter", d)
	}
	f.done("h2", queue.Granted)
	time.Sleep(500 * time.Millisecond) // Redis's own clock expires the mark
	if d := f.poll("h2", "198.51.100.3"); d.Verdict == queue.Holder {
		t.Fatalf("the holder mark outlived QUEUE_HOLD_TTL: %+v", d)
	}
}

// Each project has its own line and count.
func TestLinesPerProject(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	f.count(1, 1)
	f.poll("a", "198.51.100.1")
	f.poll("b", "198.51.100.1")
	other := &queue.Count{Total: 2, Running: 0, At: f.clock.Now()}
	d, err := f.store.Repoll(context.Background(), "cap-other", "c", "198.51.100.1", other)
	if err != nil {
		t.Fatal(err)
	}
	if d.Verdict != queue.Go || d.Position != 0 {
		t.Fatalf("a user of a project with idle concurrencies waited: %+v", d)
	}
}

// Every key the line writes carries a TTL and the line's hash tag.
func TestKeysHaveTTLAndOneHashTag(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"", "app:"} {
		f := newFixture(t, queue.Options{Prefix: prefix})
		f.count(2, 1)
		f.poll("a", "198.51.100.1")
		f.poll("b", "198.51.100.1")
		f.poll("c", "198.51.100.2")
		f.done("a", queue.Granted)
		f.done("b", queue.NoIdle)
		keys, err := resp.Strings(f.raw.Do(context.Background(), "KEYS", "*"))
		if err != nil || len(keys) < 6 {
			t.Fatalf("keys %v %v", keys, err)
		}
		want := "{carbroker}"
		if prefix != "" {
			want = "{" + project + "}"
		}
		epochs := 0
		for _, k := range keys {
			// The project's epoch is the one key without a TTL (one small
			// hash per allowed project): it is how a loss of the store's
			// data is told from a line never seen.
			if strings.HasSuffix(k, ":epoch") {
				epochs++
			} else if ttl, err := resp.Int64(f.raw.Do(context.Background(), "PTTL", k)); err != nil || ttl <= 0 {
				t.Errorf("key %s has no TTL (%v %v)", k, ttl, err)
			}
			if i := strings.IndexByte(k, '{'); i < 0 || !strings.HasPrefix(k[i:], want) {
				t.Errorf("key %s does not carry the hash tag %s", k, want)
			}
		}
		if epochs != 1 {
			t.Errorf("%d epoch keys for one project, want 1: %v", epochs, keys)
		}
	}
}

// The ETA is omitted until grants give a rate, then grows with position.
func TestETA(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	f.count(1, 1)
	f.poll("w1", "198.51.100.1")
	if d := f.poll("w2", "198.51.100.1"); d.ETAKnown {
		t.Fatalf("ETA without any grant: %+v", d)
	}
	for _, u := range []string{"g1", "g2", "g3"} {
		f.done(u, queue.Granted)
		f.clock.Advance(2 * time.Second)
	}
	f.count(1, 1)
	d1, d2 := f.poll("w1", "198.51.100.1"), f.poll("w2", "198.51.100.1")
	if !d1.ETAKnown || !d2.ETAKnown || d1.ETA <= 0 || d2.ETA <= d1.ETA {
		t.Fatalf("ETAs %+v %+v: want known and growing with position", d1, d2)
	}
}

// A killed Redis degrades the Store quickly (within the call budget), it
// logs once, and an empty restarted Redis is used again within 2 s.
func TestOutageAndRecovery(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	f.count(1, 1)
	f.poll("a", "198.51.100.1")
	f.srv.Kill()
	ctx := context.Background()
	for range 5 {
		start := time.Now()
		_, err := f.store.Poll(ctx, project, "a", "198.51.100.1")
		if !errors.Is(err, queue.ErrDegraded) {
			t.Fatalf("poll with Redis down: %v", err)
		}
		// A refused connection fails at once (no redialling with a backoff,
		// as go-redis did up to the fixture's 2 s budget); the bound leaves
		// room for a loaded machine.
		if el := time.Since(start); el > time.Second {
			t.Fatalf("a poll with Redis down took %v", el)
		}
	}
	if !f.store.Degraded() || f.store.Check(ctx) {
		t.Fatal("the store does not report itself degraded")
	}
	if n := strings.Count(f.logs.String(), "Redis unavailable"); n != 1 {
		t.Fatalf("logged the outage %d times, want once:\n%s", n, f.logs.String())
	}
	if err := f.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		d, err := f.store.Poll(ctx, project, "a", "198.51.100.1")
		if err == nil {
			// This instance saw the line: an empty Redis lost it, so the
			// rebuild window sends the caller to CAR (a reconnect gets its
			// app back; NoIdle would place it).
			if d.Verdict != queue.Go || d.Position != 0 {
				t.Fatalf("the first poll on an empty Redis: %+v, want Go (the rebuild window)", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the line did not resume within 2 s of Redis returning: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if f.store.Degraded() {
		t.Fatal("still degraded after a successful call")
	}
}

// A Redis that accepts connections but never answers costs one call budget.
func TestSlowRedisIsBounded(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	s, err := queue.Open(queue.Options{URL: "redis://" + ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	_, err = s.Poll(context.Background(), project, "a", "198.51.100.1")
	if !errors.Is(err, queue.ErrDegraded) {
		t.Fatalf("err %v", err)
	}
	// one try within the 100 ms budget, not retried (a timeout may mean the
	// command ran): far below the request's (the bound leaves room for a
	// loaded machine)
	if el := time.Since(start); el > time.Second {
		t.Fatalf("a silent Redis held the request for %v", el)
	}
}

func TestOpenMasksPassword(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "http://x:1", "redis://", "localhost:6379"} {
		if _, err := queue.Open(queue.Options{URL: bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// A URL that does not parse is reported with its password masked whole.
	for _, bad := range []string{"redis://:2/Kx+9aBsecret@127.0.0.1:1/x", "redis://:Kx?9a#Bsecret@127.0.0.1:99999"} {
		_, err := queue.Open(queue.Options{URL: bad})
		if err == nil || strings.Contains(err.Error(), "9aBsecret") || !strings.Contains(err.Error(), ":xxxxx@127.0.0.1:") {
			t.Errorf("Open: %v", err)
		}
	}
	// A failing store never shows the password, whatever it holds: its
	// address (Where), errors and log lines mask it whole.
	for url, where := range map[string]string{
		"redis://:s3cretpw@127.0.0.1:1/0":           "redis://:xxxxx@127.0.0.1:1/0",
		"redis://:2/Kx+9aBs3cret@127.0.0.1:1/0":     "redis://:xxxxx@127.0.0.1:1/0",
		"redis://:Kx?9a#Bs3cret@127.0.0.1:1":        "redis://:xxxxx@127.0.0.1:1",
		"rediss://:acct@Kx/9a?Bs3cret@127.0.0.1:1":  "rediss://:xxxxx@127.0.0.1:1",
		"redis://broker:Kx%2F9aBs3cret@127.0.0.1:1": "redis://broker:xxxxx@127.0.0.1:1",
	} {
		var logs testkit.Buffer
		s, err := queue.Open(queue.Options{URL: url, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if s.Where() != where {
			t.Errorf("Where() = %q, want %q", s.Where(), where)
		}
		_, err = s.Poll(context.Background(), project, "a", "198.51.100.1")
		s.Close()
		if err == nil || strings.Contains(err.Error(), "s3cret") || strings.Contains(logs.String(), "s3cret") ||
			!strings.Contains(logs.String(), where) {
			t.Errorf("%s: err %v, logs %s", where, err, logs.String())
		}
	}
}

// Redis may answer PING while it refuses every write: at maxmemory with
// noeviction (OOM), as a replica after a failover (READONLY), during
// CLIENT PAUSE WRITE. The Store's health (what /healthz reports) says so,
// and comes back once Redis accepts writes again; the probe leaves no key.
func TestHealthFollowsWrites(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: real time: drives a real redis-server through maxmemory, REPLICAOF and CLIENT PAUSE (8 s); make test runs it")
	}
	f := newFixture(t, queue.Options{CallTimeout: 300 * time.Millisecond})
	if !f.srv.IsReal() {
		t.Skip("needs redis-server (maxmemory, REPLICAOF, CLIENT PAUSE)")
	}
	ctx := context.Background()
	config := func(args ...any) {
		t.Helper()
		if _, err := f.raw.Do(ctx, args...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	f.count(1, 1)
	f.poll("a", "198.51.100.1")
	for _, c := range []struct {
		name        string
		break_, fix [][]any
		pollFails   string // what a poll's script fails with, when it does
	}{
		{"maxmemory with noeviction", [][]any{{"CONFIG", "SET", "maxmemory-policy", "noeviction"}, {"CONFIG", "SET", "maxmemory", "1"}},
			[][]any{{"CONFIG", "SET", "maxmemory", "0"}}, ""},
		{"a read-only replica", [][]any{{"REPLICAOF", "127.0.0.1", "1"}}, [][]any{{"REPLICAOF", "NO", "ONE"}}, "READONLY"},
		{"CLIENT PAUSE WRITE", [][]any{{"CLIENT", "PAUSE", "60000", "WRITE"}}, [][]any{{"CLIENT", "UNPAUSE"}}, "deadline"},
	} {
		time.Sleep(queue.RetryAfterFailure) // past the previous case's failures
		if !f.store.Check(ctx) {
			t.Fatalf("%s: a healthy Redis checked unhealthy", c.name)
		}
		for _, a := range c.break_ {
			config(a...)
		}
		if r, err := f.raw.Do(ctx, "PING"); err != nil || r != "PONG" {
			t.Fatalf("%s: PING: %v %v", c.name, r, err)
		}
		if c.pollFails != "" {
			_, err := f.store.Poll(ctx, project, "b", "198.51.100.2")
			if !errors.Is(err, queue.ErrDegraded) || !strings.Contains(err.Error(), c.pollFails) {
				t.Fatalf("%s: a poll: %v, want %s", c.name, err, c.pollFails)
			}
			time.Sleep(queue.RetryAfterFailure)
		}
		if f.store.Check(ctx) || !f.store.Degraded() {
			t.Fatalf("%s: the store reports itself healthy while every write fails", c.name)
		}
		for _, a := range c.fix {
			config(a...)
		}
		deadline := time.Now().Add(3 * time.Second)
		for !f.store.Check(ctx) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: still unhealthy once Redis accepts writes again", c.name)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if f.store.Degraded() {
			t.Fatalf("%s: degraded after a successful check", c.name)
		}
	}
	if keys, _ := resp.Strings(f.raw.Do(ctx, "KEYS", "*health*")); len(keys) != 0 {
		t.Fatalf("the health probe left keys: %q", keys)
	}
	if d := f.poll("b", "198.51.100.2"); d.Position != 2 {
		t.Fatalf("b after the recoveries: %+v, want a place behind a", d)
	}
}
