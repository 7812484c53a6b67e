package queue_test

import (
	"context"
	"testing"
	"time"

	"carbroker/internal/queue"
	"carbroker/internal/resp"
)

// A lock without a session (the demo's 10101) is the right to start for
// the lock window from the first lock, never extended, and never a holder
// mark.
func TestLockIsARightToStartNotAHold(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{LockWindow: 400 * time.Millisecond})
	f.count(1, 1)
	f.poll("head", "198.51.100.1")
	f.poll("next", "198.51.100.2")
	f.done("head", queue.Lock)
	if d := f.poll("head", "198.51.100.1"); d.Verdict != queue.Locked {
		t.Fatalf("within the lock window: %+v, want Locked", d)
	}
	time.Sleep(250 * time.Millisecond)
	f.done("head", queue.Lock) // a second lock does not stretch the window
	time.Sleep(250 * time.Millisecond)
	d := f.poll("head", "198.51.100.1")
	if d.Verdict == queue.Holder || d.Verdict == queue.Locked {
		t.Fatalf("after the lock window: %+v, a lock made a holder or outlived CAR_LOCK_WINDOW", d)
	}
	if d.Verdict != queue.Wait || d.Position != 2 {
		t.Fatalf("after the lock window: %+v, want Wait behind next", d)
	}
}

// A start after the lock makes the holder; a stop drops both marks.
func TestStartAfterLockMakesAHolder(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	f.count(1, 0)
	f.done("u", queue.Lock)
	f.done("u", queue.Granted)
	if d := f.poll("u", "198.51.100.1"); d.Verdict != queue.Holder {
		t.Fatalf("after its start: %+v, want Holder", d)
	}
	if err := f.store.Quit(context.Background(), project, "u"); err != nil {
		t.Fatal(err)
	}
	if d := f.poll("u", "198.51.100.1"); d.Verdict == queue.Holder || d.Verdict == queue.Locked {
		t.Fatalf("after a stop: %+v", d)
	}
}

// A holder's grant counts against the idle figure like any grant: position
// 2 does not try a concurrency a holder just took.
func TestHolderGrantCountsAgainstIdle(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	f.count(4, 4)
	f.poll("w1", "198.51.100.1")
	f.poll("w2", "198.51.100.2")
	f.done("h", queue.Granted) // h was handed a session earlier: a holder
	f.clock.Advance(1100 * time.Millisecond)
	f.count(4, 2) // two concurrencies free up
	if d := f.poll("h", "198.51.100.3"); d.Verdict != queue.Holder {
		t.Fatalf("h: %+v, want Holder", d)
	}
	f.done("h", queue.Granted) // its reconnect took one of them
	if d := f.poll("w2", "198.51.100.2"); d.Verdict != queue.Wait || d.Idle != 1 {
		t.Fatalf("w2 after the holder's grant: %+v, want Wait with idle 1", d)
	}
}

