//go:build linux

package netio

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/internal/sockaddr"
	"github.com/ringwire/ringwire/ring"
	"github.com/ringwire/ringwire/runtime"
)

// Operation tags of a Conn.
const (
	tagRecv uint64 = iota + 1
	tagSend
	tagShutdown
	tagZCGrace // the timer of a Close waiting for a SEND_ZC notification
)

// zcCloseGrace is how long Close waits for the notification of a SEND_ZC in
// flight before it resets the connection (see Close). A peer that reads
// acknowledges within a round trip; one that stopped reading never does.
const zcCloseGrace = time.Second

const msgNoSignal = unix.MSG_NOSIGNAL

// maxChunk is the largest arena block Write asks for: the largest of
// bufring.DefaultClasses.
const maxChunk = 256 << 10

// Conn states.
const (
	stOpen uint8 = iota
	stClosing
	stClosed
)

// send kinds.
const (
	sendCopy     uint8 = iota + 1 // bytes copied into an arena lease
	sendUser                      // caller memory, pinned; the caller waits
	sendLease                     // a received buffer, forwarded
	sendShutdown                  // shutdown(SHUT_WR) after what precedes it
)

type sendReq struct {
	buf    []byte
	off    int
	kind   uint8
	notify bool
	fixed  bufring.FixedLease
	lease  bufring.Lease
	tag    uint64
	res    int32
	zc     bool
}

// Conn is a TCP connection of the handler API. It lives on one loop; all its
// methods are loop thread only (call them from Handler callbacks or from a
// runtime.Task posted to Loop()), except where documented.
type Conn struct {
	ls               *loopState
	cfg              *Config
	fd               int
	h                Handler
	peerCloseHandler PeerCloseHandler
	sendHandler      SendHandler
	writableHandler  WritableHandler
	local            netip.AddrPort
	remote           netip.AddrPort
	ctx              any

	recvOp   runtime.OpID
	sendOp   runtime.OpID
	extraOps int // connect, shutdown

	state      uint8
	paused     bool // receive paused by PauseRecv
	peerClosed bool
	starved    bool
	zcOff      bool // the peer's SEND_ZC notifications said copied, or EOPNOTSUPP
	highWater  bool // queue went above the high-water mark
	drainClose bool // close with reason once the queue is empty
	reason     error

	sentN    int // bytes sent by the request OnSent reports
	q        []sendReq
	qhead    int
	queued   int
	gathered int          // requests from qhead the SENDMSG in flight carries (0: one SEND)
	gather   *gatherState // that SENDMSG's msghdr and iovecs; allocated on first use
}

// maxGather bounds how many queued sends one SENDMSG carries.
const maxGather = 16

// gatherState is the msghdr and iovec array of a gathered send. The iovecs
// point into loop-owned memory (leases, arena blocks); the struct itself is
// pinned to the send's op.
type gatherState struct {
	msg unix.Msghdr
	iov [maxGather]unix.Iovec
}

// connCompletions is a Conn seen as the runtime.Handler of its operations
// (a conversion, (*connCompletions)(c)), so that HandleCompletion stays off
// Conn's exported method set.
type connCompletions Conn

func newConn(ls *loopState, cfg *Config, fd int, h Handler) *Conn {
	c := &Conn{ls: ls, cfg: cfg, fd: fd}
	c.setHandler(h)
	ls.fds[fd] = struct{}{}
	return c
}

func (c *Conn) setHandler(h Handler) {
	c.h = h
	c.peerCloseHandler, _ = h.(PeerCloseHandler)
	c.sendHandler, _ = h.(SendHandler)
	c.writableHandler, _ = h.(WritableHandler)
}

// Loop returns the loop the connection lives on. Any goroutine.
func (c *Conn) Loop() *runtime.Loop { return c.ls.l }

// FD returns the socket's file descriptor, for socket options. Do not close it.
func (c *Conn) FD() int { return c.fd }

// LocalAddr returns the local address. Any goroutine.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// RemoteAddr returns the peer's address. Any goroutine.
func (c *Conn) RemoteAddr() netip.AddrPort { return c.remote }

// SetContext stores a value for the handler's use.
func (c *Conn) SetContext(v any) { c.ctx = v }

// Context returns the value stored with SetContext.
func (c *Conn) Context() any { return c.ctx }

// Closed reports whether Close has been called or the connection has ended.
func (c *Conn) Closed() bool { return c.state != stOpen }

