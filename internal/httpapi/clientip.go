package httpapi

import (
	"net"
	"net/netip"
	"strings"

	"carbroker/internal/queue"
)

// clientIP is the one rule for the caller's address (CAR's UserIp): the
// transport's peer address, except that when the peer is a trusted proxy the
// right-most X-Forwarded-For entry outside the trusted CIDRs is used.
// Adapters (SCF events) set the peer address from their own trusted source.
func clientIP(remoteAddr string, xff []string, trusted []netip.Prefix) (netip.Addr, bool) {
	peer, ok := parseAddr(remoteAddr)
	if !ok {
		return netip.Addr{}, false
	}
	if !inAny(peer, trusted) {
		return peer, true
	}
	// Walk X-Forwarded-For right to left: each hop appends the address it saw.
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, ok := parseAddr(strings.TrimSpace(hops[j]))
			if !ok {
				return peer, true // garbage from an untrusted hop: stop at the last trusted one
			}
			if !inAny(a, trusted) {
				return a, true
			}
			peer = a
		}
	}
	return peer, true
}

// parseAddr accepts "ip", "ip:port" and "[ipv6]:port".
func parseAddr(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func inAny(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// public reports whether CAR can schedule by the address.
func public(a netip.Addr) bool {
	return queue.Public(a)
}
