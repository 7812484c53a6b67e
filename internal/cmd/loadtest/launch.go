package main

// The launch scenario (-launch): a burst of users far beyond the pool,
// waiting in the line (QUEUE_REDIS_URL) across several instances of the
// function that share one Redis and one emulator enforcing CAR's rate
// limits. Checked from the emulator's call log and from Redis:
//   - F, FIFO violations: a user A that had a place in line before user B
//     sent its first request was answered NoIdle by CAR after B got a
//     concurrency (B took what A was due);
//   - L, lost: a user who kept polling and never got a concurrency;
//   - G, granted twice: a user CAR locked a concurrency for more than once;
//   - also, reported on stderr and failing the run: a position that grew
//     while its user kept polling, any answer to a start but 200, 202 and
//     503 NoIdleConcurrency (what the line's degraded mode answered before
//     it answered a 202 without a Position; both are counted as degraded:
//     Redis missed its budget, an overloaded machine), any
//     RequestLimitExceeded from CAR, a Redis key without a TTL.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"carbroker/internal/dev/caremu"
	"carbroker/internal/resp"
	"carbroker/internal/testing/redistest"
)

// launchUser is one user of the launch scenario.
type launchUser struct {
	id, ip   string
	abandons int // 0: keeps polling; n: stops polling after n places in line

	firstSent time.Time // its first POST /session
	joined    time.Time // its first 202 received: from then on it had a place
	granted   time.Time // its 200 received
	polls     int       // 202 answers
	position  int       // the last Position
	grew      int       // times the Position grew while it polled
	abandoned bool
	problems  []string
	pollLat   []time.Duration // of the 202 answers
	starts    int             // POST /session requests
	// degraded are the requests the line could not answer (Redis missed its
	// 100 ms budget, which an overloaded machine causes, or was paused):
	// 202 without a Position, or before the fix 503 NoIdleConcurrency. Such
	// a start may have gone to CAR without the line.
	degraded []window
	unknown  int // 202 answers without a Position
	// ejected are the answers that end a client's wait (anything but 200
	// or 202, 503 NoIdleConcurrency included: clients treat it as final)
	// after the user had a place, and Positions that grew (a lost place).
	ejected []string
}

// launchResult is what a launch run measured.
type launchResult struct {
	users, fifo, lost, twice, abandoned int
	maxWait                             time.Duration
	p99Poll                             time.Duration
	carPerPoll                          float64
	problems                            []string
	starts, polls, applies, describes   int
	rateLimited, degraded               int
	realRedis                           bool
	elapsed                             time.Duration

	ejected int // waiters given an answer that ends their wait (see launchUser.ejected)
	hostile *hostileResult
}

func (r launchResult) failed() bool {
	if h := r.hostile; h != nil && (h.jumps > 0 || r.ejected > 0) {
		return true
	}
	return r.fifo > 0 || r.lost > 0 || r.twice > 0 || len(r.problems) > 0
}

// launchBurst is how long the users take to arrive.
const launchBurst = 2 * time.Second

// launchAbandon is QUEUE_ABANDON in the launch scenario: Retry-After (at
// most 5 s) stays under a third of it.
const launchAbandon = 15 * time.Second

// runLaunch runs the launch scenario with the function binary bin.
func runLaunch(ctx context.Context, o options, bin string, stdout, stderr io.Writer) int {
	res, err := launch(ctx, o, binary(bin), o.hostile)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest -launch: %v\n", err)
		return 1
	}
	redisNote := "a real redis-server"
	if !res.realRedis {
		redisNote = "the embedded store (redis-server is not on PATH)"
	}
	fmt.Fprintf(stderr, "loadtest -launch: %d users (%d abandoned), %d instances, pool %d, %s, CAR rate limits on, %.1f s: "+
		"%d starts (%d answered 202, %d degraded: served without the line), %d ApplyConcurrent, %d DescribeConcurrentCount, %d RequestLimitExceeded\n",
		res.users, res.abandoned, o.instances, o.concurrency, redisNote, res.elapsed.Seconds(),
		res.starts, res.polls, res.degraded, res.applies, res.describes, res.rateLimited)
	if res.degraded > 0 {
		fmt.Fprintf(stderr, "  note: %d starts were answered without the line (Redis missed its 100 ms budget, which happens when the machine is overloaded); the FIFO check leaves their CAR refusals out\n", res.degraded)
	}
	listFirst(stderr, "problem: ", res.problems, 20, "")
	fmt.Fprintf(stdout, "queue: %d users, %d fifo violations, %d lost, %d granted twice, max wait %.1fs, p99 poll %.2f ms, CAR calls/poll %.3f\n",
		res.users, res.fifo, res.lost, res.twice, res.maxWait.Seconds(), ms(res.p99Poll), res.carPerPoll)
	if res.hostile != nil {
		reportHostile(res, stdout, stderr)
	}
	if res.failed() {
		return 1
	}
	return 0
}

