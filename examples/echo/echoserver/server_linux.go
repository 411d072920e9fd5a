//go:build linux

package echoserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/ringwire/ringwire/netio"
	"github.com/ringwire/ringwire/ring"
	"github.com/ringwire/ringwire/runtime"
)

// Server is a running echo server.
type Server struct {
	cfg      Config
	rt       *runtime.Runtime // nil on package net
	fallback error            // why the server runs on package net
	addr     net.Addr

	// APIHandler
	srv   *netio.Server
	loops []*loopEcho // indexed by runtime.Loop.ID

	// APIConn
	ln     net.Listener
	mu     sync.Mutex
	open   map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
	conns  atomic.Int64
	nopen  atomic.Int64
	bytes  atomic.Int64

	closeOnce sync.Once
	closeErr  error
	netMu     sync.Mutex
	finalNet  *netio.Stats // netio's counters just before the runtime closed
	netBase   netio.Stats  // APIConn: the net face's counters at Start
}

// Start listens on cfg.Addr: an APIHandler server starts its event loops
// first, an APIConn server needs none (netio's net.Listener waits in Go's
// poller).
//
// Where io_uring cannot be used (a seccomp profile, kernel.io_uring_disabled,
// an old kernel), APIConn serves on package net through netio's fallback
// (Fallback says why), and APIHandler fails with an error wrapping
// ring.ErrUnavailable: the handler API has no fallback.
func Start(cfg *Config) (*Server, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if c.API == APIConn {
		ncfg := &netio.Config{Logger: c.Logger}
		s := &Server{cfg: c, fallback: netio.FallbackReason(ncfg), netBase: netio.StatsOf(nil)}
		return startConn(s, netio.ListenConfig{Config: ncfg})
	}
	rt, err := runtime.New(&runtime.Config{Loops: c.Loops, CPUs: c.CPUs, Logger: c.Logger})
	if err != nil {
		if c.API == APIHandler && errors.Is(err, ring.ErrUnavailable) {
			return nil, fmt.Errorf("echoserver: the handler API needs io_uring: %w", err)
		}
		return nil, err
	}
	s := &Server{cfg: c, rt: rt}
	lc := netio.ListenConfig{Runtime: rt, Config: &netio.Config{Logger: c.Logger}}
	switch c.API {
	case APIHandler:
		s.loops = make([]*loopEcho, len(rt.Loops()))
		for i := range s.loops {
			s.loops[i] = &loopEcho{conns: map[*netio.Conn]struct{}{}}
		}
		s.srv, err = lc.Serve(context.Background(), "tcp", c.Addr, (*echoHandler)(s))
		if err == nil {
			s.addr = net.TCPAddrFromAddrPort(s.srv.Addr())
		}
	}
	if err != nil {
		_ = rt.Close()
		return nil, err
	}
	return s, nil
}

// startConn listens with lc's net.Listener and starts accepting.
func startConn(s *Server, lc netio.ListenConfig) (*Server, error) {
	s.open = map[net.Conn]struct{}{}
	ln, err := lc.Listen(context.Background(), "tcp", s.cfg.Addr)
	if err != nil {
		if s.rt != nil {
			_ = s.rt.Close()
		}
		return nil, err
	}
	s.ln, s.addr = ln, ln.Addr()
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr returns the bound address (the port chosen for port 0).
func (s *Server) Addr() net.Addr { return s.addr }

// Runtime returns the server's runtime, for its loops' statistics; nil when
// the server runs on package net (Fallback).
func (s *Server) Runtime() *runtime.Runtime { return s.rt }

// Fallback returns nil when the server runs on io_uring, and otherwise why
// it serves on package net instead (an APIConn server where io_uring is
// unavailable: the error wraps ring.ErrUnavailable).
func (s *Server) Fallback() error { return s.fallback }

// Stats returns the counters. Any goroutine, also after Close.
func (s *Server) Stats() Stats {
	st := Stats{API: s.cfg.API}
	if s.rt == nil { // APIConn
		st.Conns, st.Open, st.Bytes = s.conns.Load(), s.nopen.Load(), s.bytes.Load()
		if s.fallback != nil {
			st.Fallback = s.fallback.Error()
			return st
		}
		st.Net = netSince(netio.StatsOf(nil), s.netBase)
		return st
	}
	st.Loops = s.rt.Stats()
	switch s.cfg.API {
	case APIHandler:
		for _, le := range s.loops {
			st.Conns += le.conns0.Load()
			st.Open += le.open.Load()
			st.Bytes += le.bytes.Load()
		}
	case APIConn:
		st.Conns, st.Open, st.Bytes = s.conns.Load(), s.nopen.Load(), s.bytes.Load()
	}
	s.netMu.Lock()
	final := s.finalNet
	s.netMu.Unlock()
	if final != nil {
		st.Net = *final
	} else {
		st.Net = netio.StatsOf(s.rt)
	}
	return st
}

// Close stops accepting, closes every connection, stops the event loops and
// waits for all of it. Calls after the first return the first one's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		switch s.cfg.API {
		case APIHandler:
			errs = append(errs, s.srv.Close())
			for i, l := range s.rt.Loops() {
				le := s.loops[i]
				// Orderly close of what is open; the runtime runs posted
				// tasks before it shuts a loop down.
				_ = l.Post(runtime.TaskFunc(func(*runtime.Loop) {
					for c := range le.conns {
						c.Close(nil)
					}
				}))
			}
		case APIConn:
			if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
			s.mu.Lock()
			s.closed = true
			for c := range s.open {
				_ = c.Close()
			}
			s.mu.Unlock()
			s.wg.Wait()
		}
		if s.rt != nil { // nil on package net
			ns := netio.StatsOf(s.rt)
			s.netMu.Lock()
			s.finalNet = &ns
			s.netMu.Unlock()
			errs = append(errs, s.rt.Close())
		}
		if s.cfg.API == APIHandler {
			if st := s.Stats(); st.Open != 0 {
				// Every connection should have seen OnClose by now.
				s.cfg.Logger.Warn("echoserver: connections without OnClose after the runtime closed", zap.Int64("open", st.Open))
			}
		}
		s.closeErr = errors.Join(errs...)
		s.cfg.Logger.Info("echoserver: closed", zap.String("api", string(s.cfg.API)), zap.Error(s.closeErr))
	})
	return s.closeErr
}

