package main

// The hostile launch (-launch -hostile): the launch scenario with, beside
// its honest users, clients that try to get a concurrency around the line,
// and a Redis that stops answering for 2 s mid-launch:
//   - guests spam the demo's /Enqueue with a HostUserId (a guest's start
//     skips the line; its lock takes a concurrency for itself);
//   - lock-only seeders wait their turn on /Enqueue, take the lock (10101)
//     and never call /StartProject, then /Enqueue again;
//   - a real redis-server is paused (CLIENT PAUSE, 2 s) while users wait;
//     with the embedded store (no redis-server on PATH) the pause is
//     skipped, and the run says so.
// Checked from what the honest users saw and from the emulator's call log:
//   - F, L as in the launch scenario;
//   - J, jumps: a concurrency CAR locked for a hostile client that an
//     honest user was due: that user had a place before the hostile
//     client's attempt began (its first /Enqueue since its last lock), and
//     CAR then refused it NoIdle before it got one;
//   - E, waiters ejected: honest users who, holding a place, got an answer
//     that ends a client's wait (anything but 200 and 202: 503
//     NoIdleConcurrency included), or whose Position grew (a lost place).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"carbroker/internal/dev/caremu"
	"carbroker/internal/testing/redistest"
)

const (
	hostileGuests  = 4
	hostileSeeders = 4
	guestEvery     = 250 * time.Millisecond // a guest's spam
	seederAgain    = 2 * time.Second        // a seeder's next /Enqueue after a lock
	pauseAt        = launchBurst + 2*time.Second
	pauseFor       = 2 * time.Second
)

// actor is a hostile client.
type actor struct {
	id, ip, kind string // kind: "guest" or "seeder"

	// rounds are when each of its attempts began: its first request, and
	// its first request after each lock.
	rounds     []time.Time
	afterLock  bool
	requests   int
	locks      int // 10101 answers
	refused    int // 10001 answers (bad or refused parameters)
	queued     int // 10100 answers
	otherCodes int
}

// hostiles are the running hostile clients and the pause.
type hostiles struct {
	actors    []*actor
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	paused    bool
	pauseNote string
}

// startHostiles starts the guests, the seeders and the pause.
func startHostiles(ctx context.Context, client *http.Client, fns []*function, rds *redistest.Server, began time.Time, seed uint64) *hostiles {
	ctx, cancel := context.WithCancel(ctx)
	h := &hostiles{cancel: cancel}
	rng := rand.New(rand.NewPCG(seed, 11))
	for i := range hostileGuests + hostileSeeders {
		a := &actor{id: fmt.Sprintf("guest-%02d", i), kind: "guest", ip: fmt.Sprintf("198.19.0.%d", i+1)}
		if i >= hostileGuests {
			a.id, a.kind = fmt.Sprintf("seed-%02d", i-hostileGuests), "seeder"
		}
		h.actors = append(h.actors, a)
		arrive := began.Add(time.Duration(rng.Int64N(int64(launchBurst))))
		r := rand.New(rand.NewPCG(seed, uint64(1000+i)))
		h.wg.Go(func() {
			if sleepUntil(ctx, arrive) {
				playActor(ctx, client, fns, a, r)
			}
		})
	}
	h.wg.Go(func() {
		if !sleepUntil(ctx, began.Add(pauseAt)) {
			h.pauseNote = "the run ended before the pause"
			return
		}
		if !rds.IsReal() {
			h.pauseNote = "skipped: redis-server is not on PATH (the embedded store has no CLIENT PAUSE)"
			return
		}
		if err := pauseRedis(rds.Addr(), pauseFor); err != nil {
			h.pauseNote = "CLIENT PAUSE failed: " + err.Error()
			return
		}
		h.paused = true
	})
	return h
}

// stop ends the hostile clients and waits for them.
func (h *hostiles) stop() {
	h.cancel()
	h.wg.Wait()
}

// playActor is a guest or a seeder, until ctx ends.
func playActor(ctx context.Context, client *http.Client, fns []*function, a *actor, rng *rand.Rand) {
	body := map[string]string{"UserId": a.id, "RequestId": "h-" + a.id}
	if a.kind == "guest" {
		body["HostUserId"] = "u0000" // an honest user's room
	}
	raw, _ := json.Marshal(body)
	for ctx.Err() == nil {
		fn := fns[rng.IntN(len(fns))]
		sent := time.Now()
		if len(a.rounds) == 0 || a.afterLock {
			a.rounds, a.afterLock = append(a.rounds, sent), false
		}
		status, header, reply, err := post(ctx, client, fn.url+"/Enqueue", a.ip, raw)
		a.requests++
		if err != nil {
			return
		}
		var r struct{ Code int }
		_ = json.Unmarshal(reply, &r)
		next := time.Second
		switch {
		case status != http.StatusOK:
			a.otherCodes++
		case r.Code == 10101:
			a.locks++
			a.afterLock = true
			next = seederAgain
		case r.Code == 10100:
			a.queued++
			if ra, err := strconv.Atoi(header.Get("Retry-After")); err == nil && ra >= 1 {
				next = time.Duration(ra) * time.Second
			}
		case r.Code == 10001:
			a.refused++
		default:
			a.otherCodes++
		}
		if a.kind == "guest" {
			next = guestEvery // spam, whatever the answer says
		}
		sleepUntil(ctx, time.Now().Add(next))
	}
}

