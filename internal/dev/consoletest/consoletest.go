// Package consoletest drives the dev console in a real headless Chromium
// (Debian's chromium) through github.com/chromedp/chromedp, for the
// console's browser tests and for `make screenshot`. It starts the function
// in dev mode on 127.0.0.1 (the built binary, main -dev), launches the
// browser with flags fit for CI (root, no GPU, no network beyond loopback),
// and records every request the page makes and every console error.
package consoletest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"carbroker/internal/testing/build"
	"carbroker/internal/testing/testkit"
)

// Chromium returns the browser to run: $CHROMIUM if set, else chromium or
// chromium-browser on PATH. The error says why there is none.
func Chromium() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return exec.LookPath(p)
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("chromium is not on PATH (Debian: apt-get install -y chromium; or set CHROMIUM)")
}

// Dev is the function running in dev mode.
type Dev struct {
	URL    string // http://127.0.0.1:PORT
	Stderr *testkit.Buffer
	stop   func()
}

// Close stops the function and waits for it.
func (d *Dev) Close() { d.stop() }

// The function's binary, built once per process (build.Function).
var (
	buildOnce sync.Once
	buildDir  string
	builtBin  string
	buildErr  error
)

// Cleanup removes the binary StartDev built; call it when done (TestMain).
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

var listening = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"`)

// StartDev runs the built function in dev mode (main -dev) on a free
// loopback port, with vars as its whole environment.
func StartDev(vars map[string]string) (*Dev, error) {
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "consoletest-"); buildErr == nil {
			builtBin, buildErr = build.Function(context.Background(), buildDir, false)
		}
	})
	if buildErr != nil {
		return nil, buildErr
	}
	cmd := exec.Command(builtBin, "-dev", "-listen", "127.0.0.1:0")
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr := &testkit.Buffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := listening.FindStringSubmatch(stderr.String()); m != nil {
			return &Dev{URL: "http://" + m[1], Stderr: stderr, stop: stop}, nil
		}
		select {
		case <-done:
			return nil, fmt.Errorf("dev mode exited (%v): %s", cmd.ProcessState, stderr.String())
		default:
		}
	}
	stop()
	return nil, errors.New("dev mode did not start within 20 s")
}

// Browser is one headless Chromium.
type Browser struct {
	ctx     context.Context
	cancel  func()
	dataDir string
}

// StartBrowser launches Chromium with a fresh profile. Host names other than
// 127.0.0.1 (and localhost, mapped to it) do not resolve inside it, so
// nothing leaves the machine even by mistake (Tab.Outside still reports any
// attempt).
func StartBrowser(path string) (*Browser, error) {
	dir, err := os.MkdirTemp("", "carbroker-chromium-")
	if err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("host-resolver-rules", "MAP localhost 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1280, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil { // start the browser now
		bcancel()
		acancel()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	return &Browser{ctx: bctx, cancel: func() { bcancel(); acancel() }, dataDir: dir}, nil
}

// Close stops the browser and removes its profile.
func (b *Browser) Close() {
	b.cancel()
	for range 50 { // the browser's children may write there for a moment
		if os.RemoveAll(b.dataDir) == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Tab is one page of the browser, with what it did recorded.
type Tab struct {
	Ctx    context.Context
	cancel func()

	mu       sync.Mutex
	requests []string
	failed   []string
	problems []string
}

// NewTab opens a tab that times out after timeout.
func (b *Browser) NewTab(timeout time.Duration) (*Tab, error) {
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	ctx, cancel2 := chromedp.NewContext(ctx)
	t := &Tab{Ctx: ctx, cancel: func() { cancel2(); cancel() }}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			t.note(&t.requests, ev.Request.URL)
		case *network.EventResponseReceived:
			if ev.Response.Status >= 400 {
				t.note(&t.failed, fmt.Sprintf("%d %s", ev.Response.Status, ev.Response.URL))
			}
		case *network.EventLoadingFailed:
			t.note(&t.failed, fmt.Sprintf("failed (%s) %s", ev.ErrorText, ev.RequestID))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == "error" || ev.Type == "assert" {
				t.note(&t.problems, fmt.Sprintf("console.%s: %s", ev.Type, args(ev.Args)))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			t.note(&t.problems, fmt.Sprintf("uncaught at %s:%d: %s", d.URL, d.LineNumber+1, msg))
		case *cdplog.EventEntryAdded:
			// The browser logs every 4xx/5xx reply with source "network":
			// refusals the page expects (a 503 when the pool is full) among
			// them. Those are checked through Failed; anything else at
			// level error (CSP, JavaScript) is the page's fault.
			if ev.Entry.Level == "error" && ev.Entry.Source != "network" {
				t.note(&t.problems, fmt.Sprintf("browser log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	})
	if err != nil {
		t.cancel()
		return nil, err
	}
	return t, nil
}

// Close closes the tab.
func (t *Tab) Close() { t.cancel() }

func (t *Tab) note(list *[]string, s string) {
	t.mu.Lock()
	*list = append(*list, s)
	t.mu.Unlock()
}

// Requests returns the URL of every request the page made.
func (t *Tab) Requests() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.requests...)
}

// Outside returns the requests that were not for 127.0.0.1 or localhost
// (which Chromium resolves to loopback itself; data: URLs excepted: they
// never leave the page).
func (t *Tab) Outside() []string {
	var out []string
	for _, r := range t.Requests() {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "data" && u.Hostname() != "127.0.0.1" && u.Hostname() != "localhost") {
			out = append(out, r)
		}
	}
	return out
}

// Failed returns the replies with a status of 400 or more ("STATUS URL"),
// and the requests that got no reply.
func (t *Tab) Failed() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.failed...)
}

// Problems returns the console errors and uncaught exceptions of the page.
func (t *Tab) Problems() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.problems...)
}

