//go:build linux

package netio

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/runtime"
)

// TestConnReadWriteAllocsEach guards issue 5's "at most 1 allocation per
// net.Conn Read/Write" for each call on its own (TestHandlerAllocs guards
// the pair): the peer is package net, whose TCP Read and Write do not
// allocate, so the count is netio's. Write runs both when the socket buffer
// takes the message at once (32 bytes) and when it must wait for room:
// 128 KiB messages into a 16 KiB socket buffer, drained by a reader
// goroutine.
func TestConnReadWriteAllocsEach(t *testing.T) {
	needRing(t)
	for _, size := range []int{32, 128 << 10} {
		name := "immediate"
		if size > 32 {
			name = "waiting"
		}
		t.Run(name, func(t *testing.T) {
			c, p := tcpPair(t, nil)
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			_ = p.SetDeadline(time.Now().Add(60 * time.Second))
			if size > 32 {
				if err := c.(interface{ SetWriteBuffer(int) error }).SetWriteBuffer(16 << 10); err != nil {
					t.Fatal(err)
				}
			}
			msg := make([]byte, size)
			for i := range msg {
				msg[i] = byte(i)
			}
			// The peer's reader: one message per request, no allocation.
			req, got := make(chan struct{}), make(chan error)
			go func() {
				buf := make([]byte, size)
				for range req {
					_, err := io.ReadFull(p, buf)
					got <- err
				}
			}()
			defer close(req)
			write := func() {
				req <- struct{}{}
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				if err := <-got; err != nil {
					t.Fatal(err)
				}
			}
			small, buf := msg[:min(size, 32)], make([]byte, 32)
			read := func() {
				if _, err := p.Write(small); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf[:len(small)]); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < 10; i++ {
				write()
				read()
			}
			w := testing.AllocsPerRun(30, write)
			r := testing.AllocsPerRun(500, read)
			t.Logf("net.Conn, Write %s: %v allocs per Write, %v per Read", name, w, r)
			if w != 0 {
				t.Errorf("%v allocs per net.Conn Write, want 0", w)
			}
			if r != 0 {
				t.Errorf("%v allocs per net.Conn Read, want 0", r)
			}
		})
	}
}

// TestReadFromFileSplices: ReadFrom from an *os.File moves the file with
// sendfile(2), never through user memory: every byte counts in
// Stats.Spliced. io.Copy(conn, file) gets there too, through
// (*os.File).WriteTo's wrapper.
func TestReadFromFileSplices(t *testing.T) {
	needRing(t)
	data := make([]byte, 512<<10)
	for i := range data {
		data[i] = byte(i * 31)
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		copy func(c net.Conn, f *os.File) (int64, error)
	}{
		{name: "ReadFrom", copy: func(c net.Conn, f *os.File) (int64, error) { return c.(io.ReaderFrom).ReadFrom(f) }},
		{name: "io.Copy", copy: func(c net.Conn, f *os.File) (int64, error) { return io.Copy(c, f) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := newRuntime(t, &runtime.Config{Loops: 1})
			ln, err := net.Listen("tcp4", "127.0.0.1:0") // the receiver is package net
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan int, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- -1
					return
				}
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				b, _ := io.ReadAll(c)
				n := len(b)
				for i := range b {
					if i >= len(data) || b[i] != data[i] {
						n = -2
						break
					}
				}
				got <- n
			}()
			d := Dialer{Runtime: rt}
			c, err := d.Dial("tcp4", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			n0 := StatsOf(rt)
			n, err := tt.copy(c, f)
			n1 := StatsOf(rt)
			if err != nil || n != int64(len(data)) {
				t.Fatalf("copy = %d, %v", n, err)
			}
			c.Close()
			if k := <-got; k != len(data) {
				t.Fatalf("receiver got %d bytes (-2: different bytes), want %d", k, len(data))
			}
			if moved := n1.Spliced - n0.Spliced; moved != uint64(len(data)) {
				t.Fatalf("%d of %d bytes moved without a copy", moved, len(data))
			}
		})
	}
}

// zcHandler writes size bytes n times on each new connection.
type zcHandler struct {
	size, n int
	sent    chan error
}

