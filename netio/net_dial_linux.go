//go:build linux

package netio

import (
	"context"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/sockaddr"
	"github.com/ringwire/ringwire/runtime"
)

// The net face's sockets are made here with socket(2) and handed to Go's
// poller (netFD); they join the socket set of a loop of their runtime, which
// closes them when the runtime closes. Each step follows package net's
// socket(): create, set its defaults, Control, bind, then listen or connect.

// control is a Control function of ListenConfig's or Dialer's shape,
// context included.
type control func(ctx context.Context, network, address string, c syscall.RawConn) error

// ctrlNetwork is the network name Control gets, as package net's
// netFD.ctrlNetwork: the family made explicit ("tcp4", "udp6").
func ctrlNetwork(network string, family int) string {
	switch network[len(network)-1] {
	case '4', '6':
		return network
	}
	if family == unix.AF_INET {
		return network + "4"
	}
	return network + "6"
}

// openSpec is one socket to open.
type openSpec struct {
	network   string
	k         netKind
	family    int
	v6only    bool
	laddr     netip.AddrPort // the address to bind, when bind is set
	bind      bool
	listening bool // a TCP listener: SO_REUSEADDR, as package net sets
	ctrl      control
	ctrlFor   string // the address Control is told
	set       *sockSet
}

// open creates the socket and sets it up (setup, when set, runs on the raw
// fd before anyone else can see it), wraps it in fd, joins set, runs
// Control and binds it. On error the socket is closed.
func (sp *openSpec) open(ctx context.Context, fd *netFD, setup func(s int)) error {
	sotype := unix.SOCK_DGRAM
	if sp.k.stream {
		sotype = unix.SOCK_STREAM
	}
	s, err := newSocket(sp.family, sotype, sp.v6only)
	if err != nil {
		return err
	}
	if sp.listening {
		if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			_ = unix.Close(s)
			return os.NewSyscallError("setsockopt", err)
		}
	}
	if setup != nil {
		setup(s)
	}
	if err := fd.init(s, sp.family, sp.network, sp.set); err != nil {
		return err
	}
	fail := func(err error) error {
		_ = fd.Close()
		return err
	}
	if sp.ctrl != nil {
		if err := sp.ctrl(ctx, ctrlNetwork(sp.network, sp.family), sp.ctrlFor, &rawConn{fd: fd, rc: fd.raw()}); err != nil {
			return fail(err)
		}
	}
	if sp.bind {
		sa, err := sockaddr.ToUnix(bindAddr(sp.laddr, sp.family), sp.family)
		if err != nil {
			return fail(err)
		}
		if err := fd.control(func(s int) error { return os.NewSyscallError("bind", unix.Bind(s, sa)) }); err != nil {
			return fail(err)
		}
	}
	return nil
}

// setFor returns the socket set a new net-face socket joins: that of l, or
// of the next loop of rt in turn, or with neither the set CloseDefault
// closes.
func setFor(rt *runtime.Runtime, l *runtime.Loop) (*sockSet, error) {
	if rt == nil && l == nil {
		return defaultSockets(), nil
	}
	l, err := pickLoop(rt, l)
	if err != nil {
		return nil, err
	}
	return socketSet(l)
}

// fillAddrs records the socket's local address (getsockname) and, for a
// connected socket, the peer address dialed.
func (fd *netFD) fillAddrs(peer netip.AddrPort) {
	_ = fd.control(func(s int) error {
		fd.setAddrs(s, peer)
		return nil
	})
}

