// Package console is the dev console: one page (go:embed'ed, no build step,
// no outside resources) that shows the embedded CAR emulator's pool, the
// waiting line and simulated users, built on the browser client module
// (client/carbroker.js, the one app developers copy), and the dev-only
// endpoints the page reads the pool from. Dev mode puts Handler in front of the HTTP API; no other mode
// serves any of it.
//
// Routes (exact paths; everything else goes to the API):
//
//	GET  /                     the page
//	GET  /console.js, /console.css
//	GET  /carbroker.js, /carbroker.d.ts   the client module
//	GET  /dev/state            the pool (and the line) as JSON
//	POST /dev/connect          {"UserId"}: the user's client connects (TCGSDK.start)
//	POST /dev/disconnect       {"UserId"}: the user's client vanishes; CAR retains its concurrency
//	POST /dev/stop             {"UserId"}: stops the user's session and leaves the line, whoever
//	                           started it (a page closed earlier, curl): what DELETE /session does
//	                           for the owner, without the owner's credential
//
// The page drives its own users through the same public routes as any
// client. The dev endpoints take application/json only, so a page of
// another origin cannot send them (no CORS preflight is ever granted).
package console

import (
	"context"
	"embed"
	"encoding/json"
	"io"
	"io/fs"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"carbroker/internal/dev/caremu"
	"carbroker/internal/fault"
	"carbroker/internal/httpapi"
)

//go:embed assets
var assets embed.FS

// clientFiles is the browser client, carbroker.js and its types, which app
// developers copy from this folder's client/ or fetch from dev mode.
//
//go:embed client/carbroker.js client/carbroker.d.ts
var clientFiles embed.FS

// Pool is the emulator as the console sees it.
type Pool interface {
	Now() time.Time
	State() []caremu.Slot
	Connect(userID string) bool
	Disconnect(userID string) bool
}

var _ Pool = (*caremu.Emulator)(nil)

// Waiter is one user in the waiting line.
type Waiter struct {
	UserId     string
	ProjectId  string `json:",omitempty"`
	Position   int
	EtaSeconds *int `json:",omitempty"`
	// SincePoll is how long ago the user last polled: a place not polled
	// for QUEUE_ABANDON is dropped at the line's next poll.
	SincePollSeconds *int `json:",omitempty"`
}

// Options describe what the page shows.
type Options struct {
	Pool       Pool
	Retention  time.Duration // the emulator's, for the page's legend
	ClientWait time.Duration
	AuthMode   string
	ProjectID  string
	// LineOn says the function has a waiting line. Line, if set, lists who
	// waits, first first; without it the page lists its own users' places.
	LineOn bool
	Line   func(ctx context.Context) ([]Waiter, error)
	// Abandon is QUEUE_ABANDON, for the page's explanations.
	Abandon time.Duration
	// Stop stops a user's session and leaves the line (POST /dev/stop);
	// nil: no such endpoint.
	Stop func(ctx context.Context, userID string) error
	// Sweep, if set, ends the sessions of ended leases (SESSION_MAX) on
	// each GET /dev/state, inside that request: dev mode has no timer
	// trigger, and the page polls once a second.
	Sweep func(ctx context.Context)
}

// Handler serves the console in front of api.
func Handler(api http.Handler, o Options) http.Handler {
	files := map[string]struct {
		fsys fs.FS
		name string
		typ  string
	}{
		"/":               {assets, "assets/index.html", "text/html; charset=utf-8"},
		"/console.js":     {assets, "assets/console.js", "text/javascript; charset=utf-8"},
		"/console.css":    {assets, "assets/console.css", "text/css; charset=utf-8"},
		"/carbroker.js":   {clientFiles, "client/carbroker.js", "text/javascript; charset=utf-8"},
		"/carbroker.d.ts": {clientFiles, "client/carbroker.d.ts", "text/plain; charset=utf-8"},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f, ok := files[r.URL.Path]; ok && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			b, err := fs.ReadFile(f.fsys, f.name)
			if err != nil { // embedded: cannot happen
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			h := w.Header()
			h.Set("Content-Type", f.typ)
			h.Set("Cache-Control", "no-store")
			h.Set("X-Content-Type-Options", "nosniff")
			// The page loads nothing from outside this origin; what is
			// pasted into its console may also call the dev server by its
			// other loopback name (the page at localhost, the README's
			// loop at 127.0.0.1), and nothing else.
			h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' http://127.0.0.1:* http://localhost:*; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
			h.Set("Referrer-Policy", "no-referrer")
			if r.Method == http.MethodGet {
				_, _ = w.Write(b)
			}
			return
		}
		switch {
		case r.URL.Path == "/dev/state" && r.Method == http.MethodGet:
			if o.Sweep != nil {
				o.Sweep(r.Context())
			}
			state(w, r, o)
		case (r.URL.Path == "/dev/connect" || r.URL.Path == "/dev/disconnect") && r.Method == http.MethodPost:
			connection(w, r, o.Pool, r.URL.Path == "/dev/connect")
		case r.URL.Path == "/dev/stop" && r.Method == http.MethodPost && o.Stop != nil:
			stop(w, r, o.Stop)
		case strings.HasPrefix(r.URL.Path, "/dev/"):
			httpapi.WriteError(w, fault.New(fault.NotFound, "dev endpoints: GET /dev/state, POST /dev/connect, POST /dev/disconnect, POST /dev/stop"), "")
		default:
			api.ServeHTTP(w, r)
		}
	})
}

