//go:build linux

package netio

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/runtime"
)

// netFD is one socket of the net face. Its fd belongs to an *os.File made
// with os.NewFile on the non-blocking socket, which registers it with Go's
// poller: Read, Write and every wait park the calling goroutine in
// internal/poll exactly as package net's do (deadline checked before the
// system call, EAGAIN parks until the fd is ready, Close evicts waiters,
// fdMutex keeps the fd number from being reused under a call in progress).
// The thread that returns from epoll_wait runs the woken goroutine: one
// wakeup per readiness, and no loop thread between the socket and the caller.
//
// netFD adds package net's error shapes and the socket's membership of a
// per-loop owner (sockSet), which closes it when its runtime closes.
//
// Its fields are ordered to pack: with netTCPConn's read lock it fills a
// 160-byte size class.
type netFD struct {
	f      *os.File
	net    string
	local  netip.AddrPort
	remote netip.AddrPort // invalid for an unconnected socket
	addrs  atomic.Pointer[netAddrs]

	// The readiness mirror (net_mirror_linux.go): rdl is the read
	// deadline (deadlineOf; 0 for none), rawOut says SyscallConn or File
	// was handed out, which keeps Reads off the mirror. mc is the socket's
	// membership, once it has one.
	rdl atomic.Int64
	mc  atomic.Pointer[mirrorConn]

	owner      *sockSet // the loop's set it belongs to; nil for none
	prev, next *netFD   // owner's list; guarded by owner.mu
	closed     atomic.Bool
	rawOut     atomic.Bool
	family     uint8 // AF_INET or AF_INET6
	linked     bool  // in owner's list; guarded by owner.mu
	// drained: a TCP connection's last read that took anything returned
	// data and less than asked, so the socket was empty then, and no edge
	// the mirror saw since has been spent (netTCPConn.rmu).
	drained bool
}

// netAddrs are a socket's addresses as net.Addr values, made the first time
// they are asked for and shared by every later call (as package net's are).
// A connection keeps them as netip.AddrPort until then: a server that never
// asks saves two allocations per connection.
type netAddrs struct{ local, remote net.Addr }

// fileName is the *os.File name of every net-face socket: a constant, so
// that wrapping an fd allocates no string.
const fileName = "socket"

// init wraps the non-blocking socket s and adds fd to set; on failure s is
// closed. set nil means no owner (tests).
func (fd *netFD) init(s, family int, network string, set *sockSet) error {
	fd.f = os.NewFile(uintptr(s), fileName)
	fd.net, fd.family, fd.owner = network, uint8(family), set
	if set != nil && !set.add(fd) {
		fd.closed.Store(true)
		_ = fd.f.Close()
		return net.ErrClosed
	}
	return nil
}

// raw returns the socket's RawConn (os's: its calls run under f's
// fdMutex). It allocates: hot paths keep the one they need.
func (fd *netFD) raw() syscall.RawConn {
	rc, _ := fd.f.SyscallConn() // never fails for a valid *os.File
	return rc
}

// addrs returns the socket's addresses as net.Addr values.
func (fd *netFD) netAddrs() *netAddrs {
	if a := fd.addrs.Load(); a != nil {
		return a
	}
	a := &netAddrs{}
	if fd.net[0] == 't' {
		a.local = net.TCPAddrFromAddrPort(fd.local)
		if fd.remote.IsValid() {
			a.remote = net.TCPAddrFromAddrPort(fd.remote)
		}
	} else {
		a.local = net.UDPAddrFromAddrPort(fd.local)
		if fd.remote.IsValid() {
			a.remote = net.UDPAddrFromAddrPort(fd.remote)
		}
	}
	if fd.addrs.CompareAndSwap(nil, a) {
		return a
	}
	return fd.addrs.Load()
}

func (fd *netFD) laddr() net.Addr { return fd.netAddrs().local }
func (fd *netFD) raddr() net.Addr { return fd.netAddrs().remote }

// setAddrs records the local address (getsockname) and the peer's.
func (fd *netFD) setAddrs(s int, peer netip.AddrPort) {
	fd.local, _ = localAddr(s)
	fd.remote = peer
}

// Close closes the socket once: it takes it out of its owner, evicts every
// goroutine parked on it, and returns when the fd is closed (by the last
// goroutine inside a call on it, if any). Later calls report net.ErrClosed.
func (fd *netFD) Close() error {
	if !fd.closed.CompareAndSwap(false, true) {
		return net.ErrClosed
	}
	if fd.owner != nil {
		fd.owner.remove(fd)
	}
	fd.leaveMirror()
	return fd.closeFile()
}

