package console_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"carbroker/internal/dev/consoletest"
)

// One Chromium serves every browser test of the package; each test opens its
// own tab against its own function (so its own origin and localStorage).
var (
	browserOnce sync.Once
	browser     *consoletest.Browser
	browserErr  error
	skipReason  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if browser != nil {
		browser.Close()
	}
	consoletest.Cleanup()
	os.Exit(code)
}

// openConsole starts the function in dev mode with vars and opens the
// console on it. At the end of the test it checks that the page made no
// request outside 127.0.0.1 and logged no error.
func openConsole(t *testing.T, vars map[string]string) (*consoletest.Tab, *consoletest.Dev) {
	t.Helper()
	tab := newTab(t)
	dev, err := consoletest.StartDev(vars)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	if err := tab.Open(dev.URL); err != nil {
		t.Fatalf("open the console: %v\n%s", err, dev.Stderr.String())
	}
	return tab, dev
}

func newTab(t *testing.T) *consoletest.Tab {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: starts headless Chromium and builds and runs the function binary (minutes); -short is the inner loop, make test runs it")
	}
	browserOnce.Do(func() {
		path, err := consoletest.Chromium()
		if err != nil {
			skipReason = err.Error()
			return
		}
		browser, browserErr = consoletest.StartBrowser(path)
	})
	if skipReason != "" {
		t.Skip("browser tests skipped: " + skipReason)
	}
	if browserErr != nil {
		t.Fatal(browserErr)
	}
	tab, err := browser.NewTab(90 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out := tab.Outside(); len(out) > 0 {
			t.Errorf("requests outside 127.0.0.1: %q", out)
		}
		if p := tab.Problems(); len(p) > 0 {
			t.Errorf("console errors: %q", p)
		}
		tab.Close()
	})
	return tab
}

func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func act(t *testing.T, tab *consoletest.Tab, user, action string) {
	t.Helper()
	if err := tab.Act(user, action); err != nil {
		t.Fatalf("%s %s: %v", user, action, err)
	}
}

// Only the line's own refusals may fail: every asset loads.
func assetsLoaded(t *testing.T, tab *consoletest.Tab) {
	t.Helper()
	for _, f := range tab.Failed() {
		if !strings.Contains(f, "/session") {
			t.Errorf("failed request: %s", f)
		}
	}
}

func TestConsoleLineOffFullPool(t *testing.T) {
	tab, _ := openConsole(t, map[string]string{"DEV_CONCURRENCY": "2", "DEV_QUEUE": "false"})
	for _, u := range []string{"u1", "u2", "u3"} {
		if key := must(tab.AddUser(u))(t); key != u {
			t.Fatalf("added %q, card %q", u, key)
		}
	}
	act(t, tab, "u1", "start")
	act(t, tab, "u2", "start")
	s1 := must(tab.WaitUser("u1", "session"))(t)
	s2 := must(tab.WaitUser("u2", "session"))(t)
	if s1.Slot == "" || s2.Slot == "" || s1.Slot == s2.Slot {
		t.Fatalf("two users, slots %q and %q", s1.Slot, s2.Slot)
	}
	act(t, tab, "u3", "start")
	s3 := must(tab.WaitUser("u3", "error"))(t)
	if !strings.Contains(s3.Text, "no concurrency is free") || !strings.Contains(s3.Text, "NoIdleConcurrency") {
		t.Fatalf("third user: %q", s3.Text)
	}
	// One stops: the third gets a session when it tries again.
	act(t, tab, "u1", "stop")
	must(tab.WaitUser("u1", "stopped"))(t)
	// CAR takes a moment to clean up (the emulator's StopTime, 2 s).
	if err := tab.Wait(`document.querySelector('#slots li[data-state="idle"]')`); err != nil {
		t.Fatal("no concurrency became idle after a stop")
	}
	act(t, tab, "u3", "start")
	must(tab.WaitUser("u3", "session"))(t)
	assetsLoaded(t, tab)
}

