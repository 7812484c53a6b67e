package console_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"carbroker/internal/consoletest"
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
	fmt.Println(tab.Requests())
}
