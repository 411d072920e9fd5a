//go:build linux

package netio

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/runtime"
)

// packetConn is the net.PacketConn (and, when connected, net.Conn) face of
// a UDPConn: received datagrams queue as leases for ReadFrom, which copies
// the payload out; each WriteTo sends the caller's pinned bytes and waits.
type packetConn struct {
	u       *UDPConn
	l       *runtime.Loop
	cfg     *Config
	network string
	laddr   *net.UDPAddr
	raddr   *net.UDPAddr // connected sockets

	mu        sync.Mutex
	rq        []datagram
	rhead     int
	rbytes    int
	paused    bool
	rel       []bufring.Lease
	relSpare  []bufring.Lease
	relPosted bool
	gone      bool
	wbuf      []byte
	wto       netip.AddrPort
	wn        int
	werr      error

	rsig      chan struct{}
	wsig      chan struct{}
	closeCh   chan struct{}
	closeOnce sync.Once
	done      chan struct{}
	readMu    sync.Mutex
	writeMu   sync.Mutex
	rdl, wdl  deadline

	relT, writeT, cancelWT, closeT pcTask
}

type datagram struct {
	lease   bufring.Lease
	payload []byte
	from    netip.AddrPort
	err     error // an error reported in order with the datagrams
}

type pcTask struct {
	p  *packetConn
	op uint8
}

func (k *pcTask) Run(*runtime.Loop) { k.p.run(k.op) }

func newPacketConn(l *runtime.Loop, cfg *Config, network string) *packetConn {
	p := &packetConn{
		l: l, cfg: cfg, network: network,
		rsig: make(chan struct{}, 1), wsig: make(chan struct{}, 1),
		closeCh: make(chan struct{}), done: make(chan struct{}),
		rdl: makeDeadline(), wdl: makeDeadline(),
	}
	p.relT = pcTask{p, taskRelease}
	p.writeT = pcTask{p, taskWrite}
	p.cancelWT = pcTask{p, taskCancelWrite}
	p.closeT = pcTask{p, taskClose}
	return p
}

// PacketHandler methods, on the loop.

func (p *packetConn) OnPacket(u *UDPConn, d *Data) {
	lease := d.Keep()
	p.mu.Lock()
	p.rq = append(p.rq, datagram{lease: lease, payload: d.Bytes(), from: d.From()})
	p.rbytes += lease.Len()
	pause := !p.paused && p.rbytes >= p.cfg.ReadAhead
	if pause {
		p.paused = true
	}
	p.mu.Unlock()
	if pause {
		u.PauseRecv()
	}
	signal(p.rsig)
}

func (p *packetConn) OnError(_ *UDPConn, err error) {
	p.mu.Lock()
	p.rq = append(p.rq, datagram{err: err})
	p.mu.Unlock()
	signal(p.rsig)
}

func (p *packetConn) OnClose(*UDPConn, error) {
	p.mu.Lock()
	p.gone = true
	p.mu.Unlock()
	signal(p.rsig)
	close(p.done)
}

func (p *packetConn) OnSent(u *UDPConn, _ uint64, err error) {
	p.mu.Lock()
	p.wn, p.werr, p.wbuf = u.sentN, err, nil
	p.mu.Unlock()
	signal(p.wsig)
}

func (p *packetConn) run(op uint8) {
	u := p.u
	switch op {
	case taskRelease:
		p.release()
	case taskWrite:
		p.release() // datagrams read since the last release ride along
		p.mu.Lock()
		b, to := p.wbuf, p.wto
		p.mu.Unlock()
		if err := u.sendUser(b, to, 1); err != nil {
			p.OnSent(u, 1, err)
		}
	case taskCancelWrite:
		// A datagram send does not block for long; it completes on its own.
	case taskClose:
		u.Close(nil)
		p.mu.Lock()
		for i := p.rhead; i < len(p.rq); i++ {
			p.rq[i].lease.Release()
		}
		for i := range p.rel {
			p.rel[i].Release()
		}
		p.rq, p.rhead, p.rbytes, p.rel = nil, 0, 0, nil
		p.mu.Unlock()
	}
}

// release gives read datagrams' buffers back and resumes a paused receive.
// Loop thread.
func (p *packetConn) release() {
	u := p.u
	p.mu.Lock()
	rel := p.rel
	p.rel, p.relSpare = p.relSpare[:0], nil
	p.relPosted = false
	resume := p.paused && p.rbytes < p.cfg.ReadAhead/2 && !p.gone
	if resume {
		p.paused = false
	}
	p.mu.Unlock()
	for i := range rel {
		rel[i].Release()
	}
	clear(rel)
	p.mu.Lock()
	if p.relSpare == nil {
		p.relSpare = rel[:0]
	}
	p.mu.Unlock()
	if resume {
		u.ResumeRecv()
	}
	if len(rel) > 0 {
		u.ls.kickStarved()
	}
}

