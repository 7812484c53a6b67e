package httpapi_test

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"carbroker/internal/broker"
	"carbroker/internal/car"
	"carbroker/internal/config"
	"carbroker/internal/dev/caremu"
	"carbroker/internal/httpapi"
	"carbroker/internal/queue"
	"carbroker/internal/testing/apitest"
	"carbroker/internal/testing/redistest"
	"carbroker/internal/testing/testkit"
)

// lineEnv is several function instances sharing one Redis and one CAR
// emulator, as on SCF.
type lineEnv struct {
	t     *testing.T
	emu   *caremu.Emulator
	redis *redistest.Server
	apis  []http.Handler
	svcs  []*broker.Service // each instance's use case (its timer work: Sweep)
	logs  *testkit.Buffer
	next  int
	clock *testkit.Clock // the line's clock, shared by every instance
}

// tick moves the line's clock (past the count's freshness, 1 s, for one).
func (e *lineEnv) tick(d time.Duration) { e.clock.Advance(d) }

func newLineEnv(t *testing.T, instances int, emuOpt caremu.Options, vars map[string]string) *lineEnv {
	t.Helper()
	return newLineEnvBudget(t, instances, emuOpt, vars, 2*time.Second) // a budget that holds under load
}

// newLineEnvBudget is newLineEnv with the Store's budget of one Redis call.
func newLineEnvBudget(t *testing.T, instances int, emuOpt caremu.Options, vars map[string]string, budget time.Duration) *lineEnv {
	t.Helper()
	srv := redistest.Start(t)
	return buildLineEnv(t, srv, map[string]string{"QUEUE_REDIS_URL": srv.URL()}, vars, instances, emuOpt, budget, time.Now())
}

