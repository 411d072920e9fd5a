//go:build linux

package netio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/runtime"
)

// tcpConn is the net.Conn face of a Conn: it is the Conn's Handler, queues
// received leases for Read (which copies out of them) and turns each Write
// into a send of the caller's pinned bytes that the writer waits for.
//
// The loop thread takes no lock here. Received leases reach Read through a
// lock-free queue (leaseq), and go back the same way; the rest of what the
// loop and the goroutines share is atomic, or handed over by a posted task
// (the loop reads wbuf only in the task Write posts after setting it) or by
// a signal channel (the writer reads wn and werr only after OnSent's signal).
type tcpConn struct {
	c       *Conn // set on the loop before the tcpConn is published
	l       *runtime.Loop
	cfg     *Config
	network string
	laddr   *net.TCPAddr
	raddr   *net.TCPAddr
	wshut   atomic.Bool // CloseWrite succeeded: EPIPE from a Write leaves reading alone

	// The receive half shared with packetConn: the lease queue and its protocol.
	readSide[bufring.Lease]

	roff     int                   // reader: bytes of the oldest unread lease already read
	rerr     atomic.Pointer[error] // io.EOF after the peer's FIN, or why the Conn ended; set once
	deferred atomic.Int64          // read leases counted in tloop's budget
	gone     atomic.Bool           // OnClose has run: the socket is closed
	pendErr  error                 // loop: the end of reading, held back while leases overflow
	tloop    *tcpLoop              // the loop's net.Conn state; set by attach
	wbuf     []byte                // writer, then the loop in the write task
	wn       int                   // loop in OnSent, then the writer after wsig
	werr     error

	guard *fdGuard // lets Write call send(2) itself; set by attach

	rsig      chan struct{}
	wsig      chan struct{}
	closeCh   chan struct{}
	closeOnce sync.Once
	done      chan struct{} // closed by OnClose
	readMu    sync.Mutex
	writeMu   sync.Mutex
	rdl, wdl  deadline

	relT, writeT, cancelWT, closeT, reclaimT connTask
}

// relBatch is how many consumed leases a reader gathers before it posts
// their release on its own.
const relBatch = 4

type connTask struct {
	t  *tcpConn
	op uint8
}

const (
	taskRelease uint8 = iota
	taskWrite
	taskCancelWrite
	taskClose
	taskReclaim
)

func (k *connTask) Run(l *runtime.Loop) { k.t.run(k.op) }

func newTCPConn(l *runtime.Loop, cfg *Config, network string) *tcpConn {
	t := &tcpConn{
		l: l, cfg: cfg, network: network,
		rsig: make(chan struct{}, 1), wsig: make(chan struct{}, 1),
		closeCh: make(chan struct{}), done: make(chan struct{}),
		rdl: makeDeadline(), wdl: makeDeadline(),
	}
	t.relT = connTask{t, taskRelease}
	t.writeT = connTask{t, taskWrite}
	t.cancelWT = connTask{t, taskCancelWrite}
	t.closeT = connTask{t, taskClose}
	t.reclaimT = connTask{t, taskReclaim}
	t.init(l, &t.relT, &t.reclaimT)
	return t
}