// postRelease posts the release task unless it is pending; p.mu is held.
func (p *packetConn) postRelease() {
	if p.relPosted {
		return
	}
	p.relPosted = true
	if p.l.Post(&p.relT) != nil {
		clear(p.rel)
		p.rel = p.rel[:0]
	}
}

func (p *packetConn) isClosed() bool { return isClosedChan(p.closeCh) }

func (p *packetConn) opError(op string, addr net.Addr, err error) error {
	if errors.Is(err, net.ErrClosed) || errors.Is(err, errCanceled) {
		err = net.ErrClosed
	}
	if addr == nil && p.raddr != nil {
		addr = p.raddr
	}
	return opErr(op, p.network, p.laddr, addr, op, err)
}

// readFrom copies the next datagram's payload into b (the rest of a longer
// datagram is discarded, as package net does).
func (p *packetConn) readFrom(b []byte) (int, netip.AddrPort, error) {
	p.readMu.Lock()
	defer p.readMu.Unlock()
	for {
		if p.isClosed() {
			return 0, netip.AddrPort{}, p.opError("read", nil, net.ErrClosed)
		}
		p.mu.Lock()
		if p.rhead < len(p.rq) {
			dg := p.rq[p.rhead]
			p.rq[p.rhead] = datagram{}
			p.rhead++
			if p.rhead == len(p.rq) {
				p.rq, p.rhead = p.rq[:0], 0
			}
			if dg.err != nil {
				p.mu.Unlock()
				return 0, netip.AddrPort{}, p.opError("read", nil, dg.err)
			}
			n := copy(b, dg.payload)
			p.rbytes -= dg.lease.Len()
			p.rel = append(p.rel, dg.lease)
			if len(p.rel) >= relBatch || p.paused && p.rbytes < p.cfg.ReadAhead/2 {
				p.postRelease()
			}
			p.mu.Unlock()
			return n, dg.from, nil
		}
		gone := p.gone
		if len(p.rel) > 0 {
			p.postRelease() // about to block: give the buffers back now
		}
		p.mu.Unlock()
		if gone {
			return 0, netip.AddrPort{}, p.opError("read", nil, net.ErrClosed)
		}
		if p.rdl.expired() {
			return 0, netip.AddrPort{}, p.opError("read", nil, os.ErrDeadlineExceeded)
		}
		select {
		case <-p.rsig:
		case <-p.rdl.wait():
		case <-p.closeCh:
		}
	}
}