// buildLineEnv is instances on srv and one emulator, configured by base,
// then vars, over the test project in AUTH_MODE none; the line's clock
// starts at start.
func buildLineEnv(t *testing.T, srv *redistest.Server, base, vars map[string]string, instances int, emuOpt caremu.Options, budget time.Duration, start time.Time) *lineEnv {
	t.Helper()
	env := map[string]string{"CAR_PROJECT_ID": testProject, "AUTH_MODE": "none"}
	for _, m := range []map[string]string{base, vars} {
		for k, v := range m {
			env[k] = v
		}
	}
	cfg, err := config.Load(func(k string) string { return env[k] }, config.Options{})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	emu := caremu.New(emuOpt)
	emu.SetNow(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	e := &lineEnv{t: t, emu: emu, redis: srv, logs: &testkit.Buffer{}, clock: testkit.NewClock(start)}
	cl := emu.Client()
	for range instances {
		c := car.New(car.Options{Host: "car.tencentcloudapi.com", Transport: cl.Transport, Getenv: cl.Getenv})
		api, svc, err := apitest.New(cfg, c, apitest.Options{
			HTTP:   httpapi.Options{Logger: slog.New(slog.NewJSONHandler(e.logs, nil)), Version: "test"},
			Broker: broker.Options{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
			Queue:  queue.Options{Now: e.clock.Now, CallTimeout: budget},
		})
		if err != nil {
			t.Fatal(err)
		}
		e.apis, e.svcs = append(e.apis, api), append(e.svcs, svc)
	}
	return e
}

// do sends a request to the next instance (round robin) from ip.
func (e *lineEnv) do(ip, method, target, body string, header ...string) reply {
	e.t.Helper()
	api := e.apis[e.next%len(e.apis)]
	e.next++
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.RemoteAddr = ip + ":4321"
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return serveOn(e.t, api, req)
}

// start is POST /session for user from its own address.
func (e *lineEnv) start(user string) reply {
	e.t.Helper()
	return e.do(ipOf(user), "POST", "/session", `{"UserId":"`+user+`","ClientSession":"cs-`+user+`"}`)
}

func (e *lineEnv) stop(user string) reply {
	e.t.Helper()
	return e.do(ipOf(user), "DELETE", "/session?UserId="+user, "")
}

// ipOf gives each user its own public address.
func ipOf(user string) string {
	n := 0
	for _, c := range user {
		n = (n*31 + int(c)) % 250
	}
	return "203.0.113." + strconv.Itoa(n+1)
}

func (e *lineEnv) applies() int {
	n := 0
	for _, c := range e.emu.Calls() {
		if c.Action == "ApplyConcurrent" {
			n++
		}
	}
	return n
}

func (e *lineEnv) describes() int {
	n := 0
	for _, c := range e.emu.Calls() {
		if c.Action == "DescribeConcurrentCount" {
			n++
		}
	}
	return n
}

// free stops user and lets the emulator finish the stop.
func (e *lineEnv) free(user string) {
	e.t.Helper()
	if r := e.stop(user); r.Status != 200 {
		e.t.Fatalf("stop %s: %d %s", user, r.Status, r.Raw)
	}
	e.emu.Advance(3 * time.Second) // past StopTime
	e.tick(1100 * time.Millisecond)
}

func wantWait(t *testing.T, r reply, pos int) {
	t.Helper()
	if r.Status != http.StatusAccepted || r.str("Queue", "Position") != strconv.Itoa(pos) ||
		r.str("Queue", "Ahead") != strconv.Itoa(pos-1) || r.str("UserId") == "" || r.str("RequestId") == "" {
		t.Fatalf("want 202 at position %d: %d %s", pos, r.Status, r.Raw)
	}
	ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 5 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
}

func wantStarted(t *testing.T, r reply) {
	t.Helper()
	if r.Status != 200 || r.str("ServerSession") == "" {
		t.Fatalf("want 200 with a ServerSession: %d %s", r.Status, r.Raw)
	}
}

// First come, first served across instances; newcomers join the end
// without touching CAR; a freed concurrency goes to the head; positions
// never increase; a reconnect within retention does not wait.
func TestLineAcrossInstances(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 3, caremu.Options{Concurrency: 2}, nil)
	wantStarted(t, e.start("a"))
	wantStarted(t, e.start("b"))
	wantWait(t, e.start("c"), 1) // the head of an empty line tries CAR once
	before := e.applies()
	wantWait(t, e.start("d"), 2)
	wantWait(t, e.start("e"), 3)
	if e.applies() != before {
		t.Fatalf("newcomers touched CAR while others waited (%d ApplyConcurrent)", e.applies()-before)
	}

	// a frees its concurrency; a newcomer and d (position 2) still may not
	// take it: it goes to the head at its next poll.
	e.free("a")
	before = e.applies()
	wantWait(t, e.start("late"), 4)
	wantWait(t, e.start("d"), 2)
	if e.applies() != before {
		t.Fatal("a newcomer or position 2 called CAR with one idle concurrency and a head waiting")
	}
	wantStarted(t, e.start("c"))
	wantWait(t, e.start("d"), 1)
	wantWait(t, e.start("e"), 2)
	wantWait(t, e.start("late"), 3)

	// b's client drops; within retention b gets its own concurrency back
	// at once, line or no line.
	slot := e.emu.State()
	e.emu.Disconnect("b")
	r := e.start("b")
	wantStarted(t, r)
	if s, _ := e.emu.SlotOf("b"); s.State != caremu.Session {
		t.Fatalf("b's reconnect: %+v", s)
	}
	_ = slot

	// DELETE leaves the line; those behind move up.
	if r := e.stop("d"); r.Status != 200 {
		t.Fatalf("stop of a waiting user: %d %s", r.Status, r.Raw)
	}
	wantWait(t, e.start("e"), 1)
	wantWait(t, e.start("late"), 2)
}

// A user who stops polling for QUEUE_ABANDON leaves the line.
func TestLineAbandon(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 2, caremu.Options{Concurrency: 1}, map[string]string{"QUEUE_ABANDON": "3s"})
	wantStarted(t, e.start("a"))
	wantWait(t, e.start("gone"), 1)
	wantWait(t, e.start("b"), 2)
	r := e.start("b")
	if ra := r.Header.Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After %s with QUEUE_ABANDON=3s, want 1 (a third at most)", ra)
	}
	e.tick(2 * time.Second)
	wantWait(t, e.start("b"), 2)
	e.tick(1500 * time.Millisecond)
	wantWait(t, e.start("b"), 1)
}