// Listen announces on the local address, as net.ListenConfig.Listen does.
func (lc *ListenConfig) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	cfg, err := lc.Config.withDefaults()
	if err != nil {
		return nil, err
	}
	k, ok := parseNetwork(network)
	if !ok || !k.stream {
		return nil, opErr("listen", network, nil, nil, "", net.UnknownNetworkError(network))
	}
	if fallback(&cfg) {
		return lc.netListenConfig().Listen(ctx, network, address)
	}
	aps, err := resolve(ctx, k, network, address, false)
	if err != nil {
		return nil, opErr("listen", network, nil, nil, "", err)
	}
	ap := aps[0]
	fail := func(err error) (net.Listener, error) {
		return nil, opErr("listen", network, nil, net.TCPAddrFromAddrPort(ap), "", err)
	}
	set, err := setFor(lc.Runtime, nil)
	if err != nil {
		return fail(err)
	}
	family, v6only := socketFor(k, ap)
	sp := openSpec{
		network: network, k: k, family: family, v6only: v6only,
		laddr: ap, bind: true, listening: true, ctrl: lc.control(), ctrlFor: address, set: set,
	}
	ln := &netTCPListener{fd: &netFD{}, rt: lc.Runtime, keepAlive: lc.KeepAlive, keepAliveConfig: lc.KeepAliveConfig}
	fd := ln.fd
	if err := sp.open(ctx, fd, nil); err != nil {
		return fail(err)
	}
	backlog := cfg.Backlog
	if backlog == 0 {
		backlog = listenBacklog()
	}
	if err := fd.control(func(s int) error { return os.NewSyscallError("listen", unix.Listen(s, backlog)) }); err != nil {
		_ = fd.Close()
		return fail(err)
	}
	fd.fillAddrs(netip.AddrPort{})
	ln.rc = fd.raw()
	ln.acc.try = ln.acc.accept
	return ln, nil
}

// netListenConfig is lc as package net's, for the fallback.
func (lc *ListenConfig) netListenConfig() *net.ListenConfig {
	nl := &net.ListenConfig{Control: lc.Control, KeepAlive: lc.KeepAlive, KeepAliveConfig: lc.KeepAliveConfig}
	nl.SetMultipathTCP(false)
	return nl
}

// control returns lc.Control in the shape open takes.
func (lc *ListenConfig) control() control {
	if lc.Control == nil {
		return nil
	}
	return func(_ context.Context, network, address string, c syscall.RawConn) error {
		return lc.Control(network, address, c)
	}
}

// netTCPListener is the net face's TCP listener: the method set of
// *net.TCPListener. Accept waits in Go's poller and calls accept4(2) itself;
// each accepted connection joins the socket set of the runtime's next loop.
type netTCPListener struct {
	fd              *netFD
	rc              syscall.RawConn // fd's, for Accept
	acc             acceptCall
	rt              *runtime.Runtime
	keepAlive       time.Duration
	keepAliveConfig net.KeepAliveConfig
}

// acceptCall holds one accept4 call's results (see netTCPListener.accept).
type acceptCall struct {
	mu   sync.Mutex
	try  func(fd uintptr) bool // a.accept, bound once
	s    int
	err  error
	peer unix.RawSockaddrAny
}

// accept is the RawConn.Read callback: accept4 until a connection, an error
// of the listener's own, or EAGAIN (wait in the poller, then again).
func (a *acceptCall) accept(fd uintptr) bool {
	for {
		a.s, a.err = sockaddr.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, &a.peer)
		switch a.err {
		case unix.EINTR, unix.ECONNABORTED:
			// As package net: a connection reset before it was
			// accepted is not the listener's error.
			continue
		case unix.EAGAIN:
			return false
		}
		return true
	}
}

// Accept waits for the next connection.
func (ln *netTCPListener) Accept() (net.Conn, error) { return ln.accept() }

// AcceptTCP accepts the next connection as a *net.TCPConn: package net's own
// type, which a net-face connection cannot be, so the connection is handed
// to package net (net.FileConn) and runs there. Accept returns the net
// face's connections.
func (ln *netTCPListener) AcceptTCP() (*net.TCPConn, error) {
	c, err := ln.accept()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	f, err := c.File()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	nc, err := net.FileConn(f)
	if err != nil {
		return nil, ln.fd.opErr("accept", "", nil, ln.fd.laddr(), err)
	}
	return nc.(*net.TCPConn), nil
}

