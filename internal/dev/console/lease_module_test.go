package console_test

import (
	"strings"
	"testing"
	"time"
)

// The module exposes the session's lease end, calls onExpiring the
// configured time before it, and renew() re-arms it.
func TestModuleLeaseExpiring(t *testing.T) {
	end := time.Now().Add(8 * time.Second).UTC().Truncate(time.Second)
	later := end.Add(time.Minute)
	f := newFake(t,
		reply{status: 200, body: `{"UserId":"u","ServerSession":"ss","RequestId":"r","ExpiresAt":"` + end.Format(time.RFC3339) + `"}`},
		reply{status: 200, body: `{"UserId":"u","ExpiresAt":"` + later.Format(time.RFC3339) + `","RenewalsLeft":0,"RequestId":"r2"}`},
	)
	got := run[struct {
		ExpiresAt, Expiring, Renewed, After string
		SecondsLeft                         int
		LeftMs                              int
	}](t, f, `
		const b = createBroker({ baseUrl: location.origin, userId: "u", storage: null, expiringBefore: 3000 });
		let leftMs = 0;
		const e = await new Promise(async (ok) => {
			await b.start({ clientSession: "cs", onExpiring: (e) => { leftMs = e.expiresAt.getTime() - Date.now(); ok(e); } });
		});
		const expiresAt = b.session.expiresAt.toISOString();
		const r = await b.renew();
		return { ExpiresAt: expiresAt, Expiring: e.expiresAt.toISOString(), SecondsLeft: e.secondsLeft, LeftMs: leftMs,
			Renewed: r.ExpiresAt, After: b.session.expiresAt.toISOString() };
	`)
	want := end.Format("2006-01-02T15:04:05.000Z")
	if got.ExpiresAt != want || got.Expiring != want || got.After != later.Format("2006-01-02T15:04:05.000Z") {
		t.Errorf("%+v, want the end %s then %s", got, want, later)
	}
	if got.LeftMs < 2000 || got.LeftMs > 3100 || got.SecondsLeft != 3 && got.SecondsLeft != 2 {
		t.Errorf("onExpiring %d ms (%d s) before the end: want 3 s before it", got.LeftMs, got.SecondsLeft)
	}
	reqs := f.requests()
	if len(reqs) != 2 || reqs[1].Path != "/session/renew" || reqs[1].Body != `{"UserId":"u"}` {
		t.Errorf("requests %+v", reqs)
	}
}

// 403 SessionEnded is a clear error, never retried, with the cooldown in
// retryAfter; the lease is forgotten.
func TestModuleSessionEnded(t *testing.T) {
	f := newFake(t, reply{status: 403, retryAfter: "30",
		body: `{"Error":{"Code":"SessionEnded","Message":"this session reached its time limit (SESSION_MAX)"},"RequestId":"r"}`})
	got := run[caughtError](t, f, `
		const b = createBroker({ baseUrl: location.origin, userId: "u", storage: null });
		try { await b.start({ clientSession: "cs" }); return null; } `+catchJS)
	if got.Code != "SessionEnded" || got.Status != 403 || got.RetryAfter != 30000 || !got.Typed ||
		got.Message != "this session reached its time limit (SESSION_MAX)" {
		t.Errorf("%+v", got)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests: SessionEnded was retried", n)
	}
}

// The console counts a session's lease down, and dev mode ends the session
// at its end (the page's polls sweep), also with the line off: leases keep
// to the embedded store.
func TestConsoleLeaseCountdown(t *testing.T) {
	tab, _ := openConsole(t, map[string]string{"DEV_CONCURRENCY": "1", "DEV_QUEUE": "false", "SESSION_MAX": "4s"})
	must(tab.AddUser("u1"))(t)
	act(t, tab, "u1", "start")
	s := must(tab.WaitUser("u1", "session"))(t)
	if !strings.Contains(s.Text, "Lease ends in") || !strings.Contains(s.Text, "s (SESSION_MAX)") {
		t.Fatalf("no countdown: %q", s.Text)
	}
	if err := tab.Wait(`document.querySelector('#slots li[data-state="stopping"], #slots li[data-state="idle"]')`); err != nil {
		t.Fatal("the session was not ended at its lease's end")
	}
	if err := tab.Wait(`document.querySelector('[data-user="u1"] .status').textContent.includes("Lease ended")`); err != nil {
		t.Fatal(err)
	}
	assetsLoaded(t, tab)
}
