package queue_test

// How the Store talks to Redis: nothing outlives a call, a new connection
// logs in within one round trip, and nothing but our own log reports a
// problem.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"carbroker/internal/queue"
	"carbroker/internal/resp"
	"carbroker/internal/testing/redistest"
	"carbroker/internal/testing/testkit"
)

// No goroutine outlives a call to the Store, whether Redis is up, down
// (refused), paused (CLIENT PAUSE: the call runs out of budget) or back,
// and none is started by opening the Store.
func TestNoGoroutineOutlivesACall(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: real time: waits out call timeouts against a paused real redis-server (8 s); make test runs it")
	}
	srv := redistest.Start(t)
	if !srv.IsReal() {
		t.Skip("needs redis-server: the embedded store runs its own goroutines in this process")
	}
	before := goleak.IgnoreCurrent()
	s, err := queue.Open(queue.Options{URL: srv.URL(), CallTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	poll := func(phase string, wantErr bool) {
		t.Helper()
		_, err := s.Poll(ctx, project, "a", "198.51.100.1")
		if (err != nil) != wantErr {
			t.Fatalf("%s: poll: %v", phase, err)
		}
		s.Check(ctx)
		if err := goleak.Find(before); err != nil {
			t.Fatalf("%s: goroutines outlive the call:\n%v", phase, err)
		}
	}
	poll("up", false)
	poll("up again (a pooled connection)", false)

	srv.Kill()
	// A burst of polls while Redis is down (a launch-day line): each fails
	// on its own, and nothing keeps redialling in the background.
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			_, _ = s.Poll(ctx, project, fmt.Sprint("u", i), "198.51.100.1")
		})
	}
	wg.Wait()
	if err := goleak.Find(before); err != nil {
		t.Fatalf("down, after a burst of polls: goroutines outlive the calls:\n%v", err)
	}
	time.Sleep(queue.RetryAfterFailure)
	poll("down", true)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(queue.RetryAfterFailure) // the Store leaves Redis alone for a second after two failures
	poll("back after a restart", false)

	admin := resp.New(resp.Options{Addr: srv.Addr()})
	defer admin.Close()
	if _, err := admin.Do(ctx, "CLIENT", "PAUSE", "1500", "ALL"); err != nil {
		t.Fatal(err)
	}
	poll("paused", true)
	deadline := time.Now().Add(5 * time.Second)
	for {
		time.Sleep(queue.RetryAfterFailure)
		if _, err := s.Poll(ctx, project, "a", "198.51.100.1"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the line did not come back after the pause: %v", err)
		}
	}
	poll("back after the pause", false)

	// A request that ends (its client went away) while a new connection
	// waits for a paused Redis: the call ends with it, dial and login
	// included, though the Store's budget is longer.
	s2, err := queue.Open(queue.Options{URL: srv.URL(), CallTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := admin.Do(ctx, "CLIENT", "PAUSE", "4000", "ALL"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	start := time.Now()
	_, err = s2.Poll(short, project, "b", "198.51.100.2")
	cancel()
	if err == nil || time.Since(start) > time.Second {
		t.Fatalf("a poll whose request ended during a pause: %v after %v", err, time.Since(start))
	}
	if err := goleak.Find(before); err != nil {
		t.Fatalf("a call ended with its request, but goroutines outlive it:\n%v", err)
	}
	if _, err := admin.Do(ctx, "CLIENT", "UNPAUSE"); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	s.Close()
	if err := goleak.Find(before); err != nil {
		t.Fatalf("goroutines outlive Close:\n%v", err)
	}
}

// waitVerdict answers the line's script with a Wait verdict, a login with
// OK (a redistest.Fake's answers).
func waitVerdict(_ int, cmd []string) string {
	switch strings.ToUpper(cmd[0]) {
	case "AUTH", "SELECT":
		return "+OK\r\n"
	case "PING":
		return "+PONG\r\n"
	case "EVALSHA", "EVAL":
		return "*8\r\n:3\r\n:1\r\n:1\r\n:-1\r\n:0\r\n:1\r\n:1\r\n:1\r\n" // Wait at 1, and the epoch
	}
	return "-ERR unknown command '" + cmd[0] + "'\r\n"
}

// A new connection costs one round trip before the first command, and only
// when there is something to say: AUTH with a password and SELECT for a
// database other than 0, sent together; no HELLO (which TencentDB's proxies
// answer with an error, and logs as a failed login), nothing else.
func TestNewConnectionLogsInWithinOneRoundTrip(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		url   string
		login [][]string
	}{
		{"redis://:acct@s3cret@%s/2", [][]string{{"AUTH", "acct@s3cret"}, {"SELECT", "2"}}},
		{"redis://:s3cret@%s/0", [][]string{{"AUTH", "s3cret"}}},
		{"redis://%s", nil},
	} {
		f := redistest.StartFake(t, nil, waitVerdict)
		url := fmt.Sprintf(c.url, f.Addr())
		s, err := queue.Open(queue.Options{URL: url, CallTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if d, err := s.Poll(context.Background(), project, "a", "198.51.100.1"); err != nil || d.Verdict != queue.Wait {
				t.Fatalf("%s: poll: %+v %v", url, d, err)
			}
		}
		s.Close()
		trips := f.Seen()
		if len(trips) != 1 {
			t.Fatalf("%s: %d connections, want 1", url, len(trips))
		}
		var got [][]string
		for _, trip := range trips[0] {
			var names []string
			for _, cmd := range trip {
				names = append(names, cmd[0])
				if cmd[0] == "AUTH" || cmd[0] == "SELECT" {
					names[len(names)-1] = strings.Join(cmd, " ")
				}
			}
			got = append(got, names)
		}
		var want [][]string
		if c.login != nil {
			var names []string
			for _, cmd := range c.login {
				names = append(names, strings.Join(cmd, " "))
			}
			want = append(want, names)
		}
		want = append(want, []string{"EVALSHA"}, []string{"EVALSHA"})
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: round trips %q, want %q", url, got, want)
		}
	}
}

// Every Redis problem reaches our structured log, and nothing else writes
// a line: a refused connection, a wrong password, a Redis that does not
// answer. Run in a child process whose stderr is the evidence.
func TestNoPlainTextLines(t *testing.T) {
	t.Parallel()
	if os.Getenv("QUEUE_PLAIN_TEXT_CHILD") == "1" {
		plainTextChild(t)
		return
	}
	srv := redistest.Start(t)
	if !srv.IsReal() {
		t.Skip("needs redis-server (a password)")
	}
	ctx := context.Background()
	admin := resp.New(resp.Options{Addr: srv.Addr()})
	defer admin.Close()
	if _, err := admin.Do(ctx, "CONFIG", "SET", "requirepass", "right-s3cret"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoPlainTextLines$", "-test.count=1")
	cmd.Env = append(os.Environ(), "QUEUE_PLAIN_TEXT_CHILD=1", "CHILD_REDIS="+srv.Addr())
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if stderr.Len() != 0 {
		t.Fatalf("something other than our log wrote:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), "child: 3 problems logged") {
		t.Fatalf("child:\n%s", stdout.String())
	}
}

func plainTextChild(t *testing.T) {
	addr := os.Getenv("CHILD_REDIS")
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	logged := 0
	for _, url := range []string{"redis://127.0.0.1:1", "redis://:wrong-s3cret@" + addr + "/0", "redis://" + silent.Addr().String()} {
		var logs testkit.Buffer
		s, err := queue.Open(queue.Options{URL: url, CallTimeout: 200 * time.Millisecond, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			_, _ = s.Poll(context.Background(), project, "a", "198.51.100.1")
			s.Check(context.Background())
		}
		s.Close()
		if !strings.Contains(logs.String(), `"level":"WARN"`) || strings.Contains(logs.String(), "s3cret") {
			t.Fatalf("%s: our log: %s", resp.RedactURL(url), logs.String())
		}
		logged++
	}
	time.Sleep(200 * time.Millisecond) // anything written in the background
	fmt.Printf("child: %d problems logged\n", logged)
}