func (ln *netTCPListener) accept() (*netTCPConn, error) {
	// The accept4 call writes its results into ln.acc, under acc.mu for the
	// whole wait, as package net's Accept holds the fd's read lock: no
	// closure or address is allocated per connection.
	a := &ln.acc
	a.mu.Lock()
	err := ln.rc.Read(a.try)
	s, aerr := a.s, a.err
	remote, _ := sockaddr.Decode(sockaddr.AnyBytes(&a.peer))
	a.mu.Unlock()
	laddr := ln.fd.laddr()
	if err == nil && aerr != nil {
		// accept4 itself failed (not the wait: a closed listener or a
		// deadline leaves err set).
		if ln.fd.owner != nil {
			ln.fd.owner.stats.acceptErrs.Add(1)
		}
		err = os.NewSyscallError("accept4", aerr)
	}
	if err != nil {
		return nil, ln.fd.opErr("accept", "accept4", nil, laddr, err)
	}
	// Without a runtime a connection joins the listener's own set;
	// with one, the runtime's loops take turns.
	set := ln.fd.owner
	if ln.rt != nil {
		if set, err = setFor(ln.rt, nil); err != nil {
			_ = unix.Close(s)
			return nil, ln.fd.opErr("accept", "", nil, laddr, err)
		}
	}
	setupTCP(s, ln.keepAlive, ln.keepAliveConfig)
	c := &netTCPConn{}
	c.fd.setAddrs(s, remote)
	if err := c.fd.init(s, int(ln.fd.family), ln.fd.net, set); err != nil {
		return nil, ln.fd.opErr("accept", "", nil, laddr, err)
	}
	set.stats.accepted.Add(1)
	return c, nil
}

// Close stops listening; a blocked Accept returns net.ErrClosed. Accepted
// connections stay open.
func (ln *netTCPListener) Close() error {
	if err := ln.fd.Close(); err != nil {
		return ln.fd.opErr("close", "close", nil, ln.fd.laddr(), err)
	}
	return nil
}

// Addr returns the listener's address.
func (ln *netTCPListener) Addr() net.Addr { return ln.fd.laddr() }

// SetDeadline sets the deadline for Accept.
func (ln *netTCPListener) SetDeadline(t time.Time) error {
	return ln.fd.opErr("set", "", nil, ln.fd.laddr(), ln.fd.f.SetDeadline(t))
}

// SyscallConn returns a raw connection to the listening socket.
func (ln *netTCPListener) SyscallConn() (syscall.RawConn, error) { return ln.fd.SyscallConn() }

// File returns a duplicate of the listening socket.
func (ln *netTCPListener) File() (*os.File, error) {
	f, err := ln.fd.File()
	if err != nil {
		return nil, ln.fd.opErr("file", "", nil, ln.fd.laddr(), err)
	}
	return f, nil
}

