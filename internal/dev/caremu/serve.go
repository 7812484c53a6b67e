package caremu

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// ServeOptions tune Serve.
type ServeOptions struct {
	Addr string // "" means 127.0.0.1:0, a free port
	// IdleTimeout closes a connection after this long without a request
	// (a kept-alive one, or a new one that sent none yet), as CAR's
	// endpoint does after a time it does not document; 0 keeps idle
	// connections open (and new ones for 10 s).
	IdleTimeout time.Duration
}

// Serve is Listen with options.
func (e *Emulator) Serve(o ServeOptions) (endpoint string, stop func(), err error) {
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	var conns sync.WaitGroup // Add runs on the Serve goroutine only
	header := 10 * time.Second
	if o.IdleTimeout > 0 {
		header = min(header, o.IdleTimeout)
	}
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: header,
		IdleTimeout:       o.IdleTimeout,
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				conns.Add(1)
			case http.StateClosed, http.StateHijacked:
				conns.Done()
			}
		},
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln) // returns http.ErrServerClosed after Close
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = srv.Close()
			<-served
			conns.Wait()
		})
	}
	return ln.Addr().String(), stop, nil
}