// With the line on (dev mode's default), the third user on a full pool of
// two waits with Position 1 and gets the first concurrency freed.
func TestConsoleLine(t *testing.T) {
	tab, _ := openConsole(t, map[string]string{"DEV_CONCURRENCY": "2"})
	for _, u := range []string{"u1", "u2", "u3"} {
		must(tab.AddUser(u))(t)
	}
	act(t, tab, "u1", "start")
	act(t, tab, "u2", "start")
	must(tab.WaitUser("u1", "session"))(t)
	must(tab.WaitUser("u2", "session"))(t)
	act(t, tab, "u3", "start")
	if err := tab.Wait(`document.querySelector('li[data-user="u3"] .status[data-state="queued"], li[data-user="u3"] .status[data-state="error"]')`); err != nil {
		t.Fatal(err)
	}
	q := must(tab.WaitUser("u3", "queued"))(t)
	if !strings.Contains(q.Text, "Position 1 (0 ahead)") {
		t.Fatalf("third user: %q", q.Text)
	}
	if err := tab.Wait(`[...document.querySelectorAll("#line li")].some((li) => li.textContent.includes("Position 1") && li.textContent.includes("u3"))`); err != nil {
		t.Fatalf("the line panel does not show u3 at Position 1: %v", err)
	}
	if st := must(chromedp.Run(tab.Ctx, chromedp.Text(chromedp.CSS("#line-status"))))(t); !strings.Contains(st, "line is on") {
		t.Errorf("line status %q", st)
	}
	act(t, tab, "u1", "stop")
	must(tab.WaitUser("u1", "stopped"))(t)
	got := must(tab.WaitUser("u3", "session"))(t)
	if got.Slot == "" {
		t.Fatalf("u3 in session without a concurrency: %+v", got)
	}
	assetsLoaded(t, tab)
}

func TestConsoleReconnectWithinRetention(t *testing.T) {
	tab, _ := openConsole(t, map[string]string{"DEV_CONCURRENCY": "2"})
	must(tab.AddUser("alice"))(t)
	must(tab.AddUser("bob"))(t)
	act(t, tab, "alice", "start")
	first := must(tab.WaitUser("alice", "session"))(t)
	if !strings.Contains(first.Text, "client connected") {
		t.Fatalf("after start: %q", first.Text)
	}
	act(t, tab, "alice", "disconnect")
	gone := must(tab.WaitUser("alice", "disconnected"))(t)
	if !strings.Contains(gone.Text, "retained") || gone.Slot != first.Slot {
		t.Fatalf("after disconnect: %+v (was on %s)", gone, first.Slot)
	}
	// bob takes the other concurrency, not alice's retained one.
	act(t, tab, "bob", "start")
	if b := must(tab.WaitUser("bob", "session"))(t); b.Slot == first.Slot {
		t.Fatalf("bob got alice's retained concurrency %s", b.Slot)
	}
	act(t, tab, "alice", "start") // "Reconnect"
	again := must(tab.WaitUser("alice", "session"))(t)
	if again.Slot != first.Slot {
		t.Fatalf("reconnect within retention: concurrency %s, was %s", again.Slot, first.Slot)
	}
	assetsLoaded(t, tab)
}

func TestConsoleReconnectAfterRetention(t *testing.T) {
	tab, _ := openConsole(t, map[string]string{"DEV_CONCURRENCY": "1", "DEV_RETENTION": "1s"})
	must(tab.AddUser("alice"))(t)
	act(t, tab, "alice", "start")
	must(tab.WaitUser("alice", "session"))(t)
	act(t, tab, "alice", "disconnect")
	must(tab.WaitUser("alice", "disconnected"))(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		u := must(tab.User("alice"))(t)
		if strings.Contains(u.Text, "retention is over") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention never ended on the page: %q", u.Text)
		}
		time.Sleep(200 * time.Millisecond)
	}
	act(t, tab, "alice", "start")
	must(tab.WaitUser("alice", "session"))(t)
}