// Queued returns the bytes queued for sending and not yet sent.
func (c *Conn) Queued() int { return c.queued }

// start delivers OnOpen and arms the receive.
func (c *Conn) start() {
	c.callOnOpen()
	c.armRecv()
}

func (c *Conn) rearmRecv() {
	c.starved = false
	c.armRecv()
}

// armRecv arms the multishot receive unless it is armed, paused, starved or
// finished.
func (c *Conn) armRecv() {
	if c.recvOp != 0 || c.state != stOpen || c.paused || c.peerClosed || c.starved {
		return
	}
	sqe, id, err := c.ls.l.NewOp((*connCompletions)(c), tagRecv)
	if err != nil {
		c.Close(err)
		return
	}
	sqe.PrepRecvMultishot(c.fd, c.ls.gid, 0)
	c.recvOp = id
}

// rearmFinal re-arms the receive after a final CQE that did not end the
// connection (the kernel ends a multishot receive for reasons of its own, a
// CQ that was full for one). A re-arm is counted in Stats.Rearms and with the
// loop's CountRearm, whose next wait then skips the latency budget.
func (c *Conn) rearmFinal() {
	c.armRecv()
	if c.recvOp != 0 {
		c.ls.l.CountRearm()
		c.ls.stats.rearms.Add(1)
	}
}

// PauseRecv stops receiving until ResumeRecv: the peer's data waits in the
// socket buffer and then in the peer's, which slows the peer down.
func (c *Conn) PauseRecv() {
	if c.paused {
		return
	}
	c.paused = true
	if c.recvOp != 0 {
		_ = c.ls.l.Cancel(c.recvOp)
	}
}

// ResumeRecv undoes PauseRecv.
func (c *Conn) ResumeRecv() {
	if !c.paused {
		return
	}
	c.paused = false
	c.armRecv()
}

// HandleCompletion dispatches the Conn's completions.
func (o *connCompletions) HandleCompletion(l *runtime.Loop, tag uint64, cqe *ring.CQE) {
	c := (*Conn)(o)
	switch tag {
	case tagRecv:
		c.onRecv(cqe)
	case tagSend:
		c.onSend(cqe)
	case tagShutdown:
		c.extraOps--
		c.onShutdownDone(cqe)
	case tagZCGrace:
		if c.state == stClosing && c.sendOp != 0 {
			// Still waiting: the peer does not acknowledge. The reset
			// frees the send queue, and with it the notification.
			_ = sockaddr.Disconnect(c.fd)
		}
	}
}

func (c *Conn) onRecv(cqe *ring.CQE) {
	final := !cqe.More()
	if final {
		c.recvOp = 0
	}
	switch {
	case cqe.Res > 0:
		lease, err := c.ls.group.Lease(cqe)
		if err != nil {
			c.Close(err)
			return
		}
		if c.state != stOpen {
			lease.Release()
		} else {
			d := &c.ls.data
			*d = Data{lease: lease, view: lease.Bytes()}
			c.callOnData(d)
			if !d.kept {
				lease.Release()
			}
			*d = Data{}
		}
		if final {
			c.rearmFinal()
		}
	case cqe.Res == 0:
		if cqe.HasBuffer() {
			_, _ = c.ls.group.Lease(cqe) // a zero-byte lease is released by Lease
		}
		c.peerClosed = true
		if c.recvOp != 0 {
			_ = c.ls.l.Cancel(c.recvOp)
		}
		if c.state == stOpen {
			if c.peerCloseHandler != nil {
				c.callOnPeerClose()
			} else {
				c.closeAfterFlush(io.EOF)
			}
		}
		c.maybeFinish()
	default:
		errno := cqe.Errno()
		switch errno {
		case syscall.ENOBUFS:
			_, _ = c.ls.group.Lease(cqe)
			if final && c.state == stOpen {
				c.starved = true
				c.ls.starve(c)
			}
		case syscall.ECANCELED:
			if c.ls.l.Closing() {
				c.Close(net.ErrClosed) // the loop is shutting down
			} else if final {
				c.armRecv() // cancelled by PauseRecv; ResumeRecv may have come since
			}
		default:
			c.Close(os.NewSyscallError("recv", errno))
		}
		c.maybeFinish()
	}
}

// Write copies b into loop-owned memory and queues it for sending; the
// caller may reuse b at once. It returns ErrWriteQueueFull when the queue is
// above Config.WriteHighWater (nothing is queued), net.ErrClosed after Close.
// An empty b queues nothing (as net.Conn's Write(nil) sends nothing) and gets
// no OnSent.
func (c *Conn) Write(b []byte) error { return c.write(b, 0, false) }