// launch starts Redis, the emulator and the instances, runs the users and
// checks the outcome. hostile adds the hostile clients and the Redis pause
// (hostile.go).
func launch(ctx context.Context, o options, start launcher, hostile bool) (launchResult, error) {
	dir, err := os.MkdirTemp("", "launch-")
	if err != nil {
		return launchResult{}, err
	}
	defer os.RemoveAll(dir)
	rds, err := redistest.Launch(dir)
	if err != nil {
		return launchResult{}, fmt.Errorf("redis: %v", err)
	}
	defer rds.Close()
	emu := caremu.New(caremu.Options{
		Concurrency: o.concurrency, StopTime: 300 * time.Millisecond, ClientWait: -1,
		Projects: []string{project}, Credentials: caremu.RandomCredentials("AKIDload"),
		RateLimits: caremu.RateLimitsCAR,
	})
	cred := emu.Client()
	endpoint, stopEmu, err := emu.Listen("127.0.0.1:0")
	if err != nil {
		return launchResult{}, fmt.Errorf("emulator: %v", err)
	}
	defer stopEmu()
	env := []string{
		"CAR_ENDPOINT=http://" + endpoint, "CAR_PROJECT_ID=" + project, "AUTH_MODE=none",
		"TENCENTCLOUD_SECRETID=" + cred.SecretID, "TENCENTCLOUD_SECRETKEY=" + cred.SecretKey,
		"LOG_LEVEL=error", "QUEUE_REDIS_URL=" + rds.URL(), "QUEUE_ABANDON=" + launchAbandon.String(),
		"TRUSTED_PROXY_CIDRS=127.0.0.1/32", // each user's address comes in X-Forwarded-For
	}
	var fns []*function
	defer func() {
		for _, fn := range fns {
			_ = fn.stop()
		}
	}()
	for range o.instances {
		fn, err := start(ctx, env)
		if err != nil {
			return launchResult{}, fmt.Errorf("function: %v", err)
		}
		fns = append(fns, fn)
	}

	rng := rand.New(rand.NewPCG(o.seed, 7))
	users := make([]*launchUser, o.users)
	for i := range users {
		u := &launchUser{id: fmt.Sprintf("u%04d", i), ip: userIP(i)}
		if rng.IntN(10) == 0 { // one in ten gives up after a few polls
			u.abandons = 1 + rng.IntN(3)
		}
		users[i] = u
	}
	tr := &http.Transport{MaxIdleConns: o.users, MaxIdleConnsPerHost: o.users, IdleConnTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: requestTimeout}
	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	began := time.Now()
	var h *hostiles
	if hostile {
		h = startHostiles(runCtx, client, fns, rds, began, o.seed)
	}
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Add(1)
		seed := uint64(i)
		arrive := began.Add(time.Duration(rng.Int64N(int64(launchBurst))))
		go func() {
			defer wg.Done()
			if sleepUntil(runCtx, arrive) {
				playUser(runCtx, client, fns, u, rand.New(rand.NewPCG(o.seed, seed)))
			}
		}()
	}
	wg.Wait()
	if h != nil {
		h.stop() // the honest users are done: so are the hostile ones
	}
	calls := emu.Calls()
	res := checkLaunch(users, calls)
	if h != nil {
		hr := checkHostile(users, h.actors, calls)
		hr.paused, hr.pauseNote = h.paused, h.pauseNote
		res.hostile = &hr
	}
	res.elapsed = time.Since(began)
	res.realRedis = rds.IsReal()
	res.problems = append(res.problems, redisLeftovers(ctx, rds.Addr())...)
	for _, fn := range fns {
		if err := fn.stop(); err != nil {
			res.problems = append(res.problems, "function: "+err.Error())
		}
	}
	fns = nil
	return res, nil
}

