//go:build linux

package netio

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/runtime"
)

// TestPlainTCPNotMPTCP: listening and accepted sockets are plain TCP.
func TestPlainTCPNotMPTCP(t *testing.T) {
	needRing(t)
	fds := make(chan int, 1)
	h := &protoHandler{fds: fds}
	s := serve(t, nil, "tcp", "127.0.0.1:0", h)
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case p := <-fds:
		if p != unix.IPPROTO_TCP {
			t.Fatalf("accepted socket protocol %d, want IPPROTO_TCP (%d)", p, unix.IPPROTO_TCP)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no connection")
	}
}

type protoHandler struct{ fds chan int }

func (h *protoHandler) OnOpen(c *Conn) {
	p, _ := unix.GetsockoptInt(c.FD(), unix.SOL_SOCKET, unix.SO_PROTOCOL)
	h.fds <- p
}
func (h *protoHandler) OnData(*Conn, *Data)  {}
func (h *protoHandler) OnClose(*Conn, error) {}

// hoarder keeps every lease until told to let go, so the buffer group runs
// dry and the multishot receive ends with ENOBUFS.
type hoarder struct {
	kept []bufring.Lease
	got  atomic.Int64
}

func (h *hoarder) OnOpen(*Conn) {}
func (h *hoarder) OnData(c *Conn, d *Data) {
	h.got.Add(int64(d.Len()))
	h.kept = append(h.kept, d.Keep())
}
func (h *hoarder) OnClose(*Conn, error) {}