// WriteTag is Write with a tag reported to a SendHandler's OnSent.
func (c *Conn) WriteTag(b []byte, tag uint64) error { return c.write(b, tag, true) }

func (c *Conn) write(b []byte, tag uint64, notify bool) error {
	if len(b) == 0 {
		return c.canQueueEmpty()
	}
	if err := c.canQueue(); err != nil {
		return err
	}
	if c.qhead == len(c.q) {
		c.q, c.qhead = c.q[:0], 0 // as push would, so that first stays valid
	}
	first := len(c.q)
	queued := 0
	for len(b) > 0 {
		fl, err := c.ls.arena.Alloc(min(len(b), maxChunk))
		if err != nil {
			// Undo this call's chunks (none is in flight: startSend has not
			// run since they were queued).
			for i := first; i < len(c.q); i++ {
				c.q[i].fixed.Release()
				c.q[i] = sendReq{}
			}
			c.q = c.q[:first]
			c.queued -= queued
			if errors.Is(err, bufring.ErrArenaExhausted) {
				c.highWater = true
				return ErrWriteQueueFull
			}
			return err
		}
		buf := fl.Bytes()
		n := copy(buf, b)
		b = b[n:]
		r := c.push()
		r.buf, r.kind, r.fixed = buf[:n], sendCopy, fl
		if len(b) == 0 {
			r.tag, r.notify = tag, notify
		}
		c.queued += n
		queued += n
	}
	c.startSend()
	return nil
}

// Send queues b for sending without copying it. b must stay unchanged and
// reachable until OnSent reports tag (the Handler must be a SendHandler). An
// empty b queues nothing and gets no OnSent.
func (c *Conn) Send(b []byte, tag uint64) error {
	if len(b) == 0 {
		return c.canQueueEmpty()
	}
	if err := c.canQueue(); err != nil {
		return err
	}
	c.sendUser(b, tag)
	return nil
}

// sendUser queues caller memory without the high-water check (net.Conn
// Write, whose caller waits for the result).
func (c *Conn) sendUser(b []byte, tag uint64) {
	r := c.push()
	r.buf, r.kind, r.tag, r.notify = b, sendUser, tag, true
	c.queued += len(b)
	c.startSend()
}

// SendLease sends view, which lies in the lease's buffer (a Data's Bytes
// after Keep), without copying: with SEND_ZC from the registered buffer when
// it is large enough, otherwise a plain send from it. The lease is released
// when the send completes; to send the same bytes twice, Retain first. An
// empty view queues nothing and gets no OnSent: the lease is released at once.
func (c *Conn) SendLease(l bufring.Lease, view []byte, tag uint64) error {
	if len(view) == 0 {
		l.Release()
		return c.canQueueEmpty()
	}
	if err := c.canQueue(); err != nil {
		l.Release()
		return err
	}
	r := c.push()
	r.buf, r.kind, r.lease, r.tag, r.notify = view, sendLease, l, tag, c.sendHandler != nil
	c.queued += len(view)
	c.startSend()
	return nil
}

func (c *Conn) canQueue() error {
	if c.state != stOpen {
		return net.ErrClosed
	}
	if c.queued >= c.cfg.WriteHighWater {
		c.highWater = true
		return ErrWriteQueueFull
	}
	return nil
}

// canQueueEmpty is what an empty Write, Send or SendLease returns: nothing
// is queued, so only a closed connection is an error.
func (c *Conn) canQueueEmpty() error {
	if c.state != stOpen {
		return net.ErrClosed
	}
	return nil
}

func (c *Conn) push() *sendReq {
	if c.qhead == len(c.q) {
		c.q = c.q[:0]
		c.qhead = 0
	}
	c.q = append(c.q, sendReq{})
	return &c.q[len(c.q)-1]
}

// CloseWrite shuts down the sending side (FIN) once everything queued before
// it has been sent.
func (c *Conn) CloseWrite() error {
	if c.state != stOpen {
		return net.ErrClosed
	}
	r := c.push()
	r.kind = sendShutdown
	c.startSend()
	return nil
}