// The demo's routes use the same line.
func TestLineCompatRoutes(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 2, caremu.Options{Concurrency: 1}, nil)
	wantStarted(t, e.start("a"))
	enq := func(user string) reply {
		return e.do(ipOf(user), "POST", "/Enqueue", `{"UserId":"`+user+`","ProjectId":"`+testProject+`","RequestId":"q-`+user+`"}`)
	}
	if r := enq("c1"); r.str("Code") != "10100" || r.str("Data", "Index") != "0" || r.str("RequestId") != "q-c1" {
		t.Fatalf("Enqueue c1: %s", r.Raw)
	}
	if r := enq("c2"); r.str("Code") != "10100" || r.str("Data", "Index") != "1" {
		t.Fatalf("Enqueue c2: %s", r.Raw)
	}
	before := e.applies()
	r := e.do(ipOf("s1"), "POST", "/StartProject", `{"UserId":"s1","ClientSession":"cs","RequestId":"r"}`)
	if r.Status != 200 || r.str("Code") != "10202" || e.applies() != before {
		t.Fatalf("StartProject of a newcomer while others wait: %s (%d ApplyConcurrent)", r.Raw, e.applies()-before)
	}
	if r := enq("s1"); r.str("Code") != "10100" || r.str("Data", "Index") != "2" {
		t.Fatalf("Enqueue after StartProject: %s", r.Raw)
	}
	if r := e.do(ipOf("c2"), "POST", "/Dequeue", `{"UserId":"c2","RequestId":"d"}`); r.str("Code") != "0" {
		t.Fatalf("Dequeue: %s", r.Raw)
	}
	if r := enq("s1"); r.str("Data", "Index") != "1" {
		t.Fatalf("Enqueue after c2 left: %s", r.Raw)
	}
	e.free("a")
	if r := enq("c1"); r.str("Code") != "10101" || r.str("Data", "Index") != "0" {
		t.Fatalf("the head's Enqueue once a concurrency is free: %s", r.Raw)
	}
	if s, _ := e.emu.SlotOf("c1"); s.State != caremu.Locked {
		t.Fatalf("c1's concurrency: %+v", s)
	}
	if r := e.do(ipOf("c1"), "POST", "/StartProject", `{"UserId":"c1","ClientSession":"cs","RequestId":"r"}`); r.str("Code") != "0" {
		t.Fatalf("StartProject after 10101: %s", r.Raw)
	}
	if r := enq("s1"); r.str("Code") != "10100" || r.str("Data", "Index") != "0" {
		t.Fatalf("s1 moved up: %s", r.Raw)
	}
}

