//go:build !scf

package app

import (
	"cmp"
	"context"
	"slices"
	"time"

	"carbroker/internal/broker"
	"carbroker/internal/config"
	"carbroker/internal/dev/console"
	"carbroker/internal/dev/memredis"
	"carbroker/internal/queue"
)

// consoleOptions completes the console's options with what the dev side
// reads and does for it: the line as the embedded Redis holds it (read
// directly, outside the line's script), and a stop of any user's session:
// the API's DELETE /session (svc.Stop) without the owner's credential. mem
// is nil when the line is off or not on the embedded Redis.
func consoleOptions(o console.Options, cfg config.Config, svc *broker.Service, mem *memredis.Server) console.Options {
	o.Abandon = cfg.Queue.Abandon
	o.Stop = svc.Stop
	if mem != nil {
		o.Line = lineOf(mem, cfg.Queue.KeyPrefix, cfg.AllowedProjectIDs, time.Now)
	}
	return o
}

// lineOf lists who waits in each project's line, first first, as the
// embedded Redis holds it.
func lineOf(mem *memredis.Server, prefix string, projects []string, now func() time.Time) func(context.Context) ([]console.Waiter, error) {
	return func(context.Context) ([]console.Waiter, error) {
		out := []console.Waiter{}
		for _, p := range projects {
			lk, sk := queue.LineKeys(prefix, p)
			places, err := mem.SortedSet(lk)
			if err != nil {
				return nil, err
			}
			seen, err := mem.SortedSet(sk)
			if err != nil {
				return nil, err
			}
			users := make([]string, 0, len(places))
			for u := range places {
				users = append(users, u)
			}
			slices.SortFunc(users, func(a, b string) int { return cmp.Compare(places[a], places[b]) })
			ms := now().UnixMilli()
			for i, u := range users {
				w := console.Waiter{UserId: u, ProjectId: p, Position: i + 1}
				if at, ok := seen[u]; ok {
					s := max(0, int((ms-int64(at))/1000))
					w.SincePollSeconds = &s
				}
				out = append(out, w)
			}
		}
		return out, nil
	}
}
