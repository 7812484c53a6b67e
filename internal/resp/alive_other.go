//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package resp

// alive cannot peek at a socket on this system: a pooled connection the
// server closed fails its next call (once; it is not sent again).
func (cn *conn) alive() bool { return cn.br.Buffered() == 0 }