// startSend puts the head of the queue in flight.
func (c *Conn) startSend() {
	if c.sendOp != 0 || c.qhead == len(c.q) || c.state == stClosed {
		return
	}
	r := &c.q[c.qhead]
	l := c.ls.l
	sqe, id, err := l.NewOp((*connCompletions)(c), tagSend)
	if err != nil {
		c.Close(err)
		return
	}
	c.sendOp = id
	if r.kind == sendShutdown {
		sqe.PrepShutdown(c.fd, unix.SHUT_WR)
		return
	}
	b := r.buf[r.off:]
	r.zc = c.sendsZC(len(b))
	if r.zc {
		c.ls.stats.zcSends.Add(1)
		idx, fixed := uint16(0), false
		switch r.kind {
		case sendCopy:
			idx, fixed = r.fixed.FixedIndex()
		case sendLease:
			idx, fixed = r.lease.FixedIndex()
		}
		if fixed {
			sqe.PrepSendZCFixed(c.fd, b, msgNoSignal|unix.MSG_WAITALL, ring.SendZCReportUsage, idx)
		} else {
			sqe.PrepSendZC(c.fd, b, msgNoSignal|unix.MSG_WAITALL, ring.SendZCReportUsage)
		}
	} else if n := c.gatherable(); n > 1 {
		c.prepGather(sqe, id, n)
	} else {
		c.ls.stats.plainSends.Add(1)
		sqe.PrepSend(c.fd, b, msgNoSignal|unix.MSG_WAITALL)
	}
	if r.kind == sendUser {
		l.Pin(id, &b[0])
	}
}

// sendsZC reports whether n bytes at the head of the queue go out as
// SEND_ZC: at or above Config.SendZCThreshold, unless the peer showed that
// zerocopy does not pay (zcOff).
func (c *Conn) sendsZC(n int) bool {
	return !c.zcOff && c.cfg.SendZCThreshold >= 0 && n >= c.cfg.SendZCThreshold
}

// gatherable counts the queued requests from qhead that one SENDMSG can
// carry: plain sends of loop-owned memory (copies and leases) below the
// SEND_ZC threshold, at most maxGather. A handler that queues several
// replies before its loop next enters (pipelined requests, a large message
// arriving in several buffers) then costs the kernel one send and one TCP
// push instead of one per reply.
func (c *Conn) gatherable() int {
	n := 0
	for i := c.qhead; i < len(c.q) && n < maxGather; i++ {
		r := &c.q[i]
		if r.kind != sendCopy && r.kind != sendLease {
			break
		}
		if c.sendsZC(len(r.buf) - r.off) {
			break
		}
		n++
	}
	return n
}

// prepGather fills sqe with one SENDMSG of the n requests from qhead.
func (c *Conn) prepGather(sqe *ring.SQE, id runtime.OpID, n int) {
	g := c.gather
	if g == nil {
		g = new(gatherState)
		c.gather = g
	}
	for i := range n {
		r := &c.q[c.qhead+i]
		b := r.buf[r.off:]
		g.iov[i] = unix.Iovec{Base: &b[0]}
		g.iov[i].SetLen(len(b))
	}
	g.msg = unix.Msghdr{Iov: &g.iov[0]}
	g.msg.SetIovlen(n)
	sqe.PrepSendmsg(c.fd, &g.msg, uint32(msgNoSignal|unix.MSG_WAITALL))
	c.ls.l.Pin(id, g)
	c.gathered = n
	c.ls.stats.plainSends.Add(1)
	c.ls.stats.gathered.Add(uint64(n))
}

// spread hands the n bytes a gathered SENDMSG sent to the c.gathered
// requests it carried, in order, finishing each one it covered. Until the
// last of them is finished c.sendOp stays set, so that a Write from an
// OnSent only queues (a send started then would resend requests the kernel
// has already sent) and a Close from one keeps them; from the last one's
// OnSent on, sends start as after a lone send. What the SENDMSG did not
// cover stays queued for the next send, or ends with net.ErrClosed if c
// closed.
func (c *Conn) spread(n int) {
	for c.gathered > 0 && c.qhead < len(c.q) {
		r := &c.q[c.qhead]
		rem := len(r.buf) - r.off
		if n < rem {
			r.off += n
			c.queued -= n
			if c.state != stOpen {
				// Closing: the send ended short, cancelled (Linux 6.1 and
				// 6.12 report a cancelled send that made progress as the
				// bytes it sent, not -ECANCELED). Its requests end here,
				// and so does the send.
				for c.gathered > 0 && c.qhead < len(c.q) {
					c.gathered--
					c.finishSend(&c.q[c.qhead], net.ErrClosed)
				}
				c.gathered, c.sendOp = 0, 0
			}
			break
		}
		r.off += rem
		c.queued -= rem
		n -= rem
		c.gathered--
		if c.gathered == 0 {
			// The last: its OnSent may start the next send, which sets
			// sendOp and gathered anew; they are not ours to touch after.
			c.sendOp = 0
			c.finishSend(r, nil)
			return
		}
		c.finishSend(r, nil)
	}
	if c.gathered > 0 {
		c.gathered = 0
		c.sendOp = 0
	}
}