// pauseRedis sends CLIENT PAUSE to a real redis-server.
func pauseRedis(addr string, d time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	ms := strconv.FormatInt(d.Milliseconds(), 10)
	if _, err := fmt.Fprintf(c, "*3\r\n$6\r\nCLIENT\r\n$5\r\nPAUSE\r\n$%d\r\n%s\r\n", len(ms), ms); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+OK" {
		return fmt.Errorf("%q", strings.TrimSpace(line))
	}
	return nil
}

// hostileResult is what the hostile clients did and what it cost the line.
type hostileResult struct {
	guestRequests, guestLocks, guestRefused    int
	seederRequests, seederLocks, seederRefused int
	hostileGrants                              int // ApplyConcurrent successes for hostile clients
	jumps                                      int
	jumpNotes                                  []string
	unknown                                    int // honest 202s without a Position
	paused                                     bool
	pauseNote                                  string
}

// checkHostile counts the jumps: grants to hostile clients that took a
// concurrency an honest user in line before them was due.
func checkHostile(users []*launchUser, actors []*actor, calls []caremu.Call) hostileResult {
	var res hostileResult
	byActor := map[string]*actor{}
	for _, a := range actors {
		byActor[a.id] = a
		if a.kind == "guest" {
			res.guestRequests += a.requests
			res.guestLocks += a.locks
			res.guestRefused += a.refused
		} else {
			res.seederRequests += a.requests
			res.seederLocks += a.locks
			res.seederRefused += a.refused
		}
	}
	byUser := map[string]*launchUser{}
	for _, u := range users {
		byUser[u.id] = u
		res.unknown += u.unknown
	}
	granted := map[string]time.Time{}    // an honest user's first ApplyConcurrent success
	refusals := map[string][]time.Time{} // an honest user's NoIdle answers within the line
	var hostileGrants []caremu.Call
	for _, c := range calls {
		if c.Action != "ApplyConcurrent" {
			continue
		}
		if byActor[c.UserID] != nil {
			if c.Code == "" {
				hostileGrants = append(hostileGrants, c)
			}
			continue
		}
		u := byUser[c.UserID]
		switch {
		case u == nil:
		case c.Code == "":
			if _, ok := granted[u.id]; !ok {
				granted[u.id] = c.Time
			}
		case c.Code == "ResourceNotFound.NoIdle" && !inAny(u.degraded, c.Time):
			refusals[u.id] = append(refusals[u.id], c.Time)
		}
	}
	res.hostileGrants = len(hostileGrants)
	ids := make([]string, 0, len(refusals))
	for id := range refusals {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, g := range hostileGrants {
		a := byActor[g.UserID]
		began := g.Time
		for _, r := range a.rounds {
			if !r.After(g.Time) {
				began = r
			}
		}
		for _, id := range ids {
			w := byUser[id]
			if w.joined.IsZero() || !w.joined.Before(began) {
				continue // w was not in line before this attempt began
			}
			due := slices.ContainsFunc(refusals[id], func(r time.Time) bool {
				gw, ok := granted[id]
				return r.After(g.Time) && (!ok || r.Before(gw))
			})
			if due {
				res.jumps++
				res.jumpNotes = append(res.jumpNotes, fmt.Sprintf("jump: %s %s got a concurrency at %s (its attempt began %s) while %s, in line since %s, was then refused NoIdle",
					a.kind, a.id, g.Time.Format("15:04:05.000"), began.Format("15:04:05.000"), id, w.joined.Format("15:04:05.000")))
				break
			}
		}
	}
	return res
}

// reportHostile prints the hostile run's breakdown on stderr and its line
// on stdout.
func reportHostile(res launchResult, stdout, stderr io.Writer) {
	h := res.hostile
	pause := "Redis paused 2 s mid-launch (CLIENT PAUSE)"
	if !h.paused {
		pause = "no Redis pause: " + h.pauseNote
	}
	fmt.Fprintf(stderr, "loadtest -launch -hostile: %s; %d guests spamming /Enqueue with a HostUserId: %d requests, %d locks, %d refused; "+
		"%d lock-only seeders: %d requests, %d locks, %d refused; %d ApplyConcurrent grants to hostile clients; honest users: %d answers 202 without a Position\n",
		pause, hostileGuests, h.guestRequests, h.guestLocks, h.guestRefused,
		hostileSeeders, h.seederRequests, h.seederLocks, h.seederRefused, h.hostileGrants, h.unknown)
	listFirst(stderr, "", h.jumpNotes, 10, " jumps")
	fmt.Fprintf(stdout, "queue-hostile: %d users, %d fifo violations, %d lost, %d jumps, %d waiters ejected\n",
		res.users, res.fifo, res.lost, h.jumps, res.ejected)
}
