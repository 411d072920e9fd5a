//go:build linux

package netio

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/runtime"
)

// The net.Conn contract of issue 5 beyond nettest.TestConn: deadlines moved
// while blocked, Close unblocking Read and Write, CloseRead/CloseWrite,
// socket options, error shapes, the network matrix of the package functions
// and the default runtime. Each case that package net can run too runs on
// the io_uring path and on the forced fallback, which checks the test.

// tcpPair dials a netio TCP connection (cfg, nil: defaults) to a package net
// listener and returns both ends.
func tcpPair(t *testing.T, cfg *Config) (net.Conn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	d := Dialer{Config: cfg}
	c, err := d.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return c, p.(*net.TCPConn)
}

// wantOpErr checks err's stdlib shape: a *net.OpError with op whose chain
// holds target.
func wantOpErr(t *testing.T, what string, err error, op string, target error) {
	t.Helper()
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != op || !errors.Is(err, target) {
		t.Fatalf("%s: %T %v; want *net.OpError op %q wrapping %v", what, err, err, op, target)
	}
}

// wantSyscallErr checks that err is a *net.OpError with op wrapping an
// *os.SyscallError whose errno is one of errnos.
func wantSyscallErr(t *testing.T, what string, err error, op string, errnos ...syscall.Errno) {
	t.Helper()
	var oe *net.OpError
	var se *os.SyscallError
	if !errors.As(err, &oe) || oe.Op != op || !errors.As(err, &se) {
		t.Fatalf("%s: %T %v; want *net.OpError op %q wrapping *os.SyscallError", what, err, err, op)
	}
	for _, e := range errnos {
		if errors.Is(err, e) {
			return
		}
	}
	t.Fatalf("%s: %v; want one of %v", what, err, errnos)
}

func wantTimeout(t *testing.T, what string, err error, op string) {
	t.Helper()
	wantOpErr(t, what, err, op, os.ErrDeadlineExceeded)
	if !isTimeout(err) {
		t.Fatalf("%s: %v is not a net.Error with Timeout()", what, err)
	}
}

// bigWrite is more than loopback's socket buffers hold (tcp_wmem and
// tcp_rmem maxima of a few MiB): a Write of it to a peer that does not read
// blocks.
func bigWrite() []byte { return make([]byte, 16<<20) }

func TestConnReadDeadlineMovedWhileBlocked(t *testing.T) {
	tests := []struct {
		name string
		// first is the deadline set before Read (zero: none); after 20ms
		// it is moved to then (zero: cleared).
		first, then time.Duration
		// send makes the peer write a byte 150ms in: Read must return it.
		send bool
		// minWait, maxWait bound how long Read blocks from its start.
		minWait, maxWait time.Duration
	}{
		{name: "earlier", first: time.Hour, then: 30 * time.Millisecond, minWait: 40 * time.Millisecond, maxWait: 3 * time.Second},
		{name: "later", first: 60 * time.Millisecond, then: 400 * time.Millisecond, minWait: 350 * time.Millisecond, maxWait: 5 * time.Second},
		{name: "from none", first: 0, then: 30 * time.Millisecond, minWait: 40 * time.Millisecond, maxWait: 3 * time.Second},
		{name: "cleared", first: 60 * time.Millisecond, then: 0, send: true, minWait: 140 * time.Millisecond, maxWait: 5 * time.Second},
	}
	for _, m := range packetModes(t) {
		for _, tt := range tests {
			t.Run(m.name+"/"+tt.name, func(t *testing.T) {
				c, p := tcpPair(t, m.cfg)
				start := time.Now()
				if tt.first != 0 {
					_ = c.SetReadDeadline(start.Add(tt.first))
				}
				type res struct {
					n   int
					err error
				}
				done := make(chan res, 1)
				go func() {
					n, err := c.Read(make([]byte, 8))
					done <- res{n, err}
				}()
				time.Sleep(20 * time.Millisecond)
				if tt.then != 0 {
					_ = c.SetReadDeadline(time.Now().Add(tt.then))
				} else {
					_ = c.SetReadDeadline(time.Time{})
				}
				if tt.send {
					time.Sleep(130 * time.Millisecond)
					if _, err := p.Write([]byte("x")); err != nil {
						t.Fatal(err)
					}
				}
				var r res
				select {
				case r = <-done:
				case <-time.After(10 * time.Second):
					t.Fatal("Read still blocked after 10s")
				}
				took := time.Since(start)
				if tt.send {
					if r.err != nil || r.n != 1 {
						t.Fatalf("Read = %d, %v; want the peer's byte", r.n, r.err)
					}
				} else {
					wantTimeout(t, "Read", r.err, "read")
				}
				if took < tt.minWait || took > tt.maxWait {
					t.Fatalf("Read returned after %v, want between %v and %v", took, tt.minWait, tt.maxWait)
				}
			})
		}
	}
}

