package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"carbroker/internal/dev/caremu"
	"carbroker/internal/resp"
	"carbroker/internal/testing/redistest"
)

// The launch scenario's checks bite: a user refused NoIdle after a later
// arrival got a concurrency is a FIFO violation (unless that start was
// served without the line), a user locked twice is granted twice, and a
// user who kept polling without a grant is lost.
func TestCheckLaunch(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	a := &launchUser{id: "a", firstSent: at(0), joined: at(0.1), granted: at(9)}
	b := &launchUser{id: "b", firstSent: at(1), joined: at(1.1), granted: at(5)}
	c := &launchUser{id: "c", firstSent: at(2), joined: at(2.1)} // never granted
	d := &launchUser{id: "d", firstSent: at(3), joined: at(3.1), abandons: 1, abandoned: true}
	calls := []caremu.Call{
		{Action: "ApplyConcurrent", UserID: "b", Time: at(5)},
		{Action: "ApplyConcurrent", UserID: "a", Code: "ResourceNotFound.NoIdle", Time: at(6)}, // after b, who came later
		{Action: "ApplyConcurrent", UserID: "a", Time: at(9)},
		{Action: "ApplyConcurrent", UserID: "a", Time: at(10)}, // locked again
		{Action: "DescribeConcurrentCount", Time: at(1)},
	}
	res := checkLaunch([]*launchUser{a, b, c, d}, calls)
	if res.fifo != 1 || res.twice != 1 || res.lost != 1 || res.abandoned != 1 || res.applies != 4 || res.describes != 1 {
		t.Fatalf("%+v", res)
	}
	a.degraded = []window{{at(5.9), at(6.1)}} // that refusal came from a start served without the line
	if res := checkLaunch([]*launchUser{a, b, c, d}, calls); res.fifo != 0 || res.degraded != 1 {
		t.Fatalf("a degraded start counted against the line: %+v", res)
	}
}

// The hostile variant's checks bite: a hostile client's grant is a jump
// when an honest user in line before the hostile attempt began was then
// refused NoIdle before it got a concurrency; a hostile client already in
// line first, a refusal outside the line, or a grant after the honest user
// was served is not. A waiter answered 503 or whose Position grew is ejected.
func TestCheckHostile(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	w := &launchUser{id: "w", firstSent: at(0.9), joined: at(1), granted: at(9)}
	v := &launchUser{id: "v", firstSent: at(0.9), joined: at(1), degraded: []window{{at(5.9), at(6.1)}}, granted: at(9)}
	guest := &actor{id: "guest-00", kind: "guest", rounds: []time.Time{at(0.1), at(2)}, requests: 3, locks: 2}
	seeder := &actor{id: "seed-00", kind: "seeder", rounds: []time.Time{at(0.5)}, requests: 2, locks: 1}
	calls := []caremu.Call{
		{Action: "ApplyConcurrent", UserID: "guest-00", Time: at(0.2)},                         // before w was in line
		{Action: "ApplyConcurrent", UserID: "seed-00", Time: at(3.5)},                          // in line before w: fair
		{Action: "ApplyConcurrent", UserID: "guest-00", Time: at(3)},                           // w's due: a jump
		{Action: "ApplyConcurrent", UserID: "w", Code: "ResourceNotFound.NoIdle", Time: at(4)}, // w refused after it
		{Action: "ApplyConcurrent", UserID: "v", Code: "ResourceNotFound.NoIdle", Time: at(6)}, // outside the line
		{Action: "ApplyConcurrent", UserID: "w", Time: at(8.9)},
		{Action: "ApplyConcurrent", UserID: "guest-00", Time: at(9.5)}, // after w was served
		{Action: "ApplyConcurrent", UserID: "guest-00", Code: "ResourceNotFound.NoIdle", Time: at(9.6)},
	}
	res := checkHostile([]*launchUser{w, v}, []*actor{guest, seeder}, calls)
	if res.jumps != 1 || res.hostileGrants != 4 || res.guestLocks != 2 || res.seederLocks != 1 || res.guestRequests != 3 {
		t.Fatalf("%+v", res)
	}
	if !strings.Contains(res.jumpNotes[0], "guest-00") || !strings.Contains(res.jumpNotes[0], " w,") {
		t.Fatalf("jump note: %s", res.jumpNotes[0])
	}
	// v's refusal came from a start the line could not answer: not v's due.
	if res := checkHostile([]*launchUser{v}, []*actor{guest, seeder}, calls); res.jumps != 0 {
		t.Fatalf("a refusal outside the line counted as a jump: %+v", res)
	}

	w.ejected = []string{"w: in line since 10:00:01, answered 503 NoIdleConcurrency"}
	if lr := checkLaunch([]*launchUser{w, v}, calls); lr.ejected != 1 {
		t.Fatalf("an ejected waiter not counted: %+v", lr)
	}
	lr := launchResult{hostile: &hostileResult{}}
	if lr.failed() {
		t.Fatal("a clean hostile run failed")
	}
	lr.ejected = 1
	if !lr.failed() {
		t.Fatal("a hostile run with an ejected waiter passed")
	}
	lr.ejected, lr.hostile.jumps = 0, 1
	if !lr.failed() {
		t.Fatal("a hostile run with a jump passed")
	}
}

// -hostile is the launch scenario with hostile clients, 200 users unless told.
func TestHostileOptions(t *testing.T) {
	t.Parallel()
	o, err := parse([]string{"-hostile"}, io.Discard)
	if err != nil || !o.launch || !o.hostile || o.users != 200 || o.concurrency != 16 {
		t.Fatalf("%+v %v", o, err)
	}
	if o, err := parse([]string{"-launch", "-hostile", "-users", "50"}, io.Discard); err != nil || o.users != 50 {
		t.Fatalf("%+v %v", o, err)
	}
	if o, err := parse([]string{"-launch"}, io.Discard); err != nil || o.hostile || o.users != 400 {
		t.Fatalf("%+v %v", o, err)
	}
}

// The launch scenario's leftover check lists every key without a TTL but
// each project's epoch, which has none by design (docs/queue.md: one small
// hash per allowed project, so a loss can be told from a new line): with
// the epoch flagged, every `make loadtest -launch` fails.
func TestReproLeftoversFlagTheEpoch(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := resp.New(resp.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	if _, err := rdb.Do(ctx, "HSET", "{carbroker}:cap-loadtest:epoch", "id", "7", "born", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.Do(ctx, "SET", "{carbroker}:cap-loadtest:seq", "3", "PX", 60000); err != nil {
		t.Fatal(err)
	}
	if got := redisLeftovers(ctx, srv.Addr()); len(got) != 0 {
		t.Fatalf("leftovers: %q, want none (the epoch has no TTL by design)", got)
	}
	if _, err := rdb.Do(ctx, "SET", "{carbroker}:cap-loadtest:line", "x"); err != nil {
		t.Fatal(err)
	}
	if got := redisLeftovers(ctx, srv.Addr()); len(got) != 1 || !strings.Contains(got[0], ":line") {
		t.Fatalf("leftovers: %q, want the line key without a TTL", got)
	}
}