func TestConsoleGuestViewerNoneMode(t *testing.T) {
	tab, _ := openConsole(t, map[string]string{"DEV_CONCURRENCY": "2"})
	must(tab.AddUser("host"))(t)
	act(t, tab, "host", "start")
	h := must(tab.WaitUser("host", "session"))(t)
	act(t, tab, "host", "invite-viewer")
	guest := "host-viewer1"
	must(tab.WaitUser(guest, "new"))(t)
	act(t, tab, guest, "start")
	g := must(tab.WaitUser(guest, "session"))(t)
	if !strings.Contains(g.Text, "host's room as Viewer") || g.Slot != h.Slot {
		t.Fatalf("guest: %+v, host on %s", g, h.Slot)
	}
	assetsLoaded(t, tab)
}

func TestConsoleGuestViewerTicketMode(t *testing.T) {
	tab, _ := openConsole(t, map[string]string{"DEV_CONCURRENCY": "2", "AUTH_MODE": "ticket",
		"AUTH_SECRET": strings.Repeat("s3cr3t-for-the-console-test-", 2)})
	host := must(tab.AddUser(""))(t)
	act(t, tab, host, "start")
	h := must(tab.WaitUser(host, "session"))(t)
	if h.UserID == host || len(h.UserID) < 16 {
		t.Fatalf("the server did not choose the host's UserId: %+v", h)
	}
	act(t, tab, host, "invite-viewer")
	guest := must(tab.WaitUser("user-2", "new"))(t)
	_ = guest
	act(t, tab, "user-2", "start")
	g := must(tab.WaitUser("user-2", "session"))(t)
	if !strings.Contains(g.Text, "room as Viewer") || g.Slot != h.Slot {
		t.Fatalf("guest: %+v, host on %s", g, h.Slot)
	}
}

