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
)

// netUDPConn is the net face's UDP socket: the method set of *net.UDPConn over
// a netFD. Every read is a recvmsg(2) and every write a sendmsg(2) made by
// the calling goroutine, waiting in Go's poller when the socket is empty
// (or full), as package net does; control messages (ECN, packet info,
// UDP_SEGMENT) pass through ReadMsgUDP and WriteMsgUDP untouched.
//
// Reads and writes allocate nothing: each direction keeps its arguments,
// results and its RawConn callback (made once) in the conn, under its own
// mutex, which also serializes concurrent readers (writers) as package net's
// fdMutex does.
type netUDPConn struct {
	fd netFD
	rc syscall.RawConn // fd's, made once
	rd udpRead
	wr udpWrite
}

// udpRead is one recvmsg in progress.
type udpRead struct {
	mu     sync.Mutex
	p, oob []byte
	from   unix.RawSockaddrAny
	name   bool // ask for the sender's address
	n      int
	oobn   int
	flags  int
	err    error
	fn     func(fd uintptr) bool
}

// udpWrite is one sendmsg in progress.
type udpWrite struct {
	mu     sync.Mutex
	p, oob []byte
	to     sockaddr.Raw
	n      int
	err    error
	fn     func(fd uintptr) bool
}

// start makes what every read and write reuses, once fd is open.
func (u *netUDPConn) start() {
	u.rc = u.fd.raw()
	u.rd.fn = u.rd.recv
	u.wr.fn = u.wr.send
}

func (r *udpRead) recv(fd uintptr) bool {
	from := &r.from
	if !r.name {
		from = nil
	}
	for {
		r.n, r.oobn, r.flags, r.err = sockaddr.Recvmsg(int(fd), r.p, r.oob, 0, from)
		switch r.err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		return true
	}
}

func (w *udpWrite) send(fd uintptr) bool {
	for {
		w.n, w.err = sockaddr.Sendmsg(int(fd), w.p, w.oob, w.to.Bytes(), unix.MSG_NOSIGNAL)
		switch w.err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		return true
	}
}

// read receives one datagram into b (and control messages into oob).
func (u *netUDPConn) read(b, oob []byte, name bool, call string) (n, oobn, flags int, from netip.AddrPort, err error) {
	r := &u.rd
	r.mu.Lock()
	r.p, r.oob, r.name = b, oob, name
	err = u.rc.Read(r.fn)
	if err == nil {
		err = r.err
	}
	n, oobn, flags = r.n, r.oobn, r.flags
	if err == nil && name {
		from, _ = sockaddr.Decode(sockaddr.AnyBytes(&r.from))
	}
	r.p, r.oob, r.err = nil, nil, nil
	r.mu.Unlock()
	if err != nil {
		return 0, 0, 0, from, u.fd.opErr("read", call, u.fd.laddr(), u.fd.raddr(), err)
	}
	return n, oobn, flags, from, nil
}

// write sends b (and control messages oob) to the address to; an invalid to
// means the connected peer.
func (u *netUDPConn) write(b, oob []byte, to netip.AddrPort, dst net.Addr, call string) (n, oobn int, err error) {
	if to.IsValid() && u.fd.remote.IsValid() {
		return 0, 0, &net.OpError{Op: "write", Net: u.fd.net, Source: u.fd.laddr(), Addr: dst, Err: net.ErrWriteToConnected}
	}
	if !to.IsValid() && !u.fd.remote.IsValid() {
		return 0, 0, &net.OpError{Op: "write", Net: u.fd.net, Source: u.fd.laddr(), Addr: nil, Err: errMissingAddress}
	}
	w := &u.wr
	w.mu.Lock()
	w.p, w.oob = b, oob
	w.to.Len = 0
	if to.IsValid() {
		err = w.to.Set(to, int(u.fd.family))
	}
	if err == nil {
		err = u.rc.Write(w.fn)
		if err == nil {
			err = w.err
		}
	}
	n = w.n
	w.p, w.oob, w.err = nil, nil, nil
	w.mu.Unlock()
	if err != nil {
		if dst == nil {
			dst = u.fd.raddr()
		}
		return 0, 0, u.fd.opErr("write", call, u.fd.laddr(), dst, err)
	}
	return n, len(oob), nil
}

// errMissingAddress is package net's error for a write with no destination.
var errMissingAddress = &net.AddrError{Err: "missing address"}

// Read reads one datagram from a connected socket into b.
func (u *netUDPConn) Read(b []byte) (int, error) {
	n, _, _, _, err := u.read(b, nil, false, "read")
	return n, err
}