// attach makes t the handler of c (on c's loop).
func (t *tcpConn) attach(c *Conn) {
	t.c = c
	t.guard = newFDGuard(c.fd)
	c.guard = t.guard
	c.noZC = true // see Write
	t.tloop = tcpLoopOf(c.ls)
	t.tloop.track(c.ls, t.guard)
	c.setHandler(t)
	t.laddr = net.TCPAddrFromAddrPort(c.local)
	t.raddr = net.TCPAddrFromAddrPort(c.remote)
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func releaseLease(l *bufring.Lease) { l.Release() }

// setRerr records why reading ends, unless a reason is recorded already.
// Loop thread.
func (t *tcpConn) setRerr(err error) { t.rerr.CompareAndSwap(nil, &err) }

// endRead records why reading ends once every received lease is in the
// queue: Read reports the reason when it finds the queue empty, so while
// leases wait in the loop's overflow the reason waits too (release records
// it). Loop thread.
func (t *tcpConn) endRead(err error) {
	if len(t.rq.over) > 0 {
		if t.pendErr == nil {
			t.pendErr = err
		}
		return
	}
	t.setRerr(err)
}

// readErr returns the recorded reason reading ends, or nil.
func (t *tcpConn) readErr() error {
	if p := t.rerr.Load(); p != nil {
		return *p
	}
	return nil
}

// Handler methods: loop thread.

func (t *tcpConn) OnOpen(*Conn) {}

func (t *tcpConn) OnData(c *Conn, d *Data) {
	lease := d.Keep()
	if t.rclosed.Load() {
		lease.Release()
		return
	}
	// Leases Read consumed and left for the loop (see tcpLoop).
	freed := t.releaseRead() > 0
	t.rq.refill()
	t.rbytes.Add(int64(lease.Len()))
	t.rq.push(lease)
	if !t.paused && t.overReadAhead() {
		t.setPaused(true)
		c.PauseRecv()
	}
	signal(t.rsig)
	if freed {
		c.ls.kickStarved()
	}
}

func (t *tcpConn) OnPeerClose(*Conn) {
	t.endRead(io.EOF)
	signal(t.rsig)
}

func (t *tcpConn) OnClose(_ *Conn, err error) {
	if err == nil {
		err = net.ErrClosed
	}
	t.endRead(err)
	t.gone.Store(true)
	signal(t.rsig)
	close(t.done)
}

func (t *tcpConn) OnSent(c *Conn, _ uint64, err error) {
	t.wn, t.werr = c.sentN, err
	t.wbuf = nil
	signal(t.wsig)
}

// run executes a posted task on the loop.
func (t *tcpConn) run(op uint8) {
	c := t.c
	switch op {
	case taskRelease:
		t.release()
	case taskWrite:
		t.release() // leases read since the last release ride along
		if c.state != stOpen {
			t.OnSent(c, 0, net.ErrClosed)
			return
		}
		c.sendUser(t.wbuf, 1)
	case taskCancelWrite:
		c.cancelSend(1)
	case taskClose:
		c.Close(nil)
		// Reclaim every queued lease, unless a Read is copying from one:
		// then that Read posts taskReclaim when it leaves.
		if t.closeForReads() {
			t.reclaim()
		}
	case taskReclaim:
		t.reclaim()
	}
}

// releaseRead releases the leases Read has finished with and returns their
// budget to the loop; it returns how many it released. Loop thread.
//
// The budget is settled approximately: a reader that counts leases into
// deferred while this runs may leave them counted after they are released,
// until the next release settles them. The budget is a bound on idle
// connections' holdings, not an exact count.
func (t *tcpConn) releaseRead() int {
	n := t.rq.releaseRead(releaseLease)
	t.tloop.give(int(t.deferred.Swap(0)))
	return n
}

// reclaim releases every lease still queued, read or not. Loop thread, once
// the connection is closed for reads and no Read is inside the queue.
func (t *tcpConn) reclaim() {
	t.rq.releaseAll(releaseLease)
	t.rbytes.Store(0)
	t.tloop.give(int(t.deferred.Swap(0)))
}

// release gives the leases Read has consumed back to the group, moves
// overflowed leases into the queue and resumes a paused receive. Loop thread.
func (t *tcpConn) release() {
	if !t.startRelease() {
		return
	}
	c := t.c
	n := t.releaseRead()
	news := t.rq.refill() > 0
	if t.pendErr != nil && len(t.rq.over) == 0 {
		t.setRerr(t.pendErr)
		t.pendErr = nil
		news = true
	}
	if news {
		signal(t.rsig)
	}
	resume := t.paused && t.underReadAheadLoop() && !t.gone.Load()
	if resume {
		t.setPaused(false)
		c.ResumeRecv()
	}
	if n > 0 || resume {
		c.ls.kickStarved()
	}
}

// postRelease posts the release task unless it is pending.
func (t *tcpConn) postRelease() {
	if !t.readSide.postRelease() {
		// The loop is gone and its buffers with it.
		t.tloop.give(int(t.deferred.Swap(0)))
	}
}

// net.Conn methods: any goroutine.

func (t *tcpConn) isClosed() bool { return isClosedChan(t.closeCh) }

func (t *tcpConn) opError(op string, err error) error {
	if errors.Is(err, errCanceled) || errors.Is(err, net.ErrClosed) {
		err = net.ErrClosed
	}
	return opErr(op, t.network, t.laddr, t.raddr, op, err)
}

// Read copies received bytes into b. It allocates nothing.
func (t *tcpConn) Read(b []byte) (int, error) {
	t.readMu.Lock()
	defer t.readMu.Unlock()
	for {
		if t.isClosed() {
			return 0, t.opError("read", net.ErrClosed)
		}
		// The reason is loaded before the queue is looked at: the loop
		// queues a connection's last bytes before it records the end, so
		// bytes are never reported after EOF.
		err := t.readErr()
		if !t.enterQueue() {
			return 0, t.opError("read", net.ErrClosed)
		}
		if t.rq.peek() != nil {
			n := 0
			if len(b) > 0 {
				n = t.consume(b)
			}
			t.leaveQueue()
			return n, nil
		}
		t.leaveQueue()
		// About to block: leave the consumed buffers to the loop's next
		// OnData while the loop's budget allows (no wakeup), else give them
		// back now. A paused or ended receive has no next OnData, so then
		// the release is posted even when nothing is left to give back: it
		// is what resumes a paused receive. (The loop may pause just after
		// this Read looked, with the buffers already left to an OnData that
		// will not come; its pause signals rsig, and this check, run again,
		// posts the release.)
		d := int64(t.rq.unreleased()) - t.deferred.Load()
		switch {
		case t.pausedR.Load():
			t.postRelease()
		case d <= 0:
		case err != nil || !t.tloop.take(int(d)):
			t.postRelease()
		default:
			t.deferred.Add(d)
		}
		if err == io.EOF {
			return 0, io.EOF
		}
		if err != nil {
			return 0, t.opError("read", err)
		}
		if t.rdl.expired() {
			return 0, t.opError("read", os.ErrDeadlineExceeded)
		}
		if len(b) == 0 {
			return 0, nil
		}
		select {
		case <-t.rsig:
		case <-t.rdl.wait():
		case <-t.closeCh:
		}
	}
}

// consume copies from the queued leases. Reader, inside the queue.
func (t *tcpConn) consume(b []byte) int {
	n := 0
	for n < len(b) {
		l := t.rq.peek()
		if l == nil {
			break
		}
		v := l.Bytes()[t.roff:]
		k := copy(b[n:], v)
		n += k
		t.roff += k
		if k == len(v) {
			t.roff = 0
			t.rq.advance()
		}
	}
	t.rbytes.Add(-int64(n))
	// Consumed leases go back in batches: with the next Write's task, when
	// Read is about to block, or once relBatch of them have gathered.
	if t.rq.unreleased() >= relBatch || t.pausedR.Load() && t.underReadAhead() {
		t.postRelease()
	}
	return n
}

// readAheadLeases bounds the provided buffers one net.Conn keeps queued for
// Read, whatever they hold: small segments each take a whole buffer, so a
// reader that does not read would otherwise pin the loop's shared ring long
// before ReadAhead's byte count is reached (TestNetConnUnreadSmallMessagesStarveLoop
// in examples/echo/echoserver).
const readAheadLeases = 8

// overReadAhead reports that receiving should pause. Loop thread.
func (t *tcpConn) overReadAhead() bool {
	return t.rbytes.Load() >= int64(t.cfg.ReadAhead) || t.rq.unreadLoop() >= readAheadLeases
}

// underReadAheadLoop reports that a paused receive may resume. Loop thread.
func (t *tcpConn) underReadAheadLoop() bool {
	return t.rbytes.Load() < int64(t.cfg.ReadAhead/2) && t.rq.unreadLoop() <= readAheadLeases/2
}

// underReadAhead is the reader's view of underReadAheadLoop: it does not see
// the loop's overflow, so the loop checks again.
func (t *tcpConn) underReadAhead() bool {
	return t.rbytes.Load() < int64(t.cfg.ReadAhead/2) && t.rq.unread() <= readAheadLeases/2
}

// Write sends b and returns when the kernel has taken all of it (or on error,
// deadline or Close, with the count sent so far).
//
// Fast path: Write first calls send(2) itself (MSG_DONTWAIT|MSG_NOSIGNAL)
// from the calling goroutine, as package net does; if the socket buffer takes
// all of b, nothing crosses to the loop. No ring send of this connection is
// queued or in flight here (ring sends are made only by Write and ReadFrom,
// under writeMu, and both wait for them), so the bytes stay in order. The fd
// is used under t.guard, so the loop never closes it during the call. What
// send(2) did not take (EAGAIN or a partial send) goes through the ring as a
// plain SEND: b is pinned and handed to the kernel only while Write waits.
//
// Write never uses SEND_ZC, whatever Config.SendZCThreshold says. A
// zero-copy Write would have to wait for the notification, which comes only
// once the peer has acknowledged the data: a round trip per Write, and
// against a peer that stops reading a wait that neither a deadline nor Close
// could end without resetting the connection (the kernel keeps referencing
// b). A plain SEND's cancel ends at once, with the count sent, as net's
// Write does. The handler API, whose sends are asynchronous, keeps SEND_ZC.
func (t *tcpConn) Write(b []byte) (int, error) {
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	if t.isClosed() {
		return 0, t.opError("write", net.ErrClosed)
	}
	if t.wdl.expired() {
		return 0, t.opError("write", os.ErrDeadlineExceeded)
	}
	if !t.guard.acquire() {
		return 0, t.goneError()
	}
	if len(b) == 0 {
		t.guard.release()
		return 0, nil
	}
	sent, err := sendNow(t.guard.fd, b)
	t.guard.release()
	if sent == len(b) {
		return sent, nil
	}
	if err != nil && err != unix.EAGAIN {
		return 0, t.sendFailed(err)
	}
	sent = max(sent, 0)
	n, err := t.writeRing(b[sent:])
	return sent + n, err
}

// sendNow is one non-blocking send(2) of b on fd; EINTR is retried.
func sendNow(fd int, b []byte) (int, error) {
	for {
		n, err := unix.SendmsgN(fd, b, nil, nil, unix.MSG_DONTWAIT|msgNoSignal)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// sendFailed ends the connection after the fast path's send(2) failed with
// err, as the ring path does after a failed SEND (the Conn closes with the
// error, which later Reads report), and returns Write's error. EPIPE after
// our own CloseWrite is only Write's error: as with package net, the
// connection still reads.
func (t *tcpConn) sendFailed(errno error) error {
	err := os.NewSyscallError("write", errno) // package net's name for it
	if errno == unix.EPIPE && t.wshut.Load() {
		return t.opError("write", err)
	}
	_ = t.l.Post(runtime.TaskFunc(func(*runtime.Loop) {
		t.c.Close(err)
	}))
	return t.opError("write", err)
}

// goneError is Write's error once the loop has closed the socket.
func (t *tcpConn) goneError() error {
	err := t.readErr()
	if err == io.EOF || err == nil {
		err = net.ErrClosed
	}
	return t.opError("write", err)
}

// writeRing sends b through the loop and waits for the result.
func (t *tcpConn) writeRing(b []byte) (int, error) {
	if t.gone.Load() {
		return 0, t.goneError()
	}
	t.wbuf, t.wn, t.werr = b, 0, nil // read by the loop in the task posted next
	if t.l.Post(&t.writeT) != nil {
		return 0, t.opError("write", net.ErrClosed)
	}
	var why error
	select {
	case <-t.wsig:
	case <-t.wdl.wait():
		why = os.ErrDeadlineExceeded
	case <-t.closeCh:
		why = net.ErrClosed
	}
	if why != nil {
		// The kernel may still be reading b: cancel and wait for the end.
		if t.l.Post(&t.cancelWT) == nil {
			<-t.wsig
		} else {
			<-t.wsig // the shutting-down loop cancels it and reports
		}
	}
	n, err := t.wn, t.werr // set by OnSent before its signal
	if err == nil && n == len(b) {
		return n, nil
	}
	if errors.Is(err, errCanceled) && why != nil {
		err = why
	}
	if err == nil {
		err = why
	}
	return n, t.opError("write", err)
}

// Close closes the connection, unblocking Read and Write, and returns once
// the socket is closed.
func (t *tcpConn) Close() error {
	first := false
	t.closeOnce.Do(func() {
		first = true
		close(t.closeCh)
	})
	if !first {
		return t.opError("close", net.ErrClosed)
	}
	if t.l.Post(&t.closeT) != nil {
		return nil // the loop closed the socket at shutdown
	}
	<-t.done
	<-t.guard.closed() // a Write inside send(2) may close the fd after the loop
	return nil
}

func (t *tcpConn) LocalAddr() net.Addr  { return t.laddr }
func (t *tcpConn) RemoteAddr() net.Addr { return t.raddr }

func (t *tcpConn) SetDeadline(d time.Time) error {
	if t.isClosed() {
		return t.opError("set", net.ErrClosed)
	}
	t.rdl.set(d)
	t.wdl.set(d)
	return nil
}

func (t *tcpConn) SetReadDeadline(d time.Time) error {
	if t.isClosed() {
		return t.opError("set", net.ErrClosed)
	}
	t.rdl.set(d)
	return nil
}

func (t *tcpConn) SetWriteDeadline(d time.Time) error {
	if t.isClosed() {
		return t.opError("set", net.ErrClosed)
	}
	t.wdl.set(d)
	return nil
}

// onLoop runs f on the connection's loop with the socket still open, and
// waits for it: socket options and shutdown(2) must not race the loop
// closing the fd.
func (t *tcpConn) onLoop(op string, f func(fd int) error) error {
	if t.isClosed() {
		return t.opError(op, net.ErrClosed)
	}
	res := make(chan error, 1)
	err := t.l.Post(runtime.TaskFunc(func(*runtime.Loop) {
		if t.c.state != stOpen {
			res <- net.ErrClosed
			return
		}
		res <- f(t.c.fd)
	}))
	if err != nil {
		return t.opError(op, net.ErrClosed)
	}
	if err := <-res; err != nil {
		return t.opError(op, err)
	}
	return nil
}

func sockopt(name string, err error) error {
	if err != nil {
		return os.NewSyscallError(name, err)
	}
	return nil
}

// CloseWrite shuts down the sending side (the peer reads EOF).
func (t *tcpConn) CloseWrite() error {
	return t.onLoop("close", func(fd int) error {
		err := unix.Shutdown(fd, unix.SHUT_WR)
		if err == nil {
			t.wshut.Store(true)
		}
		return sockopt("shutdown", err)
	})
}

// CloseRead shuts down the receiving side: Read returns EOF.
func (t *tcpConn) CloseRead() error {
	return t.onLoop("close", func(fd int) error { return sockopt("shutdown", unix.Shutdown(fd, unix.SHUT_RD)) })
}

// SetNoDelay controls Nagle's algorithm (TCP_NODELAY; on by default, as in net).
func (t *tcpConn) SetNoDelay(noDelay bool) error {
	return t.onLoop("set", func(fd int) error {
		return sockopt("setsockopt", unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, boolInt(noDelay)))
	})
}

// SetKeepAlive enables TCP keep-alive probes.
func (t *tcpConn) SetKeepAlive(keepalive bool) error {
	return t.onLoop("set", func(fd int) error {
		return sockopt("setsockopt", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, boolInt(keepalive)))
	})
}

// SetKeepAlivePeriod sets the idle time before keep-alive probes and their interval.
func (t *tcpConn) SetKeepAlivePeriod(d time.Duration) error {
	secs := int((d + time.Second - 1) / time.Second)
	return t.onLoop("set", func(fd int) error {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs); err != nil {
			return sockopt("setsockopt", err)
		}
		return sockopt("setsockopt", unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs))
	})
}

// SetReadBuffer sets SO_RCVBUF.
func (t *tcpConn) SetReadBuffer(bytes int) error {
	return t.onLoop("set", func(fd int) error {
		return sockopt("setsockopt", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, bytes))
	})
}

// SetWriteBuffer sets SO_SNDBUF.
func (t *tcpConn) SetWriteBuffer(bytes int) error {
	return t.onLoop("set", func(fd int) error {
		return sockopt("setsockopt", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, bytes))
	})
}

// SetLinger sets SO_LINGER as net.TCPConn.SetLinger does.
func (t *tcpConn) SetLinger(sec int) error {
	return t.onLoop("set", func(fd int) error {
		l := unix.Linger{}
		if sec >= 0 {
			l.Onoff, l.Linger = 1, int32(sec)
		}
		return sockopt("setsockopt", unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &l))
	})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
