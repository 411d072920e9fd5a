//go:build linux

package netio

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// netTCPConn is the net face's TCP connection: the method set of *net.TCPConn
// over a netFD. Read receives straight into the caller's slice from the
// calling goroutine and Write sends from it (read(2) and write(2) through
// Go's poller, as package net does); no received byte waits in a loop's
// buffers, so unread data stays in the socket's own receive buffer, where
// TCP's window pushes back on the sender.
type netTCPConn struct {
	fd netFD

	// rmu serializes Reads, as package net's fdMutex does, including a
	// Read parked on the mirror, which holds no fdMutex reference.
	rmu sync.Mutex
}

// Read reads up to len(b) bytes. A zero-length Read returns 0, nil at once;
// a deadline in the past fails before any data is looked at, as with
// package net.
func (c *netTCPConn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	n, err := c.read(b)
	// A Read that a deadline ended before it took anything leaves the
	// socket as the last read that did left it: net/http aborts a
	// background Read that way after every response, and the next
	// request's Read can still park on the mirror.
	switch {
	case err == nil:
		c.fd.drained = n > 0 && n < len(b)
	case n > 0 || !deadlineHit(err):
		c.fd.drained = false
	}
	c.rmu.Unlock()
	if err != nil && err != io.EOF {
		err = c.fd.opErr("read", "read", c.fd.laddr(), c.fd.raddr(), err)
	}
	return n, err
}

// read is Read under rmu: on a busy socket set, a Read whose last read
// drained the socket parks on the set's mirror without a read
// (net_mirror_linux.go); otherwise, and whenever the mirror gives up, it
// is package net's read(2), then a wait in Go's poller on EAGAIN.
func (c *netTCPConn) read(b []byte) (int, error) {
	set := c.fd.owner
	if !c.fd.drained || set == nil || len(b) < mirrorMinRead || c.fd.rawOut.Load() {
		return c.fd.f.Read(b)
	}
	if set.active.Load() >= mirrorHot.Load() {
		dl := c.fd.rdl.Load()
		if dl != 0 && dl <= mirrorNow() {
			return c.fd.f.Read(b) // the deadline has passed: the poller says so
		}
		if n, err, ok := c.mirrorRead(set, b, dl); ok {
			if n == 0 && err == nil {
				err = io.EOF
			}
			return n, err
		}
	}
	set.active.Add(1)
	n, err := c.fd.f.Read(b)
	set.active.Add(-1)
	return n, err
}

// deadlineHit reports whether err, from f's Read, is a deadline's.
func deadlineHit(err error) bool {
	pe, ok := err.(*os.PathError)
	return ok && pe.Err == os.ErrDeadlineExceeded
}

// Write writes all of b, waiting for the socket buffer as often as needed,
// unless a deadline passes or the connection is closed.
func (c *netTCPConn) Write(b []byte) (int, error) {
	n, err := c.fd.f.Write(b)
	if err != nil {
		err = c.fd.opErr("write", "write", c.fd.laddr(), c.fd.raddr(), err)
	}
	return n, err
}

// Close closes the connection; blocked Reads and Writes return
// net.ErrClosed. With SetLinger(n > 0) it blocks the calling goroutine, as
// package net's does, and nothing else.
func (c *netTCPConn) Close() error {
	if err := c.fd.Close(); err != nil {
		return c.fd.opErr("close", "close", c.fd.laddr(), c.fd.raddr(), err)
	}
	return nil
}

func (c *netTCPConn) LocalAddr() net.Addr                { return c.fd.LocalAddr() }
func (c *netTCPConn) RemoteAddr() net.Addr               { return c.fd.RemoteAddr() }
func (c *netTCPConn) SetDeadline(t time.Time) error      { return c.fd.SetDeadline(t) }
func (c *netTCPConn) SetReadDeadline(t time.Time) error  { return c.fd.SetReadDeadline(t) }
func (c *netTCPConn) SetWriteDeadline(t time.Time) error { return c.fd.SetWriteDeadline(t) }
func (c *netTCPConn) SetReadBuffer(bytes int) error      { return c.fd.SetReadBuffer(bytes) }
func (c *netTCPConn) SetWriteBuffer(bytes int) error     { return c.fd.SetWriteBuffer(bytes) }
func (c *netTCPConn) File() (*os.File, error)            { return c.fd.File() }