// blockedWriteModes are the modes for a Write that blocks on a peer that
// never reads: a 16 MiB Write is above the default SEND_ZC threshold, which
// net.Conn Writes ignore (they never use SEND_ZC, tcpConn.Write says why:
// a blocked one could be ended neither by a deadline nor by Close); the
// ring-nozc mode checks that an explicit negative threshold changes nothing.
func blockedWriteModes(t *testing.T) []struct {
	name string
	cfg  *Config
} {
	return append(packetModes(t), struct {
		name string
		cfg  *Config
	}{name: "ring-nozc", cfg: &Config{SendZCThreshold: -1}})
}

func TestConnWriteDeadlineMovedWhileBlocked(t *testing.T) {
	for _, m := range blockedWriteModes(t) {
		t.Run(m.name, func(t *testing.T) {
			c, _ := tcpPair(t, m.cfg) // the peer never reads
			_ = c.SetWriteDeadline(time.Now().Add(time.Hour))
			type res struct {
				n   int
				err error
			}
			done := make(chan res, 1)
			msg := bigWrite()
			go func() {
				n, err := c.Write(msg)
				done <- res{n, err}
			}()
			time.Sleep(100 * time.Millisecond)
			start := time.Now()
			_ = c.SetWriteDeadline(time.Now().Add(30 * time.Millisecond))
			select {
			case r := <-done:
				wantTimeout(t, "Write", r.err, "write")
				if r.n >= len(msg) {
					t.Fatalf("Write wrote all %d bytes to a peer that never reads", r.n)
				}
				if d := time.Since(start); d > 3*time.Second {
					t.Fatalf("Write returned %v after the deadline moved to 30ms", d)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Write still blocked 10s after the deadline moved to 30ms")
			}
			// A deadline in the past fails at once, and clearing it lets
			// Write go on (the peer's buffer is full: a short write only).
			_ = c.SetWriteDeadline(time.Now().Add(-time.Second))
			if n, err := c.Write([]byte("x")); n != 0 {
				t.Fatalf("Write past the deadline wrote %d bytes (%v)", n, err)
			} else {
				wantTimeout(t, "Write past the deadline", err, "write")
			}
		})
	}
}

// TestConnCloseUnblocksReadAndWrite: Close wakes a blocked Read and a
// blocked Write with net.ErrClosed; every later call fails the same way.
func TestConnCloseUnblocksReadAndWrite(t *testing.T) {
	for _, m := range blockedWriteModes(t) {
		t.Run(m.name, func(t *testing.T) {
			c, _ := tcpPair(t, m.cfg) // the peer never reads nor writes
			rerr, werr := make(chan error, 1), make(chan error, 1)
			go func() {
				_, err := c.Read(make([]byte, 8))
				rerr <- err
			}()
			go func() {
				_, err := c.Write(bigWrite())
				werr <- err
			}()
			time.Sleep(100 * time.Millisecond)
			select {
			case err := <-rerr:
				t.Fatalf("Read returned before Close: %v", err)
			case err := <-werr:
				t.Fatalf("Write returned before Close: %v", err)
			default:
			}
			if err := c.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			for _, w := range []struct {
				name string
				ch   chan error
				op   string
			}{{"Read", rerr, "read"}, {"Write", werr, "write"}} {
				select {
				case err := <-w.ch:
					wantOpErr(t, w.name+" blocked at Close", err, w.op, net.ErrClosed)
				case <-time.After(5 * time.Second):
					t.Fatalf("Close did not unblock %s", w.name)
				}
			}
			_, err := c.Read(make([]byte, 1))
			wantOpErr(t, "Read after Close", err, "read", net.ErrClosed)
			_, err = c.Write([]byte("x"))
			wantOpErr(t, "Write after Close", err, "write", net.ErrClosed)
			if err := c.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("SetDeadline after Close: %v", err)
			}
			if err := c.(interface{ CloseWrite() error }).CloseWrite(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("CloseWrite after Close: %v", err)
			}
			if err := c.Close(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("second Close: %v, want net.ErrClosed", err)
			}
		})
	}
}