func args(as []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range as {
		if a.Value != nil {
			parts = append(parts, string(a.Value))
		} else {
			parts = append(parts, a.Description)
		}
	}
	return strings.Join(parts, " ")
}

// Open loads the console and waits until it has read the pool.
func (t *Tab) Open(base string) error {
	return chromedp.Do(t.Ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"] #auth-mode`)))
}

// AddUser adds a simulated user (id is ignored in ticket mode, where the
// server chooses) and returns the key of its card.
func (t *Tab) AddUser(id string) (string, error) {
	before, err := chromedp.Run(t.Ctx, chromedp.Evaluate[int](`document.querySelectorAll("#users > li").length`))
	if err != nil {
		return "", err
	}
	steps := []chromedp.Action[chromedp.Void]{}
	if id != "" {
		steps = append(steps, chromedp.SetValue(chromedp.CSS("#new-user-id"), id))
	}
	steps = append(steps, chromedp.Click(chromedp.CSS(`#add-user button[type="submit"]`)))
	if err := chromedp.Do(t.Ctx, steps...); err != nil {
		return "", err
	}
	return chromedp.Run(t.Ctx, chromedp.Poll[string](fmt.Sprintf(
		`document.querySelectorAll("#users > li").length > %d && document.querySelector("#users > li:last-child").dataset.user`, before)))
}

// Act clicks a user's button once it is enabled: start, disconnect, stop,
// invite-viewer, invite-player or remove.
func (t *Tab) Act(user, action string) error {
	return chromedp.Do(t.Ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(
		`li[data-user=%q] button[data-action=%q]:not([disabled])`, user, action))))
}

// UserState is what a user's card says.
type UserState struct {
	State  string // new, starting, queued, session, disconnected, stopped, error
	Text   string
	Slot   string // the concurrency's number, "" when none
	UserID string
}

// WaitUser waits until the user's card shows state and returns the card.
func (t *Tab) WaitUser(user, state string) (UserState, error) {
	sel := fmt.Sprintf(`li[data-user=%q] .status[data-state=%q]`, user, state)
	if err := t.Wait(fmt.Sprintf(`!!document.querySelector(%q)`, sel)); err != nil {
		u, _ := t.User(user)
		return u, fmt.Errorf("%s never reached %s (last: %+v): %w", user, state, u, err)
	}
	return t.User(user)
}

// Wait waits up to 30 s until the JavaScript expression is truthy.
func (t *Tab) Wait(expr string) error {
	_, err := chromedp.Run(t.Ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(30*time.Second)))
	return err
}

// User reads a user's card.
func (t *Tab) User(user string) (UserState, error) {
	return chromedp.Run(t.Ctx, chromedp.Evaluate[UserState](fmt.Sprintf(`(() => {
		const li = document.querySelector(%q);
		if (!li) return {};
		const st = li.querySelector(".status");
		return {State: st.dataset.state, Text: st.textContent, Slot: st.dataset.slot || "", UserID: li.querySelector(".name").textContent};
	})()`, fmt.Sprintf(`li[data-user=%q]`, user))))
}