// In ticket mode a place belongs to its ticket: the minted user learns its
// UserId and ticket in the 202, keeps its place with the ticket, and nobody
// else can leave it.
func TestLineOwnership(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 2, caremu.Options{Concurrency: 1}, map[string]string{"AUTH_MODE": "ticket",
		"AUTH_SECRET": strings.Repeat("s", 40)})
	first := e.do("203.0.113.1", "POST", "/session", `{"ClientSession":"cs"}`)
	wantStarted(t, first)
	r := e.do("203.0.113.2", "POST", "/session", `{"ClientSession":"cs"}`)
	wantWait(t, r, 1)
	user, ticket := r.str("UserId"), r.str("Ticket")
	if ticket == "" {
		t.Fatalf("a minted user in line got no ticket: %s", r.Raw)
	}
	wantWait(t, e.do("203.0.113.3", "POST", "/session", `{"ClientSession":"cs"}`), 2)
	other := e.do("203.0.113.3", "POST", "/session", `{"ClientSession":"cs"}`)
	// another caller cannot leave user's place
	if r := e.do("203.0.113.3", "DELETE", "/session?UserId="+user, "", "Authorization", "Bearer "+other.str("Ticket")); r.Status != 403 {
		t.Fatalf("DELETE of another's place: %d %s", r.Status, r.Raw)
	}
	if r := e.do("203.0.113.3", "DELETE", "/session?UserId="+user, ""); r.Status != 401 {
		t.Fatalf("DELETE without a ticket: %d %s", r.Status, r.Raw)
	}
	r = e.do("203.0.113.2", "POST", "/session", `{"ClientSession":"cs"}`, "Authorization", "Bearer "+ticket)
	wantWait(t, r, 1)
	if r.str("UserId") != user {
		t.Fatalf("the poll with the ticket is another user: %s", r.Raw)
	}
	// GET /capacity needs a ticket in ticket mode, before anything else: an
	// anonymous caller does not learn which ProjectIds are allowed.
	if r := e.do("203.0.113.9", "GET", "/capacity", ""); r.Status != 401 {
		t.Fatalf("capacity without a ticket: %d %s", r.Status, r.Raw)
	}
	if r := e.do("203.0.113.9", "GET", "/capacity?ProjectId=cap-other", ""); r.Status != 401 {
		t.Fatalf("capacity of a project not allowed, without a ticket: %d %s", r.Status, r.Raw)
	}
	if r := e.do("203.0.113.9", "GET", "/capacity?ProjectId=cap-other", "", "Authorization", "Bearer "+ticket); r.Status != 403 {
		t.Fatalf("capacity of a project not allowed, with a ticket: %d %s", r.Status, r.Raw)
	}
	if r := e.do("203.0.113.9", "GET", "/capacity", "", "Authorization", "Bearer "+ticket); r.Status != 200 || r.str("Waiting") != "3" {
		t.Fatalf("capacity: %d %s", r.Status, r.Raw)
	}
}

func TestLinePerIPCap(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 2, caremu.Options{Concurrency: 1}, map[string]string{"QUEUE_MAX_PER_IP": "2"})
	wantStarted(t, e.start("a"))
	post := func(user string) reply {
		return e.do("198.51.100.7", "POST", "/session", `{"UserId":"`+user+`","ClientSession":"cs"}`)
	}
	wantWait(t, post("m1"), 1)
	wantWait(t, post("m2"), 2)
	if r := post("m3"); r.Status != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("third place from one address: %d %s", r.Status, r.Raw)
	}
	wantWait(t, post("m1"), 1)
}

// GET /capacity: CAR's count, never more than 1 s old, read at most once a
// second per project across instances; Waiting counts the line.
func TestCapacity(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 3, caremu.Options{Concurrency: 3}, nil)
	wantStarted(t, e.start("a"))
	e.tick(1100 * time.Millisecond)
	before := e.describes()
	for range 6 {
		r := e.do("203.0.113.5", "GET", "/capacity", "")
		if r.Status != 200 || r.str("Total") != "3" || r.str("Running") != "1" || r.str("Idle") != "2" ||
			r.str("Waiting") != "0" || r.str("RequestId") == "" {
			t.Fatalf("capacity: %d %s", r.Status, r.Raw)
		}
	}
	if n := e.describes() - before; n != 1 {
		t.Fatalf("%d DescribeConcurrentCount calls within a second across instances, want 1", n)
	}
	e.tick(1100 * time.Millisecond)
	wantStarted(t, e.start("b"))
	if r := e.do("203.0.113.5", "GET", "/capacity", ""); r.str("Running") != "1" || r.str("Idle") != "1" {
		t.Fatalf("within the second, b's grant counts against Idle: %s", r.Raw)
	}
	e.tick(1100 * time.Millisecond)
	if r := e.do("203.0.113.5", "GET", "/capacity", ""); r.str("Running") != "2" || r.str("Idle") != "1" {
		t.Fatalf("a second later: %s", r.Raw)
	}
	if r := e.do("203.0.113.5", "GET", "/capacity?ProjectId=cap-other", ""); r.Status != 403 {
		t.Fatalf("a project not allowed: %d %s", r.Status, r.Raw)
	}
	if r := e.do("203.0.113.5", "GET", "/healthz", ""); r.str("Queue") != "ok" {
		t.Fatalf("healthz: %s", r.Raw)
	}
}

