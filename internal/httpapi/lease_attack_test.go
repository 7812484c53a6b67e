package httpapi_test

import (
	"context"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"carbroker/internal/dev/caremu"
)

// CAR keeps one session per UserId whatever its ProjectId, and
// DestroySession takes only the UserId: a user whose lease ended in one
// allowed project may not start again in another during the cooldown.
func TestLeaseReproAnotherProjectDodgesTheCooldown(t *testing.T) {
	t.Parallel()
	const other = "cap-test0002"
	e, _ := newLeaseEnv(t, 1, caremu.Options{Concurrency: 4}, map[string]string{
		"SESSION_MAX": "1m", "SESSION_COOLDOWN": "10m", "CAR_ALLOWED_PROJECT_IDS": testProject + "," + other})
	wantExpires(t, e.start("alice"), e.clock.Now().Add(time.Minute))
	e.pass(61 * time.Second)
	if r := e.sweep(0); r.Destroyed != 1 {
		t.Fatalf("sweep: %+v", r)
	}
	e.pass(5 * time.Second) // CAR has stopped it
	r := e.do(ipOf("alice"), "POST", "/session", `{"UserId":"alice","ClientSession":"cs","ProjectId":"`+other+`"}`)
	wantEnded(t, r, 594) // the cooldown runs from the lease's end
}

// A user whose lease runs in one project and who starts in another is
// handed a lease there of its own; the sweep of the first lease then
// destroys that newer session (one session per UserId in CAR) long before
// the ExpiresAt it was given.
func TestLeaseReproAnotherProjectsSweepKillsANewerSession(t *testing.T) {
	t.Parallel()
	const other = "cap-test0002"
	e, _ := newLeaseEnv(t, 1, caremu.Options{Concurrency: 4}, map[string]string{
		"SESSION_MAX": "1m", "CAR_ALLOWED_PROJECT_IDS": testProject + "," + other})
	wantExpires(t, e.start("alice"), e.clock.Now().Add(time.Minute))
	e.pass(50 * time.Second)
	r := e.do(ipOf("alice"), "POST", "/session", `{"UserId":"alice","ClientSession":"cs","ProjectId":"`+other+`"}`)
	if r.Status != 200 {
		t.Fatalf("start in the other project: %d %s", r.Status, r.Raw)
	}
	promised, err := time.Parse(time.RFC3339, r.str("ExpiresAt"))
	if err != nil {
		t.Fatalf("ExpiresAt %q: %v", r.str("ExpiresAt"), err)
	}
	e.pass(11 * time.Second)
	e.sweep(0)
	if n := e.destroys("alice"); n > 0 && e.clock.Now().Before(promised) {
		t.Errorf("alice's session was destroyed at %s, before the ExpiresAt %s it was given", e.clock.Now().Format(time.RFC3339), promised.Format(time.RFC3339))
	}
}

// CAR's 100 DestroySession requests a second are the account's, not a
// project's: a sweep of three projects' ended leases must not go past them
// (every refused call is a session left running until a later sweep).
func TestLeaseReproSweepOfSeveralProjectsExceedsCARsRate(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: real time: 135 starts at CAR's rate, then a sweep paced by it (15 s); make test runs it")
	}
	projects := []string{testProject, "cap-test0002", "cap-test0003"}
	e, _ := newLeaseEnv(t, 1, caremu.Options{Concurrency: 200, RateLimits: caremu.RateLimitsCAR}, map[string]string{
		"SESSION_MAX": "1m", "CAR_ALLOWED_PROJECT_IDS": projects[0] + "," + projects[1] + "," + projects[2],
		"QUEUE_MAX_PER_IP": "1000"})
	n := 0
	for _, p := range projects {
		for range 45 {
			u := "u" + strconv.Itoa(n)
			n++
			r := e.do("203.0.113."+strconv.Itoa(n%200+1), "POST", "/session", `{"UserId":"`+u+`","ClientSession":"cs","ProjectId":"`+p+`"}`)
			if r.Status != 200 {
				t.Fatalf("start %s in %s: %d %s", u, p, r.Status, r.Raw)
			}
			time.Sleep(12 * time.Millisecond) // the starts themselves within CAR's rate
		}
	}
	time.Sleep(1100 * time.Millisecond)
	e.pass(61 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rep := e.svcs[0].Sweep(ctx)
	limited := 0
	for _, c := range e.emu.Calls() {
		if c.Action == "DestroySession" && c.Code == "RequestLimitExceeded" {
			limited++
		}
	}
	if limited > 0 || rep.Failed > 0 || rep.Destroyed != n {
		t.Errorf("sweep %+v: %d DestroySession calls refused by CAR's rate limit", rep, limited)
	}
}

