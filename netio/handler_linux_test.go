//go:build linux

package netio

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringwire/ringwire/runtime"
)

// echoHandler echoes with Write (copy into the arena) or, with forward set,
// by handing the received buffer itself to SendLease.
type echoHandler struct {
	forward bool
	opened  atomic.Int64
	mu      sync.Mutex
	closes  []error
	closed  chan struct{}
}

func newEcho(forward bool) *echoHandler {
	return &echoHandler{forward: forward, closed: make(chan struct{}, 1024)}
}

func (h *echoHandler) OnOpen(c *Conn) { h.opened.Add(1) }

func (h *echoHandler) OnData(c *Conn, d *Data) {
	if h.forward {
		lease := d.Keep()
		_ = c.SendLease(lease, d.Bytes(), 0)
		return
	}
	_ = c.Write(d.Bytes())
}

func (h *echoHandler) OnClose(c *Conn, err error) {
	h.mu.Lock()
	h.closes = append(h.closes, err)
	h.mu.Unlock()
	select {
	case h.closed <- struct{}{}:
	default:
	}
}

func serve(t testing.TB, cfg *Config, network, addr string, h Handler) *Server {
	t.Helper()
	return serveOn(t, nil, cfg, network, addr, h)
}

// serveOn is serve on runtime rt (nil: the default runtime).
func serveOn(t testing.TB, rt *runtime.Runtime, cfg *Config, network, addr string, h Handler) *Server {
	t.Helper()
	lc := ListenConfig{Runtime: rt, Config: cfg}
	s, err := lc.Serve(context.Background(), network, addr, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestHandlerEcho(t *testing.T) {
	needRing(t)
	tests := []struct {
		name    string
		forward bool
		cfg     *Config
		size    int
	}{
		{name: "write copy", size: 1 << 20},
		{name: "forward lease", forward: true, size: 1 << 20},
		{name: "forward lease SEND_ZC fixed", forward: true, cfg: &Config{SendZCThreshold: 1024}, size: 1 << 20},
		{name: "write SEND_ZC", cfg: &Config{SendZCThreshold: 1024}, size: 1 << 20},
		{name: "handoff accept", cfg: &Config{Accept: AcceptHandoff}, size: 64 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newEcho(tt.forward)
			s := serve(t, tt.cfg, "tcp", "127.0.0.1:0", h)
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			msg := make([]byte, tt.size)
			for i := range msg {
				msg[i] = byte(i * 7)
			}
			go func() { _, _ = c.Write(msg) }()
			got := make([]byte, len(msg))
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatal("echoed bytes differ")
			}
			c.Close()
			select {
			case <-h.closed:
			case <-time.After(5 * time.Second):
				t.Fatal("OnClose not called after the client closed")
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if !errors.Is(h.closes[0], io.EOF) {
				t.Fatalf("OnClose reason %v, want io.EOF", h.closes[0])
			}
		})
	}
}

// TestHandlerAllocs: a steady-state echo round trip allocates nothing on
// the handler API (the client is package net, whose TCP Read/Write do not
// allocate either), and at most one per Read/Write on the net.Conn face.
func TestHandlerAllocs(t *testing.T) {
	needRing(t)
	for _, forward := range []bool{false, true} {
		h := newEcho(forward)
		s := serve(t, nil, "tcp", "127.0.0.1:0", h)
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("0123456789abcdef0123456789abcdef")
		buf := make([]byte, len(msg))
		rt := func() {
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 200; i++ {
			rt()
		}
		n := testing.AllocsPerRun(500, rt)
		t.Logf("handler API (forward=%v): %v allocs per echo round trip", forward, n)
		if n != 0 {
			t.Errorf("forward=%v: %v allocs per handler-API echo round trip, want 0", forward, n)
		}
		c.Close()
	}

	// The net.Conn face: netio client against the handler echo server.
	h := newEcho(false)
	s := serve(t, nil, "tcp", "127.0.0.1:0", h)
	c, err := Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := []byte("0123456789abcdef0123456789abcdef")
	buf := make([]byte, len(msg))
	rt := func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 200; i++ {
		rt()
	}
	// One Write and at least one Read per round trip: at most 1 alloc each.
	n := testing.AllocsPerRun(500, rt)
	t.Logf("net.Conn face: %v allocs per Write+Read round trip", n)
	if n > 2 {
		t.Errorf("%v allocs per net.Conn Write+Read round trip, want <= 2", n)
	}
}

// halfCloser answers a peer's FIN with "bye" and its own FIN.
type halfCloser struct {
	echoHandler
	got  bytes.Buffer
	peer chan string
}

func (h *halfCloser) OnData(c *Conn, d *Data) { h.got.Write(d.Bytes()) }

func (h *halfCloser) OnPeerClose(c *Conn) {
	h.peer <- h.got.String()
	_ = c.Write([]byte("bye"))
	_ = c.CloseWrite()
}

func TestHalfCloseClientFirst(t *testing.T) {
	needRing(t)
	h := &halfCloser{echoHandler: *newEcho(false), peer: make(chan string, 1)}
	s := serve(t, nil, "tcp", "127.0.0.1:0", h)
	c, err := Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-h.peer:
		if got != "hello" {
			t.Fatalf("server got %q before FIN", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server not told of the half-close")
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "bye" {
		t.Fatalf("client read %q, %v after server's reply and FIN", b, err)
	}
}

func TestHalfCloseServerFirst(t *testing.T) {
	needRing(t)
	// Server side is the net.Conn face: it writes, CloseWrites, then reads
	// what the client sends after seeing EOF.
	ln, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err.Error()
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("data"))
		_ = c.(interface{ CloseWrite() error }).CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			done <- err.Error()
			return
		}
		done <- string(b)
	}()
	c, err := Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "data" {
		t.Fatalf("client read %q, %v", b, err)
	}
	if _, err := c.Write([]byte("after-eof")); err != nil {
		t.Fatalf("write after reading EOF: %v", err)
	}
	c.Close()
	if got := <-done; got != "after-eof" {
		t.Fatalf("server read %q", got)
	}
}

// TestPeerResetMidStream: the client resets (SO_LINGER 0) while the server
// streams; the handler is told ECONNRESET or EPIPE, and a net.Conn reader
// sees the reset as a *net.OpError.
func TestPeerResetMidStream(t *testing.T) {
	needRing(t)
	h := &streamer{closed: make(chan error, 1)}
	s := serve(t, nil, "tcp", "127.0.0.1:0", h)
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).SetLinger(0)
	c.Close()
	select {
	case err := <-h.closed:
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("OnClose reason %v, want ECONNRESET or EPIPE", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server not told of the reset")
	}

	// net.Conn face reading from a peer that resets.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		sc, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = sc.Write([]byte("partial"))
		time.Sleep(50 * time.Millisecond)
		_ = sc.(*net.TCPConn).SetLinger(0)
		sc.Close()
	}()
	nc, err := Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var all []byte
	for {
		n, err := nc.Read(buf)
		all = append(all, buf[:n]...)
		if err != nil {
			var oe *net.OpError
			if !errors.As(err, &oe) || !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("Read error %T %v, want *net.OpError with ECONNRESET", err, err)
			}
			break
		}
	}
	if string(all) != "partial" {
		t.Fatalf("read %q before the reset", all)
	}
}

// streamer writes to every connection until it is closed.
type streamer struct {
	closed chan error
	chunk  [16 << 10]byte
}

func (s *streamer) OnOpen(c *Conn) {
	_ = c.Write(s.chunk[:])
	_ = c.WriteTag(s.chunk[:], 1)
}
func (s *streamer) OnData(*Conn, *Data) {}
func (s *streamer) OnSent(c *Conn, tag uint64, err error) {
	if err == nil && !c.Closed() {
		_ = c.WriteTag(s.chunk[:], 1)
	}
}
func (s *streamer) OnClose(c *Conn, err error) { s.closed <- err }

func onLoop(t testing.TB, l *runtime.Loop, f func()) {
	t.Helper()
	if err := runOn(l, func(*runtime.Loop) error { f(); return nil }); err != nil {
		t.Fatal(err)
	}
}

// newRuntime starts a runtime of its own (cfg as for runtime.New) for a test
// that inspects buffer counts or needs a known loop count, closed at cleanup.
func newRuntime(t testing.TB, cfg *runtime.Config) *runtime.Runtime {
	t.Helper()
	rt, err := runtime.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Error(err)
		}
	})
	return rt
}