// wantUnknown checks a 202 whose place is unknown (Redis trouble): Queue
// present without Position, and Retry-After.
func wantUnknown(t *testing.T, r reply) {
	t.Helper()
	if r.Status != http.StatusAccepted || !strings.Contains(string(r.Raw), `"Queue":{}`) || r.str("UserId") == "" {
		t.Fatalf("want 202 with a place unknown: %d %s", r.Status, r.Raw)
	}
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
}

// Redis killed mid-test: no waiter or newcomer is refused (202, place
// unknown), and nobody goes to CAR for QUEUE_ABANDON, so nobody jumps the
// line; stops go on; /healthz says degraded. Past QUEUE_ABANDON of trouble
// CAR decides (never a refusal CAR would grant), its NoIdle still a 202.
// Restarted empty, the line resumes within 2 s.
func TestLineRedisOutage(t *testing.T) {
	t.Parallel() // its own emulator and Redis; mostly waiting
	e := newLineEnv(t, 2, caremu.Options{Concurrency: 2}, nil)
	wantStarted(t, e.start("a"))
	wantStarted(t, e.start("b"))
	wantWait(t, e.start("c"), 1)
	e.redis.Kill()
	applies := e.applies()
	wantUnknown(t, e.start("d"))
	wantUnknown(t, e.start("c"))
	if r := e.do("203.0.113.5", "GET", "/healthz", ""); r.Status != 200 || r.str("Queue") != "degraded" {
		t.Fatalf("healthz with Redis down: %d %s", r.Status, r.Raw)
	}
	if r := e.stop("a"); r.Status != 200 {
		t.Fatalf("stop with Redis down: %d %s", r.Status, r.Raw)
	}
	e.emu.Advance(3 * time.Second)
	wantUnknown(t, e.start("d")) // a concurrency is free, but c waited first
	enq := e.do(ipOf("d"), "POST", "/Enqueue", `{"UserId":"d","RequestId":"q"}`)
	if enq.Status != 200 || enq.str("Code") != "10100" || enq.str("Data", "Index") != "-1" || enq.Header.Get("Retry-After") == "" {
		t.Fatalf("/Enqueue with Redis down: %d %s", enq.Status, enq.Raw)
	}
	sp := e.do(ipOf("d"), "POST", "/StartProject", `{"UserId":"d","ClientSession":"cs","RequestId":"q"}`)
	if sp.Status != 200 || sp.str("Code") != "10202" {
		t.Fatalf("/StartProject with Redis down: %d %s", sp.Status, sp.Raw)
	}
	if n := e.applies() - applies; n != 0 {
		t.Fatalf("%d ApplyConcurrent calls within QUEUE_ABANDON of the outage", n)
	}
	for range 3 { // d keeps polling
		e.tick(9 * time.Second)
		wantUnknown(t, e.start("d"))
	}
	e.tick(4 * time.Second) // past QUEUE_ABANDON: the places have lapsed, CAR decides
	wantStarted(t, e.start("d"))
	wantUnknown(t, e.start("f")) // CAR has nothing: still a 202, never 503 NoIdleConcurrency
	if r := e.do("203.0.113.5", "GET", "/capacity", ""); r.Status != 200 || r.str("Total") != "2" {
		t.Fatalf("capacity with Redis down: %d %s", r.Status, r.Raw)
	}
	if strings.Count(e.logs.String(), "Redis unavailable") > 2 { // once per instance at most
		t.Fatalf("the outage was logged more than once a minute per instance:\n%s", e.logs.String())
	}

	if err := e.redis.Restart(); err != nil {
		t.Fatal(err)
	}
	// Every instance uses the line again within 2 s of Redis returning.
	deadline := time.Now().Add(2 * time.Second)
	for i, user := range []string{"c", "e", "g"} {
		for {
			r := e.start(user)
			if r.Status == http.StatusAccepted && r.str("Queue", "Position") != "" {
				wantWait(t, r, i+1)
				break
			}
			wantUnknown(t, r)
			if time.Now().After(deadline) {
				t.Fatalf("the line did not resume within 2 s: %d %s", r.Status, r.Raw)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	deadline = time.Now().Add(2 * time.Second)
	for {
		r := e.do("203.0.113.5", "GET", "/healthz", "")
		if r.str("Queue") == "ok" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz after recovery: %s", r.Raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// redisCommand sends one command to a real redis-server and reads a
// one-line answer.
func redisCommand(t *testing.T, addr string, args ...string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmd := "*" + strconv.Itoa(len(args)) + "\r\n"
	for _, a := range args {
		cmd += "$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n"
	}
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte(cmd)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line)
}

// A 300 ms CLIENT PAUSE, with the production budget of 100 ms a call: the
// waiters' polls during it are 202s (never 503 NoIdleConcurrency), and
// within 2 s of Redis answering each has the place it had.
func TestLineRedisPauseKeepsPlaces(t *testing.T) {
	t.Parallel() // its own emulator and Redis; mostly waiting
	if !redistest.Real() {
		t.Skip("CLIENT PAUSE needs a real redis-server (not on PATH)")
	}
	e := newLineEnvBudget(t, 2, caremu.Options{Concurrency: 1}, nil, queue.DefaultCallTimeout)
	wantStarted(t, e.start("a"))
	wantWait(t, e.start("w1"), 1)
	wantWait(t, e.start("w2"), 2)
	applies := e.applies()
	if ok := redisCommand(t, e.redis.Addr(), "CLIENT", "PAUSE", "300"); ok != "+OK" {
		t.Fatalf("CLIENT PAUSE: %s", ok)
	}
	paused := time.Now()
	for _, u := range []string{"w2", "w1", "late"} {
		r := e.start(u)
		if time.Since(paused) >= 300*time.Millisecond {
			break // the machine was too slow to poll inside the pause
		}
		wantUnknown(t, r)
	}
	if n := e.applies() - applies; n != 0 {
		t.Fatalf("%d ApplyConcurrent calls while Redis was paused", n)
	}
	deadline := paused.Add(300*time.Millisecond + 2*time.Second)
	for i, u := range []string{"w1", "w2"} {
		for {
			r := e.start(u)
			if r.Status == http.StatusAccepted && r.str("Queue", "Position") != "" {
				wantWait(t, r, i+1)
				break
			}
			wantUnknown(t, r)
			if time.Now().After(deadline) {
				t.Fatalf("%s not served from the line within 2 s of the pause's end: %d %s", u, r.Status, r.Raw)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// A concurrency locked for a head who vanished (the demo's /Enqueue
// answered 10101, then nothing) returns to the pool when CAR's lock
// expires, and the next head gets it.
func TestLineVanishedHead(t *testing.T) {
	t.Parallel()
	e := newLineEnv(t, 2, caremu.Options{Concurrency: 1, LockTime: 10 * time.Second}, map[string]string{"QUEUE_ABANDON": "3s"})
	wantStarted(t, e.start("a"))
	enq := func(user string) reply {
		return e.do(ipOf(user), "POST", "/Enqueue", `{"UserId":"`+user+`","RequestId":"q"}`)
	}
	if r := enq("ghost"); r.str("Code") != "10100" {
		t.Fatalf("ghost: %s", r.Raw)
	}
	wantWait(t, e.start("next"), 2)
	e.free("a")
	if r := enq("ghost"); r.str("Code") != "10101" {
		t.Fatalf("the head's lock: %s", r.Raw)
	}
	wantWait(t, e.start("next"), 1) // the concurrency is the ghost's until its lock expires
	e.emu.Advance(11 * time.Second) // CAR's lock lapses; the ghost never called StartProject
	e.tick(1100 * time.Millisecond)
	wantStarted(t, e.start("next"))
}

// A client cannot make its address look non-public (and so uncapped) with
// what it sends: a forwarding header is ignored from an untrusted peer and,
// behind a trusted proxy that appends the real address, only the right-most
// entry counts; an IPv4-mapped peer is the same address as the plain one.
func TestLinePerIPCapCannotBeDodged(t *testing.T) {
	t.Parallel() // its own emulator and Redis; mostly waiting
	spoofs := []string{"127.0.0.1", "10.0.0.1", "::ffff:10.0.0.1", "fe80::1%eth0", "::1", "192.168.1.1, 127.0.0.1"}
	for _, c := range []struct {
		name, trusted string
		peer          func(i int) string
		xff           func(spoof string) string
	}{
		{"no proxy trusted", "", func(int) string { return "198.51.100.7" }, func(s string) string { return s }},
		{"behind a trusted proxy", "10.0.0.0/8", func(int) string { return "10.0.0.2" }, func(s string) string { return s + ", 198.51.100.7" }},
		{"v4-mapped peer", "", func(i int) string {
			if i%2 == 0 {
				return "[::ffff:198.51.100.7]"
			}
			return "198.51.100.7"
		}, func(s string) string { return s }},
	} {
		for _, spoof := range spoofs {
			t.Run(c.name+" "+spoof, func(t *testing.T) {
				e := newLineEnv(t, 1, caremu.Options{Concurrency: 1}, map[string]string{"QUEUE_MAX_PER_IP": "2", "TRUSTED_PROXY_CIDRS": c.trusted})
				wantStarted(t, e.start("a"))
				for i, user := range []string{"m1", "m2", "m3"} {
					r := e.do(c.peer(i), "POST", "/session", `{"UserId":"`+user+`","ClientSession":"cs"}`, "X-Forwarded-For", c.xff(spoof))
					if i < 2 {
						wantWait(t, r, i+1)
					} else if r.Status != 429 {
						t.Fatalf("third place from one address claiming %q: %d %s", spoof, r.Status, r.Raw)
					}
				}
			})
		}
	}
}

// A proxy whose address is in a range that is not globally reachable but
// that net/netip does not call private (RFC 6598's 100.64.0.0/10, where
// carrier NATs and cloud load balancers put their own addresses; 198.18.0.0/15)
// is a proxy, not a client: without TRUSTED_PROXY_CIDRS its address must not
// put the whole line under one QUEUE_MAX_PER_IP cap, and the operator is
// told to trust it.
func TestLineSharedAddressSpaceProxyIsNotCapped(t *testing.T) {
	t.Parallel()
	for _, proxy := range []string{"100.64.7.9", "100.127.255.1", "198.18.0.10"} {
		t.Run(proxy, func(t *testing.T) {
			e := newLineEnv(t, 1, caremu.Options{Concurrency: 1}, map[string]string{"QUEUE_MAX_PER_IP": "2"})
			wantStarted(t, e.start("a"))
			for i, user := range []string{"u1", "u2", "u3", "u4"} {
				wantWait(t, e.do(proxy, "POST", "/session", `{"UserId":"`+user+`","ClientSession":"cs"}`), i+1)
			}
			if !strings.Contains(e.logs.String(), "TRUSTED_PROXY_CIDRS") {
				t.Errorf("no warning naming TRUSTED_PROXY_CIDRS:\n%s", e.logs.String())
			}
		})
	}
}