// TestRecvRearmAfterENOBUFS: with 4 buffers and a handler that holds them,
// the receive ends with ENOBUFS; once the leases are released it is re-armed
// and every byte arrives.
func TestRecvRearmAfterENOBUFS(t *testing.T) {
	needRing(t)
	rt, err := runtime.New(&runtime.Config{Loops: 1, Buffers: &bufring.Config{GroupID: 9, Count: 4, Size: 1024, Batch: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	h := &hoarder{}
	lc := ListenConfig{Runtime: rt}
	s, err := lc.Serve(context.Background(), "tcp", "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const total = 64 << 10
	go func() { _, _ = c.Write(make([]byte, total)) }()
	l := rt.Loops()[0]
	deadline := time.Now().Add(20 * time.Second)
	for h.got.Load() < total && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		onLoop(t, l, func() {
			for _, le := range h.kept {
				le.Release()
			}
			h.kept = h.kept[:0]
		})
	}
	st := StatsOf(rt)
	t.Logf("received %d bytes; stats %+v; runtime ENOBUFS %d", h.got.Load(), st, rt.Stats()[0].ENOBUFS)
	if h.got.Load() != total {
		t.Fatalf("received %d of %d bytes", h.got.Load(), total)
	}
	if st.Starved == 0 {
		t.Fatal("the group never ran dry: the test did not exercise ENOBUFS")
	}
	onLoop(t, l, func() {
		for _, le := range h.kept {
			le.Release()
		}
		h.kept = nil
	})
}

// TestForcedFallbackLogsOnce: ForceFallback returns package net objects and
// logs the reason once.
func TestForcedFallbackLogsOnce(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	forceLog.Store(false)
	cfg := &Config{ForceFallback: true, Logger: zap.New(core)}
	lc := ListenConfig{Config: cfg}
	for i := 0; i < 3; i++ {
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := ln.(*net.TCPListener); !ok {
			t.Fatalf("forced fallback returned %T, want *net.TCPListener", ln)
		}
		ln.Close()
	}
	if n := logs.FilterMessageSnippet("ForceFallback").Len(); n != 1 {
		t.Fatalf("fallback logged %d times, want once", n)
	}
	if _, err := lc.Serve(context.Background(), "tcp", "127.0.0.1:0", newEcho(false)); err == nil {
		t.Fatal("the handler API served with ForceFallback set")
	}
}

// TestListenWildcardDualStack: "tcp" on ":0" listens on both families, as
// package net does.
func TestListenWildcardDualStack(t *testing.T) {
	needRing(t)
	ln, err := Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	for _, host := range []string{"127.0.0.1", "::1"} {
		c, err := Dial("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			t.Fatalf("dial %s: %v", host, err)
		}
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if got := c.RemoteAddr().(*net.TCPAddr).IP.String(); got != host {
			t.Fatalf("RemoteAddr %s, want %s", got, host)
		}
		c.Close()
	}
}

// TestDialRefusedAndTimeout: errors of a failed dial have package net's shapes.
func TestDialRefusedAndTimeout(t *testing.T) {
	needRing(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Dial("tcp", addr)
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial to a closed port: %T %v, want *net.OpError dial ECONNREFUSED", err, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := DialContext(ctx, "tcp", addr); err == nil {
		t.Fatal("dial with a cancelled context succeeded")
	}
	if _, err := Dial("sctp", addr); err == nil {
		t.Fatal("unknown network accepted")
	}
}

// TestPauseResumeSameTick pins a bug deterministically: ResumeRecv right
// after PauseRecv, in the same loop task, runs before the cancel's final
// CQE can arrive, so that CQE always comes after the resume. It must not be
// taken for the loop shutting down: the connection stays open, a new
// receive is armed once the cancelled one has ended, and data flows.
func TestPauseResumeSameTick(t *testing.T) {
	needRing(t)
	h := newEcho(false)
	conns := make(chan *Conn, 1)
	s := serve(t, nil, "tcp", "127.0.0.1:0", &openNotify{Handler: h, c: conns})
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := <-conns
	var cancelled runtime.OpID
	onLoop(t, sc.Loop(), func() {
		cancelled = sc.recvOp
		sc.PauseRecv()
		sc.ResumeRecv()
		if sc.recvOp != cancelled {
			t.Errorf("ResumeRecv armed a second receive beside the one being cancelled")
		}
	})
	if cancelled == 0 {
		t.Fatal("no receive was armed before the pause")
	}
	// The cancelled receive's final CQE is dispatched on a later pass of
	// the loop: wait for it to have replaced the receive.
	waitFor(t, func() bool {
		var rearmed, open bool
		onLoop(t, sc.Loop(), func() { rearmed, open = sc.recvOp != 0 && sc.recvOp != cancelled, sc.state == stOpen })
		if !open {
			t.Fatal("the connection closed after pause+resume")
		}
		return rearmed
	}, "the cancelled receive to end and a new one to be armed")
	if _, err := c.Write([]byte("still there")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 11)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "still there" {
		t.Fatalf("echo after pause+resume: %q %v", buf, err)
	}
}

type openNotify struct {
	Handler
	c chan *Conn
}

func (o *openNotify) OnOpen(c *Conn) {
	o.Handler.OnOpen(c)
	o.c <- c
}

// Dialer.Loop places every dialed socket, net.Conn and handler API alike,
// TCP and UDP, on that loop; a loop of another runtime is refused.
func TestDialerLoop(t *testing.T) {
	needRing(t)
	rt, err := runtime.New(&runtime.Config{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	want := rt.Loops()[1]
	tln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tln.Close()
	go func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	uln, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer uln.Close()
	d := Dialer{Runtime: rt, Loop: want}
	for i := range 3 { // without Loop, consecutive dials would rotate loops
		c, err := d.Dial("tcp4", tln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if got := c.(*netTCPConn).fd.owner.l; got != want {
			t.Errorf("TCP dial %d ran on loop %d, want %d", i, got.ID(), want.ID())
		}
		c.Close()
		u, err := d.Dial("udp4", uln.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		if got := u.(*netUDPConn).fd.owner.l; got != want {
			t.Errorf("UDP dial %d ran on loop %d, want %d", i, got.ID(), want.ID())
		}
		u.Close()
	}
	hc, err := d.DialHandler(context.Background(), "tcp4", tln.Addr().String(), newEcho(false))
	if err != nil {
		t.Fatal(err)
	}
	if hc.Loop() != want {
		t.Errorf("DialHandler ran on loop %d, want %d", hc.Loop().ID(), want.ID())
	}
	onLoop(t, hc.Loop(), func() { hc.Close(nil) })
	other := newRuntime(t, &runtime.Config{Loops: 1})
	d.Loop = other.Loops()[0]
	if _, err := d.Dial("tcp4", tln.Addr().String()); !errors.Is(err, errForeignLoop) {
		t.Fatalf("Dial with another runtime's loop: %v, want errForeignLoop", err)
	}
}
