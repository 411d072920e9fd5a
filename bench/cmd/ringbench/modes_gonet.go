//go:build linux

package main

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// goNetEcho is the stdlib baseline: net.Listener, one goroutine per connection.
type goNetEcho struct {
	ln    net.Listener
	wg    sync.WaitGroup
	conns atomic.Int64
	bytes atomic.Int64

	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool

	once     sync.Once
	closeErr error // the first Close's result
}

// startGoNetEcho listens with MPTCP off (Go >= 1.24 defaults to MPTCP where the
// kernel has it, which would make the baseline a different protocol).
func startGoNetEcho(cfg EchoConfig) (Server, error) {
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	s := &goNetEcho{ln: ln, open: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func (s *goNetEcho) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.open[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.conns.Add(1)
		go s.serve(c)
	}
}

func (s *goNetEcho) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.open, c)
		s.mu.Unlock()
		_ = c.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
			s.bytes.Add(int64(n))
		}
		if err != nil {
			return
		}
	}
}

func (s *goNetEcho) Addr() net.Addr { return s.ln.Addr() }

func (s *goNetEcho) Stats() ServerStats {
	return ServerStats{Conns: s.conns.Load(), Bytes: s.bytes.Load()}
}

func (s *goNetEcho) Close() error {
	s.once.Do(func() {
		err := s.ln.Close()
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
		s.mu.Lock()
		s.closed = true
		for c := range s.open {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
		s.closeErr = err
	})
	return s.closeErr
}
