//go:build linux

package netio

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ringwire/ringwire/runtime"
)

type packetEvent struct {
	payload   string
	n         int
	from      netip.AddrPort
	truncated bool
	err       error
}

// udpRecorder records datagrams and errors; with relay set it forwards each
// datagram's own buffer to relay (the RTP relay pattern).
type udpRecorder struct {
	ev     chan packetEvent
	relay  netip.AddrPort
	sent   chan error
	closed chan error
}

func newUDPRecorder() *udpRecorder {
	return &udpRecorder{ev: make(chan packetEvent, 64), sent: make(chan error, 1024), closed: make(chan error, 1)}
}

func (r *udpRecorder) OnPacket(u *UDPConn, d *Data) {
	if r.relay.IsValid() {
		lease := d.Keep()
		lease.Retain() // two destinations: one reference each
		_ = u.SendLeaseTo(lease, d.Bytes(), r.relay, 1)
		_ = u.SendLeaseTo(lease, d.Bytes(), r.relay, 2)
		return
	}
	p := d.Bytes()
	if len(p) > 16 {
		p = p[:16]
	}
	r.ev <- packetEvent{payload: string(p), n: d.Len(), from: d.From(), truncated: d.Truncated()}
}
func (r *udpRecorder) OnError(u *UDPConn, err error)            { r.ev <- packetEvent{err: err} }
func (r *udpRecorder) OnClose(u *UDPConn, err error)            { r.closed <- err }
func (r *udpRecorder) OnSent(u *UDPConn, tag uint64, err error) { r.sent <- err }

func listenUDPHandler(t *testing.T, h PacketHandler) *UDPConn {
	t.Helper()
	return listenUDPHandlerOn(t, nil, h)
}

func listenUDPHandlerOn(t *testing.T, rt *runtime.Runtime, h PacketHandler) *UDPConn {
	t.Helper()
	lc := ListenConfig{Runtime: rt}
	u, err := lc.ListenUDP(context.Background(), "udp", "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { onLoop(t, u.Loop(), func() { u.Close(nil) }) })
	return u
}

func next(t *testing.T, ch chan packetEvent) packetEvent {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no datagram event in 5s")
	}
	return packetEvent{}
}

func TestUDPHandlerReceiveAndTruncation(t *testing.T) {
	needRing(t)
	rec := newUDPRecorder()
	u := listenUDPHandler(t, rec)
	c, err := net.Dial("udp", u.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	e := next(t, rec.ev)
	if e.payload != "hello" || e.truncated || e.from.String() != c.LocalAddr().String() {
		t.Fatalf("got %+v", e)
	}
	// An oversized datagram: larger than a 16 KiB provided buffer.
	big := make([]byte, 40000)
	if _, err := c.Write(big); err != nil {
		t.Fatal(err)
	}
	e = next(t, rec.ev)
	if !e.truncated || e.n >= len(big) {
		t.Fatalf("oversized datagram: %+v, want truncated", e)
	}
	// Receiving goes on after it.
	if _, err := c.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if e = next(t, rec.ev); e.payload != "after" {
		t.Fatalf("got %+v after the truncated one", e)
	}
}

func TestUDPHandlerRelayLease(t *testing.T) {
	needRing(t)
	sink, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	rec := newUDPRecorder()
	rec.relay = sink.LocalAddr().(*net.UDPAddr).AddrPort()
	u := listenUDPHandlerOn(t, newRuntime(t, nil), rec)
	src, err := net.Dial("udp", u.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const n = 50
	for i := 0; i < n; i++ {
		if _, err := src.Write([]byte{byte(i), 'r', 't', 'p'}); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 64)
	got := 0
	_ = sink.SetReadDeadline(time.Now().Add(5 * time.Second))
	for got < 2*n {
		m, _, err := sink.ReadFrom(buf)
		if err != nil {
			break
		}
		if m != 4 || buf[1] != 'r' {
			t.Fatalf("relayed %q", buf[:m])
		}
		got++
	}
	if got < 2*n*9/10 {
		t.Fatalf("sink got %d of %d relayed datagrams", got, 2*n)
	}
	for i := 0; i < got; i++ {
		if err := <-rec.sent; err != nil {
			t.Fatal(err)
		}
	}
	// Every buffer went back: the group holds no lease.
	onLoop(t, u.Loop(), func() {
		if in := u.ls.group.InUse(); in != 0 {
			t.Errorf("%d buffers still leased after the relay sends completed", in)
		}
	})
}

func TestUDPHandlerConnRefused(t *testing.T) {
	needRing(t)
	closed, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := closed.LocalAddr().String()
	closed.Close()
	rec := newUDPRecorder()
	var d Dialer
	u, err := d.DialUDP(context.Background(), "udp", addr, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer onLoop(t, u.Loop(), func() { u.Close(nil) })
	onLoop(t, u.Loop(), func() { _ = u.WriteTo([]byte("x"), netip.AddrPort{}, 0) })
	e := next(t, rec.ev)
	if !errors.Is(e.err, syscall.ECONNREFUSED) {
		t.Fatalf("got %+v, want ECONNREFUSED", e)
	}
}

// udpEcho sends each datagram's own buffer back to its source.
type udpEcho struct{}

func (udpEcho) OnPacket(u *UDPConn, d *Data) {
	_ = u.SendLeaseTo(d.Keep(), d.Bytes(), d.From(), 0)
}
func (udpEcho) OnError(*UDPConn, error) {}
func (udpEcho) OnClose(*UDPConn, error) {}

// TestUDPAllocs: a steady-state datagram echo allocates nothing on the
// handler API, and at most one per call on the PacketConn face.
func TestUDPAllocs(t *testing.T) {
	needRing(t)
	u := listenUDPHandler(t, udpEcho{})
	c, err := net.Dial("udp", u.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 172) // an RTP packet with 160 bytes of G.711
	buf := make([]byte, 2048)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	rt := func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		rt()
	}
	n := testing.AllocsPerRun(300, rt)
	t.Logf("handler API UDP echo: %v allocs per datagram round trip", n)
	if n != 0 {
		t.Errorf("%v allocs per handler-API datagram echo, want 0", n)
	}

	// PacketConn face as the client.
	pc, err := ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	type addrPortConn interface {
		WriteToUDPAddrPort([]byte, netip.AddrPort) (int, error)
		ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error)
	}
	apc := pc.(addrPortConn)
	_ = pc.SetReadDeadline(time.Now().Add(30 * time.Second))
	dst := u.LocalAddr()
	rt2 := func() {
		if _, err := apc.WriteToUDPAddrPort(msg, dst); err != nil {
			t.Fatal(err)
		}
		if _, _, err := apc.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 100; i++ {
		rt2()
	}
	n = testing.AllocsPerRun(300, rt2)
	t.Logf("PacketConn face: %v allocs per WriteToUDPAddrPort+ReadFromUDPAddrPort", n)
	if n > 2 {
		t.Errorf("%v allocs per PacketConn round trip, want <= 2", n)
	}
}