// TestListenerCloseUnblocksAccept: Close wakes a blocked Accept with
// net.ErrClosed, as package net does.
func TestListenerCloseUnblocksAccept(t *testing.T) {
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			lc := ListenConfig{Config: m.cfg}
			ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() {
				_, err := ln.Accept()
				errc <- err
			}()
			time.Sleep(50 * time.Millisecond)
			if err := ln.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errc:
				wantOpErr(t, "Accept blocked at Close", err, "accept", net.ErrClosed)
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not unblock Accept")
			}
			_, err = ln.Accept()
			wantOpErr(t, "Accept after Close", err, "accept", net.ErrClosed)
			if err := ln.Close(); err == nil {
				t.Fatal("second listener Close returned nil")
			}
		})
	}
}

// TestConnCloseRead: after CloseRead, Read returns a bare io.EOF and Write
// still reaches the peer.
func TestConnCloseRead(t *testing.T) {
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			c, p := tcpPair(t, m.cfg)
			rerr := make(chan error, 1)
			go func() { // blocked at CloseRead
				_, err := c.Read(make([]byte, 8))
				rerr <- err
			}()
			time.Sleep(50 * time.Millisecond)
			if err := c.(interface{ CloseRead() error }).CloseRead(); err != nil {
				t.Fatalf("CloseRead: %v", err)
			}
			select {
			case err := <-rerr:
				if err != io.EOF {
					t.Fatalf("Read blocked at CloseRead: %T %v, want bare io.EOF", err, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("CloseRead did not unblock Read")
			}
			if _, err := c.Read(make([]byte, 8)); err != io.EOF {
				t.Fatalf("Read after CloseRead: %T %v, want bare io.EOF", err, err)
			}
			if _, err := c.Write([]byte("still")); err != nil {
				t.Fatalf("Write after CloseRead: %v", err)
			}
			buf := make([]byte, 5)
			_ = p.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(p, buf); err != nil || string(buf) != "still" {
				t.Fatalf("peer read %q, %v", buf, err)
			}
		})
	}
}

// TestConnCloseWrite: after CloseWrite the peer reads its data then EOF,
// the peer's reply still arrives, and a Write fails with EPIPE in the
// stdlib's shape.
func TestConnCloseWrite(t *testing.T) {
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			c, p := tcpPair(t, m.cfg)
			if _, err := c.Write([]byte("data")); err != nil {
				t.Fatal(err)
			}
			if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
				t.Fatalf("CloseWrite: %v", err)
			}
			_ = p.SetReadDeadline(time.Now().Add(5 * time.Second))
			if b, err := io.ReadAll(p); err != nil || string(b) != "data" {
				t.Fatalf("peer read %q, %v; want \"data\" then EOF", b, err)
			}
			if _, err := p.Write([]byte("reply")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 5)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "reply" {
				t.Fatalf("read after CloseWrite: %q, %v", buf, err)
			}
			_, err := c.Write([]byte("x"))
			wantSyscallErr(t, "Write after CloseWrite", err, "write", syscall.EPIPE)
			// As with package net, the failed Write leaves reading alone.
			if _, err := p.Write([]byte("more")); err != nil {
				t.Fatal(err)
			}
			buf = make([]byte, 4)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "more" {
				t.Fatalf("read after a failed Write: %q, %v", buf, err)
			}
		})
	}
}

