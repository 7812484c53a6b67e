package main

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"carbroker/internal/dev/caremu"
)

// CAR's error code for a full pool, and the broker's for the same.
const (
	carNoIdle    = "ResourceNotFound.NoIdle"
	brokerNoIdle = "NoIdleConcurrency"
)

// never is the end of a window whose request got no answer: the function
// may still have been calling CAR on its behalf.
var never = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// window is when one request of the harness was in flight: from just
// before it was sent to just after its answer was read. Every CAR call the
// function makes for that request arrives at the emulator inside it.
type window struct{ from, to time.Time }

func (w window) contains(t time.Time) bool { return !t.Before(w.from) && !t.After(w.to) }

func inAny(ws []window, t time.Time) bool {
	for _, w := range ws {
		if w.contains(t) {
			return true
		}
	}
	return false
}

// ledger is what the harness itself knows each slot holds: the user it saw
// there and how long, at least, the emulator must keep it for that user. An
// entry never claims a slot for longer than CAR may keep it (a live session
// until the harness ends it, a retained one until its retention ends, a
// stopping one until StopTime after the DELETE was sent), so a start that
// lands on a slot the ledger still holds for someone else is a real
// violation, never a race.
type ledger struct {
	mu       sync.Mutex
	hold     map[int]holding
	sessions map[string]string // ServerSession → the user it was given to
}

type holding struct {
	user  string
	until time.Time // zero: for as long as the session lives
}

func newLedger() *ledger {
	return &ledger{hold: map[int]holding{}, sessions: map[string]string{}}
}

// claim records that user holds slot after a start answered at at. It
// returns a violation if the ledger still held slot for another user then.
func (l *ledger) claim(user string, slot int, at time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var v string
	if h, ok := l.hold[slot]; ok && h.user != user && (h.until.IsZero() || h.until.After(at)) {
		held := "a live session"
		if !h.until.IsZero() {
			held = fmt.Sprintf("a session kept until %s", h.until.Format("15:04:05.000"))
		}
		v = fmt.Sprintf("%s was given slot %d at %s while it was %s of %s",
			user, slot, at.Format("15:04:05.000"), held, h.user)
	}
	for id, h := range l.hold {
		if h.user == user {
			delete(l.hold, id)
		}
	}
	l.hold[slot] = holding{user: user}
	return v
}

// release bounds user's hold on slot: CAR keeps it for user at least until
// until, and may then give it to anyone.
func (l *ledger) release(user string, slot int, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.hold[slot]; ok && h.user == user {
		l.hold[slot] = holding{user: user, until: until}
	}
}

// forget drops user's entries: after an unexpected answer its state is
// unknown, and the ledger only keeps what it knows.
func (l *ledger) forget(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, h := range l.hold {
		if h.user == user {
			delete(l.hold, id)
		}
	}
}

// serverSession records a ServerSession given to user; it returns a
// violation if another user was given the same one.
func (l *ledger) serverSession(user, s string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if other, ok := l.sessions[s]; ok && other != user {
		return fmt.Sprintf("the ServerSession given to %s had already been given to %s", user, other)
	}
	l.sessions[s] = user
	return ""
}

// record is what one user did, for the audit of the emulator's call log.
type record struct {
	starts    []window // every POST /session
	stops     []window // every DELETE /session
	noIdle    []window // the starts answered 503 NoIdleConcurrency
	created   int      // starts answered 200
	refreshes int      // starts while connected: each takes over its own session
	unsure    bool     // a request went unanswered or wrong: counts may not match
}

// audit checks the emulator's call log against what the users did:
//   - every ApplyConcurrent and CreateSession for a user arrived during one
//     of that user's starts, and every DestroySession during one of its
//     stops (no session destroyed that its user did not stop);
//   - every 503 NoIdleConcurrency answered a start for which CAR itself
//     answered ResourceNotFound.NoIdle (the pool really was full);
//   - each user got as many sessions from CAR as starts answered 200, and
//     was taken over exactly as often as it refreshed a live session.
func audit(calls []caremu.Call, records map[string]*record, takeovers func(string) int) []string {
	var out []string
	byUser := map[string][]caremu.Call{}
	for _, c := range calls {
		if c.UserID != "" {
			byUser[c.UserID] = append(byUser[c.UserID], c)
		}
	}
	for _, user := range slices.Sorted(maps.Keys(byUser)) {
		cs := byUser[user]
		r := records[user]
		if r == nil {
			out = append(out, fmt.Sprintf("CAR got %s for %s, a user the harness never ran", cs[0].Action, user))
			continue
		}
		for _, c := range cs {
			at := c.Time.Format("15:04:05.000")
			switch c.Action {
			case "ApplyConcurrent", "CreateSession":
				if !inAny(r.starts, c.Time) {
					out = append(out, fmt.Sprintf("%s for %s at %s, outside any start of %s", c.Action, user, at, user))
				}
			case "DestroySession":
				if !inAny(r.stops, c.Time) {
					out = append(out, fmt.Sprintf("DestroySession for %s at %s, which %s did not stop", user, at, user))
				}
			}
		}
	}
	for _, user := range slices.Sorted(maps.Keys(records)) {
		r, cs := records[user], byUser[user]
		for _, w := range r.noIdle {
			found := false
			for _, c := range cs {
				if c.Action == "ApplyConcurrent" && c.Code == carNoIdle && w.contains(c.Time) {
					found = true
					break
				}
			}
			if !found {
				out = append(out, fmt.Sprintf("503 %s to %s at %s, but CAR never answered %s to it: the pool was not full",
					brokerNoIdle, user, w.to.Format("15:04:05.000"), carNoIdle))
			}
		}
		if r.unsure {
			continue
		}
		created := 0
		for _, c := range cs {
			if c.Action == "CreateSession" && c.Code == "" && !c.Canceled {
				created++
			}
		}
		if created != r.created {
			out = append(out, fmt.Sprintf("%s: CAR created %d sessions, the function answered %d starts with one", user, created, r.created))
		}
		if n := takeovers(user); n != r.refreshes {
			out = append(out, fmt.Sprintf("%s: taken over %d times, but it refreshed its own session %d times", user, n, r.refreshes))
		}
	}
	return out
}