// A heartbeat keeps a holder's mark for CAR's retention plus two
// intervals from now, also past QUEUE_HOLD_TTL; it never makes a mark.
func TestAlive(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{HoldTTL: 300 * time.Millisecond, Retention: 5 * time.Second})
	ctx := context.Background()
	if ok, err := f.store.Alive(ctx, project, "nobody"); err != nil || ok {
		t.Fatalf("alive of a user without a mark: %v %v, want false", ok, err)
	}
	if d := f.poll("nobody", "198.51.100.1"); d.Verdict == queue.Holder {
		t.Fatalf("a heartbeat made a holder: %+v", d)
	}
	f.done("h", queue.Granted)
	if ok, err := f.store.Alive(ctx, project, "h"); err != nil || !ok {
		t.Fatalf("alive of a holder: %v %v, want true", ok, err)
	}
	ttl := pttl(t, f, "{carbroker}:"+project+":hold:h")
	want := 5*time.Second + 2*queue.Heartbeat
	if ttl > want || ttl < want-time.Second {
		t.Fatalf("the mark lasts %v after a heartbeat, want CAR_RETENTION + 2 × %v = %v", ttl, queue.Heartbeat, want)
	}
	time.Sleep(500 * time.Millisecond) // past QUEUE_HOLD_TTL
	if d := f.poll("h", "198.51.100.2"); d.Verdict != queue.Holder {
		t.Fatalf("a heartbeating holder past QUEUE_HOLD_TTL: %+v, want Holder", d)
	}
	// A client that heartbeats keeps that bound after its next start too
	// (a start is a sign of life, not a new QUEUE_HOLD_TTL).
	f2 := newFixture(t, queue.Options{HoldTTL: time.Hour, Retention: 5 * time.Second})
	f2.done("h", queue.Granted)
	if ttl := pttl(t, f2, "{carbroker}:"+project+":hold:h"); ttl < 59*time.Minute {
		t.Fatalf("after a start the mark lasts %v, want QUEUE_HOLD_TTL", ttl)
	}
	if ok, _ := f2.store.Alive(ctx, project, "h"); !ok {
		t.Fatal("alive of a holder: false")
	}
	f2.done("h", queue.Granted)
	if ttl := pttl(t, f2, "{carbroker}:"+project+":hold:h"); ttl > want || ttl < want-time.Second {
		t.Fatalf("a heartbeating client's start: the mark lasts %v, want %v", ttl, want)
	}
	if err := f.store.Quit(ctx, project, "h"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.store.Alive(ctx, project, "h"); ok {
		t.Fatal("alive after a stop says holding")
	}
}

// A line never seen before is new: neither a cold instance nor a new
// prefix opens the rebuild window.
func TestNewLineIsNotALoss(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{})
	f.count(1, 1)
	f.poll("a", "198.51.100.1")
	other := f.open(queue.Options{}) // a cold instance on a line it never saw
	if d, err := other.Poll(context.Background(), project, "b", "198.51.100.2"); err != nil || d.Verdict != queue.Wait || d.Position != 2 {
		t.Fatalf("b on a cold instance: %+v %v, want Wait at 2", d, err)
	}
	fresh := f.open(queue.Options{Prefix: "new:"}) // a new prefix: an empty line
	c := &queue.Count{Total: 1, Running: 1, At: f.clock.Now()}
	if d, err := fresh.Repoll(context.Background(), project, "c", "198.51.100.3", c); err != nil || d.Verdict != queue.Go || d.Position != 1 {
		t.Fatalf("c on a new prefix: %+v %v, want Go as the head of a new line", d, err)
	}
	if d, err := fresh.Poll(context.Background(), project, "d", "198.51.100.4"); err != nil || d.Verdict != queue.Wait {
		t.Fatalf("d on a new prefix: %+v %v, want Wait (no rebuild window)", d, err)
	}
	if n := mustInt(t)(resp.Int64(f.raw.Do(context.Background(), "EXISTS", "{carbroker}:"+project+":rebuild", "new:{"+project+"}:rebuild"))); n != 0 {
		t.Fatalf("a rebuild window opened for a line never seen")
	}
}

