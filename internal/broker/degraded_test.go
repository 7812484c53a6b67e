package broker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"carbroker/internal/broker"
	"carbroker/internal/fault"
	"carbroker/internal/queue"
)

// fakeLine is a line whose answers the test sets.
type fakeLine struct {
	mu      sync.Mutex
	pollErr error // Poll's answer when not nil
	poll    queue.Decision
	doneErr error
	polls   int
}

func (f *fakeLine) Poll(context.Context, string, string, string) (queue.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	return f.poll, f.pollErr
}
func (f *fakeLine) Repoll(ctx context.Context, project, user, ip string, _ *queue.Count) (queue.Decision, error) {
	return f.Poll(ctx, project, user, ip)
}
func (f *fakeLine) Done(context.Context, string, string, string, queue.Outcome) (queue.Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return queue.Decision{Verdict: queue.Wait, Position: 1, Waiting: 1}, f.doneErr
}
func (f *fakeLine) Alive(context.Context, string, string) (bool, error) { return false, f.pollErr }
func (f *fakeLine) Mark(context.Context, string, string) error          { return f.pollErr }
func (f *fakeLine) Leave(context.Context, string, string) error         { return nil }
func (f *fakeLine) Quit(context.Context, string, string) error          { return nil }
func (f *fakeLine) Capacity(context.Context, string, *queue.Count) (queue.Decision, error) {
	return queue.Decision{}, queue.ErrDegraded
}
func (f *fakeLine) Check(context.Context) bool { return f.pollErr == nil }
func (f *fakeLine) Abandon() time.Duration     { return 30 * time.Second }
func (f *fakeLine) set(err error)              { f.mu.Lock(); f.pollErr = err; f.mu.Unlock() }
func (f *fakeLine) setPoll(d queue.Decision)   { f.mu.Lock(); f.poll = d; f.mu.Unlock() }
func (f *fakeLine) setDone(err error)          { f.mu.Lock(); f.doneErr = err; f.mu.Unlock() }

var _ broker.LineStore = (*fakeLine)(nil)

var errPaused = errors.New("queue: Redis unavailable: i/o timeout")

func lineIn(user string) broker.StartInput {
	return broker.StartInput{UserID: user, UserIP: "198.51.100.1", ProjectID: "cap-p"}
}

// wantUnknown checks a start answered "waiting, place unknown".
func wantUnknown(t *testing.T, what string, res broker.Result, err error) {
	t.Helper()
	if err != nil || res.Place == nil || res.Place.Position != 0 || res.Place.RetryAfter < time.Second ||
		res.Place.RetryAfter > 2*time.Second || res.Place.RetryAfter%time.Second != 0 {
		t.Fatalf("%s: %+v, %v; want a place unknown with Retry-After 1-2 s", what, res.Place, err)
	}
}

// While the line cannot be read or written, a start is never refused
// NoIdle (clients treat that as final): for the first QUEUE_ABANDON of the
// trouble nobody reaches CAR (a newcomer would jump the waiters whose
// places Redis still holds), and past it CAR's NoIdle is still a place
// unknown. Once the line answers, the next trouble starts the count again.
func TestRedisTroubleNeverEjects(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		st := &fakeLine{pollErr: errPaused}
		cars := &noIdleCAR{}
		cars.CAR = &slowCounter{clk: &clock{}}
		svc := broker.New(cars, broker.Options{Line: st, Jitter: func() float64 { return 0.7 }})
		for _, verb := range []func(context.Context, broker.StartInput) (broker.Result, error){svc.Start, svc.Lock} {
			res, err := verb(context.Background(), lineIn("waiter"))
			wantUnknown(t, "a poll while Redis is paused", res, err)
		}
		time.Sleep(29 * time.Second)
		res, err := svc.Start(context.Background(), lineIn("newcomer"))
		wantUnknown(t, "a newcomer 29 s into the trouble", res, err)
		if len(cars.asked) != 0 {
			t.Fatalf("CAR was asked for %v within QUEUE_ABANDON of the trouble: a newcomer could jump the line", cars.asked)
		}
		time.Sleep(2 * time.Second) // the places Redis held have lapsed: CAR decides
		res, err = svc.Start(context.Background(), lineIn("waiter"))
		wantUnknown(t, "CAR's NoIdle past QUEUE_ABANDON", res, err)
		if len(cars.asked) != 1 {
			t.Fatalf("past QUEUE_ABANDON of trouble, CAR was asked for %v, want the waiter", cars.asked)
		}

		// Redis answers: the line serves the poll; a new hiccup holds again.
		st.set(nil)
		st.setPoll(queue.Decision{Verdict: queue.Wait, Position: 3, Waiting: 5})
		res, err = svc.Start(context.Background(), lineIn("waiter"))
		if err != nil || res.Place == nil || res.Place.Position != 3 {
			t.Fatalf("Redis back: %+v %v, want Position 3", res.Place, err)
		}
		st.set(errPaused)
		res, err = svc.Start(context.Background(), lineIn("newcomer"))
		wantUnknown(t, "a new hiccup", res, err)
		if len(cars.asked) != 1 {
			t.Fatalf("a new hiccup sent %v to CAR", cars.asked[1:])
		}
		// An instance frozen through a long quiet spell: its first failure
		// after QUEUE_ABANDON begins a new trouble.
		time.Sleep(time.Minute)
		res, err = svc.Start(context.Background(), lineIn("newcomer"))
		wantUnknown(t, "the first failure after a freeze", res, err)
		if len(cars.asked) != 1 {
			t.Fatalf("a thawed instance sent %v to CAR at once", cars.asked[1:])
		}
	})
}

// The head's try answered NoIdle while Redis stopped answering (the
// outcome could not be recorded): the head keeps its place, never a 503.
func TestNoIdleUnrecordedKeepsThePlace(t *testing.T) {
	t.Parallel()
	st := &fakeLine{poll: queue.Decision{Verdict: queue.Go, Position: 1, Waiting: 3}, doneErr: errPaused}
	cars := &noIdleCAR{}
	svc := broker.New(cars, broker.Options{Line: st, Jitter: func() float64 { return 0 }})
	res, err := svc.Start(context.Background(), lineIn("head"))
	wantUnknown(t, "the head's NoIdle with Redis gone", res, err)
	if len(cars.asked) != 1 {
		t.Fatalf("CAR asked for %v, want the head once", cars.asked)
	}
	if fault.KindOf(err) == fault.NoIdle {
		t.Fatal("NoIdle reached the client")
	}
}