// SyscallConn returns a raw connection to the socket (see netFD.SyscallConn).
func (c *netTCPConn) SyscallConn() (syscall.RawConn, error) { return c.fd.SyscallConn() }

// setErr is a TCP setter's error, in package net's shape for *TCPConn.
func (c *netTCPConn) setErr(err error) error {
	if err == nil {
		return nil
	}
	return c.fd.opErr("set", "setsockopt", c.fd.laddr(), c.fd.raddr(), err)
}

// shutdown is shutdown(2) under the fdMutex, with CloseRead's and
// CloseWrite's error shape.
func (c *netTCPConn) shutdown(how int) error {
	err := c.fd.control(func(s int) error { return os.NewSyscallError("shutdown", unix.Shutdown(s, how)) })
	return c.fd.opErr("close", "shutdown", c.fd.laddr(), c.fd.raddr(), err)
}

// CloseRead shuts down the reading side: Read returns io.EOF.
func (c *netTCPConn) CloseRead() error { return c.shutdown(unix.SHUT_RD) }

// CloseWrite shuts down the writing side: the peer reads io.EOF.
func (c *netTCPConn) CloseWrite() error { return c.shutdown(unix.SHUT_WR) }

// SetNoDelay controls Nagle's algorithm (TCP_NODELAY is on by default, as
// in package net).
func (c *netTCPConn) SetNoDelay(noDelay bool) error {
	return c.setErr(c.fd.setsockoptInt(unix.IPPROTO_TCP, unix.TCP_NODELAY, boolInt(noDelay)))
}

// SetLinger sets SO_LINGER as net.TCPConn.SetLinger does: sec < 0 (the
// default) closes in the background, 0 discards unsent data and resets, and
// sec > 0 makes Close wait up to sec seconds, in the goroutine calling Close.
func (c *netTCPConn) SetLinger(sec int) error {
	l := unix.Linger{}
	if sec >= 0 {
		l.Onoff, l.Linger = 1, int32(sec)
	}
	return c.setErr(c.fd.control(func(s int) error {
		return os.NewSyscallError("setsockopt", unix.SetsockoptLinger(s, unix.SOL_SOCKET, unix.SO_LINGER, &l))
	}))
}

// SetKeepAlive turns keep-alive probes on or off.
func (c *netTCPConn) SetKeepAlive(keepalive bool) error {
	return c.setErr(c.fd.setsockoptInt(unix.SOL_SOCKET, unix.SO_KEEPALIVE, boolInt(keepalive)))
}

// SetKeepAlivePeriod sets the idle time before the first probe and the
// interval between probes, as package net does (rounded up to seconds).
func (c *netTCPConn) SetKeepAlivePeriod(d time.Duration) error {
	if err := setKeepAliveIdle(c.fd.setsockoptInt, d); err != nil {
		return c.setErr(err)
	}
	return c.setErr(setKeepAliveInterval(c.fd.setsockoptInt, d))
}

// SetKeepAliveConfig configures keep-alive probes as
// net.TCPConn.SetKeepAliveConfig does: zero fields take package net's
// defaults (15 s idle, 15 s interval, 9 probes), negative ones are left as
// they are.
func (c *netTCPConn) SetKeepAliveConfig(config net.KeepAliveConfig) error {
	return c.setErr(setKeepAliveConfig(c.fd.setsockoptInt, config))
}

// MultipathTCP reports whether the connection uses MPTCP: never, since the
// net face makes plain TCP sockets (see the package doc).
func (c *netTCPConn) MultipathTCP() (bool, error) { return false, nil }