// loopEcho is one loop's share of an APIHandler server. conns is touched
// only on the loop's thread; the counters are read by Stats.
type loopEcho struct {
	conns  map[*netio.Conn]struct{}
	conns0 atomic.Int64 // accepted
	open   atomic.Int64
	bytes  atomic.Int64
	_      [64]byte // keep loops' counters off each other's cache lines
}

// echoHandler is the netio.Handler (and SendHandler) of an APIHandler server.
type echoHandler Server

// connState is an APIHandler connection's own state (Conn.Context).
type connState struct {
	pending int // sends queued and not yet reported by OnSent
}

// OnOpen records the connection.
func (h *echoHandler) OnOpen(c *netio.Conn) {
	c.SetContext(&connState{})
	if h.cfg.onOpen != nil {
		h.cfg.onOpen(c)
	}
	le := h.loops[c.Loop().ID()]
	le.conns[c] = struct{}{}
	le.conns0.Add(1)
	le.open.Add(1)
}

// OnData sends the received view back with its lease: the bytes go out from
// the provided buffer they arrived in, and the buffer returns to the ring when
// the send completes. A connection whose peer does not read its echo stops
// being received from (PauseRecv) until its queue drains (OnSent): its
// queued leases hold buffers the loop's other connections receive into.
func (h *echoHandler) OnData(c *netio.Conn, d *netio.Data) {
	n := d.Len()
	if err := c.SendLease(d.Keep(), d.Bytes(), 0); err != nil {
		c.Close(err) // SendLease released the lease
		return
	}
	cs := c.Context().(*connState)
	cs.pending++
	h.loops[c.Loop().ID()].bytes.Add(int64(n))
	if cs.pending >= h.cfg.PauseLeases || c.Queued() >= h.cfg.PauseAt {
		c.PauseRecv()
	}
}

// OnSent resumes receiving once the queue is below half of both limits.
func (h *echoHandler) OnSent(c *netio.Conn, _ uint64, err error) {
	cs := c.Context().(*connState)
	cs.pending--
	if err == nil && cs.pending < h.cfg.PauseLeases/2 && c.Queued() < h.cfg.PauseAt/2 {
		c.ResumeRecv()
	}
}

// OnClose forgets the connection.
func (h *echoHandler) OnClose(c *netio.Conn, err error) {
	le := h.loops[c.Loop().ID()]
	delete(le.conns, c)
	le.open.Add(-1)
	if err != nil && !quietClose(err) {
		h.cfg.Logger.Debug("echoserver: connection closed", zap.Stringer("remote", c.RemoteAddr()), zap.Error(err))
	}
}

// quietClose reports the ordinary ends of a connection.
func quietClose(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// acceptLoop accepts APIConn connections until the listener closes.
func (s *Server) acceptLoop() {
	defer s.wg.Done()
	backoff := time.Millisecond
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return
			}
			s.cfg.Logger.Warn("echoserver: accept", zap.Error(err), zap.Duration("retry_in", backoff))
			time.Sleep(backoff)
			backoff = min(2*backoff, 500*time.Millisecond)
			continue
		}
		backoff = time.Millisecond
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
		s.nopen.Add(1)
		go s.serve(c)
	}
}

// serve echoes one APIConn connection: Read, then Write what was read.
func (s *Server) serve(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.open, c)
		s.mu.Unlock()
		_ = c.Close()
		s.nopen.Add(-1)
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				s.logEnd("write", werr)
				return
			}
			s.bytes.Add(int64(n))
		}
		if err != nil {
			s.logEnd("read", err)
			return
		}
	}
}

// logEnd logs why a connection's echo ended, unless it is an ordinary
// close. It is a function of its own so that serve's frame stays small: a
// goroutine per connection keeps its 2 KiB starting stack, as a package net
// server's does (the zap call inline doubled every stack to 4 KiB, 1.7 MiB
// per 1000 connections).
//
//go:noinline
func (s *Server) logEnd(op string, err error) {
	if !quietClose(err) {
		s.cfg.Logger.Debug("echoserver: "+op, zap.Error(err))
	}
}

// netSince returns the net face's counters since base: StatsOf(nil) counts
// every socket opened without a runtime in the process.
func netSince(now, base netio.Stats) netio.Stats {
	now.Accepted -= base.Accepted
	now.AcceptErrors -= base.AcceptErrors
	now.Spliced -= base.Spliced
	return now
}
