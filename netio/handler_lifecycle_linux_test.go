//go:build linux

package netio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/ring"
	"github.com/ringwire/ringwire/runtime"
)

// funcHandler is a Handler (and SendHandler) whose callbacks are optional
// functions; it reports each OnClose on closed.
type funcHandler struct {
	open   func(c *Conn)
	data   func(c *Conn, d *Data)
	sent   func(c *Conn, tag uint64, err error)
	closed chan closeEvent
}

func (h *funcHandler) OnOpen(c *Conn) {
	if h.open != nil {
		h.open(c)
	}
}

func (h *funcHandler) OnData(c *Conn, d *Data) {
	if h.data != nil {
		h.data(c, d)
	}
}

func (h *funcHandler) OnSent(c *Conn, tag uint64, err error) {
	if h.sent != nil {
		h.sent(c, tag, err)
	}
}

func (h *funcHandler) OnClose(c *Conn, err error) { h.closed <- closeEvent{c, err} }

// waitClose returns the next OnClose, failing the test after 10s.
func (h *funcHandler) waitClose(t *testing.T, what string) closeEvent {
	t.Helper()
	select {
	case ev := <-h.closed:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatalf("no OnClose for %s", what)
		return closeEvent{}
	}
}

type closeEvent struct {
	c   *Conn
	err error
}

func newFuncHandler() *funcHandler { return &funcHandler{closed: make(chan closeEvent, 64)} }

// roundTrip writes msg on c and reads it back within limit, returning how
// long it took.
func roundTrip(t *testing.T, c net.Conn, msg string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetDeadline(start.Add(limit))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("round trip of %q: %v after %v", msg, err, time.Since(start))
	}
	if string(got) != msg {
		t.Fatalf("round trip: got %q, want %q", got, msg)
	}
	return time.Since(start)
}

// wantEOF fails unless c's peer has closed: a read returns io.EOF or a reset
// within 10s.
func wantEOF(t *testing.T, c net.Conn, what string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 64))
	if err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%s: read %v, want EOF (the server closed it)", what, err)
	}
}

// wantPanicClose checks that ev is an OnClose for a panic in callback.
func wantPanicClose(t *testing.T, ev closeEvent, callback string) {
	t.Helper()
	var pe *PanicError
	if !errors.As(ev.err, &pe) || pe.Callback != callback || pe.Value != "boom" {
		t.Fatalf("OnClose reason %v, want a *PanicError for %s", ev.err, callback)
	}
}

// onHandler runs f in an OnData callback of a connection served on rt and
// returns what f returned, failing after 10s (the loop deadlocked).
func onHandler(t *testing.T, rt *runtime.Runtime, f func(c *Conn) error) error {
	t.Helper()
	res := make(chan error, 1)
	h := newFuncHandler()
	h.data = func(c *Conn, _ *Data) { res <- f(c) }
	s := serveOn(t, rt, nil, "tcp4", "127.0.0.1:0", h)
	c, err := net.Dial("tcp4", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("go")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's call did not return: its loop is deadlocked")
		return nil
	}
}

