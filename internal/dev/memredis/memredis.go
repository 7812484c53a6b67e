// Package memredis runs an in-process Redis (github.com/alicebob/miniredis)
// for dev mode and for test machines without redis-server. It speaks the
// same protocol and runs the same Lua scripts; unlike plain miniredis, its
// keys expire with the real clock.
package memredis

import (
	"errors"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Server is a running in-process Redis.
type Server struct {
	m    *miniredis.Miniredis
	stop chan struct{}
	done sync.WaitGroup
	once sync.Once
}

// tick is how often expiry catches up with the real clock.
const tick = 50 * time.Millisecond

// Start serves an empty Redis on addr ("" means 127.0.0.1 and a free port).
func Start(addr string) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(addr); err != nil {
		return nil, err
	}
	s := &Server{m: m, stop: make(chan struct{})}
	s.done.Add(1)
	go s.expire()
	return s, nil
}

// expire moves miniredis's TTL clock with the real one (miniredis expires
// keys only when told time has passed).
func (s *Server) expire() {
	defer s.done.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.m.FastForward(now.Sub(last))
			last = now
		}
	}
}

// Addr is host:port.
func (s *Server) Addr() string { return s.m.Addr() }

// URL is redis://host:port.
func (s *Server) URL() string { return "redis://" + s.m.Addr() }

// Close stops the server and its expiry clock.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.stop)
		s.done.Wait()
		s.m.Close()
	})
}

// SortedSet reads a sorted set directly (member → score), without a
// command: empty when the key does not exist. It is for the dev console's
// read-only view of the waiting line.
func (s *Server) SortedSet(key string) (map[string]float64, error) {
	m, err := s.m.SortedSet(key)
	if errors.Is(err, miniredis.ErrKeyNotFound) {
		return map[string]float64{}, nil
	}
	return m, err
}
