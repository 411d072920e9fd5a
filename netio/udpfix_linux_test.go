//go:build linux

package netio

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/runtime"
)

// newTinyRuntime starts a one-loop runtime whose loop has a provided buffer
// group of count small buffers, closed at cleanup.
func newTinyRuntime(t *testing.T, gid uint16, count uint32) *runtime.Runtime {
	t.Helper()
	rt, err := runtime.New(&runtime.Config{Loops: 1, Buffers: &bufring.Config{GroupID: gid, Count: count, Size: 512, Batch: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Error(err)
		}
	})
	return rt
}

// pollFor polls cond every millisecond for up to d.
func pollFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// leaseKeeper keeps the lease of every datagram while hold is set (loop
// thread only), and counts datagrams.
type leaseKeeper struct {
	hold    bool
	kept    []bufring.Lease
	views   [][]byte
	got     atomic.Int64
	onClose func(u *UDPConn)
}

func (k *leaseKeeper) OnPacket(_ *UDPConn, d *Data) {
	k.got.Add(1)
	if k.hold {
		k.kept = append(k.kept, d.Keep())
		k.views = append(k.views, d.Bytes())
	}
}
func (k *leaseKeeper) OnError(*UDPConn, error) {}
func (k *leaseKeeper) OnClose(u *UDPConn, _ error) {
	if k.onClose != nil {
		k.onClose(u)
	}
}

// releaseAll drops the kept leases; loop thread.
func (k *leaseKeeper) releaseAll() {
	for _, l := range k.kept {
		l.Release()
	}
	k.kept, k.views = k.kept[:0], k.views[:0]
}