// ReadFrom reads one datagram into b and returns its sender.
func (u *netUDPConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, _, _, from, err := u.read(b, nil, true, "recvfrom")
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// ReadFromUDP is ReadFrom with the sender as a *net.UDPAddr.
func (u *netUDPConn) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	n, _, _, from, err := u.read(b, nil, true, "recvfrom")
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// ReadFromUDPAddrPort is ReadFrom with the sender as a netip.AddrPort. It
// allocates nothing.
func (u *netUDPConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	n, _, _, from, err := u.read(b, nil, true, "recvfrom")
	return n, from, err
}

// ReadMsgUDP reads one datagram into b and its control messages into oob,
// and returns the message flags (MSG_TRUNC, MSG_CTRUNC) and the sender.
func (u *netUDPConn) ReadMsgUDP(b, oob []byte) (n, oobn, flags int, addr *net.UDPAddr, err error) {
	n, oobn, flags, from, err := u.read(b, oob, true, "recvmsg")
	if err != nil {
		return n, oobn, flags, nil, err
	}
	return n, oobn, flags, net.UDPAddrFromAddrPort(from), nil
}

// ReadMsgUDPAddrPort is ReadMsgUDP with the sender as a netip.AddrPort.
func (u *netUDPConn) ReadMsgUDPAddrPort(b, oob []byte) (n, oobn, flags int, addr netip.AddrPort, err error) {
	return u.read(b, oob, true, "recvmsg")
}

// Write sends b to the connected peer.
func (u *netUDPConn) Write(b []byte) (int, error) {
	n, _, err := u.write(b, nil, netip.AddrPort{}, nil, "write")
	return n, err
}

// WriteTo sends b to addr, a *net.UDPAddr.
func (u *netUDPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	a, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: u.fd.net, Source: u.fd.laddr(), Addr: addr, Err: syscall.EINVAL}
	}
	return u.WriteToUDP(b, a)
}

// WriteToUDP sends b to addr.
func (u *netUDPConn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	if addr == nil {
		n, _, err := u.write(b, nil, netip.AddrPort{}, nil, "sendto")
		return n, err
	}
	n, _, err := u.write(b, nil, addr.AddrPort(), addr, "sendto")
	return n, err
}

// WriteToUDPAddrPort sends b to addr. It allocates nothing.
func (u *netUDPConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	n, _, err := u.write(b, nil, addr, nil, "sendto")
	return n, err
}

// WriteMsgUDP sends b with the control messages in oob to addr (nil on a
// connected socket).
func (u *netUDPConn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error) {
	if addr == nil {
		return u.write(b, oob, netip.AddrPort{}, nil, "sendmsg")
	}
	return u.write(b, oob, addr.AddrPort(), addr, "sendmsg")
}

// WriteMsgUDPAddrPort is WriteMsgUDP with a netip.AddrPort (the zero value
// on a connected socket).
func (u *netUDPConn) WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error) {
	return u.write(b, oob, addr, nil, "sendmsg")
}

// Close closes the socket; blocked reads and writes return net.ErrClosed.
func (u *netUDPConn) Close() error {
	if err := u.fd.Close(); err != nil {
		return u.fd.opErr("close", "close", u.fd.laddr(), u.fd.raddr(), err)
	}
	return nil
}

func (u *netUDPConn) LocalAddr() net.Addr                   { return u.fd.LocalAddr() }
func (u *netUDPConn) RemoteAddr() net.Addr                  { return u.fd.RemoteAddr() }
func (u *netUDPConn) SetDeadline(t time.Time) error         { return u.fd.SetDeadline(t) }
func (u *netUDPConn) SetReadDeadline(t time.Time) error     { return u.fd.SetReadDeadline(t) }
func (u *netUDPConn) SetWriteDeadline(t time.Time) error    { return u.fd.SetWriteDeadline(t) }
func (u *netUDPConn) SetReadBuffer(bytes int) error         { return u.fd.SetReadBuffer(bytes) }
func (u *netUDPConn) SetWriteBuffer(bytes int) error        { return u.fd.SetWriteBuffer(bytes) }
func (u *netUDPConn) SyscallConn() (syscall.RawConn, error) { return u.fd.SyscallConn() }
func (u *netUDPConn) File() (*os.File, error)               { return u.fd.File() }

// ListenPacket announces on the local address, as
// net.ListenConfig.ListenPacket does, for "udp", "udp4" and "udp6".
func (lc *ListenConfig) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	cfg, err := lc.Config.withDefaults()
	if err != nil {
		return nil, err
	}
	k, ok := parseNetwork(network)
	if !ok || k.stream {
		return nil, opErr("listen", network, nil, nil, "", net.UnknownNetworkError(network))
	}
	if fallback(&cfg) {
		return lc.netListenConfig().ListenPacket(ctx, network, address)
	}
	aps, err := resolve(ctx, k, network, address, false)
	if err != nil {
		return nil, opErr("listen", network, nil, nil, "", err)
	}
	ap := aps[0]
	fail := func(err error) (net.PacketConn, error) {
		return nil, opErr("listen", network, nil, net.UDPAddrFromAddrPort(ap), "", err)
	}
	set, err := setFor(lc.Runtime, lc.Loop)
	if err != nil {
		return fail(err)
	}
	family, v6only := socketFor(k, ap)
	sp := openSpec{
		network: network, k: k, family: family, v6only: v6only,
		laddr: ap, bind: true, ctrl: lc.control(), ctrlFor: address, set: set,
	}
	if ap.Addr().IsMulticast() {
		// As package net's listenDatagram: several sockets may join the
		// group, each bound to the wildcard address with the group's port.
		sp.listening = true
		sp.laddr = netip.AddrPortFrom(netip.Addr{}, ap.Port())
	}
	u := &netUDPConn{}
	if err := sp.open(ctx, &u.fd, nil); err != nil {
		return fail(err)
	}
	u.fd.fillAddrs(netip.AddrPort{})
	u.start()
	return u, nil
}