// TestConnErrorShapes: EOF is bare; a reset reads as *net.OpError wrapping
// *os.SyscallError ECONNRESET; writing to a reset peer fails likewise.
func TestConnErrorShapes(t *testing.T) {
	for _, m := range packetModes(t) {
		t.Run(m.name+"/eof", func(t *testing.T) {
			c, p := tcpPair(t, m.cfg)
			_, _ = p.Write([]byte("ab"))
			p.Close()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			b, err := io.ReadAll(c)
			if err != nil || string(b) != "ab" {
				t.Fatalf("ReadAll = %q, %v", b, err)
			}
			for i := 0; i < 2; i++ {
				if n, err := c.Read(make([]byte, 4)); n != 0 || err != io.EOF {
					t.Fatalf("Read #%d after the peer's FIN = %d, %T %v; want 0, bare io.EOF", i, n, err, err)
				}
			}
		})
		t.Run(m.name+"/reset", func(t *testing.T) {
			c, p := tcpPair(t, m.cfg)
			_ = p.SetLinger(0)
			p.Close()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := c.Read(make([]byte, 4))
			wantSyscallErr(t, "Read after the peer's RST", err, "read", syscall.ECONNRESET)
			// The socket is dead: Write fails (EPIPE, or the reset itself),
			// never succeeds.
			_, err = c.Write([]byte("x"))
			var oe *net.OpError
			if !errors.As(err, &oe) || oe.Op != "write" {
				t.Fatalf("Write after the peer's RST: %T %v, want a write *net.OpError", err, err)
			}
			if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Write after the peer's RST: %v", err)
			}
			if oe.Net != "tcp4" || oe.Source == nil || oe.Addr == nil {
				t.Fatalf("OpError fields Net %q Source %v Addr %v; want tcp4 and both addresses", oe.Net, oe.Source, oe.Addr)
			}
		})
	}
}

// sockoptsOf reads c's socket options on its loop (the io_uring path).
type sockopts struct {
	noDelay, keepAlive, keepIdle, keepIntvl, rcvbuf, sndbuf int
	linger                                                  unix.Linger
}