func sendUDP(t *testing.T, c net.Conn, n int, b byte) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := c.Write([]byte{b, byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUDPSendSetupFailureLeaksLeaseAndBlock pins the bug where a send that
// passed canSend but failed in start (here: an IPv6 destination on an IPv4
// socket, so sockaddr encoding fails) kept SendLeaseTo's lease and WriteTo's
// arena block forever. SendLeaseTo now owns the lease whatever it returns.
func TestUDPSendSetupFailureLeaksLeaseAndBlock(t *testing.T) {
	needRing(t)
	rt := newRuntime(t, nil)
	k := &leaseKeeper{hold: true}
	u := listenUDPHandlerOn(t, rt, k)
	c, err := net.Dial("udp", u.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sendUDP(t, c, 1, 'x')
	if !pollFor(5*time.Second, func() bool { return k.got.Load() == 1 }) {
		t.Fatal("datagram not received in 5s")
	}
	v6 := netip.MustParseAddrPort("[::1]:9")
	onLoop(t, u.Loop(), func() {
		ls := u.ls
		inUse, blocks := ls.group.InUse(), ls.arena.InUse()
		lease, view := k.kept[0], k.views[0]
		k.kept, k.views = nil, nil
		if err := u.SendLeaseTo(lease, view, v6, 1); err == nil {
			t.Error("SendLeaseTo to an IPv6 address from an IPv4 socket succeeded")
		}
		if got := ls.group.InUse(); got != inUse-1 {
			t.Errorf("after the failed SendLeaseTo %d buffers leased, want %d: the lease leaked", got, inUse-1)
		}
		if err := u.WriteTo([]byte("copy"), v6, 2); err == nil {
			t.Error("WriteTo to an IPv6 address from an IPv4 socket succeeded")
		}
		if got := ls.arena.InUse(); got != blocks {
			t.Errorf("after the failed WriteTo %d arena blocks in use, want %d: the block leaked", got, blocks)
		}
		if u.inflight != 0 || u.queued != 0 {
			t.Errorf("inflight %d queued %d after two failed sends", u.inflight, u.queued)
		}
	})
}

// TestUDPSendDuringLoopCloseLeaksLeaseAndBlock pins the same bug on the
// NewOp failure path: sends started from an OnClose while the loop shuts
// down (NewOp returns runtime.ErrClosed) kept the lease and the arena block.
func TestUDPSendDuringLoopCloseLeaksLeaseAndBlock(t *testing.T) {
	needRing(t)
	rt, err := runtime.New(&runtime.Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = rt.Close()
		}
	}()
	l := rt.Loops()[0]
	lc := ListenConfig{Runtime: rt, Loop: l}
	// b stays open through the shutdown: paused, it has no receive to cancel.
	b, err := lc.ListenUDP(context.Background(), "udp", "127.0.0.1:0", &leaseKeeper{})
	if err != nil {
		t.Fatal(err)
	}
	var leaseErr, writeErr error
	var ls *loopState
	k := &leaseKeeper{hold: true}
	k.onClose = func(*UDPConn) {
		// Both sockets are on l; b is still open, so canSend passes and
		// the send fails in NewOp.
		if len(k.kept) == 1 {
			leaseErr = b.SendLeaseTo(k.kept[0], k.views[0], b.LocalAddr(), 1)
			k.kept, k.views = nil, nil
		}
		writeErr = b.WriteTo([]byte("late"), b.LocalAddr(), 2)
	}
	a, err := lc.ListenUDP(context.Background(), "udp", "127.0.0.1:0", k)
	if err != nil {
		t.Fatal(err)
	}
	onLoop(t, l, func() { b.PauseRecv(); ls = a.ls })
	c, err := net.Dial("udp", a.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sendUDP(t, c, 1, 'x')
	if !pollFor(5*time.Second, func() bool { return k.got.Load() == 1 }) {
		t.Fatal("datagram not received in 5s")
	}
	closed = true
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	// The loop has been joined: its state is ours to read.
	if !errors.Is(leaseErr, runtime.ErrClosed) || !errors.Is(writeErr, runtime.ErrClosed) {
		t.Fatalf("sends during shutdown returned %v and %v, want runtime.ErrClosed", leaseErr, writeErr)
	}
	if n := ls.group.InUse(); n != 0 {
		t.Errorf("%d buffers still leased after the loop closed: SendLeaseTo leaked its lease", n)
	}
	if n := ls.arena.InUse(); n != 0 {
		t.Errorf("%d arena blocks in use after the loop closed: WriteTo leaked its block", n)
	}
}

// floodSock is one of the sockets of TestKickStarvedENOBUFSStorm.
type floodSock struct {
	f      *flood
	got    atomic.Int64
	marker atomic.Bool
}

type flood struct {
	hold bool // loop thread
	kept []bufring.Lease
}

func (s *floodSock) OnPacket(_ *UDPConn, d *Data) {
	s.got.Add(1)
	if b := d.Bytes(); len(b) > 0 && b[0] == 'M' {
		s.marker.Store(true)
	}
	if s.f.hold {
		s.f.kept = append(s.f.kept, d.Keep())
	}
}
func (s *floodSock) OnError(*UDPConn, error) {}
func (s *floodSock) OnClose(*UDPConn, error) {}

// TestKickStarvedENOBUFSStorm pins the bug where kickStarved re-armed every
// starved receive at once (arming does not lower Group.Available, so its
// loop condition never stopped it): with many sockets on a loop with few
// buffers, all but a few ended with ENOBUFS again, every 1 ms tick. Now a
// kick re-arms at most Available()/rearmShare receives, round-robin, and
// every socket still gets its traffic once the flood stops.
func TestKickStarvedENOBUFSStorm(t *testing.T) {
	needRing(t)
	const (
		nsock = 48
		count = 8 // buffers in the loop's group
		burst = 20
	)
	rt := newTinyRuntime(t, 11, count)
	l := rt.Loops()[0]
	f := &flood{hold: true}
	socks := make([]*floodSock, nsock)
	conns := make([]net.Conn, nsock)
	var us []*UDPConn
	lc := ListenConfig{Runtime: rt, Loop: l}
	for i := range socks {
		socks[i] = &floodSock{f: f}
		u, err := lc.ListenUDP(context.Background(), "udp", "127.0.0.1:0", socks[i])
		if err != nil {
			t.Fatal(err)
		}
		us = append(us, u)
		c, err := net.Dial("udp", u.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	t.Cleanup(func() {
		onLoop(t, l, func() {
			for _, u := range us {
				u.Close(nil)
			}
			for _, le := range f.kept {
				le.Release()
			}
			f.kept = nil
		})
		for _, c := range conns {
			c.Close()
		}
	})
	var ls *loopState
	onLoop(t, l, func() { ls = us[0].ls })

	// Phase 1: the handler holds every buffer; the sockets starve.
	for round := 0; round < burst; round++ {
		for _, c := range conns {
			if _, err := c.Write([]byte{'f', byte(round)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	starved := 0
	pollFor(5*time.Second, func() bool {
		onLoop(t, l, func() { starved = len(ls.starved) })
		return starved >= nsock-count
	})
	if starved < nsock/2 {
		t.Fatalf("only %d of %d receives starved: the test did not exercise ENOBUFS", starved, nsock)
	}

	// Phase 2: give the buffers back and keep flooding with a handler that
	// releases at once; the starved receives are re-armed a few per kick.
	onLoop(t, l, func() {
		f.hold = false
		for _, le := range f.kept {
			le.Release()
		}
		f.kept = f.kept[:0]
	})
	stop := time.Now().Add(200 * time.Millisecond)
	for round := 0; round < 200 && time.Now().Before(stop); round++ {
		for _, c := range conns {
			if _, err := c.Write([]byte{'g', byte(round)}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Millisecond)
	}

	// Phase 3: the flood has stopped; one marker per socket must arrive.
	for _, c := range conns {
		if _, err := c.Write([]byte{'M'}); err != nil {
			t.Fatal(err)
		}
	}
	missing := 0
	pollFor(20*time.Second, func() bool {
		missing = 0
		for _, s := range socks {
			if !s.marker.Load() {
				missing++
			}
		}
		return missing == 0
	})
	var kc kickCounts
	onLoop(t, l, func() { kc = ls.kicks })
	st := StatsOf(rt)
	t.Logf("stats %+v; runtime ENOBUFS %d; kicks %d re-armed %d, at most %d per kick",
		st, rt.Stats()[0].ENOBUFS, kc.kicks, kc.rearms, kc.max)
	if missing > 0 {
		t.Fatalf("%d of %d sockets never got their marker after the flood: starved for good", missing, nsock)
	}
	if st.Starved < nsock/2 {
		t.Errorf("Starved = %d, want >= %d", st.Starved, nsock/2)
	}
	if limit := count / rearmShare; kc.max > limit {
		t.Errorf("a kick re-armed %d receives with %d buffers in the group, want <= %d (ENOBUFS storm)", kc.max, count, limit)
	}
	if kc.rearms == 0 || st.Rearms < uint64(kc.rearms) {
		t.Errorf("Stats.Rearms = %d, kicks re-armed %d: starvation re-arms not counted", st.Rearms, kc.rearms)
	}
}

// TestStatsRearmsMissesStarvationRearms pins the bug where Stats.Rearms
// counted only receives re-armed after a data CQE, not those re-armed by
// kickStarved after ENOBUFS.
func TestStatsRearmsMissesStarvationRearms(t *testing.T) {
	needRing(t)
	rt := newTinyRuntime(t, 12, 4)
	k := &leaseKeeper{hold: true}
	u := listenUDPHandlerOn(t, rt, k)
	t.Cleanup(func() { onLoop(t, u.Loop(), k.releaseAll) })
	c, err := net.Dial("udp", u.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sendUDP(t, c, 6, 'x') // 4 fill the group and are held; 2 wait
	starved := false
	pollFor(5*time.Second, func() bool {
		onLoop(t, u.Loop(), func() { starved = u.starved })
		return starved && k.got.Load() == 4
	})
	if !starved || k.got.Load() != 4 {
		t.Fatalf("starved %v, received %d: want the receive starved after 4", starved, k.got.Load())
	}
	before := StatsOf(rt)
	onLoop(t, u.Loop(), func() {
		k.hold = false
		k.releaseAll()
	})
	if !pollFor(5*time.Second, func() bool { return k.got.Load() == 6 }) {
		t.Fatalf("received %d of 6 datagrams after the buffers came back", k.got.Load())
	}
	after := StatsOf(rt)
	t.Logf("before %+v after %+v", before, after)
	if before.Starved == 0 {
		t.Fatal("Starved = 0 with the receive starved")
	}
	if after.Rearms <= before.Rearms {
		t.Errorf("Stats.Rearms %d -> %d across a re-arm after ENOBUFS", before.Rearms, after.Rearms)
	}
	if after.Rearms < after.Starved {
		t.Errorf("Stats.Rearms %d < Stats.Starved %d with every starved receive re-armed", after.Rearms, after.Starved)
	}
}

// TestUDPLoopChoice: ListenConfig.Loop and Dialer.Loop put ListenUDP,
// ListenPacket and DialUDP on the loop named; a loop of another runtime is
// refused.
func TestUDPLoopChoice(t *testing.T) {
	needRing(t)
	rt, err := runtime.New(&runtime.Config{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	for i, l := range rt.Loops() {
		for range 3 { // Next alone would alternate
			lc := ListenConfig{Runtime: rt, Loop: l}
			u, err := lc.ListenUDP(context.Background(), "udp", "127.0.0.1:0", udpEcho{})
			if err != nil {
				t.Fatal(err)
			}
			if u.Loop() != l {
				t.Errorf("ListenUDP with Loop %d ran on loop %d", i, u.Loop().ID())
			}
			d := Dialer{Runtime: rt, Loop: l}
			v, err := d.DialUDP(context.Background(), "udp", u.LocalAddr().String(), udpEcho{})
			if err != nil {
				t.Fatal(err)
			}
			if v.Loop() != l {
				t.Errorf("DialUDP with Loop %d ran on loop %d", i, v.Loop().ID())
			}
			pc, err := lc.ListenPacket(context.Background(), "udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if got := pc.(*netUDPConn).fd.owner.l; got != l {
				t.Errorf("ListenPacket with Loop %d ran on loop %d", i, got.ID())
			}
			_ = pc.Close()
			onLoop(t, l, func() { u.Close(nil); v.Close(nil) })
		}
	}
	// Runtime nil: the loop is used as is.
	l := rt.Loops()[1]
	lc := ListenConfig{Loop: l}
	u, err := lc.ListenUDP(context.Background(), "udp", "127.0.0.1:0", udpEcho{})
	if err != nil {
		t.Fatal(err)
	}
	if u.Loop() != l {
		t.Error("ListenUDP with Loop and no Runtime ran elsewhere")
	}
	onLoop(t, l, func() { u.Close(nil) })

	other := newRuntime(t, nil)
	bad := ListenConfig{Runtime: rt, Loop: other.Loops()[0]}
	if _, err := bad.ListenUDP(context.Background(), "udp", "127.0.0.1:0", udpEcho{}); !errors.Is(err, errForeignLoop) {
		t.Errorf("ListenUDP with another runtime's loop: %v, want errForeignLoop", err)
	}
	if _, err := bad.ListenPacket(context.Background(), "udp", "127.0.0.1:0"); !errors.Is(err, errForeignLoop) {
		t.Errorf("ListenPacket with another runtime's loop: %v, want errForeignLoop", err)
	}
	badD := Dialer{Runtime: rt, Loop: other.Loops()[0]}
	if _, err := badD.DialUDP(context.Background(), "udp", "127.0.0.1:9", udpEcho{}); !errors.Is(err, errForeignLoop) {
		t.Errorf("DialUDP with another runtime's loop: %v, want errForeignLoop", err)
	}
}

// chanRecorder sends each datagram's payload and source on a channel.
type chanRecorder struct{ ev chan packetEvent }

func (r *chanRecorder) OnPacket(_ *UDPConn, d *Data) {
	r.ev <- packetEvent{payload: string(d.Bytes()), from: d.From()}
}
func (r *chanRecorder) OnError(*UDPConn, error) {}
func (r *chanRecorder) OnClose(*UDPConn, error) {}

// TestFileUDP: FileUDP adopts a bound socket (and a connected one) made by
// package net, on the loop asked for; it refuses a TCP socket.
func TestFileUDP(t *testing.T) {
	needRing(t)
	rt := newRuntime(t, nil)
	l := rt.Loops()[len(rt.Loops())-1]
	lc := ListenConfig{Runtime: rt, Loop: l}
	adopt := func(c interface{ File() (*os.File, error) }) (*UDPConn, *chanRecorder) {
		t.Helper()
		f, err := c.File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rec := &chanRecorder{ev: make(chan packetEvent, 8)}
		u, err := lc.FileUDP(f, rec)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { onLoop(t, l, func() { u.Close(nil) }) })
		if u.Loop() != l {
			t.Error("FileUDP ignored ListenConfig.Loop")
		}
		return u, rec
	}

	// A bound, unconnected socket.
	nc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	bound := nc.LocalAddr().(*net.UDPAddr).AddrPort()
	u, rec := adopt(nc)
	nc.Close() // the UDPConn has its own descriptor
	if u.LocalAddr() != bound || u.RemoteAddr().IsValid() {
		t.Fatalf("adopted socket: local %v remote %v, want %v and none", u.LocalAddr(), u.RemoteAddr(), bound)
	}
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := peer.WriteToUDPAddrPort([]byte("ping"), bound); err != nil {
		t.Fatal(err)
	}
	e := next(t, rec.ev)
	if e.payload != "ping" || e.from != peer.LocalAddr().(*net.UDPAddr).AddrPort() {
		t.Fatalf("adopted socket got %+v", e)
	}
	onLoop(t, l, func() {
		if err := u.WriteTo([]byte("pong"), e.from, 0); err != nil {
			t.Error(err)
		}
	})
	buf := make([]byte, 16)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := peer.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "pong" || from != bound {
		t.Fatalf("reply: %q from %v, %v", buf[:n], from, err)
	}

	// A connected socket: RemoteAddr is the peer, WriteTo's zero address
	// sends to it.
	cc, err := net.DialUDP("udp", nil, peer.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	local := cc.LocalAddr().(*net.UDPAddr).AddrPort()
	v, vrec := adopt(cc)
	cc.Close()
	if v.RemoteAddr() != peer.LocalAddr().(*net.UDPAddr).AddrPort() || v.LocalAddr() != local {
		t.Fatalf("adopted connected socket: local %v remote %v", v.LocalAddr(), v.RemoteAddr())
	}
	onLoop(t, l, func() {
		if err := v.WriteTo([]byte("hi"), netip.AddrPort{}, 0); err != nil {
			t.Error(err)
		}
	})
	n, from, err = peer.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "hi" || from != local {
		t.Fatalf("connected adopted socket sent %q from %v, %v", buf[:n], from, err)
	}
	if _, err := peer.WriteToUDPAddrPort([]byte("back"), local); err != nil {
		t.Fatal(err)
	}
	if e := next(t, vrec.ev); e.payload != "back" {
		t.Fatalf("connected adopted socket got %+v", e)
	}

	// A TCP socket is refused.
	tl, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	f, err := tl.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = lc.FileUDP(f, &chanRecorder{})
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "file" || !errors.Is(err, syscall.EPROTOTYPE) {
		t.Fatalf("FileUDP of a TCP listener: %v, want *net.OpError file wrapping EPROTOTYPE", err)
	}
}