func (c *Conn) onSend(cqe *ring.CQE) {
	r := &c.q[c.qhead]
	if r.kind == sendShutdown {
		c.sendOp = 0
		c.qhead++
		c.onShutdownDone(cqe)
		c.afterSend()
		return
	}
	rest := 0
	if gathered := c.gathered; gathered > 0 {
		if cqe.Res >= 0 {
			c.spread(int(cqe.Res))
			c.afterSend()
			return
		}
		c.gathered = 0
		c.sendOp = 0
		r.res = cqe.Res // the head takes the error as a lone send would
		if c.state != stOpen {
			// Close dropped what was queued behind the gathered requests;
			// the ones behind the head end after it, below.
			rest = gathered - 1
		}
	} else if cqe.Notif() {
		if cqe.ZCCopied() && !c.zcOff {
			c.zcOff = true // the kernel copied anyway: plain sends are cheaper
			c.ls.stats.zcAbandoned.Add(1)
		}
	} else {
		r.res = cqe.Res
		if cqe.More() {
			return // wait for the notification: the buffer is still in use
		}
	}
	c.sendOp = 0
	res := r.res
	switch {
	case res >= 0:
		r.off += int(res)
		c.queued -= int(res)
		if r.off < len(r.buf) && c.state == stOpen {
			c.startSend()
			return
		}
		if r.off < len(r.buf) {
			c.finishSend(r, net.ErrClosed)
		} else {
			c.finishSend(r, nil)
		}
	case -res == int32(syscall.EOPNOTSUPP) && r.zc:
		// SEND_ZC refused (an MPTCP socket, a protocol without zerocopy).
		c.zcOff = true
		c.ls.stats.zcAbandoned.Add(1)
		c.startSend()
		return
	case c.state != stOpen:
		c.finishSend(r, net.ErrClosed)
	case -res == int32(syscall.ECANCELED) && !c.ls.l.Closing():
		c.finishSend(r, errCanceled)
	case -res == int32(syscall.ECANCELED):
		c.finishSend(r, net.ErrClosed)
		c.Close(net.ErrClosed)
	default:
		err := os.NewSyscallError("send", syscall.Errno(-res))
		c.finishSend(r, err)
		c.Close(err)
	}
	for ; rest > 0 && c.qhead < len(c.q); rest-- {
		c.finishSend(&c.q[c.qhead], net.ErrClosed)
	}
	c.afterSend()
}

// errCanceled reports a send the kernel cancelled (-ECANCELED) while the
// loop was not closing.
var errCanceled = errors.New("netio: send cancelled")

func (c *Conn) finishSend(r *sendReq, err error) {
	c.queued -= len(r.buf) - r.off
	switch r.kind {
	case sendCopy:
		r.fixed.Release()
	case sendLease:
		r.lease.Release()
	}
	tag, notify := r.tag, r.notify
	c.sentN = r.off
	*r = sendReq{}
	c.qhead++
	if notify {
		c.callOnSent(tag, err)
	}
}

func (c *Conn) afterSend() {
	if c.highWater && c.queued < c.cfg.WriteHighWater/2 && c.state == stOpen {
		c.highWater = false
		c.callOnWritable()
	}
	if c.state == stOpen {
		c.startSend()
	}
	c.maybeFinish()
}

func (c *Conn) onShutdownDone(cqe *ring.CQE) {
	if cqe.Res < 0 && c.state == stOpen && cqe.Errno() != syscall.ENOTCONN {
		c.Close(os.NewSyscallError("shutdown", cqe.Errno()))
	}
}

// closeAfterFlush closes the connection with reason once the queue is empty.
func (c *Conn) closeAfterFlush(reason error) {
	c.drainClose = true
	c.reason = reason
	if c.qhead == len(c.q) {
		c.Close(reason)
	}
}

