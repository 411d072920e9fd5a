//go:build linux

package netio

import (
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/internal/sockaddr"
	"github.com/ringwire/ringwire/ring"
	"github.com/ringwire/ringwire/runtime"
)

// recvmsgNameLen is the name area each multishot recvmsg buffer reserves:
// room for a sockaddr_in6.
const recvmsgNameLen = sockaddr.SizeofInet6

// UDPConn is a handler-API UDP socket, connected or not. It lives on one
// loop; its methods are loop thread only.
type UDPConn struct {
	ls          *loopState
	cfg         *Config
	fd          int
	family      int
	h           PacketHandler
	sendHandler PacketSendHandler
	local       netip.AddrPort
	remote      netip.AddrPort // valid when connected
	connected   bool
	ctx         any

	recvHdr  *unix.Msghdr // name and control lengths for multishot recvmsg
	recvOp   runtime.OpID
	state    uint8
	paused   bool
	starved  bool
	inflight int // sends in flight
	queued   int // bytes in flight
	free     *udpSend
	reason   error
	sentN    int // bytes sent by the send OnSent reports
}

// udpCompletions is a UDPConn seen as the runtime.Handler of its receive
// (a conversion, (*udpCompletions)(u)), so that HandleCompletion stays off
// UDPConn's exported method set.
type udpCompletions UDPConn

// udpSend is one datagram send in flight, the runtime.Handler of its
// operation; UDPConn keeps finished ones on a free list.
type udpSend struct {
	u      *UDPConn
	raw    sockaddr.Raw
	buf    []byte
	kind   uint8
	fixed  bufring.FixedLease
	lease  bufring.Lease
	tag    uint64
	notify bool
	next   *udpSend
}

func newUDPConn(ls *loopState, cfg *Config, fd, family int, h PacketHandler) *UDPConn {
	u := &UDPConn{ls: ls, cfg: cfg, fd: fd, family: family, recvHdr: &unix.Msghdr{Namelen: recvmsgNameLen}}
	u.setHandler(h)
	ls.fds[fd] = struct{}{}
	return u
}

func (u *UDPConn) setHandler(h PacketHandler) {
	u.h = h
	u.sendHandler, _ = h.(PacketSendHandler)
}

// Loop returns the socket's loop. Any goroutine.
func (u *UDPConn) Loop() *runtime.Loop { return u.ls.l }

// FD returns the socket's descriptor, for socket options. Do not close it.
func (u *UDPConn) FD() int { return u.fd }

// LocalAddr returns the bound address. Any goroutine.
func (u *UDPConn) LocalAddr() netip.AddrPort { return u.local }

// RemoteAddr returns the connected peer, or the zero AddrPort. Any goroutine.
func (u *UDPConn) RemoteAddr() netip.AddrPort { return u.remote }

// SetContext stores a value for the handler's use.
func (u *UDPConn) SetContext(v any) { u.ctx = v }

// Context returns the value stored with SetContext.
func (u *UDPConn) Context() any { return u.ctx }

// rearmRecv re-arms a receive that ended with ENOBUFS (loopState.kickStarved).
func (u *UDPConn) rearmRecv() {
	u.starved = false
	u.armRecv()
}

// recvArmed reports whether a receive is armed: after rearmRecv, false when
// the socket closed or paused meanwhile (kickStarved then counts no re-arm).
func (u *UDPConn) recvArmed() bool { return u.recvOp != 0 }

func (u *UDPConn) armRecv() {
	if u.recvOp != 0 || u.state != stOpen || u.paused || u.starved {
		return
	}
	sqe, id, err := u.ls.l.NewOp((*udpCompletions)(u), tagRecv)
	if err != nil {
		u.Close(err)
		return
	}
	sqe.PrepRecvmsgMultishot(u.fd, u.recvHdr, u.ls.gid, 0)
	u.ls.l.Pin(id, u.recvHdr)
	u.recvOp = id
}

// rearmFinal re-arms the receive after a final CQE that did not close the
// socket: the kernel ends a multishot recvmsg on every zero-length datagram
// and on an error such as ECONNREFUSED. A re-arm is counted in Stats.Rearms
// and with the loop's CountRearm, whose next wait then skips the latency
// budget, so a flood of empty datagrams costs one quick round each instead of
// a whole budget each while the socket's valid datagrams queue behind them.
func (u *UDPConn) rearmFinal() {
	u.armRecv()
	if u.recvOp != 0 {
		u.ls.l.CountRearm()
		u.ls.stats.rearms.Add(1)
	}
}

