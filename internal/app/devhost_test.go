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
	t.Parallel()
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

// Other spellings of loopback an attacker might try: the ones a rebinding
// page cannot send (an IP literal, localhost itself) pass, every name and
// every non-canonical numeric form (which a name server could answer for)
// is refused, and an absolute-form request is judged by its URL's host, as
// net/http sets it.
func TestHostGuardSpellings(t *testing.T) {
	t.Parallel()
	h := hostGuard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), "127.0.0.1:9000")
	for host, want := range map[string]int{
		"localhost.": 200, "LOCALHOST.:9000": 200, "[::ffff:127.0.0.1]:9000": 200, "[0:0:0:0:0:0:0:1]:9000": 200, "[::1]": 200,
		"localhost..": 403, "127.1:9000": 403, "2130706433": 403, "0x7f000001": 403, "127.000.000.001": 403,
		"0.0.0.0:9000": 403, "[::]:9000": 403, "[::1%25lo]:9000": 403, "127.0.0.1.nip.io": 403, "localhost.evil.example": 403,
		"[::ffff:7f00:2]:9000": 403, "127.0.0.1:9000:9000": 403,
	} {
		req := httptest.NewRequest("GET", "/dev/state", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %q: %d, want %d", host, rec.Code, want)
		}
	}
	req := httptest.NewRequest("GET", "http://rebound.example:9000/dev/state", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 403 {
		t.Errorf("absolute-form request for rebound.example: %d, want 403", rec.Code)
	}
}