// countSpliced adds n bytes moved without a copy to the owner loop's stats.
func (fd *netFD) countSpliced(n int64) {
	if n <= 0 || fd.owner == nil || fd.owner.stats == nil {
		return
	}
	fd.owner.stats.spliced.Add(uint64(n))
}

// closeFile closes f; errors other than the close(2) errno are impossible
// here, since only Close and the owner close f, once.
func (fd *netFD) closeFile() error {
	err := fd.f.Close()
	if pe, ok := err.(*os.PathError); ok { // not errors.As: its target escapes
		return os.NewSyscallError("close", pe.Err)
	}
	return err
}

// mapErr turns an error of f's methods or of its RawConn into package net's:
// os.ErrClosed (or internal/poll's closing error, which the deadline and
// RawConn methods return unwrapped) becomes net.ErrClosed, an errno becomes
// an *os.SyscallError naming call, and io.EOF and os.ErrDeadlineExceeded stay
// as they are.
func (fd *netFD) mapErr(call string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	// The errors f's methods return are a *PathError over a bare value:
	// unwrap and compare directly, without errors.As's reflection, since a
	// deadline hit is routine (net/http times out a background Read on every
	// request).
	if pe, ok := err.(*os.PathError); ok {
		err = pe.Err
	}
	switch e := err.(type) {
	case syscall.Errno:
		return os.NewSyscallError(call, e)
	case *os.SyscallError:
		return e
	}
	switch {
	case err == os.ErrDeadlineExceeded || errors.Is(err, os.ErrDeadlineExceeded):
		return os.ErrDeadlineExceeded
	case err == os.ErrClosed || fd.closed.Load() || errors.Is(err, os.ErrClosed):
		return net.ErrClosed
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return os.NewSyscallError(call, errno)
	}
	return err
}

// opErr is mapErr's result in a *net.OpError with the given addresses, as
// package net reports errors; nil and io.EOF pass through.
func (fd *netFD) opErr(op, call string, src, dst net.Addr, err error) error {
	err = fd.mapErr(call, err)
	if err == nil || err == io.EOF {
		return err
	}
	return &net.OpError{Op: op, Net: fd.net, Source: src, Addr: dst, Err: err}
}

// setErr is the error of a setter (deadlines, socket options) in net's shape.
func (fd *netFD) setErr(call string, err error) error {
	if err == nil {
		return nil
	}
	return fd.opErr("set", call, nil, fd.laddr(), err)
}

// control runs f with the fd under f's fdMutex, as a setsockopt does.
func (fd *netFD) control(f func(fd int) error) error {
	var err error
	if cerr := fd.raw().Control(func(s uintptr) { err = f(int(s)) }); cerr != nil {
		return cerr
	}
	return err
}

// setsockoptInt is a setsockopt(2) of an int option under the fdMutex.
func (fd *netFD) setsockoptInt(level, name, v int) error {
	return fd.control(func(s int) error {
		return os.NewSyscallError("setsockopt", unix.SetsockoptInt(s, level, name, v))
	})
}

// Deadlines, as package net's: Go's poller keeps them.

func (fd *netFD) SetDeadline(t time.Time) error {
	err := fd.f.SetDeadline(t)
	fd.setRDL(t)
	return fd.setErr("", err)
}

func (fd *netFD) SetReadDeadline(t time.Time) error {
	err := fd.f.SetReadDeadline(t)
	fd.setRDL(t)
	return fd.setErr("", err)
}

// setRDL records the read deadline for the mirror, after Go's poller has
// it: a Read parked on the mirror is nudged to decide again, since the
// mirror's timer was armed for the deadline it parked with.
func (fd *netFD) setRDL(t time.Time) {
	fd.rdl.Store(deadlineOf(t))
	if !t.IsZero() {
		fd.nudge()
	}
}

func (fd *netFD) SetWriteDeadline(t time.Time) error {
	return fd.setErr("", fd.f.SetWriteDeadline(t))
}

// SetReadBuffer sets SO_RCVBUF.
func (fd *netFD) SetReadBuffer(bytes int) error {
	return fd.setErr("setsockopt", fd.setsockoptInt(unix.SOL_SOCKET, unix.SO_RCVBUF, bytes))
}

// SetWriteBuffer sets SO_SNDBUF.
func (fd *netFD) SetWriteBuffer(bytes int) error {
	return fd.setErr("setsockopt", fd.setsockoptInt(unix.SOL_SOCKET, unix.SO_SNDBUF, bytes))
}

// LocalAddr returns the local address.
func (fd *netFD) LocalAddr() net.Addr { return fd.laddr() }