// ReadFrom reads one datagram; it allocates only the returned *net.UDPAddr.
func (p *packetConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := p.readFrom(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// ReadFromUDPAddrPort is ReadFrom without allocating.
func (p *packetConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	return p.readFrom(b)
}

// Read reads one datagram (connected sockets).
func (p *packetConn) Read(b []byte) (int, error) {
	n, _, err := p.readFrom(b)
	return n, err
}

func (p *packetConn) writeTo(b []byte, to netip.AddrPort, addr net.Addr) (int, error) {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if p.isClosed() {
		return 0, p.opError("write", addr, net.ErrClosed)
	}
	if p.wdl.expired() {
		return 0, p.opError("write", addr, os.ErrDeadlineExceeded)
	}
	p.mu.Lock()
	if p.gone {
		p.mu.Unlock()
		return 0, p.opError("write", addr, net.ErrClosed)
	}
	p.wbuf, p.wto, p.wn, p.werr = b, to, 0, nil
	p.mu.Unlock()
	if p.l.Post(&p.writeT) != nil {
		return 0, p.opError("write", addr, net.ErrClosed)
	}
	<-p.wsig // a datagram send completes promptly; deadlines are checked before it
	p.mu.Lock()
	n, err := p.wn, p.werr
	p.mu.Unlock()
	if err != nil {
		return n, p.opError("write", addr, err)
	}
	return n, nil
}

// WriteTo sends b as one datagram to addr.
func (p *packetConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if p.raddr != nil {
		return 0, p.opError("write", addr, net.ErrWriteToConnected)
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok || ua == nil {
		return 0, p.opError("write", addr, &net.AddrError{Err: "unexpected address type", Addr: addrString(addr)})
	}
	return p.writeTo(b, ua.AddrPort(), addr)
}

// WriteToUDPAddrPort sends b to addr without allocating.
func (p *packetConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if p.raddr != nil {
		return 0, p.opError("write", nil, net.ErrWriteToConnected)
	}
	return p.writeTo(b, addr, nil)
}

// Write sends b to the connected peer.
func (p *packetConn) Write(b []byte) (int, error) {
	if p.raddr == nil {
		return 0, p.opError("write", nil, os.NewSyscallError("sendto", unix.EDESTADDRREQ))
	}
	return p.writeTo(b, netip.AddrPort{}, nil)
}

func addrString(a net.Addr) string {
	if a == nil {
		return "<nil>"
	}
	return a.String()
}

// Close closes the socket, unblocking ReadFrom, and returns once it is closed.
func (p *packetConn) Close() error {
	first := false
	p.closeOnce.Do(func() { first = true; close(p.closeCh) })
	if !first {
		return p.opError("close", nil, net.ErrClosed)
	}
	if p.l.Post(&p.closeT) != nil {
		return nil
	}
	<-p.done
	return nil
}

func (p *packetConn) LocalAddr() net.Addr { return p.laddr }

func (p *packetConn) RemoteAddr() net.Addr {
	if p.raddr == nil {
		return nil
	}
	return p.raddr
}

func (p *packetConn) SetDeadline(t time.Time) error {
	if p.isClosed() {
		return p.opError("set", nil, net.ErrClosed)
	}
	p.rdl.set(t)
	p.wdl.set(t)
	return nil
}

func (p *packetConn) SetReadDeadline(t time.Time) error {
	if p.isClosed() {
		return p.opError("set", nil, net.ErrClosed)
	}
	p.rdl.set(t)
	return nil
}

func (p *packetConn) SetWriteDeadline(t time.Time) error {
	if p.isClosed() {
		return p.opError("set", nil, net.ErrClosed)
	}
	p.wdl.set(t)
	return nil
}

func (p *packetConn) onLoop(f func(fd int) error) error {
	if p.isClosed() {
		return p.opError("set", nil, net.ErrClosed)
	}
	if err := runOn(p.l, func(*runtime.Loop) error {
		if p.u.state != stOpen {
			return net.ErrClosed
		}
		return f(p.u.fd)
	}); err != nil {
		return p.opError("set", nil, err)
	}
	return nil
}

// SetReadBuffer sets SO_RCVBUF.
func (p *packetConn) SetReadBuffer(bytes int) error {
	return p.onLoop(func(fd int) error {
		return sockopt("setsockopt", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, bytes))
	})
}

// SetWriteBuffer sets SO_SNDBUF.
func (p *packetConn) SetWriteBuffer(bytes int) error {
	return p.onLoop(func(fd int) error {
		return sockopt("setsockopt", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, bytes))
	})
}

// ListenPacket announces on the local address, as net.ListenConfig.ListenPacket
// does, on lc.Loop or else on the next loop of the runtime in turn.
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
		var nl net.ListenConfig
		return nl.ListenPacket(ctx, network, address)
	}
	l, err := pickLoop(lc.Runtime, lc.Loop)
	if err != nil {
		return nil, opErr("listen", network, nil, nil, "", err)
	}
	aps, err := resolve(ctx, k, network, address, false)
	if err != nil {
		return nil, opErr("listen", network, nil, nil, "", err)
	}
	fd, local, err := listenSocket(k, aps[0], 0, false)
	if err != nil {
		return nil, opErr("listen", network, nil, udpAddrOrNil(aps[0]), "bind", err)
	}
	family, _ := socketFor(k, aps[0])
	p := newPacketConn(l, &cfg, network)
	p.laddr = net.UDPAddrFromAddrPort(local)
	if err := p.open(fd, family, local, netip.AddrPort{}); err != nil {
		return nil, opErr("listen", network, nil, p.laddr, "", err)
	}
	return p, nil
}

func udpAddrOrNil(ap netip.AddrPort) net.Addr {
	if !ap.Addr().IsValid() {
		return &net.UDPAddr{Port: int(ap.Port())}
	}
	return net.UDPAddrFromAddrPort(ap)
}

// open makes the UDPConn on p's loop and starts receiving.
func (p *packetConn) open(fd, family int, local, remote netip.AddrPort) error {
	err := runOn(p.l, func(l *runtime.Loop) error {
		ls, err := stateOf(l)
		if err != nil {
			return err
		}
		u := newUDPConn(ls, p.cfg, fd, family, p)
		u.local, u.remote, u.connected = local, remote, remote.IsValid()
		p.u = u
		u.armRecv()
		return nil
	})
	if err != nil {
		closeFD(fd)
	}
	return err
}

// dialUDP makes a connected UDP socket (connect(2) on a datagram socket
// only sets the default destination; it does not block).
func dialUDP(l *runtime.Loop, cfg *Config, network string, k netKind, ap netip.AddrPort) (net.Conn, error) {
	raddr := net.UDPAddrFromAddrPort(ap)
	family, _ := socketFor(k, ap)
	fd, err := newSocket(family, unix.SOCK_DGRAM, false)
	if err != nil {
		return nil, opErr("dial", network, nil, raddr, "socket", err)
	}
	sa, err := toUnix(ap, family)
	if err == nil {
		err = unix.Connect(fd, sa)
	}
	if err != nil {
		closeFD(fd)
		return nil, opErr("dial", network, nil, raddr, "connect", err)
	}
	local, err := localAddr(fd)
	if err != nil {
		closeFD(fd)
		return nil, opErr("dial", network, nil, raddr, "getsockname", err)
	}
	p := newPacketConn(l, cfg, network)
	p.laddr, p.raddr = net.UDPAddrFromAddrPort(local), raddr
	if err := p.open(fd, family, local, ap); err != nil {
		return nil, opErr("dial", network, nil, raddr, "", err)
	}
	return p, nil
}
