// Command screenshot renders the dev console in a real headless Chromium and
// writes a PNG (make screenshot; the README shows it). It runs the function
// in dev mode on 127.0.0.1 with a pool of 2, and plays a short scene: two
// users in session, a Viewer guest in a room, a third user who finds the
// pool full, and one user whose client vanished (retained).
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/chromedp/chromedp"

	"carbroker/internal/dev/consoletest"
)

func main() {
	out := flag.String("out", "docs/console.png", "where to write the PNG")
	width := flag.Int("width", 1280, "viewport width in CSS pixels")
	height := flag.Int("height", 1100, "viewport height in CSS pixels")
	flag.Parse()
	if err := run(*out, *width, *height); err != nil {
		fmt.Fprintln(os.Stderr, "screenshot:", err)
		os.Exit(1)
	}
	fmt.Println("wrote", *out)
}

func run(out string, width, height int) error {
	path, err := consoletest.Chromium()
	if err != nil {
		return err
	}
	defer consoletest.Cleanup()
	dev, err := consoletest.StartDev(map[string]string{"DEV_CONCURRENCY": "2"})
	if err != nil {
		return err
	}
	defer dev.Close()
	b, err := consoletest.StartBrowser(path)
	if err != nil {
		return err
	}
	defer b.Close()
	tab, err := b.NewTab(2 * time.Minute)
	if err != nil {
		return err
	}
	defer tab.Close()
	if err := chromedp.Do(tab.Ctx, chromedp.EmulateViewport(int64(width), int64(height))); err != nil {
		return err
	}
	if err := tab.Open(dev.URL); err != nil {
		return err
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		if _, err := tab.AddUser(u); err != nil {
			return err
		}
	}
	steps := []struct{ user, action, state string }{
		{"alice", "start", "session"},
		{"bob", "start", "session"},
		{"alice", "invite-viewer", ""},
		{"alice-viewer1", "start", "session"},
		{"carol", "start", ""},
		{"bob", "disconnect", "disconnected"},
	}
	for _, s := range steps {
		if err := tab.Act(s.user, s.action); err != nil {
			return fmt.Errorf("%s %s: %w", s.user, s.action, err)
		}
		if s.state != "" {
			if _, err := tab.WaitUser(s.user, s.state); err != nil {
				return err
			}
		}
	}
	// carol either waits in line or was refused, depending on the line.
	if err := tab.Wait(`document.querySelector('li[data-user="carol"] .status[data-state="queued"], li[data-user="carol"] .status[data-state="error"]')`); err != nil {
		return fmt.Errorf("carol: %w", err)
	}
	time.Sleep(1500 * time.Millisecond) // one more poll of the pool, so countdowns have ticked
	png, err := chromedp.Run(tab.Ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return err
	}
	if p := tab.Problems(); len(p) > 0 {
		return fmt.Errorf("the page logged errors: %q", p)
	}
	if o := tab.Outside(); len(o) > 0 {
		return fmt.Errorf("the page made requests outside 127.0.0.1: %q", o)
	}
	return os.WriteFile(out, png, 0o644)
}