// RemoteAddr returns the peer's address (nil for an unconnected socket).
func (fd *netFD) RemoteAddr() net.Addr { return fd.raddr() }

// SyscallConn returns a raw connection whose Control, Read and Write run
// under the socket's fdMutex, as package net's does: the fd number they are
// given cannot be closed and reused while they run.
func (fd *netFD) SyscallConn() (syscall.RawConn, error) {
	if fd.closed.Load() {
		return nil, net.ErrClosed
	}
	fd.handOut()
	return &rawConn{fd: fd, rc: fd.raw()}, nil
}

// handOut keeps Reads off the mirror from now on: whoever holds the raw
// socket may change what readiness means (SO_RCVLOWAT) or read from it.
func (fd *netFD) handOut() {
	fd.rawOut.Store(true)
	fd.nudge()
}

// File returns a duplicate of the socket as a blocking *os.File, as package
// net's File does. Closing either leaves the other open.
func (fd *netFD) File() (*os.File, error) {
	fd.handOut()
	var nfd int
	err := fd.control(func(s int) error {
		var err error
		nfd, err = unix.FcntlInt(uintptr(s), unix.F_DUPFD_CLOEXEC, 0)
		return os.NewSyscallError("fcntl", err)
	})
	if err != nil {
		return nil, fd.opErr("file", "fcntl", fd.laddr(), fd.raddr(), err)
	}
	// The duplicate shares the open file description, O_NONBLOCK included:
	// it stays non-blocking, since making it blocking would make this
	// socket's own fd blocking too.
	return os.NewFile(uintptr(nfd), fileName), nil
}

// rawConn is the net face's syscall.RawConn: os's, with package net's
// errors.
type rawConn struct {
	fd *netFD
	rc syscall.RawConn
}

func (c *rawConn) Control(f func(fd uintptr)) error {
	return c.err("raw-control", c.rc.Control(f))
}

func (c *rawConn) Read(f func(fd uintptr) bool) error {
	return c.err("raw-read", c.rc.Read(f))
}

func (c *rawConn) Write(f func(fd uintptr) bool) error {
	return c.err("raw-write", c.rc.Write(f))
}

func (c *rawConn) err(op string, err error) error {
	if err == nil {
		return nil
	}
	return &net.OpError{Op: op, Net: c.fd.net, Source: nil, Addr: c.fd.laddr(), Err: c.fd.mapErr("", err)}
}

// sockSet is the set of net-face sockets one loop owns (the loop's
// loopState holds it). Sockets join from any goroutine when they are
// created and leave when they are closed; when the loop shuts down, closeAll
// closes the rest, so that every Read, Write and Accept on them returns
// net.ErrClosed. A set once closed admits no socket.
type sockSet struct {
	l      *runtime.Loop // the loop that owns the set
	stats  *loopCounters // that loop's netio counters
	mu     sync.Mutex
	head   *netFD
	n      int
	closed bool

	// The set's readiness mirror (net_mirror_linux.go), made on first use;
	// mirOff (under mu) once making it failed. active counts the set's
	// readers parked either way whose last read returned data.
	mir    atomic.Pointer[mirror]
	mirOff bool
	active atomic.Int64
}

// add puts fd in the set; false if the set is closed.
func (s *sockSet) add(fd *netFD) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	fd.linked = true
	fd.next = s.head
	if s.head != nil {
		s.head.prev = fd
	}
	s.head = fd
	s.n++
	return true
}

// remove takes fd out of the set, if it is still in it.
func (s *sockSet) remove(fd *netFD) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !fd.linked {
		return
	}
	if fd.prev != nil {
		fd.prev.next = fd.next
	} else {
		s.head = fd.next
	}
	if fd.next != nil {
		fd.next.prev = fd.prev
	}
	fd.prev, fd.next, fd.linked = nil, nil, false
	s.n--
}

// len returns the number of sockets in the set.
func (s *sockSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// closeAll closes the set and every socket still in it. The sockets are
// closed after the set's lock is released: a Close of one of them running
// at the same time finds it gone from the set and leaves it to closeAll, or
// closed already.
func (s *sockSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	var fds []*netFD
	for fd := s.head; fd != nil; {
		next := fd.next
		fd.prev, fd.next, fd.linked = nil, nil, false
		fds = append(fds, fd)
		fd = next
	}
	s.head, s.n = nil, 0
	s.mu.Unlock()
	for _, fd := range fds {
		if fd.closed.CompareAndSwap(false, true) {
			fd.leaveMirror()
			_ = fd.closeFile()
		}
	}
	if m := s.mir.Load(); m != nil {
		m.close()
	}
}