// The store lost its data (restart without persistence, FLUSHALL): the
// first poll of an instance that saw the line opens the rebuild window for
// CAR_RETENTION: callers not in the rebuilt line go to CAR, NoIdle places
// them, those placed keep the line's rules; the window then closes.
func TestLossOpensTheRebuildWindow(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"restart", "flushall"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, queue.Options{Retention: 600 * time.Millisecond})
			f.count(2, 2)
			f.poll("w1", "198.51.100.1")
			f.poll("w2", "198.51.100.2")
			f.done("p", queue.Granted)
			switch how {
			case "restart":
				if err := f.srv.Restart(); err != nil {
					t.Fatal(err)
				}
			default:
				f.raw.Do(context.Background(), "FLUSHALL")
			}
			ctx := context.Background()
			d, err := f.store.Poll(ctx, project, "p", "198.51.100.3")
			for i := 0; err != nil && i < 40; i++ { // the restarted server answering again
				time.Sleep(50 * time.Millisecond)
				d, err = f.store.Poll(ctx, project, "p", "198.51.100.3")
			}
			if err != nil || d.Verdict != queue.Go || d.Position != 0 {
				t.Fatalf("p (a holder whose mark was lost) right after the loss: %+v %v, want Go", d, err)
			}
			if d := f.poll("w2", "198.51.100.2"); d.Verdict != queue.Go || d.Position != 0 {
				t.Fatalf("w2 in the window: %+v, want Go (CAR decides)", d)
			}
			if d := f.done("w2", queue.NoIdle); d.Verdict != queue.Wait || d.Position != 1 {
				t.Fatalf("w2 after NoIdle: %+v, want Wait at 1 of the rebuilt line", d)
			}
			if d := f.done("w1", queue.NoIdle); d.Verdict != queue.Wait || d.Position != 2 {
				t.Fatalf("w1 after NoIdle: %+v, want Wait at 2", d)
			}
			f.count(2, 2)
			if d := f.poll("w1", "198.51.100.1"); d.Verdict != queue.Wait || d.Position != 2 {
				t.Fatalf("w1, in the rebuilt line, polls in the window: %+v, want Wait at 2 (the line's rules)", d)
			}
			f.done("p", queue.Granted)
			if d := f.poll("p", "198.51.100.3"); d.Verdict != queue.Holder {
				t.Fatalf("p after its start in the window: %+v, want Holder", d)
			}
			pttl := pttl(t, f, "{carbroker}:"+project+":rebuild")
			if pttl <= 0 || pttl > 600*time.Millisecond {
				t.Fatalf("the window lasts %v, want at most CAR_RETENTION", pttl)
			}
			time.Sleep(700 * time.Millisecond) // the window closes (Redis's clock)
			f.clock.Advance(time.Second)
			f.count(2, 2)
			if d := f.poll("late", "198.51.100.4"); d.Verdict != queue.Wait || d.Position != 3 {
				t.Fatalf("a newcomer after the window: %+v, want Wait at 3", d)
			}
		})
	}
}

// The first instance to touch an emptied store may be a cold one (it opens
// nothing); the first instance that saw the old store opens the window,
// counted from the new store's first use, and only once per loss.
func TestLossSeenByAnotherInstance(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{Retention: 5 * time.Second})
	f.count(1, 1)
	f.poll("a", "198.51.100.1")
	stale := f.open(queue.Options{Retention: 5 * time.Second})
	if _, err := stale.Poll(context.Background(), project, "a", "198.51.100.1"); err != nil {
		t.Fatal(err)
	}
	f.raw.Do(context.Background(), "FLUSHALL")
	cold := f.open(queue.Options{Retention: 5 * time.Second})
	c := &queue.Count{Total: 1, Running: 1, At: f.clock.Now()}
	if d, err := cold.Repoll(context.Background(), project, "x", "198.51.100.5", c); err != nil || d.Verdict != queue.Go || d.Position != 1 {
		t.Fatalf("x on a cold instance: %+v %v, want Go as head (no window)", d, err)
	}
	if d, err := cold.Poll(context.Background(), project, "y", "198.51.100.6"); err != nil || d.Verdict != queue.Wait || d.Position != 2 {
		t.Fatalf("y on a cold instance: %+v %v, want Wait at 2 (no window)", d, err)
	}
	f.clock.Advance(2 * time.Second)
	if d := f.poll("a", "198.51.100.1"); d.Verdict != queue.Go || d.Position != 0 {
		t.Fatalf("a on the instance that saw the old store: %+v, want Go (the window)", d)
	}
	pttl := pttl(t, f, "{carbroker}:"+project+":rebuild")
	if pttl > 3*time.Second || pttl < 2*time.Second {
		t.Fatalf("the window lasts %v more, want CAR_RETENTION from the new store's first use (3 s)", pttl)
	}
	// y, placed before the loss was noticed, may be a reconnecting player:
	// it gets one try at CAR, and NoIdle keeps its place.
	if d := f.poll("y", "198.51.100.6"); d.Verdict != queue.Go || d.Position != 0 {
		t.Fatalf("y in the window: %+v, want Go", d)
	}
	if d := f.done("y", queue.NoIdle); d.Verdict != queue.Wait || d.Position != 2 {
		t.Fatalf("y after NoIdle: %+v, want Wait at 2, its place", d)
	}
	f.count(1, 1)
	if d := f.poll("y", "198.51.100.6"); d.Verdict != queue.Wait || d.Position != 2 {
		t.Fatalf("y polls again in the window: %+v, want Wait at 2", d)
	}
	f.raw.Do(context.Background(), "DEL", "{carbroker}:"+project+":rebuild") // as if it lapsed
	if d, err := stale.Poll(context.Background(), project, "b", "198.51.100.2"); err != nil || d.Verdict == queue.Go && d.Position == 0 {
		t.Fatalf("another instance that saw the old store: %+v %v, want no second window", d, err)
	}
}