// Dial connects to address, as net.Dialer.Dial does.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address, as net.Dialer.DialContext does: ctx, and
// Timeout and Deadline if set, bound the connect (and the name lookup).
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	cfg, err := d.Config.withDefaults()
	if err != nil {
		return nil, err
	}
	k, ok := parseNetwork(network)
	if !ok {
		return nil, opErr("dial", network, nil, nil, "", net.UnknownNetworkError(network))
	}
	if fallback(&cfg) {
		return d.netDialer().DialContext(ctx, network, address)
	}
	ctx, cancel := d.dialContext(ctx)
	defer cancel()
	set, err := setFor(d.Runtime, d.Loop)
	if err != nil {
		return nil, opErr("dial", network, nil, nil, "", err)
	}
	aps, err := resolve(ctx, k, network, address, true)
	if err != nil {
		return nil, opErr("dial", network, nil, nil, "", err)
	}
	var first error
	for _, ap := range aps {
		c, err := d.dialOne(ctx, set, network, k, ap)
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// dialContext bounds ctx by Timeout and Deadline.
func (d *Dialer) dialContext(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline := d.Deadline
	if d.Timeout > 0 {
		if t := time.Now().Add(d.Timeout); deadline.IsZero() || t.Before(deadline) {
			deadline = t
		}
	}
	if deadline.IsZero() {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, deadline)
}

// netDialer is d as package net's, for the fallback.
func (d *Dialer) netDialer() *net.Dialer {
	nd := &net.Dialer{
		Timeout: d.Timeout, Deadline: d.Deadline, LocalAddr: d.LocalAddr,
		KeepAlive: d.KeepAlive, KeepAliveConfig: d.KeepAliveConfig,
		Control: d.Control, ControlContext: d.ControlContext,
	}
	nd.SetMultipathTCP(false)
	return nd
}

// control returns the Dialer's Control function in the shape open takes.
func (d *Dialer) control() control {
	if d.ControlContext != nil {
		return d.ControlContext
	}
	if d.Control != nil {
		return func(_ context.Context, network, address string, c syscall.RawConn) error {
			return d.Control(network, address, c)
		}
	}
	return nil
}

// localAddrPort returns LocalAddr as an address to bind, if set and of the
// network's kind.
func (d *Dialer) localAddrPort(k netKind) (netip.AddrPort, bool, error) {
	switch a := d.LocalAddr.(type) {
	case nil:
		return netip.AddrPort{}, false, nil
	case *net.TCPAddr:
		if k.stream {
			return a.AddrPort(), true, nil
		}
	case *net.UDPAddr:
		if !k.stream {
			return a.AddrPort(), true, nil
		}
	}
	return netip.AddrPort{}, false, &net.AddrError{Err: "mismatched local address type", Addr: d.LocalAddr.String()}
}

// dialOne opens a socket and connects it to ap.
func (d *Dialer) dialOne(ctx context.Context, set *sockSet, network string, k netKind, ap netip.AddrPort) (net.Conn, error) {
	var raddr net.Addr = net.TCPAddrFromAddrPort(ap)
	if !k.stream {
		raddr = net.UDPAddrFromAddrPort(ap)
	}
	fail := func(err error) (net.Conn, error) {
		return nil, opErr("dial", network, d.LocalAddr, raddr, "connect", err)
	}
	if err := ctx.Err(); err != nil {
		return fail(mapCtxErr(err))
	}
	local, bind, err := d.localAddrPort(k)
	if err != nil {
		return fail(err)
	}
	family, _ := socketFor(k, ap)
	if bind && local.Addr().IsValid() && sockaddr.FamilyOf(local) != family && family == unix.AF_INET {
		family = unix.AF_INET6 // an IPv6 local address needs an IPv6 socket
	}
	sp := openSpec{
		network: network, k: k, family: family,
		laddr: local, bind: bind, ctrl: d.control(), ctrlFor: ap.String(), set: set,
	}
	var fd *netFD
	var c net.Conn
	var setup func(s int)
	if k.stream {
		tc := &netTCPConn{}
		fd, c = &tc.fd, tc
		setup = func(s int) { setupTCP(s, d.KeepAlive, d.KeepAliveConfig) }
	} else {
		uc := &netUDPConn{}
		fd, c = &uc.fd, uc
	}
	if err := sp.open(ctx, fd, setup); err != nil {
		return fail(err)
	}
	if err := fd.connect(ctx, ap); err != nil {
		_ = fd.Close()
		return fail(err)
	}
	fd.fillAddrs(ap)
	if uc, ok := c.(*netUDPConn); ok {
		uc.start()
	}
	return c, nil
}

// aLongTimeAgo is a deadline in the past, to interrupt a wait.
var aLongTimeAgo = time.Unix(1, 0)

// connect connects the socket to ap as package net's netFD.connect does:
// a non-blocking connect(2), then a wait in Go's poller for writability and
// SO_ERROR, with ctx's deadline and cancellation interrupting the wait.
func (fd *netFD) connect(ctx context.Context, ap netip.AddrPort) error {
	sa, err := sockaddr.ToUnix(ap, int(fd.family))
	if err != nil {
		return err
	}
	var cerr error
	if err := fd.control(func(s int) error {
		for {
			cerr = unix.Connect(s, sa)
			if cerr != unix.EINTR {
				return nil
			}
		}
	}); err != nil {
		return err
	}
	switch cerr {
	case nil, unix.EISCONN:
		return nil
	case unix.EINPROGRESS, unix.EALREADY:
	default:
		return os.NewSyscallError("connect", cerr)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = fd.f.SetWriteDeadline(deadline)
		defer func() { _ = fd.f.SetWriteDeadline(time.Time{}) }()
	}
	if ctx.Done() != nil {
		interrupted := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			_ = fd.f.SetWriteDeadline(aLongTimeAgo)
			close(interrupted)
		})
		defer func() {
			if !stop() {
				<-interrupted // the interrupt ran: wait for it before the deadline is reset
			}
		}()
	}
	var serr error
	err = fd.raw().Write(func(s uintptr) bool {
		v, err := unix.GetsockoptInt(int(s), unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			serr = err
			return true
		}
		switch e := syscall.Errno(v); e {
		case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
			return false
		case 0, unix.EISCONN:
			// A spurious wakeup reports 0 before the handshake ends: only
			// a peer address proves the connection (as package net checks).
			if _, err := unix.Getpeername(int(s)); err != nil {
				return false
			}
			return true
		default:
			serr = e
			return true
		}
	})
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return mapCtxErr(ctxErr)
		}
		return fd.mapErr("connect", err)
	}
	if serr != nil {
		return os.NewSyscallError("connect", serr)
	}
	return nil
}