// playUser is one user: it polls POST /session per Retry-After until it
// gets a session (then plays 1-4 s and stops) or gives up.
func playUser(ctx context.Context, client *http.Client, fns []*function, u *launchUser, rng *rand.Rand) {
	body, _ := json.Marshal(startBody{UserId: u.id, ClientSession: "cs-" + u.id})
	for ctx.Err() == nil {
		fn := fns[rng.IntN(len(fns))] // any instance may answer any poll
		sent := time.Now()
		if u.firstSent.IsZero() {
			u.firstSent = sent
		}
		status, header, reply, err := post(ctx, client, fn.url+"/session", u.ip, body)
		got := time.Now()
		u.starts++
		switch {
		case err != nil:
			if ctx.Err() == nil {
				u.problems = append(u.problems, fmt.Sprintf("%s: start: %v", u.id, err))
			}
			return
		case status == http.StatusOK:
			u.granted = got
			play := time.Second + time.Duration(rng.Int64N(int64(3*time.Second)))
			if !sleepUntil(ctx, got.Add(play)) {
				return
			}
			st, _, _, err := post(ctx, client, fn.url+"/session?UserId="+u.id, u.ip, nil)
			if err != nil || st != http.StatusOK {
				u.problems = append(u.problems, fmt.Sprintf("%s: stop: %d %v", u.id, st, err))
			}
			return
		case status == http.StatusAccepted:
			u.polls++
			u.pollLat = append(u.pollLat, got.Sub(sent))
			var r struct{ Queue struct{ Position int } }
			_ = json.Unmarshal(reply, &r)
			if r.Queue.Position == 0 { // the line could not answer: place unknown
				u.unknown++
				u.degraded = append(u.degraded, window{sent, got})
			} else {
				if u.joined.IsZero() {
					u.joined = got
				}
				if p := r.Queue.Position; p > u.position && u.position > 0 {
					u.grew++
					u.ejected = append(u.ejected, fmt.Sprintf("%s: its Position grew from %d to %d", u.id, u.position, p))
				}
				u.position = r.Queue.Position
			}
			if u.abandons > 0 && u.polls >= u.abandons {
				u.abandoned = true
				return
			}
			ra, err := strconv.Atoi(header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 5 {
				u.problems = append(u.problems, fmt.Sprintf("%s: Retry-After %q", u.id, header.Get("Retry-After")))
				ra = 1
			}
			sleepUntil(ctx, got.Add(time.Duration(ra)*time.Second))
		case status == http.StatusServiceUnavailable && bytes.Contains(reply, []byte(`"NoIdleConcurrency"`)):
			u.degraded = append(u.degraded, window{sent, got})
			if !u.joined.IsZero() {
				u.ejected = append(u.ejected, fmt.Sprintf("%s: in line since %s, answered 503 NoIdleConcurrency at %s",
					u.id, u.joined.Format("15:04:05.000"), got.Format("15:04:05.000")))
			}
			sleepUntil(ctx, got.Add(time.Second))
		default:
			u.problems = append(u.problems, fmt.Sprintf("%s: start answered %d: %.120s", u.id, status, reply))
			if !u.joined.IsZero() {
				u.ejected = append(u.ejected, fmt.Sprintf("%s: in line, answered %d", u.id, status))
			}
			sleepUntil(ctx, got.Add(time.Second))
		}
	}
}

// post sends a POST /session (body) or, with a nil body, a DELETE.
func post(ctx context.Context, client *http.Client, url, ip string, body []byte) (int, http.Header, []byte, error) {
	method := http.MethodPost
	if body == nil {
		method = http.MethodDelete
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", ip)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, raw, err
}

// checkLaunch computes the invariants from what the users saw and the
// emulator's call log.
func checkLaunch(users []*launchUser, calls []caremu.Call) launchResult {
	res := launchResult{users: len(users)}
	byID := map[string]*launchUser{}
	var lat []time.Duration
	for _, u := range users {
		byID[u.id] = u
		lat = append(lat, u.pollLat...)
		res.starts += u.starts
		res.polls += u.polls
		res.degraded += len(u.degraded)
		res.problems = append(res.problems, u.problems...)
		if len(u.ejected) > 0 {
			res.ejected++
		}
		if u.grew > 0 {
			res.problems = append(res.problems, fmt.Sprintf("%s: its Position grew %d times while it polled", u.id, u.grew))
		}
		switch {
		case u.abandoned:
			res.abandoned++
		case u.granted.IsZero():
			res.lost++
		default:
			res.maxWait = max(res.maxWait, u.granted.Sub(u.firstSent))
		}
	}
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		res.p99Poll = lat[min(n-1, max(0, int(float64(n)*0.99+0.999999)-1))]
	}
	grants := map[string][]time.Time{} // ApplyConcurrent successes per user
	type refusal struct {
		user string
		at   time.Time
	}
	var noIdle []refusal
	for _, c := range calls {
		switch c.Action {
		case "DescribeConcurrentCount":
			res.describes++
		case "ApplyConcurrent":
			res.applies++
			switch c.Code {
			case "":
				grants[c.UserID] = append(grants[c.UserID], c.Time)
			case "ResourceNotFound.NoIdle":
				noIdle = append(noIdle, refusal{c.UserID, c.Time})
			}
		}
		if c.Code == "RequestLimitExceeded" {
			res.rateLimited++
		}
	}
	if res.rateLimited > 0 {
		res.problems = append(res.problems, fmt.Sprintf("CAR answered RequestLimitExceeded %d times", res.rateLimited))
	}
	for id, g := range grants {
		if len(g) > 1 && byID[id] != nil { // users of the launch (hostile clients are checked apart)
			res.twice++
			var at []string
			for _, t := range g {
				at = append(at, t.Format("15:04:05.000"))
			}
			res.problems = append(res.problems, fmt.Sprintf("%s: ApplyConcurrent granted %d times, at %s", id, len(g), strings.Join(at, ", ")))
		}
	}
	violators := map[string]bool{}
	for _, r := range noIdle {
		a := byID[r.user]
		if a == nil || a.joined.IsZero() || !a.joined.Before(r.at) || inAny(a.degraded, r.at) {
			continue // not in line yet, or served without the line
		}
		for id, g := range grants {
			b := byID[id]
			if b == nil || id == a.id || !a.joined.Before(b.firstSent) {
				continue // b was not behind a
			}
			if g[0].Before(r.at) {
				violators[a.id] = true
				res.problems = append(res.problems, fmt.Sprintf("fifo: %s (in line since %s) refused NoIdle at %s after %s (arrived later) got one at %s",
					a.id, a.joined.Format("15:04:05.000"), r.at.Format("15:04:05.000"), id, g[0].Format("15:04:05.000")))
				break
			}
		}
	}
	res.fifo = len(violators)
	if res.starts > 0 {
		res.carPerPoll = float64(res.applies+res.describes) / float64(res.starts)
	}
	return res
}

// redisLeftovers lists the keys that would outlive the line: every key must
// carry a TTL, but each project's epoch (one small hash per allowed
// project, by design: it tells a store that lost its data from a new line).
func redisLeftovers(ctx context.Context, addr string) []string {
	rdb := resp.New(resp.Options{Addr: addr})
	defer rdb.Close()
	keys, err := resp.Strings(rdb.Do(ctx, "KEYS", "*"))
	if err != nil {
		return []string{"redis: " + err.Error()}
	}
	var out []string
	for _, k := range keys {
		if strings.HasSuffix(k, ":epoch") {
			continue // no TTL by design (docs/queue.md)
		}
		// -1: no TTL; -2: the key expired since KEYS listed it, which is fine
		if ttl, err := resp.Int64(rdb.Do(ctx, "PTTL", k)); err != nil || ttl == -1 {
			out = append(out, fmt.Sprintf("redis key %s has no TTL (%v %v)", k, ttl, err))
		}
	}
	return out
}

// userIP is user i's own public address (sent in X-Forwarded-For over
// loopback: a label, never dialled). Not 198.18.0.0/15 or another range that
// is never a client's own: the function would not cap those per address,
// and the line's per-IP accounting would go unmeasured.
func userIP(i int) string {
	return fmt.Sprintf("198.51.%d.%d", i/250, i%250+1)
}