// open is another instance's Store on the fixture's Redis and clock.
func (f *fixture) open(o queue.Options) *queue.Store {
	f.t.Helper()
	o.URL, o.Now = f.srv.URL(), f.clock.Now
	if o.CallTimeout == 0 {
		o.CallTimeout = 2 * time.Second
	}
	s, err := queue.Open(o)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { s.Close() })
	return s
}

// pttl is a key's remaining time to live (negative: none, or no key).
func pttl(t *testing.T, f *fixture, key string) time.Duration {
	t.Helper()
	ms, err := resp.Int64(f.raw.Do(context.Background(), "PTTL", key))
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(ms) * time.Millisecond
}

func mustInt(t *testing.T) func(int64, error) int64 {
	return func(n int64, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// Mark records a session handed out while the store did not answer: a
// holder for QUEUE_HOLD_TTL, no grant counted, no mark for a user that has
// since taken a place, and a heartbeat's mark is kept as it is.
func TestMarkAfterOutage(t *testing.T) {
	t.Parallel()
	f := newFixture(t, queue.Options{Retention: 5 * time.Second})
	ctx := context.Background()
	f.count(2, 1)
	if err := f.store.Mark(ctx, project, "p"); err != nil {
		t.Fatal(err)
	}
	if d := f.poll("p", "198.51.100.1"); d.Verdict != queue.Holder {
		t.Fatalf("p after Mark: %+v, want Holder", d)
	}
	if d := f.poll("n", "198.51.100.2"); d.Verdict != queue.Go || d.Idle != 1 {
		t.Fatalf("n after a Mark: %+v, want Go with idle 1 (a Mark counts no grant)", d)
	}
	f.done("w", queue.NoIdle) // w has a place: its concurrency is gone
	if err := f.store.Mark(ctx, project, "w"); err != nil {
		t.Fatal(err)
	}
	if d := f.poll("w", "198.51.100.3"); d.Verdict == queue.Holder {
		t.Fatalf("a Mark made a holder of a user in line: %+v", d)
	}
	f.done("h", queue.Granted)
	if ok, _ := f.store.Alive(ctx, project, "h"); !ok {
		t.Fatal("alive of a holder: false")
	}
	if err := f.store.Mark(ctx, project, "h"); err != nil {
		t.Fatal(err)
	}
	if ttl := pttl(t, f, "{carbroker}:"+project+":hold:h"); ttl > 5*time.Second+2*queue.Heartbeat {
		t.Fatalf("a Mark stretched a heartbeat's mark to %v", ttl)
	}
}
