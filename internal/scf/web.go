package scf

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"carbroker/internal/httpapi"
)

// WebFunction returns a handler that serves next with the facts a web
// function's local proxy sends as headers, for requests whose peer is
// trusted (trusted(r.RemoteAddr); nil trusts no one):
//   - X-Scf-Request-Id becomes httpapi.Invocation{RequestID, Trigger: "web"};
//   - X-Scf-Timeout becomes a context deadline measured from the request's
//     arrival. Its unit is not documented. A function's timeout is 1 to 900 s,
//     so a value up to 900 is read as seconds and one from 1000 to 900000 as
//     milliseconds (a public dump of a live web function shows 300000 for a
//     300 s timeout); anything else is ignored.
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
		ctx := httpapi.NewInvocationContext(r.Context(), httpapi.Invocation{
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

// maxTimeout is SCF's longest function timeout (synchronous invocations).
const maxTimeout = 900

// parseTimeout reads X-Scf-Timeout: seconds up to maxTimeout, milliseconds
// from 1000 to maxTimeout*1000.
func parseTimeout(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	switch {
	case err != nil || !(f > 0):
		return 0, false
	case f <= maxTimeout:
		return time.Duration(f * float64(time.Second)), true
	case f >= 1000 && f <= maxTimeout*1000:
		return time.Duration(f * float64(time.Millisecond)), true
	}
	return 0, false
}
