package queue_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"carbroker/internal/queue"
	"carbroker/internal/resp"
)

func (f *fixture) second() *queue.Store {
	f.t.Helper()
	s, err := queue.Open(queue.Options{URL: f.srv.URL(), Now: f.clock.Now, CallTimeout: 2 * time.Second})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { s.Close() })
	return s
}

// must returns v, or fails the test (through a panic: it takes a call's
// two results as they are).
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

var bg = context.Background()

// onSecond moves the clock to the next whole second: leases end on one.
func (f *fixture) onSecond() {
	now := f.clock.Now()
	f.clock.Advance(now.Truncate(time.Second).Add(time.Second).Sub(now))
}

// A lease starts at the first ServerSession and keeps its end on every
// reconnect, on any instance; it lives in its own keys under the line's
// hash tag.
func TestLeaseCreateKeepsItsEnd(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	other := f.second()
	l := must(f.store.LeaseCreate(bg, project, "alice", 10*time.Minute, 0))
	if l.State != queue.LeaseActive || !l.End.Equal(f.clock.Now().Add(10*time.Minute).Truncate(time.Second)) || l.Gen == 0 {
		t.Fatalf("created %+v", l)
	}
	f.clock.Advance(4 * time.Minute)
	again := must(other.LeaseCreate(bg, project, "alice", 10*time.Minute, 0))
	if again.State != queue.LeaseActive || !again.End.Equal(l.End) || again.Gen != l.Gen {
		t.Errorf("reconnect: %+v, want the end %v of %+v", again, l.End, l)
	}
	if c := must(other.LeaseCheck(bg, project, "alice", 0)); c != again {
		t.Errorf("check %+v, want %+v", c, again)
	}
	keys := must(resp.Strings(f.raw.Do(bg, "KEYS", "*")))
	for _, k := range keys {
		if !strings.HasPrefix(k, "{carbroker}:"+project+":sess") {
			t.Errorf("key %q outside the lease keys", k)
		}
	}
	if len(keys) == 0 {
		t.Error("no keys written")
	}
}

// Without a hash tag in the prefix, the project's tag holds every lease key,
// as it holds the line's.
func TestLeaseKeysFollowTheLinesHashTag(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{Prefix: "app:"})
	must(f.store.LeaseCreate(bg, project, "alice", time.Minute, 0))
	must(f.store.Poll(bg, project, "bob", "203.0.113.1"))
	for _, k := range must(resp.Strings(f.raw.Do(bg, "KEYS", "*"))) {
		if !strings.HasPrefix(k, "app:{"+project+"}:") {
			t.Errorf("key %q lacks the project's hash tag", k)
		}
	}
}

func TestLeaseRenew(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	l := must(f.store.LeaseCreate(bg, project, "alice", 10*time.Minute, 0))
	f.clock.Advance(8 * time.Minute)
	r := must(f.store.LeaseRenew(bg, project, "alice", 10*time.Minute, 2, 0))
	if r.State != queue.LeaseActive || !r.End.Equal(l.End.Add(8*time.Minute)) || r.Renews != 1 {
		t.Fatalf("renewed %+v, want the end moved to 10 min from now (%v)", r, l.End.Add(8*time.Minute))
	}
	f.clock.Advance(time.Minute)
	must(f.store.LeaseRenew(bg, project, "alice", 10*time.Minute, 2, 0))
	if r := must(f.store.LeaseRenew(bg, project, "alice", 10*time.Minute, 2, 0)); r.State != queue.LeaseLimit || r.Renews != 2 {
		t.Errorf("third renewal of 2: %+v", r)
	}
	if r := must(f.store.LeaseRenew(bg, project, "nobody", 10*time.Minute, 2, 0)); r.State != queue.LeaseNone {
		t.Errorf("renewal without a lease: %+v", r)
	}
	f.clock.Advance(time.Hour)
	if r := must(f.store.LeaseRenew(bg, project, "alice", 10*time.Minute, 5, 0)); r.State != queue.LeaseEnded {
		t.Errorf("renewal of an ended lease: %+v", r)
	}
}

