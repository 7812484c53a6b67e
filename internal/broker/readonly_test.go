package broker_test

import (
	"context"
	"testing"
	"time"

	"carbroker/internal/broker"
	"carbroker/internal/queue"
	"carbroker/internal/testing/redistest"
)

// After a failover the function may still reach the old master, now a
// read-only replica: every poll fails READONLY at its first write. That is
// Redis trouble like any other: a place unknown, never CAR's NoIdle.
func TestReadOnlyReplicaIsTrouble(t *testing.T) {
	t.Parallel()
	if !redistest.Real() {
		t.Skip("needs a real redis-server (not on PATH)")
	}
	// A replica of a master that is not there stays read-only and serves reads.
	srv := redistest.Start(t)
	if r := redistest.Dial(t, srv.Addr()).Do("REPLICAOF", "127.0.0.1", "1"); r != "OK" {
		t.Fatalf("REPLICAOF: %v", r)
	}
	st, err := queue.Open(queue.Options{URL: srv.URL(), CallTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Poll(context.Background(), "cap-p", "w", "198.51.100.1"); err == nil {
		t.Fatal("a poll on a read-only replica succeeded")
	}
	cars := &noIdleCAR{}
	svc := broker.New(cars, broker.Options{Line: st, Jitter: func() float64 { return 0 }})
	res, err := svc.Start(context.Background(), lineIn("w"))
	wantUnknown(t, "a start on a read-only replica", res, err)
	if len(cars.asked) != 0 {
		t.Fatalf("CAR was asked for %v", cars.asked)
	}
}
