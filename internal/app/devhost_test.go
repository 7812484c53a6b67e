//go:build !scf

package app

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// In a VM or container, dev mode listens on a non-loopback address and the
// browser names it: that Host is answered too, and still no other name.
func TestHostGuardListenAddress(t *testing.T) {
	h := hostGuard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), "192.0.2.10:9000")
	for host, want := range map[string]int{
		"192.0.2.10:9000": 200, "192.0.2.10": 200, "localhost:9000": 200, "[::1]:9000": 200,
		"192.0.2.11:9000": 403, "dev.example:9000": 403, "": 403,
	} {
		req := httptest.NewRequest("GET", "/dev/state", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %q: %d, want %d", host, rec.Code, want)
		}
	}
	// -listen 0.0.0.0 (all interfaces): the address the connection came in
	// on is the one the browser named.
	h = hostGuard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), "0.0.0.0:9000")
	local := &net.TCPAddr{IP: net.ParseIP("198.51.100.20"), Port: 9000}
	for host, want := range map[string]int{"198.51.100.20:9000": 200, "198.51.100.21:9000": 403, "rebound.example:9000": 403} {
		req := httptest.NewRequest("GET", "/", nil)
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, net.Addr(local)))
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("-listen 0.0.0.0, Host %q: %d, want %d", host, rec.Code, want)
		}
	}
}
