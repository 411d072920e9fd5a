//go:build linux

package netio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/runtime"
)

// splitter echoes each received chunk as several WriteTags, so that replies
// queue up behind each other and go out gathered, and records every OnSent.
type splitter struct {
	parts int
	mu    sync.Mutex
	next  uint64   // tag of the next write
	sent  []uint64 // tags in OnSent order
	errs  []error
	conn  chan *Conn
}

func (h *splitter) OnOpen(c *Conn) { h.conn <- c }

func (h *splitter) OnData(c *Conn, d *Data) {
	b := d.Bytes()
	step := max(1, (len(b)+h.parts-1)/h.parts)
	for len(b) > 0 {
		n := min(step, len(b))
		h.mu.Lock()
		h.next++
		tag := h.next
		h.mu.Unlock()
		if err := c.WriteTag(b[:n], tag); err != nil {
			c.Close(err)
			return
		}
		b = b[n:]
	}
}

func (h *splitter) OnSent(_ *Conn, tag uint64, err error) {
	h.mu.Lock()
	h.sent = append(h.sent, tag)
	h.errs = append(h.errs, err)
	h.mu.Unlock()
}

func (h *splitter) OnClose(*Conn, error) {}

// waitAllSent waits until every write made so far has had its OnSent.
func (h *splitter) waitAllSent(t *testing.T) {
	t.Helper()
	waitFor(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return uint64(len(h.sent)) == h.next
	}, "an OnSent for every write")
}

// Replies queued behind each other go out several to one SENDMSG; the peer
// gets every byte in order and every write its OnSent, once, in order.
func TestGatheredSends(t *testing.T) {
	needRing(t)
	rt := newRuntime(t, &runtime.Config{Loops: 1})
	h := &splitter{parts: 8, conn: make(chan *Conn, 1)}
	s := serveOn(t, rt, nil, "tcp", "127.0.0.1:0", h)
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Lock step, 32 KiB a round, so that the queue stays far below the
	// arena's size while each round's echo is several queued writes.
	msg := make([]byte, 32<<10)
	got := make([]byte, len(msg))
	for round := range 64 {
		for i := range msg {
			msg[i] = byte(i*7 + round)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("round %d: echoed bytes differ", round)
		}
	}
	h.waitAllSent(t)
	h.mu.Lock()
	for i, tag := range h.sent {
		if tag != uint64(i+1) || h.errs[i] != nil {
			t.Fatalf("OnSent #%d: tag %d err %v, want tag %d and no error", i, tag, h.errs[i], i+1)
		}
	}
	h.mu.Unlock()
	if st := StatsOf(rt); st.GatheredSends == 0 {
		t.Fatalf("no send was gathered: %+v", st)
	} else {
		t.Logf("%d writes; %d of them gathered into SENDMSGs; %d ring sends", h.next, st.GatheredSends, st.PlainSends)
	}
}

// burst answers the first bytes it receives with n writes of size bytes.
type burst struct {
	splitter
	n, size int
	done    bool
}

func (h *burst) OnData(c *Conn, d *Data) {
	if h.done {
		return
	}
	h.done = true
	b := bytes.Repeat([]byte{'y'}, h.size)
	for range h.n {
		h.mu.Lock()
		h.next++
		tag := h.next
		h.mu.Unlock()
		if err := c.WriteTag(b, tag); err != nil {
			c.Close(err)
			return
		}
	}
}

// Closing a connection while a gathered send is stuck on a peer that does
// not read ends every write exactly once and hands every arena block back.
func TestGatheredSendsClosedInFlight(t *testing.T) {
	needRing(t)
	rt := newRuntime(t, &runtime.Config{Loops: 1})
	h := &burst{splitter: splitter{conn: make(chan *Conn, 1)}, n: 48, size: 8 << 10}
	s := serveOn(t, rt, nil, "tcp", "127.0.0.1:0", h)
	// A peer with a tiny receive window that reads nothing, and a small
	// send buffer on the server's side: its 384 KiB cannot all leave, so a
	// gathered SENDMSG waits in the kernel.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := <-h.conn
	if err := unix.SetsockoptInt(sc.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("go")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		var gathered bool
		onLoop(t, sc.Loop(), func() { gathered = sc.gathered > 1 && sc.sendOp != 0 })
		return gathered
	}, "a gathered send in flight")
	onLoop(t, sc.Loop(), func() {
		n := sc.gathered
		sc.Close(nil)
		// The kernel may still read every block the SENDMSG carries: Close
		// must keep them until its CQE, dropping only what queued behind.
		if sc.sendOp != 0 && sc.ls.arena.InUse() < n {
			t.Errorf("Close released blocks of the gathered send in flight: %d in use, %d carried", sc.ls.arena.InUse(), n)
		}
	})
	h.waitAllSent(t)
	h.mu.Lock()
	seen := map[uint64]bool{}
	for i, tag := range h.sent {
		if seen[tag] {
			t.Fatalf("OnSent twice for tag %d", tag)
		}
		seen[tag] = true
		if err := h.errs[i]; err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, errCanceled) {
			t.Fatalf("OnSent(%d): %v", tag, err)
		}
	}
	h.mu.Unlock()
	waitFor(t, func() bool {
		var inUse int
		onLoop(t, sc.Loop(), func() { inUse = sc.ls.arena.InUse() })
		return inUse == 0
	}, "every arena block back")
}

// chain queues 8 writes when the first bytes arrive, and one more from each
// OnSent until n writes are made; write k carries size copies of byte k.
type chain struct {
	splitter
	n, size int
	started bool
}

func (h *chain) write(c *Conn) {
	h.mu.Lock()
	if h.next >= uint64(h.n) {
		h.mu.Unlock()
		return
	}
	h.next++
	tag := h.next
	h.mu.Unlock()
	if err := c.WriteTag(bytes.Repeat([]byte{byte(tag)}, h.size), tag); err != nil {
		c.Close(err)
	}
}

func (h *chain) OnData(c *Conn, _ *Data) {
	if h.started {
		return
	}
	h.started = true
	for range 8 {
		h.write(c)
	}
}

func (h *chain) OnSent(c *Conn, tag uint64, err error) {
	h.splitter.OnSent(c, tag, err)
	if err == nil {
		h.write(c)
	}
}

// Writes made from OnSent while a gathered send's result is being handed
// out must queue behind the requests it carried, not start a send of them
// again: the peer gets every write once, in order.
func TestGatheredSendsWriteFromOnSent(t *testing.T) {
	needRing(t)
	rt := newRuntime(t, &runtime.Config{Loops: 1})
	const n, size = 200, 1000
	h := &chain{splitter: splitter{conn: make(chan *Conn, 1)}, n: n, size: size}
	s := serveOn(t, rt, nil, "tcp", "127.0.0.1:0", h)
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("go")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, n*size)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	for k := range n {
		chunk := got[k*size : (k+1)*size]
		if want := byte(k + 1); chunk[0] != want || chunk[size-1] != want || !bytes.Equal(chunk, bytes.Repeat([]byte{want}, size)) {
			t.Fatalf("write %d arrived as %d...%d: a gathered request was sent twice or out of order", k+1, chunk[0], chunk[size-1])
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if k, err := c.Read(make([]byte, 1)); k > 0 {
		t.Fatalf("%d bytes more than were written arrived (err %v)", k, err)
	}
	if st := StatsOf(rt); st.GatheredSends == 0 {
		t.Fatalf("no send was gathered: %+v", st)
	}
}
