//go:build linux || darwin || freebsd || netbsd || openbsd

package resp

import (
	"crypto/tls"
	"errors"
	"syscall"
	"time"
)

// alive reports whether a pooled connection may carry a command: the
// server has not closed it (a restart, its idle timeout, a kill) and sent
// nothing unasked. It peeks at the socket without waiting and without
// taking a byte from it, so a closed connection is found before the
// command is written, and a command once written is never sent again.
func (cn *conn) alive() bool {
	if cn.br.Buffered() > 0 {
		return false
	}
	nc := cn.nc
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	// the last call's deadline (passed by now) would fail the peek
	if err := nc.SetReadDeadline(time.Time{}); err != nil {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var perr error
	if err := rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait
	}); err != nil {
		return false
	}
	switch {
	case errors.Is(perr, syscall.EAGAIN) || errors.Is(perr, syscall.EWOULDBLOCK):
		return true // nothing to read: open and quiet
	case perr != nil:
		return false // reset
	}
	return false // closed by the server (nothing to peek), or it sent something unasked
}