// A start in another project keeps the lease of the first (one session per
// UserId); a renewal naming the project the client started in renews it.
func TestLeaseAnotherProjectKeepsTheLeaseAndRenewsIt(t *testing.T) {
	t.Parallel()
	const other = "cap-test0002"
	e, _ := newLeaseEnv(t, 1, caremu.Options{Concurrency: 4}, map[string]string{
		"SESSION_MAX": "1m", "SESSION_RENEW": "true", "SESSION_RENEW_MAX": "1", "CAR_ALLOWED_PROJECT_IDS": testProject + "," + other})
	end := e.clock.Now().Add(time.Minute)
	wantExpires(t, e.start("alice"), end)
	e.pass(50 * time.Second)
	wantExpires(t, e.do(ipOf("alice"), "POST", "/session", `{"UserId":"alice","ClientSession":"cs","ProjectId":"`+other+`"}`), end)
	r := e.do(ipOf("alice"), "POST", "/session/renew", `{"UserId":"alice","ProjectId":"`+other+`"}`)
	wantExpires(t, r, e.clock.Now().Add(time.Minute))
	e.pass(20 * time.Second)
	if rep := e.sweep(0); rep.Claimed != 0 || e.destroys("alice") != 0 {
		t.Errorf("the renewed lease was ended: %+v", rep)
	}
}

// Anyone may read GET /capacity, and each read sweeps up to two ended
// leases of the project. A caller that hangs up while those destroys are
// in flight must not abort them: each aborted destroy burns a claim of the
// sweeps' shared rate and leaves the session running for a later sweep, so
// a stream of such reads would keep every ended session alive.
func TestLeaseReproHangingUpAbortsTheInRequestSweep(t *testing.T) {
	t.Parallel()
	e, _ := newLeaseEnv(t, 1, caremu.Options{Concurrency: 4}, map[string]string{"SESSION_MAX": "1m"})
	wantExpires(t, e.start("alice"), e.clock.Now().Add(time.Minute))
	e.pass(61 * time.Second)
	e.emu.SetLatency("DestroySession", 300*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest("GET", "/capacity", nil).WithContext(ctx)
	req.RemoteAddr = "198.51.100.7:4321"
	go func() {
		// A call in flight for 50 ms is the DestroySession (the others
		// answer at once).
		for e.emu.InFlight() == 0 {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		cancel() // the caller hangs up while the sweep's DestroySession is in flight
	}()
	e.apis[0].ServeHTTP(httptest.NewRecorder(), req)
	cancel()
	aborted := 0
	for _, c := range e.emu.Calls() {
		if c.Action == "DestroySession" && c.Canceled {
			aborted++
		}
	}
	if s, ok := e.emu.SlotOf("alice"); ok && s.State == caremu.Session {
		t.Errorf("alice's ended session still runs after the read that claimed it (%d DestroySession aborted): %+v", aborted, s)
	}
}

// A user with a lease of its own who joins another user's room as a guest
// is still ended at its own lease's end (DestroySession takes the UserId,
// and takes it out of the room): the guest's reply must not promise the
// host's later end.
func TestLeaseReproGuestWithItsOwnEarlierLease(t *testing.T) {
	t.Parallel()
	e, _ := newLeaseEnv(t, 1, caremu.Options{Concurrency: 4}, map[string]string{"SESSION_MAX": "1m"})
	own := e.clock.Now().Add(time.Minute)
	wantExpires(t, e.start("xavier"), own)
	e.pass(30 * time.Second)
	wantExpires(t, e.start("yvonne"), e.clock.Now().Add(time.Minute))
	e.pass(10 * time.Second)
	r := e.do(ipOf("xavier"), "POST", "/session", `{"UserId":"xavier","ClientSession":"cs","HostUserId":"yvonne"}`)
	if r.Status != 200 {
		t.Fatalf("join: %d %s", r.Status, r.Raw)
	}
	promised, _ := time.Parse(time.RFC3339, r.str("ExpiresAt"))
	e.pass(21 * time.Second) // xavier's own lease ended
	e.sweep(0)
	room, _ := e.emu.SlotOf("yvonne")
	if _, in := room.Guests["xavier"]; !in && e.clock.Now().Before(promised) {
		t.Errorf("xavier left yvonne's room at %s, before the ExpiresAt %s its join was given (its own lease ended %s)",
			e.clock.Now().Format(time.RFC3339), promised.Format(time.RFC3339), own.Format(time.RFC3339))
	}
}