// PauseRecv stops receiving until ResumeRecv (datagrams then queue in the
// socket buffer and, once it is full, are dropped by the kernel).
func (u *UDPConn) PauseRecv() {
	if u.paused {
		return
	}
	u.paused = true
	if u.recvOp != 0 {
		_ = u.ls.l.Cancel(u.recvOp)
	}
}

// ResumeRecv undoes PauseRecv.
func (u *UDPConn) ResumeRecv() {
	if u.paused {
		u.paused = false
		u.armRecv()
	}
}

func (o *udpCompletions) HandleCompletion(l *runtime.Loop, _ uint64, cqe *ring.CQE) {
	u := (*UDPConn)(o)
	final := !cqe.More()
	if final {
		u.recvOp = 0
	}
	if cqe.Res >= 0 {
		lease, err := u.ls.group.Lease(cqe)
		if err != nil {
			u.Close(err)
			return
		}
		if !lease.IsZero() {
			u.deliver(lease)
		}
		if final {
			u.rearmFinal() // a zero-length datagram ends a multishot recvmsg
		}
		u.maybeFinish()
		return
	}
	switch errno := cqe.Errno(); errno {
	case syscall.ENOBUFS:
		_, _ = u.ls.group.Lease(cqe)
		if final && u.state == stOpen {
			u.starved = true
			u.ls.starve(u)
		}
	case syscall.ECANCELED:
		if u.ls.l.Closing() {
			u.Close(net.ErrClosed) // the loop is shutting down
		} else if final {
			u.armRecv() // cancelled by PauseRecv; ResumeRecv may have come since
		}
	default:
		// ECONNREFUSED and friends: reported, and receiving goes on.
		if u.state == stOpen {
			u.callOnError(os.NewSyscallError("recvmsg", errno))
			if final {
				u.rearmFinal()
			}
		}
	}
	u.maybeFinish()
}

func (u *UDPConn) deliver(lease bufring.Lease) {
	if u.state != stOpen {
		lease.Release()
		return
	}
	v, err := ring.ParseRecvmsgOut(lease.Bytes(), recvmsgNameLen, 0)
	if err != nil {
		lease.Release()
		return
	}
	d := &u.ls.data
	*d = Data{lease: lease, view: v.Payload, truncated: v.PayloadTruncated}
	if v.PayloadTruncated {
		u.ls.stats.truncated.Add(1)
	}
	if u.connected {
		d.from = u.remote
	} else if ap, err := sockaddr.Decode(v.Name); err == nil {
		d.from = ap
	}
	u.callOnPacket(d)
	if !d.kept {
		lease.Release()
	}
	*d = Data{}
}

func (u *UDPConn) getSend() *udpSend {
	s := u.free
	if s == nil {
		return &udpSend{u: u}
	}
	u.free = s.next
	s.next = nil
	return s
}

func (u *UDPConn) canSend() error {
	if u.state != stOpen {
		return net.ErrClosed
	}
	if u.queued >= u.cfg.WriteHighWater {
		return ErrWriteQueueFull
	}
	return nil
}

// WriteTo copies b into loop-owned memory and sends it to to (the zero
// AddrPort: the connected peer). The caller may reuse b at once. It returns
// net.ErrClosed once Close was called, ErrWriteQueueFull above
// Config.WriteHighWater, a bufring error when the loop's send arena has no
// block for b, and another error when the send cannot be queued (to of the
// wrong address family, or the loop closing); a send that returned an error
// gets no OnSent.
func (u *UDPConn) WriteTo(b []byte, to netip.AddrPort, tag uint64) error {
	if err := u.canSend(); err != nil {
		return err
	}
	fl, err := u.ls.arena.Alloc(len(b))
	if err != nil {
		return err
	}
	buf := fl.Bytes()[:len(b)]
	copy(buf, b)
	s := u.getSend()
	s.kind, s.fixed, s.buf, s.tag, s.notify = sendCopy, fl, buf, tag, u.sendHandler != nil
	return u.start(s, to) // releases the block if it fails
}