func sockoptsOf(t *testing.T, c net.Conn) sockopts {
	t.Helper()
	var o sockopts
	err := c.(*netTCPConn).fd.control(func(fd int) error {
		var err error
		get := func(level, opt int) int {
			v, e := unix.GetsockoptInt(fd, level, opt)
			if e != nil && err == nil {
				err = e
			}
			return v
		}
		o.noDelay = get(unix.IPPROTO_TCP, unix.TCP_NODELAY)
		o.keepAlive = get(unix.SOL_SOCKET, unix.SO_KEEPALIVE)
		o.keepIdle = get(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
		o.keepIntvl = get(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
		o.rcvbuf = get(unix.SOL_SOCKET, unix.SO_RCVBUF)
		o.sndbuf = get(unix.SOL_SOCKET, unix.SO_SNDBUF)
		l, e := unix.GetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER)
		if e == nil {
			o.linger = *l
		} else if err == nil {
			err = e
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestConnSocketOptions: the *net.TCPConn setters reach the socket, on a
// dialed and on an accepted connection; TCP_NODELAY is on by default as in
// package net.
func TestConnSocketOptions(t *testing.T) {
	needRing(t)
	ln, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			acc <- nil
			return
		}
		acc <- c
	}()
	dialed, err := Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer dialed.Close()
	accepted := <-acc
	if accepted == nil {
		t.Fatal("Accept failed")
	}
	defer accepted.Close()
	type tcpSetters interface {
		SetNoDelay(bool) error
		SetKeepAlive(bool) error
		SetKeepAlivePeriod(time.Duration) error
		SetReadBuffer(int) error
		SetWriteBuffer(int) error
		SetLinger(int) error
	}
	for name, c := range map[string]net.Conn{"dialed": dialed, "accepted": accepted} {
		s, ok := c.(tcpSetters)
		if !ok {
			t.Fatalf("%s: %T lacks the *net.TCPConn setters", name, c)
		}
		if o := sockoptsOf(t, c); o.noDelay != 1 {
			t.Fatalf("%s: TCP_NODELAY %d by default, want 1 as in package net", name, o.noDelay)
		}
		for _, err := range []error{
			s.SetNoDelay(false), s.SetKeepAlive(true), s.SetKeepAlivePeriod(7 * time.Second),
			s.SetReadBuffer(100000), s.SetWriteBuffer(120000), s.SetLinger(3),
		} {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		o := sockoptsOf(t, c)
		// The kernel doubles SO_RCVBUF/SO_SNDBUF for its bookkeeping.
		if o.noDelay != 0 || o.keepAlive != 1 || o.keepIdle != 7 || o.keepIntvl != 7 ||
			o.rcvbuf < 100000 || o.sndbuf < 120000 || o.linger.Onoff != 1 || o.linger.Linger != 3 {
			t.Fatalf("%s: socket options %+v after the setters", name, o)
		}
		if err := s.SetNoDelay(true); err != nil {
			t.Fatal(err)
		}
		if o := sockoptsOf(t, c); o.noDelay != 1 {
			t.Fatalf("%s: TCP_NODELAY %d after SetNoDelay(true)", name, o.noDelay)
		}
	}
	dialed.Close()
	err = dialed.(tcpSetters).SetNoDelay(true)
	wantOpErr(t, "SetNoDelay after Close", err, "set", net.ErrClosed)
}

// TestPackageFunctionsNetworks: Listen, Dial, DialContext and ListenPacket
// serve tcp, tcp4, tcp6, udp, udp4 and udp6 with netio's own objects (not
// package net's), with addresses of the right family; mismatched networks
// and addresses fail as in package net.
func TestPackageFunctionsNetworks(t *testing.T) {
	needRing(t)
	stream := []struct {
		network, addr string
		v6            bool
	}{
		{network: "tcp", addr: "127.0.0.1:0"},
		{network: "tcp", addr: "[::1]:0", v6: true},
		{network: "tcp4", addr: "127.0.0.1:0"},
		{network: "tcp6", addr: "[::1]:0", v6: true},
	}
	for _, tt := range stream {
		t.Run(tt.network+"/"+tt.addr, func(t *testing.T) {
			ln, err := Listen(tt.network, tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if _, ok := ln.(*netTCPListener); !ok {
				t.Fatalf("Listen returned %T, want netio's listener", ln)
			}
			go echoServe(ln)
			for i, dial := range []func() (net.Conn, error){
				func() (net.Conn, error) { return Dial(tt.network, ln.Addr().String()) },
				func() (net.Conn, error) {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					return DialContext(ctx, tt.network, ln.Addr().String())
				},
			} {
				c, err := dial()
				if err != nil {
					t.Fatalf("dial #%d: %v", i, err)
				}
				if _, ok := c.(*netTCPConn); !ok {
					t.Fatalf("dial #%d returned %T, want netio's conn", i, c)
				}
				la, ra := c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr)
				if (la.IP.To4() == nil) != tt.v6 || (ra.IP.To4() == nil) != tt.v6 || ra.String() != ln.Addr().String() {
					t.Fatalf("dial #%d: addresses %v -> %v for %s on %v", i, la, ra, tt.network, ln.Addr())
				}
				echoOnce(t, c)
				c.Close()
			}
		})
	}
	packet := []struct {
		network, addr string
		v6            bool
	}{
		{network: "udp", addr: "127.0.0.1:0"},
		{network: "udp", addr: "[::1]:0", v6: true},
		{network: "udp4", addr: "127.0.0.1:0"},
		{network: "udp6", addr: "[::1]:0", v6: true},
	}
	for _, tt := range packet {
		t.Run(tt.network+"/"+tt.addr, func(t *testing.T) {
			pc, err := ListenPacket(tt.network, tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			if _, ok := pc.(*netUDPConn); !ok {
				t.Fatalf("ListenPacket returned %T, want netio's packet conn", pc)
			}
			if la := pc.LocalAddr().(*net.UDPAddr); (la.IP.To4() == nil) != tt.v6 {
				t.Fatalf("local address %v for %s", la, tt.network)
			}
			go func() { // echo until closed
				buf := make([]byte, 64)
				for {
					n, from, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					_, _ = pc.WriteTo(buf[:n], from)
				}
			}()
			for i, dial := range []func() (net.Conn, error){
				func() (net.Conn, error) { return Dial(tt.network, pc.LocalAddr().String()) },
				func() (net.Conn, error) {
					return DialContext(context.Background(), tt.network, pc.LocalAddr().String())
				},
			} {
				c, err := dial()
				if err != nil {
					t.Fatalf("dial #%d: %v", i, err)
				}
				if _, ok := c.(*netUDPConn); !ok {
					t.Fatalf("dial #%d returned %T, want netio's packet conn", i, c)
				}
				if ra := c.RemoteAddr().(*net.UDPAddr); ra.String() != pc.LocalAddr().String() {
					t.Fatalf("dial #%d: RemoteAddr %v, want %v", i, ra, pc.LocalAddr())
				}
				echoOnce(t, c)
				c.Close()
			}
		})
	}
	bad := []struct {
		name string
		call func() error
	}{
		{"Listen tcp4 on ::1", func() error { _, err := Listen("tcp4", "[::1]:0"); return err }},
		{"Listen tcp6 on 127.0.0.1", func() error { _, err := Listen("tcp6", "127.0.0.1:0"); return err }},
		{"Listen udp", func() error { _, err := Listen("udp", "127.0.0.1:0"); return err }},
		{"ListenPacket tcp", func() error { _, err := ListenPacket("tcp", "127.0.0.1:0"); return err }},
		{"ListenPacket udp4 on ::1", func() error { _, err := ListenPacket("udp4", "[::1]:0"); return err }},
		{"Dial udp7", func() error { _, err := Dial("udp7", "127.0.0.1:1"); return err }},
	}
	for _, tt := range bad {
		err := tt.call()
		var oe *net.OpError
		if !errors.As(err, &oe) {
			t.Errorf("%s: %T %v, want a *net.OpError", tt.name, err, err)
		}
	}
}

func echoOnce(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("echo")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "echo" {
		t.Fatalf("echo: %q, %v", buf, err)
	}
	_ = c.SetDeadline(time.Time{})
}

// TestDefaultRuntimeStartsOnFirstUse: the net face's package functions
// start no runtime (their sockets wait in Go's poller); CloseDefault closes
// the sockets they opened. The handler API's zero values start the default
// runtime on first use and share it; CloseDefault ends it and the next use
// starts another.
func TestDefaultRuntimeStartsOnFirstUse(t *testing.T) {
	needRing(t)
	if err := CloseDefault(); err != nil {
		t.Fatal(err)
	}
	running := func() bool {
		defaultRT.mu.Lock()
		defer defaultRT.mu.Unlock()
		return defaultRT.rt != nil
	}
	ln, err := Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if running() {
		t.Fatal("the net face's package functions started a runtime")
	}
	if err := CloseDefault(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after CloseDefault: %v, want net.ErrClosed", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after CloseDefault: %v, want net.ErrClosed", err)
	}
	if _, _, err := pc.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrom after CloseDefault: %v, want net.ErrClosed", err)
	}
	ln2, err := Listen("tcp", "127.0.0.1:0") // works again after CloseDefault
	if err != nil {
		t.Fatal(err)
	}
	ln2.Close()

	var lc ListenConfig
	s, err := lc.Serve(context.Background(), "tcp", "127.0.0.1:0", newEcho(false))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rt, err := DefaultRuntime()
	if err != nil || rt == nil {
		t.Fatalf("DefaultRuntime = %v, %v", rt, err)
	}
	if rt2, _ := DefaultRuntime(); rt2 != rt {
		t.Fatal("DefaultRuntime started a second runtime")
	}
	if !loopOf(rt, s.accs[0].l) {
		t.Fatal("Serve's listener is not on the default runtime")
	}
}

func loopOf(rt *runtime.Runtime, l *runtime.Loop) bool {
	for _, x := range rt.Loops() {
		if x == l {
			return true
		}
	}
	return false
}
