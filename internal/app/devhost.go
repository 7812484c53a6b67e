//go:build !scf

package app

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"carbroker/internal/car"
	"carbroker/internal/config"
	"carbroker/internal/fault"
	"carbroker/internal/httpapi"
)

// sealedEnv is the environment dev mode reads: the shell's, without the
// variables that would point it at production. CAR_ENDPOINT and
// TENCENTCLOUD_* would send dev traffic (or real keys) to real CAR;
// QUEUE_REDIS_URL and QUEUE_KEY_PREFIX would write emulator counts, grants
// and holder marks into a production line; CAR_PROJECT_ID,
// CAR_APPLICATION_ID and the allow-lists would name production projects to
// the emulator. Dev mode uses its own (cap-dev00000, an embedded Redis).
func sealedEnv(getenv func(string) string) (sealed func(string) string, ignored []string) {
	for _, k := range config.DevSealed {
		if strings.TrimSpace(getenv(k)) != "" {
			ignored = append(ignored, k)
		}
	}
	if car.EnvCredentials(getenv) != (car.Credentials{}) {
		ignored = append(ignored, "TENCENTCLOUD_*")
	}
	return func(k string) string {
		if isSealed(k) {
			return ""
		}
		return getenv(k)
	}, ignored
}

func isSealed(k string) bool {
	if strings.HasPrefix(k, "TENCENTCLOUD_") {
		return true
	}
	return slices.Contains(config.DevSealed, k)
}

// hostGuard answers only requests whose Host names this server: localhost,
// 127.0.0.1 or [::1] (any port), the host given to -listen, or the address
// the connection arrived on. A page whose DNS name was rebound to this
// machine sends its own name as Host, so it gets a 403 and reaches neither
// the API nor /dev/*. (A name can be rebound; the address the browser
// connected to cannot belong to anyone else.)
func hostGuard(next http.Handler, listen string) http.Handler {
	listenHost := ""
	if h, _, err := net.SplitHostPort(listen); err == nil {
		listenHost = strings.ToLower(h)
	}
	refuse := fault.New(fault.Forbidden, "dev mode answers only requests for localhost, 127.0.0.1 or [::1] (any port), or the -listen address: "+
		"another Host header is what a page rebinding its DNS name to this machine would send; open the console at http://localhost:PORT/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowedHost(r, listenHost) {
			httpapi.WriteError(w, refuse, "")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func allowedHost(r *http.Request, listenHost string) bool {
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	host = strings.TrimSuffix(host, ".") // "localhost." is localhost
	switch {
	case host == "":
		return false
	case host == "localhost":
		return true
	case listenHost != "" && host == listenHost:
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false // a name other than localhost: rebinding is possible
	}
	a = a.Unmap()
	if a.IsLoopback() {
		return a == netip.MustParseAddr("127.0.0.1") || a == netip.IPv6Loopback()
	}
	if local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(local.String()); err == nil && ap.Addr().Unmap() == a {
			return true
		}
	}
	return false
}