// Sweeps on several instances at once claim each ended lease once, oldest
// end first, and leave live leases alone.
func TestLeaseClaimsAreExclusive(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	stores := []*queue.Store{f.store, f.second(), f.second(), f.second()}
	const n = 60
	for i := range n {
		must(f.store.LeaseCreate(bg, project, "u"+strings.Repeat("x", i%3)+string(rune('a'+i%26))+string(rune('a'+i/26)), time.Duration(n-i)*time.Second, 0))
	}
	must(f.store.LeaseCreate(bg, project, "live", time.Hour, 0))
	f.clock.Advance(2 * time.Minute)
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for _, s := range stores {
		wg.Go(func() {
			var last time.Time
			for {
				c, err := s.LeaseClaim(bg, project, 7, time.Minute, 1000)
				if err != nil {
					t.Error(err)
					return
				}
				if len(c.Claimed) == 0 {
					return
				}
				for _, cl := range c.Claimed {
					if cl.End.Before(last) {
						t.Errorf("claimed %v after %v: not oldest first", cl.End, last)
					}
					last = cl.End
					mu.Lock()
					seen[cl.User]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("%d leases claimed, want %d", len(seen), n)
	}
	for u, k := range seen {
		if k != 1 || u == "live" {
			t.Errorf("%s claimed %d times", u, k)
		}
	}
}

// A claim whose sweep died is retaken once it expires; the late sweep's
// done does not count; a newer lease of the same user is never marked by
// an older claim.
func TestLeaseStaleClaims(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	b := f.second()
	must(f.store.LeaseCreate(bg, project, "alice", time.Minute, 0))
	f.clock.Advance(time.Minute)
	a := must(f.store.LeaseClaim(bg, project, 10, 30*time.Second, 100))
	if len(a.Claimed) != 1 {
		t.Fatalf("claimed %+v", a)
	}
	if c := must(b.LeaseClaim(bg, project, 10, 30*time.Second, 100)); len(c.Claimed) != 0 {
		t.Fatalf("claimed twice: %+v", c)
	}
	if l := must(b.LeaseCheck(bg, project, "alice", 0)); l.State != queue.LeaseEnding {
		t.Errorf("while claimed: %+v", l)
	}
	f.clock.Advance(31 * time.Second) // the first sweep died
	retaken := must(b.LeaseClaim(bg, project, 10, 30*time.Second, 100))
	if len(retaken.Claimed) != 1 || retaken.Claimed[0].Gen != a.Claimed[0].Gen {
		t.Fatalf("not retaken: %+v", retaken)
	}
	if ok := must(b.LeaseDone(bg, project, "alice", retaken.Claimed[0].Gen, 0)); !ok {
		t.Fatal("done refused")
	}
	if ok := must(f.store.LeaseDone(bg, project, "alice", a.Claimed[0].Gen, 0)); ok {
		t.Error("a late sweep's done counted twice")
	}
	// A new lease of the same user has a new generation: the old claim's
	// done does not touch it.
	l := must(f.store.LeaseCreate(bg, project, "alice", time.Minute, 0))
	if l.State != queue.LeaseActive || l.Gen == a.Claimed[0].Gen {
		t.Fatalf("new lease %+v", l)
	}
	f.clock.Advance(2 * time.Minute)
	if ok := must(f.store.LeaseDone(bg, project, "alice", a.Claimed[0].Gen, 0)); ok {
		t.Error("an old generation marked the new lease done")
	}
	if l := must(f.store.LeaseCheck(bg, project, "alice", 0)); l.State != queue.LeaseEnded {
		t.Errorf("the new lease: %+v, want ended and waiting for its sweep", l)
	}
}

// A start that raced the end of its lease re-arms it as a new generation:
// a sweep holding the old one cannot mark it done, and the next sweep
// destroys the session the start handed.
func TestLeaseCreateAfterItsEndRearms(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	old := must(f.store.LeaseCreate(bg, project, "alice", time.Minute, 0))
	f.clock.Advance(time.Minute)
	c := must(f.store.LeaseClaim(bg, project, 10, 30*time.Second, 100))
	l := must(f.store.LeaseCreate(bg, project, "alice", time.Minute, 0))
	if l.State != queue.LeaseEnded || l.Gen == old.Gen || len(c.Claimed) != 1 {
		t.Fatalf("create after the end: %+v (claims %+v)", l, c)
	}
	if ok := must(f.store.LeaseDone(bg, project, "alice", old.Gen, 0)); ok {
		t.Error("the old claim marked the re-armed lease done")
	}
	c = must(f.store.LeaseClaim(bg, project, 10, 30*time.Second, 100))
	if len(c.Claimed) != 1 || c.Claimed[0].Gen != l.Gen {
		t.Errorf("re-armed lease not claimed: %+v", c)
	}
}

func TestLeaseCooldown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	f.onSecond()
	const cool = 5 * time.Minute
	l := must(f.store.LeaseCreate(bg, project, "alice", time.Minute, cool))
	f.clock.Advance(90 * time.Second)
	if c := must(f.store.LeaseCheck(bg, project, "alice", cool)); c.State != queue.LeaseEnded || c.Retry != cool-30*time.Second {
		t.Errorf("ended, not swept: %+v, want Retry %v", c, cool-30*time.Second)
	}
	c := must(f.store.LeaseClaim(bg, project, 10, time.Minute, 100))
	must(f.store.LeaseDone(bg, project, "alice", c.Claimed[0].Gen, cool))
	if c := must(f.store.LeaseCheck(bg, project, "alice", cool)); c.State != queue.LeaseCooling || c.Retry != cool-30*time.Second || !c.End.Equal(l.End) {
		t.Errorf("cooling: %+v", c)
	}
	f.clock.Advance(cool)
	if c := must(f.store.LeaseCheck(bg, project, "alice", cool)); c.State != queue.LeaseNone {
		t.Errorf("after the cooldown: %+v", c)
	}
	if n := must(resp.Int64(f.raw.Do(bg, "HLEN", "{carbroker}:"+project+":sess"))); n != 0 {
		t.Errorf("%d records left after the cooldown", n)
	}
}

// A stop ends the lease now and claims it; a sweep then leaves it alone.
func TestLeaseEnd(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	must(f.store.LeaseCreate(bg, project, "alice", time.Hour, 0))
	l := must(f.store.LeaseEnd(bg, project, "alice", time.Minute, time.Minute))
	if l.State != queue.LeaseMine || !l.End.Equal(f.clock.Now().Truncate(time.Millisecond)) || l.Retry != time.Minute {
		t.Fatalf("end: %+v", l)
	}
	if c := must(f.store.LeaseClaim(bg, project, 10, time.Minute, 100)); len(c.Claimed) != 0 {
		t.Errorf("a sweep claimed a stopped lease: %+v", c)
	}
	if again := must(f.store.LeaseEnd(bg, project, "alice", time.Minute, 0)); again.State != queue.LeaseEnding {
		t.Errorf("second stop: %+v", again)
	}
	// The stop's destroy failed: the claim lapses after the backoff, and a sweep takes it.
	if err := f.store.LeaseRelease(bg, project, "alice", l.Gen, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(3 * time.Second)
	if c := must(f.store.LeaseClaim(bg, project, 10, time.Minute, 100)); len(c.Claimed) != 1 {
		t.Errorf("released claim not retaken: %+v", c)
	}
	if l := must(f.store.LeaseEnd(bg, project, "nobody", time.Minute, 0)); l.State != queue.LeaseNone {
		t.Errorf("stop without a lease: %+v", l)
	}
}

// Claims across instances stay within the per-second rate, and say when
// more may go.
func TestLeaseClaimRate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	f.onSecond()
	for i := range 30 {
		must(f.store.LeaseCreate(bg, project, "u"+string(rune('a'+i)), time.Second, 0))
	}
	f.clock.Advance(1100 * time.Millisecond)
	var got []string
	for _, s := range []*queue.Store{f.store, f.second()} {
		c := must(s.LeaseClaim(bg, project, 8, time.Minute, 10))
		for _, cl := range c.Claimed {
			got = append(got, cl.User)
		}
		if s != f.store && (c.Wait != 900*time.Millisecond || c.Due != 20) {
			t.Errorf("second claim: wait %v due %d, want 900ms and 20", c.Wait, c.Due)
		}
	}
	if len(got) != 10 || len(slices.Compact(slices.Sorted(slices.Values(got)))) != 10 {
		t.Errorf("claimed %v in one second, want 10 distinct", got)
	}
	f.clock.Advance(time.Second)
	if c := must(f.store.LeaseClaim(bg, project, 8, time.Minute, 10)); len(c.Claimed) != 8 {
		t.Errorf("next second: %d claimed", len(c.Claimed))
	}
}

// Every lease key expires, a week past the last lease's end or cooldown:
// an abandoned project's leases do not stay forever, a live one's do not
// lapse.
func TestLeaseKeysExpire(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	must(f.store.LeaseCreate(bg, project, "alice", 30*24*time.Hour, 0))
	must(f.store.LeaseCreate(bg, project, "bob", time.Minute, time.Hour))
	f.clock.Advance(2 * time.Minute)
	c := must(f.store.LeaseClaim(bg, project, 10, time.Minute, 100))
	must(f.store.LeaseDone(bg, project, "bob", c.Claimed[0].Gen, time.Hour))
	keys := must(resp.Strings(f.raw.Do(bg, "KEYS", "*sess*")))
	if len(keys) < 4 {
		t.Fatalf("keys %v", keys)
	}
	for _, k := range keys {
		ttl := time.Duration(must(resp.Int64(f.raw.Do(bg, "PTTL", k)))) * time.Millisecond
		if k == "{carbroker}:"+project+":sess:rate" {
			continue
		}
		if ttl < 30*24*time.Hour || ttl > 38*24*time.Hour {
			t.Errorf("%s: TTL %v, want a week past the 30-day lease", k, ttl)
		}
	}
}
