package broker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"carbroker/internal/broker"
	"carbroker/internal/car"
	"carbroker/internal/queue"
	"carbroker/internal/resp"
	"carbroker/internal/testing/redistest"
)

// pausingCAR grants its first start and pauses Redis while doing so (a
// hiccup that begins while CAR is asked); it answers NoIdle after that.
type pausingCAR struct {
	broker.CAR // DescribeConcurrentCount
	rdb        *resp.Client

	mu    sync.Mutex
	asked []string
}

func (c *pausingCAR) ApplyConcurrent(ctx context.Context, in car.ApplyConcurrentInput) (string, error) {
	c.mu.Lock()
	c.asked = append(c.asked, in.UserID)
	first := len(c.asked) == 1
	c.mu.Unlock()
	if !first {
		return "", car.Classify("ApplyConcurrent", "ResourceNotFound.NoIdle")
	}
	if _, err := c.rdb.Do(ctx, "CLIENT", "PAUSE", 400, "ALL"); err != nil {
		return "", err
	}
	return "rid", nil
}
func (c *pausingCAR) CreateSession(_ context.Context, in car.CreateSessionInput) (car.CreateSessionOutput, error) {
	return car.CreateSessionOutput{ServerSession: "ss-" + in.UserID}, nil
}
func (c *pausingCAR) DestroySession(context.Context, string) (string, error) { return "rid", nil }

// The head is handed a ServerSession, and Redis stops answering before
// the grant is recorded. Once Redis answers again, the grant is recorded:
// the head leaves the line (the next waiter is Position 1, not 2 behind a
// user who holds a session and will never poll again) and is a holder (its
// reconnect goes to CAR and gets its app back, not to the end of the line).
// Reproduction: the grant was dropped; the head kept its place until
// QUEUE_ABANDON and had no holder mark.
func TestReproGrantUnrecordedInAHiccupIsRecordedAfter(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	if !rs.IsReal() {
		t.Skip("needs redis-server (CLIENT PAUSE)")
	}
	st, err := queue.Open(queue.Options{URL: rs.URL(), Abandon: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	admin := resp.New(resp.Options{Addr: rs.Addr()})
	defer admin.Close()
	cars := &pausingCAR{rdb: admin, CAR: &slowCounter{clk: &clock{}, total: 1, running: 1}}
	svc := broker.New(cars, broker.Options{Line: st, Projects: []string{"cap-p"}, Jitter: func() float64 { return 0 }})
	ctx := context.Background()
	res, err := svc.Start(ctx, lineIn("head"))
	if err != nil || res.ServerSession != "ss-head" {
		t.Fatalf("the head: %+v %v, want its session", res, err)
	}
	time.Sleep(500 * time.Millisecond) // Redis answers again
	res, err = svc.Start(ctx, lineIn("next"))
	if err != nil || res.Place == nil || res.Place.Position != 1 {
		t.Fatalf("the next user: %+v %v, want Position 1 (the head left with its session)", res.Place, err)
	}
	if holding, err := st.Alive(ctx, "cap-p", "head"); err != nil || !holding {
		t.Fatalf("the head holds no mark (%v): its reconnect would be a newcomer's", err)
	}
}
