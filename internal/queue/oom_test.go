package queue_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"carbroker/internal/queue"
	"carbroker/internal/testing/redistest"
)

// snapshot is every key of the line with its serialised value.
func snapshot(p *redistest.Conn) map[string]string {
	keys, _ := p.Do("KEYS", "*"+project+"*").([]any)
	out := map[string]string{}
	for _, k := range keys {
		out[k.(string)], _ = p.Do("DUMP", k.(string)).(string)
	}
	return out
}

// consistent checks the line's own invariants: every user in line has a
// last poll and an address, and the per-address counts add up.
func consistent(p *redistest.Conn, base string) error {
	line, _ := p.Do("ZRANGE", base+"line", "0", "-1").([]any)
	seen, _ := p.Do("ZRANGE", base+"seen", "0", "-1").([]any)
	ipof, _ := p.Do("HKEYS", base+"ipof").([]any)
	counts, _ := p.Do("HVALS", base+"ipn").([]any)
	str := func(vs []any) []string {
		var s []string
		for _, v := range vs {
			s = append(s, v.(string))
		}
		slices.Sort(s)
		return s
	}
	sum := 0
	for _, c := range counts {
		n, _ := strconv.Atoi(c.(string))
		sum += n
	}
	if !slices.Equal(str(line), str(seen)) || !slices.Equal(str(line), str(ipof)) || sum != len(line) {
		return fmt.Errorf("line %v, seen %v, ipof %v, places per address sum %d", str(line), str(seen), str(ipof), sum)
	}
	return nil
}

// At maxmemory with noeviction every operation of the line either fails
// before it writes or completes: never a partial write. Redis checks OOM
// in a script only until its first write (Redis 4 to 7 alike, for scripts
// without a shebang such as line.lua: the script then runs past maxmemory),
// so a script is never stopped half-way. On 7.0 an operation that first
// stores a count fails (HSET is its first write); the others complete,
// their first write (pruning) needing no memory. This runs it on the real
// server.
func TestNoPartialWritesUnderOOM(t *testing.T) {
	t.Parallel()
	if !redistest.Real() {
		t.Skip("maxmemory needs a real redis-server (not on PATH)")
	}
	f := newFixture(t, queue.Options{Abandon: 30 * time.Second})
	raw := redistest.Dial(t, f.srv.Addr())
	ctx := context.Background()
	base := "{carbroker}:" + project + ":"

	// A line of three with a count, then Redis over its memory.
	f.count(2, 2)
	for _, u := range []string{"u1", "u2", "u3"} {
		f.poll(u, "198.51.100."+u[1:])
	}
	raw.Do("EVAL", "for i=1,20000 do redis.call('SET','junk:'..i, string.rep('x',100)) end return 1", "0")
	raw.Do("CONFIG", "SET", "maxmemory-policy", "noeviction")
	raw.Do("CONFIG", "SET", "maxmemory", "1mb")
	if err, ok := raw.Do("SET", "probe", "x").(error); !ok || !strings.HasPrefix(err.Error(), "OOM") {
		t.Fatalf("Redis is not out of memory: SET answered %v", err)
	}

	f.clock.Advance(1100 * time.Millisecond) // the count is stale: a poll may take the lease
	ops := []struct {
		name string
		run  func() error
	}{
		{"a newcomer's poll (joins)", func() error { _, err := f.store.Repoll(ctx, project, "n1", "198.51.100.9", nil); return err }},
		{"a waiter's poll", func() error { _, err := f.store.Poll(ctx, project, "u2", "198.51.100.2"); return err }},
		{"a poll storing a count", func() error {
			_, err := f.store.Repoll(ctx, project, "u3", "198.51.100.3", &queue.Count{Total: 3, Running: 2, At: f.clock.Now()})
			return err
		}},
		{"a grant", func() error {
			_, err := f.store.Done(ctx, project, "u1", "198.51.100.1", queue.Granted)
			return err
		}},
		{"a NoIdle", func() error {
			_, err := f.store.Done(ctx, project, "n2", "198.51.100.9", queue.NoIdle)
			return err
		}},
		{"a leave", func() error { return f.store.Quit(ctx, project, "u2") }},
		{"a capacity storing a count", func() error {
			_, err := f.store.Capacity(ctx, project, &queue.Count{Total: 3, Running: 1, At: f.clock.Now()})
			return err
		}},
	}
	for _, op := range ops {
		before := snapshot(raw)
		err := op.run()
		after := snapshot(raw)
		switch {
		case err != nil && !maps.Equal(before, after):
			t.Errorf("%s failed (%v) but changed the line", op.name, err)
		case err == nil:
			if cerr := consistent(raw, base); cerr != nil {
				t.Errorf("%s left the line inconsistent: %v", op.name, cerr)
			}
		}
		t.Logf("OOM: %s: %v", op.name, errOr(err))
	}
}

func errOr(err error) string {
	if err == nil {
		return "completed"
	}
	return "failed before writing: " + err.Error()
}
