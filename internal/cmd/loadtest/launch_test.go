package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"carbroker/internal/caremu"
	"carbroker/internal/redistest"
	"carbroker/internal/resp"
)

// The launch scenario's checks bite: a user refused NoIdle after a later
// arrival got a concurrency is a FIFO violation (unless that start was
// served without the line), a user locked twice is granted twice, and a
// user who kept polling without a grant is lost.
func TestCheckLaunch(t *testing.T) {
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

// The leftover check holds the line to docs/queue.md: every key has a TTL
// but each project's epoch (which must outlive any window, or a loss would
// go unnoticed). Before, make loadtest failed on the epoch of every run.
func TestRedisLeftovers(t *testing.T) {
	srv := redistest.Start(t)
	rdb := resp.New(resp.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	for _, cmd := range [][]any{
		{"HSET", "{carbroker}:cap-loadtest:epoch", "id", "7", "born", "1"},
		{"SET", "{carbroker}:cap-loadtest:line", "x", "PX", "60000"},
		{"SET", "{carbroker}:cap-loadtest:stray", "x"},
	} {
		if _, err := rdb.Do(ctx, cmd...); err != nil {
			t.Fatal(err)
		}
	}
	got := redisLeftovers(ctx, srv.Addr())
	if len(got) != 1 || !strings.Contains(got[0], ":stray") {
		t.Fatalf("leftovers %q, want only the stray key", got)
	}
}
