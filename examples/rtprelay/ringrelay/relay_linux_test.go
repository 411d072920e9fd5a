//go:build linux

package ringrelay

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringwire/ringwire/examples/rtprelay/relay"
	"github.com/ringwire/ringwire/examples/rtprelay/rtpcheck"
	"github.com/ringwire/ringwire/examples/rtprelay/rtptest"
	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/runtime"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// needRing skips (or fails under RINGWIRE_STRICT=1) without io_uring.
func needRing(t testing.TB) {
	t.Helper()
	testenv.NeedIOUring(t, Available())
}

func startRing(t testing.TB, cfg *relay.Config, ingress []*net.UDPConn) (rtptest.Instance, error) {
	needRing(t)
	return New(&Config{Config: *cfg, Ingress: ingress})
}

func TestSuite(t *testing.T) { rtptest.RunSuite(t, startRing) }

// TestSuiteTwoLoops runs the suite with sessions spread over two loops.
func TestSuiteTwoLoops(t *testing.T) {
	rtptest.RunSuite(t, func(t testing.TB, cfg *relay.Config, ingress []*net.UDPConn) (rtptest.Instance, error) {
		needRing(t)
		return New(&Config{Config: *cfg, Ingress: ingress, Loops: 2})
	})
}

func TestTag(t *testing.T) {
	tests := []struct {
		name          string
		arrival, now  time.Duration
		size, dest    int
		wantLat       time.Duration
		wantSize, wdd int
	}{
		{name: "plain", arrival: time.Second, now: time.Second + 1500, size: 172, dest: 3, wantLat: 1500, wantSize: 172, wdd: 3},
		{name: "max fields", arrival: 5, now: 7, size: 65535, dest: 255, wantLat: 2, wantSize: 65535, wdd: 255},
		{name: "clock wraps the 40 bits", arrival: 1<<40 - 10, now: 1<<40 + 20, size: 12, wantLat: 30, wantSize: 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lat, size, d := unpackTag(packTag(tt.arrival, tt.size, tt.dest), tt.now)
			if lat != tt.wantLat || size != tt.wantSize || d != tt.wdd {
				t.Errorf("got %v %d %d, want %v %d %d", lat, size, d, tt.wantLat, tt.wantSize, tt.wdd)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	needRing(t)
	if _, err := New(nil); err == nil {
		t.Error("nil config accepted")
	}
	out := make([]netip.AddrPort, MaxDests+1)
	for i := range out {
		out[i] = netip.MustParseAddrPort("127.0.0.1:5000")
	}
	if _, err := New(&Config{Config: relay.Config{In: netip.MustParseAddrPort("127.0.0.1:0"), Out: out}}); err == nil {
		t.Error("too many destinations accepted")
	}
	// A taken ingress port fails New and leaks nothing (goleak checks).
	taken, err := relay.ListenConsecutiveUDP(netip.MustParseAddr("127.0.0.1"), 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer taken[0].Close()
	in := taken[0].LocalAddr().(*net.UDPAddr).AddrPort()
	if r, err := New(&Config{Config: relay.Config{In: in, Out: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5000")}}}); err == nil {
		r.Close()
		t.Error("bound a taken port")
	}
}

// floodRelay is one stream's relay with a fast, large-buffered sink.
type floodRelay struct {
	r    *Relay
	src  *net.UDPConn
	sink *net.UDPConn
	to   netip.AddrPort
	seq  uint16
	pkt  []byte
}

func newFloodRelay(t *testing.T) *floodRelay {
	t.Helper()
	needRing(t)
	lo := netip.MustParseAddr("127.0.0.1")
	conns, err := relay.ListenConsecutiveUDP(lo, 3, 20)
	if err != nil {
		t.Fatal(err)
	}
	f := &floodRelay{src: conns[1], sink: conns[2], pkt: (&rtptest.Stream{SSRC: 0xf100d, Count: 1}).Packet(0)}
	t.Cleanup(func() { f.src.Close(); f.sink.Close() })
	_ = f.sink.SetReadBuffer(8 << 20)
	f.to = conns[0].LocalAddr().(*net.UDPAddr).AddrPort()
	f.r, err = New(&Config{Config: relay.Config{Out: []netip.AddrPort{f.sink.LocalAddr().(*net.UDPAddr).AddrPort()}}, Ingress: conns[:1]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

// TestFloodRearmsAfterENOBUFS stalls the relay's loop (as a long GC pause
// or a burst of work would) while 300 streams each queue a few datagrams:
// more than the loop's provided buffer ring holds (RecvBuffers 256), so when the loop
// runs again the multishot receives end with ENOBUFS. netio must re-arm
// every one of them: each stream must then arrive whole and in order,
// including what was sent after the flood.
func TestFloodRearmsAfterENOBUFS(t *testing.T) {
	needRing(t)
	const (
		streams = 300
		during  = 4 // per stream while the loop is stalled: 1200 datagrams
		after   = 4
	)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lo := netip.MustParseAddr("127.0.0.1")
	in, err := relay.ListenConsecutiveUDP(lo, streams, 50)
	if err != nil {
		t.Fatal(err)
	}
	sinks, err := relay.ListenConsecutiveUDP(lo, streams, 50)
	if err != nil {
		t.Fatal(err)
	}
	out := sinks[0].LocalAddr().(*net.UDPAddr).AddrPort()
	recvs := make([]*rtptest.Receiver, streams)
	sts := make([]rtptest.Stream, streams)
	for i := range streams {
		sts[i] = rtptest.Stream{SSRC: uint32(i + 1), FirstSeq: uint16(i * 100), Count: during + after}
		recvs[i] = rtptest.NewReceiver(sinks[i], sts[i])
		defer recvs[i].Close()
	}
	r, err := New(&Config{Config: relay.Config{Streams: streams, Out: []netip.AddrPort{out}}, Ingress: in, RecvBuffers: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src, err := relay.ListenConsecutiveUDP(lo, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer src[0].Close()
	ingress := r.IngressAddrs()
	sendRound := func(k int) {
		for i := range streams {
			if _, err := src[0].WriteToUDPAddrPort(sts[i].Packet(k), ingress[i]); err != nil {
				t.Fatal(err)
			}
		}
	}

	loop := r.loops[0].rt.Loops()[0]
	stalled := make(chan struct{})
	release := make(chan struct{})
	if err := loop.Post(runtime.TaskFunc(func(*runtime.Loop) {
		close(stalled)
		select { // bounded: the test releases it as soon as the flood is queued
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})); err != nil {
		t.Fatal(err)
	}
	<-stalled
	for k := range during {
		sendRound(k)
	}
	close(release)
	for i := range streams {
		recvs[i].WaitFor(ctx, func(res *rtptest.Result) bool { return res.Received >= during })
	}
	st := r.Stats()
	t.Logf("after the flood of %d: %+v", streams*during, st)
	if st.ENOBUFS == 0 || st.Starved == 0 {
		t.Errorf("%d datagrams into a stalled loop did not run out of buffers: %+v", streams*during, st)
	}
	// netio re-arms a starved receive without counting it in Stats.Rearms
	// (only re-arms after a successful final CQE are counted), so the proof
	// of the re-arm is behavioural: every socket still reads, and the next
	// packets of every stream go through.
	for k := during; k < during+after; k++ {
		sendRound(k)
		time.Sleep(2 * time.Millisecond)
	}
	for i := range streams {
		if res := recvs[i].Wait(ctx, 0); res.Err(sts[i].Count) != nil {
			t.Errorf("stream %d: %v (transport %+v)", i, res.Err(sts[i].Count), r.Stats())
			break
		}
	}
	rep := r.Report()
	if rep.Transport["starved"] != r.Stats().Starved || rep.Drops.Total() != 0 {
		t.Errorf("report: transport %v, drops %v", rep.Transport, rep.Drops)
	}
	for i := range streams {
		if l, _ := rep.Leg(i, relay.Forward, 0); l.Stats.PacketsOut != during+after {
			t.Errorf("stream %d forwarded %d", i, l.Stats.PacketsOut)
			break
		}
	}
}

// TestFloodKeepsEveryStream floods one stream as fast as one sender can
// while a second, paced stream shares the loop: the paced one loses nothing
// to the flood beyond what the kernel reports dropped on its socket.
func TestFloodKeepsEveryStream(t *testing.T) {
	needRing(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lo := netip.MustParseAddr("127.0.0.1")
	in, err := relay.ListenConsecutiveUDP(lo, 2, 20)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := relay.ListenConsecutiveUDP(lo, 2, 20)
	if err != nil {
		t.Fatal(err)
	}
	defer dst[0].Close()
	r, err := New(&Config{Config: relay.Config{Streams: 2, Out: []netip.AddrPort{dst[0].LocalAddr().(*net.UDPAddr).AddrPort()}}, Ingress: in})
	if err != nil {
		dst[1].Close()
		t.Fatal(err)
	}
	defer r.Close()
	paced := rtptest.Stream{SSRC: 0x9aced, Count: 200}
	recv := rtptest.NewReceiver(dst[1], paced)
	defer recv.Close()
	srcs, err := relay.ListenConsecutiveUDP(lo, 2, 20)
	if err != nil {
		t.Fatal(err)
	}
	defer srcs[0].Close()
	defer srcs[1].Close()
	ingress := r.IngressAddrs()
	done := make(chan struct{})
	go func() { // the flood: stream 0, bounded in count
		defer close(done)
		pkt := (&rtptest.Stream{SSRC: 0xf100d, Count: 1}).Packet(0)
		for k := range 100_000 {
			if ctx.Err() != nil {
				return
			}
			binary.BigEndian.PutUint16(pkt[2:], uint16(k))
			_, _ = srcs[0].WriteToUDPAddrPort(pkt, ingress[0])
		}
	}()
	if _, err := (&rtptest.Sender{Conn: srcs[1], To: ingress[1], Stream: paced, Interval: 500 * time.Microsecond}).Send(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	res := recv.Wait(ctx, 50*time.Millisecond)
	// Sends of the flood's last packets may still be in flight: wait, bounded,
	// until every packet in is accounted for as sent or failed.
	var flood relay.LegReport
	for wait := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		rep := r.Report()
		flood, _ = rep.Leg(0, relay.Forward, 0)
		if flood.Stats.PacketsOut+flood.Stats.Drops[rtpcheck.SendFailed] == flood.Stats.PacketsIn || time.Now().After(wait) {
			break
		}
	}
	st := r.Stats()
	t.Logf("flood leg: %v; stats %+v", flood.Stats, st)
	if res.Err(paced.Count) != nil {
		// Only kernel drops on a socket excuse a loss.
		if res.Received+int(st.KernelDrops) < paced.Count || res.Duplicates+res.Corrupt+res.Foreign+res.Invalid != 0 {
			t.Errorf("paced stream beside the flood: %v", res.Err(paced.Count))
		}
	}
	if st.Unplanned != 0 {
		t.Errorf("%d sockets closed by errors", st.Unplanned)
	}
	if flood.Stats.PacketsOut+flood.Stats.Drops[rtpcheck.SendFailed] != flood.Stats.PacketsIn {
		t.Errorf("flood leg: in %d, out %d, send failed %d", flood.Stats.PacketsIn, flood.Stats.PacketsOut, flood.Stats.Drops[rtpcheck.SendFailed])
	}
}

// TestForwardAllocs checks that relaying a datagram allocates nothing in
// steady state: the measured function sends one datagram to the relay and
// reads the forwarded copy, and the same loop without the relay (send
// straight to the sink) is measured as the baseline.
func TestForwardAllocs(t *testing.T) {
	f := newFloodRelay(t)
	buf := make([]byte, 2048)
	once := func(to netip.AddrPort) {
		f.seq++
		binary.BigEndian.PutUint16(f.pkt[2:], f.seq)
		binary.BigEndian.PutUint32(f.pkt[4:], uint32(f.seq)*160)
		if _, err := f.src.WriteToUDPAddrPort(f.pkt, to); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.sink.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	}
	_ = f.sink.SetReadDeadline(time.Now().Add(20 * time.Second))
	direct := f.sink.LocalAddr().(*net.UDPAddr).AddrPort()
	for range 500 { // warm up: op records, send records, pinners, histograms
		once(f.to)
	}
	base := testing.AllocsPerRun(300, func() { once(direct) })
	got := testing.AllocsPerRun(300, func() { once(f.to) })
	if got > base {
		t.Errorf("relayed datagram: %v allocs, without the relay %v", got, base)
	}
	t.Logf("allocs per datagram: relayed %v, direct %v", got, base)
}