// SendLeaseTo sends view, which lies in the lease's buffer (a received
// datagram after Data.Keep), to to without copying. To forward one datagram
// to several destinations, Retain the lease once per extra send.
//
// SendLeaseTo always takes over the reference to l it is given, whatever it
// returns: on success it releases it when the send completes (after OnSent);
// on any error (net.ErrClosed, ErrWriteQueueFull, an address of the wrong
// family, the loop closing, a full submission queue) it has released it
// before returning, and no OnSent follows. Either way the caller must not
// Release that reference; view stays valid for the caller only while it holds
// another reference (one taken with Retain for a further send, say).
func (u *UDPConn) SendLeaseTo(l bufring.Lease, view []byte, to netip.AddrPort, tag uint64) error {
	if err := u.canSend(); err != nil {
		l.Release()
		return err
	}
	s := u.getSend()
	s.kind, s.lease, s.buf, s.tag, s.notify = sendLease, l, view, tag, u.sendHandler != nil
	return u.start(s, to) // releases the lease if it fails
}

// start queues s's send to to. If it fails, s's arena block or lease is
// released (exactly once: the send never reached the kernel) and s recycled.
func (u *UDPConn) start(s *udpSend, to netip.AddrPort) error {
	s.raw.Len = 0
	if to.IsValid() {
		if err := s.raw.Set(to, u.family); err != nil {
			u.putSend(s, true)
			return err
		}
	}
	l := u.ls.l
	sqe, id, err := l.NewOp(s, 0)
	if err != nil {
		u.putSend(s, true)
		return err
	}
	sqe.PrepSend(u.fd, s.buf, msgNoSignal)
	if s.raw.Len > 0 {
		// The address goes in the op's off-heap scratch, so no send
		// pins Go memory.
		if sc := l.Scratch(id); sc != nil {
			sqe.SetSendAddr(sc[:copy(sc, s.raw.Bytes())])
		} else {
			sqe.SetSendAddr(s.raw.Bytes())
			l.Pin(id, s)
		}
	}
	u.inflight++
	u.queued += len(s.buf)
	u.ls.stats.plainSends.Add(1)
	return nil
}

func (u *UDPConn) putSend(s *udpSend, release bool) {
	if release {
		switch s.kind {
		case sendCopy:
			s.fixed.Release()
		case sendLease:
			s.lease.Release()
		}
	}
	*s = udpSend{u: u, next: u.free}
	u.free = s
}

// HandleCompletion completes one send.
func (s *udpSend) HandleCompletion(_ *runtime.Loop, _ uint64, cqe *ring.CQE) {
	u := s.u
	u.inflight--
	u.queued -= len(s.buf)
	var err error
	if cqe.Res < 0 {
		err = os.NewSyscallError("sendto", cqe.Errno())
		if cqe.Errno() == syscall.ECANCELED {
			err = errCanceled
		}
	}
	u.sentN = int(max(cqe.Res, 0))
	tag, notify := s.tag, s.notify
	u.putSend(s, true)
	if notify {
		u.callOnSent(tag, err)
	}
	u.maybeFinish()
}

// Close closes the socket once the receive and the sends in flight are done
// (the receive is cancelled; sends complete), then calls OnClose with reason.
func (u *UDPConn) Close(reason error) {
	if u.state != stOpen {
		return
	}
	u.state = stClosing
	u.reason = reason
	if u.recvOp != 0 {
		_ = u.ls.l.Cancel(u.recvOp)
	}
	u.maybeFinish()
}

func (u *UDPConn) maybeFinish() {
	if u.state != stClosing || u.recvOp != 0 || u.inflight != 0 {
		return
	}
	u.state = stClosed
	delete(u.ls.fds, u.fd)
	closeFD(u.fd)
	u.callOnClose()
}

// The handler's callbacks are called through these, each of which recovers a
// panic (recoverCallback).
func (u *UDPConn) callOnPacket(d *Data) {
	defer u.recoverCallback("OnPacket")
	u.h.OnPacket(u, d)
}

func (u *UDPConn) callOnError(err error) {
	defer u.recoverCallback("OnError")
	u.h.OnError(u, err)
}

func (u *UDPConn) callOnSent(tag uint64, err error) {
	if u.sendHandler == nil {
		return
	}
	defer u.recoverCallback("OnSent")
	u.sendHandler.OnSent(u, tag, err)
}

func (u *UDPConn) callOnClose() {
	defer u.recoverCallback("OnClose")
	u.h.OnClose(u, u.reason)
}

// recoverCallback, deferred around a handler callback, turns its panic into
// a Close with a *PanicError, as though the callback had called Close and
// returned (see Conn.recoverCallback); the panic is reported to the loop.
func (u *UDPConn) recoverCallback(callback string) {
	if v := recover(); v != nil {
		u.ls.l.ReportPanic(v)
		u.Close(&PanicError{Callback: callback, Value: v})
	}
}
