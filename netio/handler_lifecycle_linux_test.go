//go:build linux

package netio

import (
	"io"
	"net"
	"testing"
	"time"

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