// slotView is one concurrency as the page shows it.
type slotView struct {
	Id          int
	State       caremu.State
	UserId      string `json:",omitempty"`
	Connected   bool
	SecondsLeft *int `json:",omitempty"` // until the state ends (retained, locked, stopping, session awaiting its client)
	Guests      []guestView
}

type guestView struct {
	UserId string
	Role   string
}

type stateView struct {
	AuthMode          string
	ProjectId         string
	RetentionSeconds  int
	ClientWaitSeconds int
	AbandonSeconds    int  // QUEUE_ABANDON
	CanStop           bool // POST /dev/stop exists
	Slots             []slotView
	// Line is null when the function has no line.
	Line *lineView
}

type lineView struct {
	Waiting []Waiter // null when the line cannot be listed here
	Error   string   `json:",omitempty"`
}

func state(w http.ResponseWriter, r *http.Request, o Options) {
	now := o.Pool.Now()
	v := stateView{AuthMode: o.AuthMode, ProjectId: o.ProjectID,
		RetentionSeconds: seconds(o.Retention), ClientWaitSeconds: seconds(o.ClientWait),
		AbandonSeconds: seconds(o.Abandon), CanStop: o.Stop != nil, Slots: []slotView{}}
	for _, s := range o.Pool.State() {
		sv := slotView{Id: s.ID, State: s.State, UserId: s.UserID, Connected: s.Connected, Guests: []guestView{}}
		if !s.Until.IsZero() {
			left := seconds(s.Until.Sub(now))
			sv.SecondsLeft = &left
		}
		for id, role := range s.Guests {
			sv.Guests = append(sv.Guests, guestView{UserId: id, Role: role})
		}
		slices.SortFunc(sv.Guests, func(a, b guestView) int { return strings.Compare(a.UserId, b.UserId) })
		v.Slots = append(v.Slots, sv)
	}
	if o.LineOn || o.Line != nil {
		v.Line = &lineView{}
	}
	if o.Line != nil {
		if ws, err := o.Line(r.Context()); err != nil {
			v.Line.Error = err.Error()
		} else {
			v.Line.Waiting = append([]Waiter{}, ws...)
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, v)
}

// userOf reads the {"UserId"} body of a dev endpoint, JSON only: a page of
// another origin cannot send that without a CORS preflight, which these
// endpoints never grant.
func userOf(w http.ResponseWriter, r *http.Request) (string, bool) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		httpapi.WriteError(w, fault.New(fault.Invalid, "Content-Type must be application/json"), "")
		return "", false
	}
	var in struct{ UserId string }
	b, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err == nil {
		err = json.Unmarshal(b, &in)
	}
	if err != nil || in.UserId == "" {
		httpapi.WriteError(w, fault.New(fault.Invalid, `body must be {"UserId":"…"}`), "")
		return "", false
	}
	return in.UserId, true
}

func connection(w http.ResponseWriter, r *http.Request, p Pool, connect bool) {
	user, ok := userOf(w, r)
	if !ok {
		return
	}
	changed := false
	if connect {
		changed = p.Connect(user)
	} else {
		changed = p.Disconnect(user)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"UserId": user, "Changed": changed})
}

func stop(w http.ResponseWriter, r *http.Request, stopUser func(context.Context, string) error) {
	user, ok := userOf(w, r)
	if !ok {
		return
	}
	if err := stopUser(r.Context(), user); err != nil {
		httpapi.WriteError(w, err, "")
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"UserId": user})
}

// seconds rounds up, so a countdown reaches 0 only when the state ends.
func seconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}