// Close closes the connection: the receive and any send in flight are
// cancelled, queued sends are dropped (OnSent reports net.ErrClosed), and once
// the kernel has let go of everything the socket is closed and OnClose is
// called with reason. Calls after the first do nothing.
//
// A SEND_ZC in flight is not cancelled once the kernel has taken all its
// bytes; it ends with its notification, which comes only when the peer has
// acknowledged the data. Close waits for it up to a second, and then resets
// the connection (the peer sees a RST, not a FIN), the one way to make the
// kernel give the memory back: against a peer that stopped reading, the
// close would otherwise never finish, and the socket and its buffers would
// stay held. To end gracefully, CloseWrite (the FIN follows the queued
// sends) and Close on the peer's EOF or a send's OnSent.
//
// A socket whose SO_LINGER has a positive timeout is closed by a goroutine,
// whose close(2) may wait for the peer up to that timeout; the loop does not
// wait for it (the runtime's Close does). OnClose comes without waiting too.
func (c *Conn) Close(reason error) {
	if c.state != stOpen {
		return
	}
	c.state = stClosing
	c.reason = reason
	l := c.ls.l
	if c.recvOp != 0 {
		_ = l.Cancel(c.recvOp)
	}
	if c.sendOp != 0 {
		_ = l.Cancel(c.sendOp)
		if c.gathered == 0 && c.q[c.qhead].zc {
			if l.Closing() {
				_ = sockaddr.Disconnect(c.fd) // shutting down: no grace
			} else {
				l.Timer((*connCompletions)(c), tagZCGrace, time.Now().Add(zcCloseGrace))
			}
		}
	}
	// Drop what is queued behind the send in flight (all the requests a
	// gathered one carries: the kernel may still be reading them).
	start := c.qhead
	if c.sendOp != 0 {
		start += max(c.gathered, 1)
	}
	for i := start; i < len(c.q); i++ {
		r := &c.q[i]
		c.queued -= len(r.buf) - r.off
		switch r.kind {
		case sendCopy:
			r.fixed.Release()
		case sendLease:
			r.lease.Release()
		}
		tag, notify := r.tag, r.notify && r.kind != sendShutdown
		*r = sendReq{}
		if notify {
			c.callOnSent(tag, net.ErrClosed)
		}
	}
	c.q = c.q[:start]
	c.maybeFinish()
}

// maybeFinish closes the socket once no operation is in flight.
func (c *Conn) maybeFinish() {
	if c.state == stOpen && c.drainClose && c.qhead == len(c.q) && c.sendOp == 0 {
		c.Close(c.reason)
		return
	}
	if c.state != stClosing || c.recvOp != 0 || c.sendOp != 0 || c.extraOps != 0 {
		return
	}
	c.state = stClosed
	delete(c.ls.fds, c.fd)
	c.ls.closeSocket(c.fd)
	c.q = nil
	c.callOnClose()
}

// recvArmed reports whether a receive is armed (kickStarved skips a connection
// that closed or paused while it waited for buffers). Loop thread.
func (c *Conn) recvArmed() bool { return c.recvOp != 0 }

// The handler's callbacks are called through these, each of which recovers a
// panic (recoverCallback).
func (c *Conn) callOnOpen() {
	defer c.recoverCallback("OnOpen")
	c.h.OnOpen(c)
}

func (c *Conn) callOnData(d *Data) {
	defer c.recoverCallback("OnData")
	c.h.OnData(c, d)
}

func (c *Conn) callOnPeerClose() {
	defer c.recoverCallback("OnPeerClose")
	c.peerCloseHandler.OnPeerClose(c)
}

func (c *Conn) callOnSent(tag uint64, err error) {
	if c.sendHandler == nil {
		return
	}
	defer c.recoverCallback("OnSent")
	c.sendHandler.OnSent(c, tag, err)
}

func (c *Conn) callOnWritable() {
	if c.writableHandler == nil {
		return
	}
	defer c.recoverCallback("OnWritable")
	c.writableHandler.OnWritable(c)
}

func (c *Conn) callOnClose() {
	defer c.recoverCallback("OnClose")
	c.h.OnClose(c, c.reason)
}

// recoverCallback, deferred around a handler callback, turns its panic into
// a Close with a *PanicError, as though the callback had called Close and
// returned: the code after the callback runs as it would have (a receive's
// lease is released, a final CQE's re-arm sees the connection closing), so
// nothing is left half set up. The panic is reported to the loop
// (Stats.Panics, logged with its stack).
func (c *Conn) recoverCallback(callback string) {
	if v := recover(); v != nil {
		c.ls.l.ReportPanic(v)
		c.Close(&PanicError{Callback: callback, Value: v})
	}
}