func (h *zcHandler) OnOpen(c *Conn) {
	b := make([]byte, h.size)
	for i := 0; i < h.n; i++ {
		_ = c.WriteTag(b, uint64(i))
	}
}
func (h *zcHandler) OnData(*Conn, *Data)                 {}
func (h *zcHandler) OnClose(*Conn, error)                {}
func (h *zcHandler) OnSent(_ *Conn, _ uint64, err error) { h.sent <- err }

// TestSendZCThresholdHandler: on the handler API, sends below
// Config.SendZCThreshold are plain and sends at or above it are SEND_ZC,
// until the loopback peer's notification says the kernel copied: the
// connection then abandons SEND_ZC, once, counted in Stats.ZCAbandoned.
func TestSendZCThresholdHandler(t *testing.T) {
	needRing(t)
	const threshold = 8 << 10
	tests := []struct {
		name      string
		size, n   int
		wantZC    bool
		abandoned bool
	}{
		{name: "below", size: threshold - 1, n: 4},
		{name: "at and above", size: 64 << 10, n: 8, wantZC: true, abandoned: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := newRuntime(t, &runtime.Config{Loops: 1})
			h := &zcHandler{size: tt.size, n: tt.n, sent: make(chan error, tt.n)}
			s := serveOn(t, rt, &Config{SendZCThreshold: threshold}, "tcp4", "127.0.0.1:0", h)
			c, err := net.Dial("tcp4", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.CopyN(io.Discard, c, int64(tt.size*tt.n)); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tt.n; i++ {
				select {
				case err := <-h.sent:
					if err != nil {
						t.Fatal(err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("OnSent missing")
				}
			}
			st, rs := StatsOf(rt), rt.Stats()[0]
			t.Logf("%d x %d B, threshold %d: %+v; runtime ZC notifications %d, copied %d", tt.n, tt.size, threshold, st, rs.ZCNotifs, rs.ZCCopied)
			if !tt.wantZC && st.ZCSends != 0 {
				t.Fatalf("%d SEND_ZC for sends below the threshold", st.ZCSends)
			}
			if tt.wantZC && st.ZCSends == 0 {
				t.Fatal("no SEND_ZC for sends above the threshold")
			}
			if tt.abandoned {
				// Loopback always copies: the first notification says so.
				if rs.ZCCopied == 0 {
					t.Fatal("no notification reported a copy on loopback")
				}
				if st.ZCAbandoned != 1 {
					t.Fatalf("ZCAbandoned %d, want 1 (one connection)", st.ZCAbandoned)
				}
				if st.ZCSends >= uint64(tt.n) {
					t.Fatalf("%d of %d sends were SEND_ZC after the copy was reported", st.ZCSends, tt.n)
				}
			}
		})
	}
}

// stuckZCHandler sends one large buffer with SEND_ZC to a peer that never
// reads, then reports its Conn.
type stuckZCHandler struct {
	buf    []byte
	conn   chan *Conn
	sent   chan error
	closed chan error
}

func (h *stuckZCHandler) OnOpen(c *Conn) {
	if err := c.Send(h.buf, 1); err != nil {
		h.sent <- err
	}
	h.conn <- c
}
func (h *stuckZCHandler) OnData(*Conn, *Data)                 {}
func (h *stuckZCHandler) OnClose(_ *Conn, err error)          { h.closed <- err }
func (h *stuckZCHandler) OnSent(_ *Conn, _ uint64, err error) { h.sent <- err }

// closeStuckZC starts a handler-API SEND_ZC of 16 MiB to a peer (fd) that
// does not read, lets the socket buffers fill, and closes the Conn on its
// loop while the send is in flight (the kernel holds the memory until the
// peer acknowledges it).
func closeStuckZC(t *testing.T) (h *stuckZCHandler, fd int, reason error) {
	rt := newRuntime(t, &runtime.Config{Loops: 1})
	h = &stuckZCHandler{buf: make([]byte, 16<<20), conn: make(chan *Conn, 1), sent: make(chan error, 1), closed: make(chan error, 1)}
	s := serveOn(t, rt, nil, "tcp4", "127.0.0.1:0", h)
	fd = dialRaw(t, s.Addr().String())
	t.Cleanup(func() { unix.Close(fd) })
	c := <-h.conn
	time.Sleep(200 * time.Millisecond) // the socket buffers fill up
	var inFlight, zc bool
	reason = errors.New("test: closing a stuck sender")
	onLoop(t, c.Loop(), func() {
		inFlight = c.sendOp != 0
		zc = inFlight && c.q[c.qhead].zc
		c.Close(reason)
	})
	if !inFlight || !zc {
		t.Fatalf("send in flight %v, SEND_ZC %v: the test needs a stuck SEND_ZC", inFlight, zc)
	}
	return h, fd, reason
}

// TestCloseWithStuckSendZC: Close with a SEND_ZC in flight to a peer that
// never reads must still finish: after zcCloseGrace it resets the
// connection, the send ends with an error, OnClose follows and the peer sees
// the reset. Without the reset the notification never comes and OnClose
// never runs.
func TestCloseWithStuckSendZC(t *testing.T) {
	needRing(t)
	h, fd, reason := closeStuckZC(t)
	select {
	case err := <-h.sent:
		if err == nil {
			t.Fatal("OnSent reported success for a send cut short by Close")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no OnSent 10s after Close: the SEND_ZC notification never came")
	}
	select {
	case err := <-h.closed:
		if err != reason {
			t.Fatalf("OnClose(%v), want the Close reason", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no OnClose 10s after Close")
	}
	// The peer sees the reset once it reads past what had arrived.
	buf := make([]byte, 1<<20)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10})
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.ECONNRESET {
			break
		}
		if err != nil || n == 0 {
			t.Fatalf("peer read %d, %v; want ECONNRESET after the data", n, err)
		}
	}
}

// TestCloseWaitsForSendZCOfReadingPeer: the same Close, but the peer starts
// reading within zcCloseGrace. The notification then comes without a reset:
// the peer reads what the kernel had taken, then a clean EOF (a FIN), and
// OnClose follows.
func TestCloseWaitsForSendZCOfReadingPeer(t *testing.T) {
	needRing(t)
	h, fd, reason := closeStuckZC(t)
	time.Sleep(100 * time.Millisecond)
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 10})
	buf := make([]byte, 1<<20)
	total := 0
	for {
		n, err := unix.Read(fd, buf)
		if err != nil {
			t.Fatalf("peer read after %d bytes: %v; want the data, then EOF", total, err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	if total == 0 {
		t.Fatal("the peer read nothing before EOF")
	}
	select {
	case err := <-h.closed:
		if err != reason {
			t.Fatalf("OnClose(%v), want the Close reason", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no OnClose 10s after the peer drained the connection")
	}
	if err := <-h.sent; err == nil {
		t.Fatal("OnSent reported success for a send cut short by Close")
	}
	t.Logf("the peer read %d of %d bytes, then EOF", total, len(h.buf))
}

// TestRuntimeCloseWithStuckSendZC: closing the runtime under a connection
// whose SEND_ZC a peer never acknowledges finishes promptly (shutdown resets
// at once, without zcCloseGrace), and the handler hears OnSent and OnClose.
func TestRuntimeCloseWithStuckSendZC(t *testing.T) {
	needRing(t)
	rt, err := runtime.New(&runtime.Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := &stuckZCHandler{buf: make([]byte, 16<<20), conn: make(chan *Conn, 1), sent: make(chan error, 1), closed: make(chan error, 1)}
	s := serveOn(t, rt, nil, "tcp4", "127.0.0.1:0", h)
	fd := dialRaw(t, s.Addr().String())
	defer unix.Close(fd)
	<-h.conn
	time.Sleep(200 * time.Millisecond) // the socket buffers fill up
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- rt.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("runtime Close still waiting 20s on a stuck SEND_ZC")
	}
	t.Logf("runtime closed in %v", time.Since(start))
	if err := <-h.sent; err == nil {
		t.Fatal("OnSent reported success for a send cut short by Close")
	}
	select {
	case err := <-h.closed:
		t.Logf("OnClose(%v)", err)
	default:
		t.Fatal("runtime Close returned before the connection's OnClose")
	}
}