// At 360 px nothing scrolls sideways, every control has a name, and state is
// said in words (colour only repeats it).
func TestConsoleNarrowAndAccessible(t *testing.T) {
	tab := newTab(t)
	dev, err := consoletest.StartDev(map[string]string{"DEV_CONCURRENCY": "1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	if err := chromedp.Do(tab.Ctx, chromedp.EmulateViewport(360, 740)); err != nil {
		t.Fatal(err)
	}
	if err := tab.Open(dev.URL); err != nil {
		t.Fatal(err)
	}
	must(tab.AddUser("a-user-with-a-rather-long-name@example.com"))(t)
	must(tab.AddUser("second"))(t)
	act(t, tab, "a-user-with-a-rather-long-name@example.com", "start")
	must(tab.WaitUser("a-user-with-a-rather-long-name@example.com", "session"))(t)
	act(t, tab, "second", "start") // waits in line, or is refused without one
	if err := tab.Wait(`document.querySelector('li[data-user="second"] .status[data-state="queued"], li[data-user="second"] .status[data-state="error"]')`); err != nil {
		t.Fatal(err)
	}
	report, err := chromedp.Run(tab.Ctx, chromedp.Evaluate[[]string](`(() => {
		const problems = [];
		const width = document.documentElement.scrollWidth;
		if (width > 360) problems.push("page is " + width + " px wide at 360");
		for (const e of document.querySelectorAll("body *")) {
			const r = e.getBoundingClientRect();
			if (r.width > 0 && r.right > 361 && !e.closest("pre")) problems.push("sticks out: " + e.outerHTML.slice(0, 80));
		}
		for (const i of document.querySelectorAll("input, select, textarea")) {
			if (!i.labels || i.labels.length === 0) problems.push("input without a label: " + i.id);
		}
		for (const b of document.querySelectorAll("button")) {
			if (!b.textContent.trim() && !b.getAttribute("aria-label")) problems.push("button without a name");
		}
		for (const s of document.querySelectorAll(".status")) {
			if (!s.querySelector("strong") || !s.querySelector("strong").textContent.trim()) problems.push("status without a word: " + s.outerHTML);
		}
		for (const s of document.querySelectorAll("#slots li")) {
			if (!s.querySelector(".state").textContent.trim()) problems.push("slot state without a word");
		}
		if (!document.querySelector("[aria-live]")) problems.push("no live region for announcements");
		if (document.querySelector("[tabindex]:not([tabindex='0']):not([tabindex='-1'])")) problems.push("a positive tabindex changes the focus order");
		return problems;
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range report {
		t.Error(p)
	}
	// Keyboard: from the page's start, Tab reaches the UserId field, then Add user.
	order, err := chromedp.Run(tab.Ctx, chromedp.Evaluate[[]string](`(() => {
		const focusables = [...document.querySelectorAll("a[href], button:not([disabled]), input, [tabindex='0']")];
		return focusables.slice(0, 3).map((e) => e.id || e.textContent.trim());
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if len(order) < 3 || order[1] != "new-user-id" || order[2] != "Add user" {
		t.Errorf("focus order starts %q", order)
	}
}

// Ticket mode: the page shows each user's ticket (kept in localStorage by
// the module) and the exchange log shows the invite flow.
func TestConsoleTicketAndExchanges(t *testing.T) {
	tab, _ := openConsole(t, map[string]string{"AUTH_MODE": "ticket", "AUTH_SECRET": strings.Repeat("another-console-test-secret-", 2)})
	host := must(tab.AddUser(""))(t)
	act(t, tab, host, "start")
	h := must(tab.WaitUser(host, "session"))(t)
	got, err := chromedp.Run(tab.Ctx, chromedp.Evaluate[map[string]string](fmt.Sprintf(`(() => ({
		shown: document.querySelector('li[data-user=%q] .ticket code').title,
		stored: localStorage.getItem("carbroker.console.ticket.%s"),
		mode: document.querySelector("#auth-mode").textContent,
		log: document.querySelector("#log").textContent,
	}))()`, host, host)))
	if err != nil {
		t.Fatal(err)
	}
	if got["shown"] == "" || got["shown"] != got["stored"] || got["mode"] != "ticket" {
		t.Fatalf("ticket shown %q, stored %q, mode %q", got["shown"], got["stored"], got["mode"])
	}
	for _, want := range []string{"POST /session", `"ClientSession"`, `"ServerSession"`, `"Ticket"`, h.UserID, "POST /dev/connect"} {
		if !strings.Contains(got["log"], want) {
			t.Errorf("exchange log lacks %q", want)
		}
	}
	act(t, tab, host, "invite-player")
	must(tab.WaitUser("user-2", "new"))(t)
	log, err := chromedp.Run(tab.Ctx, chromedp.Text(chromedp.CSS("#log")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "POST /session/invite") || !strings.Contains(log, `"Invite"`) || !strings.Contains(log, "Bearer ") {
		t.Errorf("the invite exchange is not shown:\n%.600s", log)
	}
}

// devState reads GET /dev/state from the test.
type devState struct {
	Slots []struct {
		Id        int
		State     string
		UserId    string
		Connected bool
	}
	Line *struct {
		Waiting []struct {
			UserId           string
			Position         int
			SincePollSeconds *int
		}
	}
}

func readState(t *testing.T, dev *consoletest.Dev) devState {
	t.Helper()
	res, err := http.Get(dev.URL + "/dev/state")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var s devState
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s devState) slotOf(user string) (state string, connected bool) {
	for _, sl := range s.Slots {
		if sl.UserId == user {
			return sl.State, sl.Connected
		}
	}
	return "", false
}

func (s devState) waiting(user string) bool {
	if s.Line == nil {
		return false
	}
	for _, w := range s.Line.Waiting {
		if w.UserId == user {
			return true
		}
	}
	return false
}

// Closing the page disconnects its users' clients, as closing an app does:
// CAR then retains their concurrencies and frees them after the retention,
// instead of keeping sessions nobody will ever use.
func TestConsoleClosingThePageDisconnects(t *testing.T) {
	tab := newTab(t)
	dev := startDev(t, map[string]string{"DEV_CONCURRENCY": "2"})
	if err := tab.Open(dev.URL); err != nil {
		t.Fatal(err)
	}
	must(tab.AddUser("alice"))(t)
	act(t, tab, "alice", "start")
	must(tab.WaitUser("alice", "session"))(t)
	if st, conn := readState(t, dev).slotOf("alice"); st != "session" || !conn {
		t.Fatalf("before closing: alice %s, connected %v", st, conn)
	}
	tab.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, conn := readState(t, dev).slotOf("alice")
		if st == "retained" && !conn {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing the page: alice %s, connected %v; want retained", st, conn)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A reloaded console lists every session and every place in the line, its
// own or not (a page closed earlier, curl), and stops each.
func TestConsoleReloadCleansUp(t *testing.T) {
	tab := newTab(t)
	dev := startDev(t, map[string]string{"DEV_CONCURRENCY": "1"})
	if err := tab.Open(dev.URL); err != nil {
		t.Fatal(err)
	}
	must(tab.AddUser("alice"))(t)
	must(tab.AddUser("bob"))(t)
	act(t, tab, "alice", "start")
	must(tab.WaitUser("alice", "session"))(t)
	act(t, tab, "bob", "start")
	must(tab.WaitUser("bob", "queued"))(t)
	// carol waits too, from outside the page (curl).
	if code, _ := call(t, "POST", dev.URL+"/session", `{"UserId":"carol","ClientSession":"cs"}`, ""); code != 202 {
		t.Fatalf("carol: %d", code)
	}
	if err := tab.Open(dev.URL); err != nil { // reload
		t.Fatal(err)
	}
	if n := must(chromedp.Run(tab.Ctx, chromedp.Evaluate[int](`document.querySelectorAll("#users > li").length`)))(t); n != 0 {
		t.Fatalf("%d users on the reloaded page", n)
	}
	// Everything the server holds is listed, each with a Stop.
	for _, sel := range []string{
		`#slots li[data-user="alice"] button[data-action="stop-session"]`,
		`#line li[data-user="bob"] button[data-action="stop-waiter"]`,
		`#line li[data-user="carol"] button[data-action="stop-waiter"]`,
	} {
		if err := tab.Wait(fmt.Sprintf(`!!document.querySelector(%q)`, sel)); err != nil {
			t.Fatalf("the reloaded page does not show %s: %v", sel, err)
		}
	}
	for _, sel := range []string{
		`#slots li[data-user="alice"] button[data-action="stop-session"]`,
		`#line li[data-user="bob"] button[data-action="stop-waiter"]`,
		`#line li[data-user="carol"] button[data-action="stop-waiter"]`,
	} {
		if err := chromedp.Do(tab.Ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatal(err)
		}
		if err := tab.Wait(fmt.Sprintf(`!document.querySelector(%q)`, sel)); err != nil {
			t.Fatalf("%s still shown after its Stop: %v", sel, err)
		}
	}
	s := readState(t, dev)
	if st, _ := s.slotOf("alice"); st != "" && st != "stopping" {
		t.Errorf("alice's concurrency is %s after Stop", st)
	}
	for _, u := range []string{"bob", "carol"} {
		if s.waiting(u) {
			t.Errorf("%s still in line after Stop", u)
		}
	}
	log := must(chromedp.Run(tab.Ctx, chromedp.Text(chromedp.CSS("#log"))))(t)
	if !strings.Contains(log, "POST /dev/stop") {
		t.Errorf("the stops are not in the exchange log:\n%.400s", log)
	}
}

// A user waits while a concurrency is idle: the page says why in words (a
// place ahead whose client is gone holds until QUEUE_ABANDON), says
// and says "1 concurrency".
func TestConsoleExplainsTheWait(t *testing.T) {
	tab := newTab(t)
	dev := startDev(t, map[string]string{"DEV_CONCURRENCY": "1"})
	if code, _ := call(t, "POST", dev.URL+"/session", `{"UserId":"alice","ClientSession":"cs"}`, ""); code != 200 {
		t.Fatalf("alice: %d", code)
	}
	// ghost takes a place and never polls again (a page closed while waiting).
	if code, _ := call(t, "POST", dev.URL+"/session", `{"UserId":"ghost","ClientSession":"cs"}`, ""); code != 202 {
		t.Fatalf("ghost: %d", code)
	}
	if err := tab.Open(dev.URL); err != nil {
		t.Fatal(err)
	}
	summary := must(chromedp.Run(tab.Ctx, chromedp.Text(chromedp.CSS("#pool-summary"))))(t)
	if !strings.HasPrefix(summary, "1 concurrency:") {
		t.Errorf("pool summary %q", summary)
	}
	must(tab.AddUser("bob"))(t)
	act(t, tab, "bob", "start")
	if q := must(tab.WaitUser("bob", "queued"))(t); !strings.Contains(q.Text, "Position 2") {
		t.Fatalf("bob: %q", q.Text)
	}
	call(t, "DELETE", dev.URL+"/session?UserId=alice", "", "")
	err := tab.Wait(`(() => {
		const t = document.querySelector('li[data-user="bob"] .status').textContent;
		return t.includes("Why wait while 1 concurrency is idle?") && t.includes("ghost (Position 1) has not polled for") &&
			t.includes("QUEUE_ABANDON (30 s)");
	})()`)
	if err != nil {
		u, _ := tab.User("bob")
		t.Fatalf("bob's card does not explain the wait: %q (%v)", u.Text, err)
	}
	if why := must(chromedp.Run(tab.Ctx, chromedp.Text(chromedp.CSS("#line-why"))))(t); !strings.Contains(why, "ghost (Position 1)") {
		t.Errorf("line panel: %q", why)
	}
}

// The function's ETA is the recent rate of grants: while nobody is granted
// it grows with every poll. The page's ETA does not grow while the Position
// holds: it counts down to the earliest moment it was told.
func TestConsoleEtaDoesNotGrow(t *testing.T) {
	tab := newTab(t)
	dev := startDev(t, map[string]string{"DEV_CONCURRENCY": "1"})
	cs := `"ClientSession":"cs"`
	// Two grants, so that the line knows a rate.
	if code, _ := call(t, "POST", dev.URL+"/session", `{"UserId":"a",`+cs+`}`, ""); code != 200 {
		t.Fatalf("a: %d", code)
	}
	call(t, "DELETE", dev.URL+"/session?UserId=a", "", "")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, _ := call(t, "POST", dev.URL+"/session", `{"UserId":"b",`+cs+`}`, "")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b: %d", code)
		}
	}
	if err := tab.Open(dev.URL); err != nil {
		t.Fatal(err)
	}
	must(tab.AddUser("c"))(t)
	act(t, tab, "c", "start")
	eta := func() (shown, told int) {
		t.Helper()
		got := must(chromedp.Run(tab.Ctx, chromedp.Evaluate[[]int](`(() => {
			const m = document.querySelector('li[data-user="c"] .status').textContent.match(/ETA about (\d+) s/);
			const told = [...document.querySelector("#log").textContent.matchAll(/"EtaSeconds": (\d+)/g)];
			return [m ? Number(m[1]) : -1, told.length ? Number(told[0][1]) : -1];
		})()`)))(t)
		return got[0], got[1]
	}
	if err := tab.Wait(`/ETA about \d+ s/.test(document.querySelector('li[data-user="c"] .status').textContent)`); err != nil {
		u, _ := tab.User("c")
		t.Fatalf("no ETA shown: %q", u.Text)
	}
	shown1, told1 := eta()
	time.Sleep(6 * time.Second)
	shown2, told2 := eta()
	if u := must(tab.User("c"))(t); !strings.Contains(u.Text, "Position 1") {
		t.Fatalf("c moved: %q", u.Text)
	}
	if told2 <= told1 {
		t.Logf("the function's ETA did not grow (%d → %d): the check below proves less", told1, told2)
	}
	if shown2 > shown1 {
		t.Fatalf("the page's ETA grew from %d s to %d s while the Position held (the function said %d, then %d)", shown1, shown2, told1, told2)
	}
}
