//go:build linux

package netio

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/runtime"
)

// packetConn is the net.PacketConn (and, when connected, net.Conn) face of
// a UDPConn: received datagrams queue as leases for ReadFrom, which copies
// the payload out; each WriteTo sends the caller's pinned bytes and waits.
//
// As in tcpConn, the loop thread takes no lock: datagrams reach ReadFrom
// through a leaseq, the rest is atomic or handed over by a posted task (wbuf,
// wto) or by OnSent's signal (wn, werr).
type packetConn struct {
	u       *UDPConn
	l       *runtime.Loop
	cfg     *Config
	network string
	laddr   *net.UDPAddr
	raddr   *net.UDPAddr // connected sockets

	// The receive half shared with tcpConn: the datagram queue and its protocol.
	readSide[datagram]

	gone    atomic.Bool // OnClose has run: the socket is closed
	readEnd atomic.Bool // gone, once every received datagram is in rq
	endHeld bool        // loop: gone, but datagrams still overflow
	wbuf    []byte      // writer, then the loop in the write task
	wto     netip.AddrPort
	wn      int // loop in OnSent, then the writer after wsig
	werr    error

	rsig      chan struct{}
	wsig      chan struct{}
	closeCh   chan struct{}
	closeOnce sync.Once
	done      chan struct{}
	readMu    sync.Mutex
	writeMu   sync.Mutex
	rdl, wdl  deadline

	relT, writeT, cancelWT, closeT, reclaimT pcTask
}

type datagram struct {
	lease   bufring.Lease
	payload []byte
	from    netip.AddrPort
	err     error // an error reported in order with the datagrams
}

func releaseDatagram(d *datagram) { d.lease.Release() }

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
	p.reclaimT = pcTask{p, taskReclaim}
	p.init(l, &p.relT, &p.reclaimT)
	return p
}

// PacketHandler methods, on the loop.

func (p *packetConn) OnPacket(u *UDPConn, d *Data) {
	lease := d.Keep()
	if p.rclosed.Load() {
		lease.Release()
		return
	}
	freed := p.rq.releaseRead(releaseDatagram) > 0
	p.rq.refill()
	p.rbytes.Add(int64(lease.Len()))
	p.rq.push(datagram{lease: lease, payload: d.Bytes(), from: d.From()})
	if !p.paused && p.rbytes.Load() >= int64(p.cfg.ReadAhead) {
		p.setPaused(true)
		u.PauseRecv()
	}
	signal(p.rsig)
	if freed {
		u.ls.kickStarved()
	}
}

func (p *packetConn) OnError(_ *UDPConn, err error) {
	if !p.rclosed.Load() {
		p.rq.push(datagram{err: err})
	}
	signal(p.rsig)
}

func (p *packetConn) OnClose(*UDPConn, error) {
	p.gone.Store(true)
	if len(p.rq.over) > 0 {
		p.endHeld = true // release publishes readEnd once the overflow is in rq
	} else {
		p.readEnd.Store(true)
	}
	signal(p.rsig)
	close(p.done)
}

func (p *packetConn) OnSent(u *UDPConn, _ uint64, err error) {
	p.wn, p.werr, p.wbuf = u.sentN, err, nil
	signal(p.wsig)
}

func (p *packetConn) run(op uint8) {
	u := p.u
	switch op {
	case taskRelease:
		p.release()
	case taskWrite:
		p.release() // datagrams read since the last release ride along
		if err := u.sendUser(p.wbuf, p.wto, 1); err != nil {
			p.OnSent(u, 1, err)
		}
	case taskCancelWrite:
		// A datagram send does not block for long; it completes on its own.
	case taskClose:
		u.Close(nil)
		// Reclaim now unless a read is inside the queue, which then posts
		// taskReclaim when it leaves.
		if p.closeForReads() {
			p.reclaim()
		}
	case taskReclaim:
		p.reclaim()
	}
}

// reclaim releases every queued datagram. Loop thread, once the socket is
// closed for reads and no read is inside the queue.
func (p *packetConn) reclaim() {
	p.rq.releaseAll(releaseDatagram)
	p.rbytes.Store(0)
}

// release gives read datagrams' buffers back, moves overflowed datagrams into
// the queue and resumes a paused receive. Loop thread.
func (p *packetConn) release() {
	if !p.startRelease() {
		return
	}
	u := p.u
	n := p.rq.releaseRead(releaseDatagram)
	news := p.rq.refill() > 0
	if p.endHeld && len(p.rq.over) == 0 {
		p.endHeld = false
		p.readEnd.Store(true)
		news = true
	}
	if news {
		signal(p.rsig)
	}
	resume := p.paused && p.rbytes.Load() < int64(p.cfg.ReadAhead/2) && !p.gone.Load()
	if resume {
		p.setPaused(false)
		u.ResumeRecv()
	}
	if n > 0 {
		u.ls.kickStarved()
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
		// readEnd is loaded before the queue: the loop queues the last
		// datagrams before it publishes the end.
		end := p.readEnd.Load()
		if !p.enterQueue() {
			return 0, netip.AddrPort{}, p.opError("read", nil, net.ErrClosed)
		}
		if dg := p.rq.peek(); dg != nil {
			n, from, err := copy(b, dg.payload), dg.from, dg.err
			p.rbytes.Add(-int64(dg.lease.Len()))
			p.rq.advance()
			p.leaveQueue()
			if err != nil {
				return 0, netip.AddrPort{}, p.opError("read", nil, err)
			}
			if p.rq.unreleased() >= relBatch || p.pausedR.Load() && p.rbytes.Load() < int64(p.cfg.ReadAhead/2) {
				p.postRelease()
			}
			return n, from, nil
		}
		p.leaveQueue()
		if p.rq.unreleased() > 0 {
			p.postRelease() // about to block: give the buffers back now
		}
		if end {
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
	if p.gone.Load() {
		return 0, p.opError("write", addr, net.ErrClosed)
	}
	p.wbuf, p.wto, p.wn, p.werr = b, to, 0, nil // read by the loop in the task posted next
	if p.l.Post(&p.writeT) != nil {
		return 0, p.opError("write", addr, net.ErrClosed)
	}
	<-p.wsig               // a datagram send completes promptly; deadlines are checked before it
	n, err := p.wn, p.werr // set by OnSent before its signal
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