// TestSendEmptyPanickedLoop: Conn.Send of an empty slice pinned &b[0] and
// panicked on the loop, leaving the connection's send half set up. An empty
// Send, Write, WriteTag or SendLease is now a no-op (as net.Conn's Write(nil)
// is) with no OnSent, and the connection goes on.
func TestSendEmptyPanickedLoop(t *testing.T) {
	needRing(t)
	rt := newRuntime(t, &runtime.Config{Loops: 1})
	l := rt.Loops()[0]
	sent := make(chan uint64, 16)
	h := newFuncHandler()
	h.sent = func(_ *Conn, tag uint64, _ error) { sent <- tag }
	h.data = func(c *Conn, d *Data) {
		var errs []error
		errs = append(errs, c.Send(nil, 1), c.Send([]byte{}, 2), c.Write(nil), c.WriteTag(nil, 3))
		lease := d.Keep()
		errs = append(errs, c.SendLease(lease, d.Bytes()[:0], 4))
		for i, err := range errs {
			if err != nil {
				t.Errorf("empty send %d: %v", i, err)
			}
		}
		_ = c.WriteTag([]byte("ok"), 5)
	}
	s := serveOn(t, rt, nil, "tcp4", "127.0.0.1:0", h)
	c, err := net.Dial("tcp4", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 2)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "ok" {
		t.Fatalf("reply %q, %v; want \"ok\"", got, err)
	}
	select {
	case tag := <-sent:
		if tag != 5 {
			t.Fatalf("OnSent for tag %d: an empty send was reported", tag)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no OnSent for the reply")
	}
	if p := l.Stats().Panics; p != 0 {
		t.Fatalf("Stats.Panics = %d", p)
	}
	onLoop(t, l, func() {
		if n := loopStateOf(l).group.InUse(); n != 0 {
			t.Errorf("%d receive buffers still leased: the empty SendLease kept its lease", n)
		}
	})
}

// TestHandlerPanicLeftConnectionHalfSetUp: a panic in OnOpen, recovered by
// the runtime, left the connection without a receive and never closed (its
// client waited forever); one in OnData leaked the received buffer and, on a
// final CQE, the re-arm. Each now closes its connection with a *PanicError,
// the buffer goes back, the panic is counted, and the loop serves the next
// connection.
func TestHandlerPanicLeftConnectionHalfSetUp(t *testing.T) {
	needRing(t)
	rt := newRuntime(t, &runtime.Config{Loops: 1})
	l := rt.Loops()[0]
	var n int
	h := newFuncHandler()
	h.open = func(c *Conn) {
		n++
		c.SetContext(n)
		if n == 1 {
			panic("boom")
		}
	}
	h.data = func(c *Conn, d *Data) {
		if c.Context() == 2 {
			panic("boom")
		}
		_ = c.Write(d.Bytes())
	}
	s := serveOn(t, rt, nil, "tcp4", "127.0.0.1:0", h)
	dial := func() net.Conn {
		c, err := net.Dial("tcp4", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	c1 := dial()
	wantEOF(t, c1, "connection whose OnOpen panicked")
	wantPanicClose(t, h.waitClose(t, "the OnOpen panic"), "OnOpen")

	c2 := dial()
	if _, err := c2.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	wantEOF(t, c2, "connection whose OnData panicked")
	wantPanicClose(t, h.waitClose(t, "the OnData panic"), "OnData")

	roundTrip(t, dial(), "still serving", 5*time.Second)
	if p := l.Stats().Panics; p != 2 {
		t.Errorf("Stats.Panics = %d, want 2", p)
	}
	onLoop(t, l, func() {
		if n := loopStateOf(l).group.InUse(); n != 0 {
			t.Errorf("%d receive buffers still leased: the panicking OnData's was not released", n)
		}
	})
}

// TestDialHandlerOnOpenPanicHung: DialHandler waits for OnOpen to have run;
// a panic there, recovered by the runtime, skipped the wake-up, and
// DialHandler never returned. It now returns the connection, closed, and
// OnClose reports the panic.
func TestDialHandlerOnOpenPanicHung(t *testing.T) {
	needRing(t)
	rt := newRuntime(t, &runtime.Config{Loops: 1})
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h := newFuncHandler()
	h.open = func(*Conn) { panic("boom") }
	type result struct {
		c   *Conn
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := (&Dialer{Runtime: rt}).DialHandler(context.Background(), "tcp4", ln.Addr().String(), h)
		res <- result{c, err}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			t.Fatal(r.err)
		}
		ev := h.waitClose(t, "the dialed connection")
		if ev.c != r.c {
			t.Fatal("OnClose for another connection")
		}
		wantPanicClose(t, ev, "OnOpen")
	case <-time.After(10 * time.Second):
		t.Fatal("DialHandler did not return after OnOpen panicked")
	}
}

// TestAcceptFinalCQELostToPanic: a multishot accept whose final CQE (the
// kernel ends it when the CQ is full) carried a connection whose OnOpen
// panicked was never re-armed: the listener stopped accepting. Here every
// OnOpen panics and a burst of connections overflows a small CQ while the
// loop is held; every connection must still be accepted and closed.
func TestAcceptFinalCQELostToPanic(t *testing.T) {
	needRing(t)
	rt := newRuntime(t, &runtime.Config{Loops: 1, Entries: 4, CQEntries: 8})
	l := rt.Loops()[0]
	var opened atomic.Int64
	h := newFuncHandler()
	h.open = func(*Conn) {
		opened.Add(1)
		panic("boom")
	}
	s := serveOn(t, rt, nil, "tcp4", "127.0.0.1:0", h)
	hold := make(chan struct{})
	if err := l.Post(runtime.TaskFunc(func(*runtime.Loop) { <-hold })); err != nil {
		t.Fatal(err)
	}
	const burst = 40
	var clients []net.Conn
	for range burst {
		c, err := net.Dial("tcp4", s.Addr().String())
		if err != nil {
			close(hold)
			t.Fatal(err)
		}
		clients = append(clients, c)
		defer c.Close()
	}
	before := l.Stats().Rearms
	close(hold)
	for deadline := time.Now().Add(10 * time.Second); opened.Load() < burst; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections accepted: the accept was not re-armed after its final CQE", opened.Load(), burst)
		}
	}
	for i, c := range clients {
		wantEOF(t, c, fmt.Sprintf("connection %d of the burst", i))
	}
	if l.Stats().Rearms == before {
		t.Fatal("no accept was re-armed: the CQ never overflowed, so the test did not exercise a final accept CQE")
	}
	wantEOF(t, func() net.Conn {
		c, err := net.Dial("tcp4", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}(), "a connection after the burst")
}

// panickyPackets panics in OnPacket on a datagram reading "boom".
type panickyPackets struct{ closed chan error }

func (h *panickyPackets) OnPacket(_ *UDPConn, d *Data) {
	if string(d.Bytes()) == "boom" {
		panic("boom")
	}
}
func (h *panickyPackets) OnError(*UDPConn, error)       {}
func (h *panickyPackets) OnClose(_ *UDPConn, err error) { h.closed <- err }

// TestPacketHandlerPanicLeakedBuffer: a panic in OnPacket, recovered by the
// runtime, leaked the datagram's buffer and, when its CQE was the final one,
// the re-arm: the socket stopped receiving without a word. The socket now
// closes with a *PanicError and the buffer goes back.
func TestPacketHandlerPanicLeakedBuffer(t *testing.T) {
	needRing(t)
	rt := newRuntime(t, &runtime.Config{Loops: 1})
	l := rt.Loops()[0]
	h := &panickyPackets{closed: make(chan error, 1)}
	u, err := (&ListenConfig{Runtime: rt}).ListenUDP(context.Background(), "udp4", "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	src, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(u.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Write([]byte("boom")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-h.closed:
		wantPanicClose(t, closeEvent{err: err}, "OnPacket")
	case <-time.After(10 * time.Second):
		t.Fatal("no OnClose after OnPacket panicked")
	}
	onLoop(t, l, func() {
		if n := loopStateOf(l).group.InUse(); n != 0 {
			t.Errorf("%d receive buffers still leased after the panic", n)
		}
	})
	if p := l.Stats().Panics; p != 1 {
		t.Errorf("Stats.Panics = %d, want 1", p)
	}
}

// TestServerCloseOnLoopThreadDeadlocked: Server.Close waits for its
// acceptors' loops; called from a handler on one of them it waited for its
// own loop forever. It returns an error wrapping ErrLoopThread there, and
// closes the server when called from elsewhere afterwards.
func TestServerCloseOnLoopThreadDeadlocked(t *testing.T) {
	needRing(t)
	for _, accept := range []AcceptMode{AcceptReusePort, AcceptHandoff} {
		rt := newRuntime(t, &runtime.Config{Loops: 2})
		victim := serveOn(t, rt, &Config{Accept: accept}, "tcp4", "127.0.0.1:0", newFuncHandler())
		err := onHandler(t, rt, func(*Conn) error { return victim.Close() })
		if !errors.Is(err, ErrLoopThread) {
			t.Fatalf("Server.Close on a loop thread: %v, want ErrLoopThread", err)
		}
		if err := victim.Close(); err != nil {
			t.Fatal(err)
		}
		if c, err := net.DialTimeout("tcp4", victim.Addr().String(), 5*time.Second); err == nil {
			c.Close()
			t.Fatal("the server still accepts after Close")
		}
	}
}

// TestHandlerCallsOnLoopThreadDeadlocked: ListenUDP and DialUDP posted their
// setup to the chosen loop and waited, and Serve waited for every loop: from
// a handler, a wait for its own loop never ended. On a loop thread a socket
// without an explicit Loop now goes on the caller's loop, set up inline;
// a call that would wait for another loop returns ErrLoopThread.
func TestHandlerCallsOnLoopThreadDeadlocked(t *testing.T) {
	needRing(t)
	rt := newRuntime(t, &runtime.Config{Loops: 2})
	err := onHandler(t, rt, func(c *Conn) error {
		u, err := (&ListenConfig{Runtime: rt}).ListenUDP(context.Background(), "udp4", "127.0.0.1:0", newUDPRecorder())
		if err != nil {
			return err
		}
		defer u.Close(nil)
		if u.Loop() != c.Loop() {
			return errors.New("ListenUDP on a loop thread did not use the caller's loop")
		}
		d, err := (&Dialer{Runtime: rt}).DialUDP(context.Background(), "udp4", u.LocalAddr().String(), newUDPRecorder())
		if err != nil {
			return err
		}
		d.Close(nil)
		other := rt.Loops()[1-c.Loop().ID()]
		if _, err := (&ListenConfig{Runtime: rt, Loop: other}).ListenUDP(context.Background(), "udp4", "127.0.0.1:0", newUDPRecorder()); !errors.Is(err, ErrLoopThread) {
			return fmt.Errorf("ListenUDP on another loop, from a loop thread: %v, want ErrLoopThread", err)
		}
		if _, err := (&ListenConfig{Runtime: rt}).Serve(context.Background(), "tcp4", "127.0.0.1:0", newFuncHandler()); !errors.Is(err, ErrLoopThread) {
			return fmt.Errorf("Serve over two loops, from a loop thread: %v, want ErrLoopThread", err)
		}
		// DialHandler waits for its connect: on a loop thread it refuses,
		// whichever loop it would dial on.
		for _, l := range []*runtime.Loop{c.Loop(), other} {
			if _, err := (&Dialer{Runtime: rt, Loop: l}).DialHandler(context.Background(), "tcp4", u.LocalAddr().String(), newFuncHandler()); !errors.Is(err, ErrLoopThread) {
				return fmt.Errorf("DialHandler to loop %d from loop %d's thread: %v, want ErrLoopThread", l.ID(), c.Loop().ID(), err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// On a one-loop runtime Serve sets up inline and serves.
	rt1 := newRuntime(t, &runtime.Config{Loops: 1})
	var inner *Server
	err = onHandler(t, rt1, func(*Conn) error {
		h := newFuncHandler()
		h.data = func(c *Conn, d *Data) { _ = c.Write(d.Bytes()) }
		var err error
		inner, err = (&ListenConfig{Runtime: rt1}).Serve(context.Background(), "tcp4", "127.0.0.1:0", h)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	c, err := net.Dial("tcp4", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "served", 5*time.Second)
}

// TestLingerCloseBlockedLoop: closing a connection whose SO_LINGER has a
// positive timeout, with data its peer has not acknowledged, blocked the
// loop thread in close(2) until the peer acknowledged or the timeout passed:
// every other connection on the loop stalled meanwhile. The close now runs
// off the loop thread, and the other connection's round trip is prompt.
func TestLingerCloseBlockedLoop(t *testing.T) {
	needRing(t)
	rt := newRuntime(t, &runtime.Config{Loops: 1})
	conns := make(chan *Conn, 2)
	h := newFuncHandler()
	h.open = func(c *Conn) { conns <- c }
	h.data = func(c *Conn, d *Data) { _ = c.Write(d.Bytes()) }
	// Plain sends: a SEND_ZC in flight makes Close reset the connection
	// after a grace, and a reset socket does not linger.
	s := serveOn(t, rt, &Config{SendZCThreshold: -1}, "tcp4", "127.0.0.1:0", h)

	// A: a client with a tiny receive window that never reads.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
	}}
	ca, err := d.Dial("tcp4", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close() // its unread data makes it reset, which ends the linger
	a := <-conns
	cb, err := net.Dial("tcp4", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	<-conns
	roundTrip(t, cb, "warm", 5*time.Second)

	// Fill A's send queue: what the peer's window does not take stays unsent.
	chunk := make([]byte, 256<<10)
	onLoop(t, a.Loop(), func() {
		if err := unix.SetsockoptLinger(a.FD(), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 5}); err != nil {
			t.Error(err)
		}
		for range 8 {
			if a.Write(chunk) != nil {
				break
			}
		}
	})

	waitFor(t, func() bool {
		n, _ := unix.IoctlGetInt(a.FD(), unix.SIOCOUTQ)
		ti, err := unix.GetsockoptTCPInfo(a.FD(), unix.IPPROTO_TCP, unix.TCP_INFO)
		return n > 64<<10 && err == nil && ti.Snd_wnd == 0
	}, "unacknowledged data in A's socket, and a zero window")

	onLoop(t, a.Loop(), func() { a.Close(nil) })
	took := roundTrip(t, cb, "ping", 3*time.Second)
	t.Logf("round trip after the close: %v", took)
	if took > time.Second {
		t.Fatalf("a round trip on the loop took %v while another connection lingered in close", took)
	}
	if ev := h.waitClose(t, "the lingering connection"); ev.c != a || ev.err != nil {
		t.Fatalf("OnClose(%p, %v), want (%p, nil)", ev.c, ev.err, a)
	}
}

// recvRecorder is the runtime.Handler of a raw multishot receive: it leases
// each CQE's buffer from group and reports the bytes or the error.
type recvRecorder struct {
	ls  *loopState
	got chan string
}

func (r *recvRecorder) HandleCompletion(_ *runtime.Loop, _ uint64, cqe *ring.CQE) {
	if cqe.Res < 0 {
		r.got <- "error: " + cqe.Errno().Error()
		return
	}
	lease, err := r.ls.group.Lease(cqe)
	if err != nil {
		r.got <- "lease: " + err.Error()
		return
	}
	r.got <- string(lease.Bytes())
	lease.Release()
}

// TestLoopShutdownUnmappedBuffersInFlight: when the runtime's shutdown gives
// up waiting for operations (they ignored cancellation for the whole grace),
// it keeps its own buffers mapped, since the kernel may still write to them;
// netio unmapped its buffer group and arena anyway. Here netio's shutdown
// (loopState.Close, as the runtime calls it) runs with a receive still in
// flight, and data that arrives afterwards must still land in a mapped,
// registered buffer.
func TestLoopShutdownUnmappedBuffersInFlight(t *testing.T) {
	needRing(t)
	rt := newRuntime(t, &runtime.Config{Loops: 1})
	l := rt.Loops()[0]
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	defer unix.Close(fds[0])
	rec := &recvRecorder{got: make(chan string, 4)}
	onLoop(t, l, func() {
		ls, err := stateOf(l)
		if err != nil {
			t.Fatal(err)
		}
		rec.ls = ls
		sqe, _, err := l.NewOp(rec, 0)
		if err != nil {
			t.Fatal(err)
		}
		sqe.PrepRecvMultishot(fds[0], ls.gid, 0)
	})
	onLoop(t, l, func() {
		if l.InFlight() == 0 {
			t.Error("InFlight = 0 with a receive armed")
		}
		if err := rec.ls.Close(); err != nil {
			t.Error(err)
		}
	})
	if _, err := unix.Write(fds[1], []byte("hello")); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-rec.got:
		if got != "hello" {
			t.Fatalf("receive after netio's shutdown with it in flight: %q, want %q", got, "hello")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no completion for the receive")
	}
}

// TestHandoffFDLeakedAfterMailboxClosed: a socket passed to another loop
// with MSG_RING (AcceptHandoff) whose message arrived after the target's
// mailbox had closed became a stray CQE, and its fd was never closed: the
// client waited forever. Server.Close now closes every socket passed and not
// received.
func TestHandoffFDLeakedAfterMailboxClosed(t *testing.T) {
	needRing(t)
	rt := newRuntime(t, &runtime.Config{Loops: 2})
	h := newFuncHandler()
	h.open = func(c *Conn) { c.Close(nil) }
	s := serveOn(t, rt, &Config{Accept: AcceptHandoff}, "tcp4", "127.0.0.1:0", h)
	l1 := rt.Loops()[1]
	// The mailbox on loop 1 closes early, as if Server.Close had got there
	// first; the acceptor (on loop 0) still hands loop 1 every other socket.
	onLoop(t, l1, func() {
		if err := l1.CloseMailbox(s.boxes[1]); err != nil {
			t.Error(err)
		}
	})
	strays := l1.Stats().Strays
	var clients []net.Conn
	for range 4 {
		c, err := net.Dial("tcp4", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	waitFor(t, func() bool { return l1.Stats().Strays > strays }, "a socket's message to reach the closed mailbox")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for i, c := range clients {
		wantEOF(t, c, fmt.Sprintf("client %d", i))
	}
}

// TestHandoffFDLeakedWhenMessageRefused: a socket passed with MSG_RING
// whose message the kernel refused (the target ring gone) was leaked: the
// source's failure CQE went to the runtime, which only counted it. The
// acceptor now sends the message as its own operation and closes the socket
// on failure.
func TestHandoffFDLeakedWhenMessageRefused(t *testing.T) {
	needRing(t)
	rt := newRuntime(t, &runtime.Config{Loops: 1})
	s := serveOn(t, rt, &Config{Accept: AcceptHandoff}, "tcp4", "127.0.0.1:0", newFuncHandler())
	gone, err := runtime.New(&runtime.Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := gone.Close(); err != nil {
		t.Fatal(err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer := os.NewFile(uintptr(fds[1]), "peer") // non-blocking: deadlines work
	defer peer.Close()
	a := s.accs[0]
	onLoop(t, a.l, func() { s.handOff(a, gone.Loops()[0], fds[0]) })
	if err := peer.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := peer.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer read %d, %v: want EOF (the refused socket closed)", n, err)
	}
}