// ReadFrom implements io.ReaderFrom: from a TCP or Unix stream socket
// (package net's or the net face's) it splices, from a regular file it uses
// sendfile(2), so the bytes never pass through user memory; from anything
// else it copies.
func (c *netTCPConn) ReadFrom(r io.Reader) (int64, error) {
	n, err := c.readFrom(r)
	if err != nil && err != io.EOF {
		err = c.fd.opErr("readfrom", "", c.fd.laddr(), c.fd.raddr(), err)
	}
	return n, err
}

// WriteTo implements io.WriterTo: to a TCP or Unix stream socket it splices;
// to anything else it copies.
func (c *netTCPConn) WriteTo(w io.Writer) (int64, error) {
	n, err := c.writeTo(w)
	if err != nil && err != io.EOF {
		err = c.fd.opErr("writeto", "", c.fd.laddr(), c.fd.raddr(), err)
	}
	return n, err
}

// Keep-alive, as package net sets it (net/tcpsockopt_unix.go).

// Package net's keep-alive defaults, which its dialer and listener apply to
// every connection unless told otherwise.
const (
	defaultKeepAliveIdle     = 15 * time.Second
	defaultKeepAliveInterval = 15 * time.Second
	defaultKeepAliveCount    = 9
)

// roundSeconds rounds d up to whole seconds, as the kernel takes them.
func roundSeconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

// setsockopter sets an int socket option: on a netFD under its fdMutex,
// or on a raw fd nobody else has yet.
type setsockopter func(level, name, v int) error

// rawSetsockopt is a setsockopter on the fd s, which no other goroutine
// can see yet (a socket being set up).
func rawSetsockopt(s int) setsockopter {
	return func(level, name, v int) error {
		return os.NewSyscallError("setsockopt", unix.SetsockoptInt(s, level, name, v))
	}
}

func setKeepAliveIdle(set setsockopter, d time.Duration) error {
	if d == 0 {
		d = defaultKeepAliveIdle
	} else if d < 0 {
		return nil
	}
	return set(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, roundSeconds(d))
}

func setKeepAliveInterval(set setsockopter, d time.Duration) error {
	if d == 0 {
		d = defaultKeepAliveInterval
	} else if d < 0 {
		return nil
	}
	return set(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, roundSeconds(d))
}

func setKeepAliveCount(set setsockopter, n int) error {
	if n == 0 {
		n = defaultKeepAliveCount
	} else if n < 0 {
		return nil
	}
	return set(unix.IPPROTO_TCP, unix.TCP_KEEPCNT, n)
}

func setKeepAliveConfig(set setsockopter, config net.KeepAliveConfig) error {
	if err := set(unix.SOL_SOCKET, unix.SO_KEEPALIVE, boolInt(config.Enable)); err != nil {
		return err
	}
	if err := setKeepAliveIdle(set, config.Idle); err != nil {
		return err
	}
	if err := setKeepAliveInterval(set, config.Interval); err != nil {
		return err
	}
	return setKeepAliveCount(set, config.Count)
}

// keepAliveFor is what package net applies to a new connection, given a
// Dialer's or ListenConfig's KeepAlive and KeepAliveConfig: the config when
// it is enabled; else, unless keepAlive is negative, probes on with
// keepAlive as the idle time (0: the default); else nothing.
func keepAliveFor(keepAlive time.Duration, config net.KeepAliveConfig) (net.KeepAliveConfig, bool) {
	if config.Enable {
		return config, true
	}
	if keepAlive < 0 {
		return config, false
	}
	return net.KeepAliveConfig{Enable: true, Idle: keepAlive}, true
}

// setupTCP gives a new connection's socket s package net's defaults, before
// any other goroutine can see it: TCP_NODELAY, and keep-alive as
// keepAliveFor says. Errors are ignored, as package net ignores them.
func setupTCP(s int, keepAlive time.Duration, config net.KeepAliveConfig) {
	set := rawSetsockopt(s)
	_ = set(unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if cfg, ok := keepAliveFor(keepAlive, config); ok {
		_ = setKeepAliveConfig(set, cfg)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
