package scf

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"carbroker/internal/invocation"
)

// WebFunction returns a handler that serves next with the facts a web
// function's local proxy sends as headers, for requests whose peer is
// trusted (trusted(r.RemoteAddr); nil trusts no one):
//   - X-Scf-Request-Id becomes invocation.Info{RequestID, Trigger: "web"};
//   - X-Scf-Timeout becomes a context deadline measured from the request's
//     arrival. Its unit is not documented; it is read as SECONDS, the unit of
//     the function's timeout setting (were it milliseconds, the deadline would
//     be late, never early).
//
// Requests from other peers pass through untouched: their X-Scf-* headers
// are ignored.
func WebFunction(next http.Handler, trusted func(remoteAddr string) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived := time.Now()
		if trusted == nil || !trusted(r.RemoteAddr) {
			next.ServeHTTP(w, r)
			return
		}
		ctx := invocation.NewContext(r.Context(), invocation.Info{
			RequestID: r.Header.Get("X-Scf-Request-Id"),
			Trigger:   "web",
		})
		if d, ok := parseTimeout(r.Header.Get("X-Scf-Timeout")); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, arrived.Add(d))
			defer cancel()
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// parseTimeout reads a positive number of seconds, at most a day.
func parseTimeout(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || !(f > 0 && f <= 24*60*60) {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}
