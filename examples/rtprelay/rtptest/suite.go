package rtptest

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ringwire/ringwire/examples/rtprelay/relay"
	"github.com/ringwire/ringwire/examples/rtprelay/rtpcheck"
)

// Instance is a running relay under test.
type Instance interface {
	// Report returns the relay's statistics.
	Report() relay.Report
	// Close stops the relay and releases its sockets.
	Close() error
}

// StartFunc starts a relay for cfg whose ingress sockets are already bound:
// ingress[i] is stream i's, at cfg.In's port plus i. The relay takes
// ownership of them; one that cannot adopt a socket may close it and bind
// the same address (the port stays free meanwhile on a quiet loopback).
type StartFunc func(t testing.TB, cfg *relay.Config, ingress []*net.UDPConn) (Instance, error)

// suiteTimeout bounds each test of the suite; reportWait bounds the wait for
// the relay's counters to reach a value.
const (
	suiteTimeout = 20 * time.Second
	reportWait   = 5 * time.Second
)

var loopback = netip.MustParseAddr("127.0.0.1")

// RunSuite runs the end-to-end relay tests against the relay start starts:
// fan-out, several streams, malformed datagrams mixed into a valid stream,
// latching with the reverse direction, and re-latching a destination behind a
// NAT. The tests use only loopback sockets on ephemeral ports.
func RunSuite(t *testing.T, start StartFunc) {
	t.Run("FanOut", func(t *testing.T) { testFanOut(t, start) })
	t.Run("MultiStream", func(t *testing.T) { testMultiStream(t, start) })
	t.Run("Malformed", func(t *testing.T) { testMalformed(t, start) })
	t.Run("Latching", func(t *testing.T) { testLatching(t, start) })
	t.Run("LatchNAT", func(t *testing.T) { testLatchNAT(t, start) })
}

// topo is a relay under test with its destination sockets.
type topo struct {
	inst    Instance
	cfg     relay.Config
	ingress []netip.AddrPort
	dests   [][]*net.UDPConn // [dest][stream]
}

func listenN(t testing.TB, n int) []*net.UDPConn {
	t.Helper()
	conns, err := relay.ListenConsecutiveUDP(loopback, n, 100)
	if err != nil {
		t.Fatal(err)
	}
	return conns
}

func listen1(t testing.TB) *net.UDPConn {
	t.Helper()
	c := listenN(t, 1)[0]
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// setup binds streams ingress sockets and ndest×streams destination sockets
// and starts the relay. The destination sockets are the caller's to wrap in
// Receivers (which then own them).
func setup(t *testing.T, start StartFunc, streams, ndest int, latch bool) *topo {
	t.Helper()
	tp := &topo{}
	in := listenN(t, streams)
	for _, c := range in {
		tp.ingress = append(tp.ingress, addrOf(c))
	}
	tp.cfg = relay.Config{In: tp.ingress[0], Streams: streams, Latch: latch}
	for range ndest {
		conns := listenN(t, streams)
		tp.dests = append(tp.dests, conns)
		tp.cfg.Out = append(tp.cfg.Out, addrOf(conns[0]))
	}
	cfg := tp.cfg
	inst, err := start(t, &cfg, in)
	if err != nil {
		for _, cs := range tp.dests {
			for _, c := range cs {
				c.Close()
			}
		}
		t.Fatalf("start relay: %v", err)
	}
	tp.inst = inst
	t.Cleanup(func() {
		if err := inst.Close(); err != nil {
			t.Errorf("relay Close: %v", err)
		}
	})
	return tp
}

// receive wraps c in a Receiver for st, closed at cleanup.
func receive(t *testing.T, c *net.UDPConn, st Stream) *Receiver {
	r := NewReceiver(c, st)
	t.Cleanup(func() { r.Close() })
	return r
}

// send runs s in a goroutine and returns a function that waits for it and
// fails the test on error.
func send(t *testing.T, ctx context.Context, s *Sender) (wait func()) {
	var wg sync.WaitGroup
	var err error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err = s.Send(ctx)
	}()
	return func() {
		t.Helper()
		wg.Wait()
		if err != nil {
			t.Errorf("send ssrc %#x: %v", s.Stream.SSRC, err)
		}
	}
}

// waitReport polls the relay's report until cond holds, ctx is done or
// reportWait passed, and returns the last report and whether cond held.
func waitReport(ctx context.Context, inst Instance, cond func(*relay.Report) bool) (relay.Report, bool) {
	ctx, cancel := context.WithTimeout(ctx, reportWait)
	defer cancel()
	for {
		r := inst.Report()
		if cond(&r) {
			return r, true
		}
		select {
		case <-ctx.Done():
			return r, false
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func fwdLeg(t *testing.T, r *relay.Report, i int) rtpcheck.Snapshot {
	t.Helper()
	l, ok := r.Leg(i, relay.Forward, 0)
	if !ok {
		t.Fatalf("report has no forward leg %d", i)
	}
	return l.Stats
}

func revLeg(t *testing.T, r *relay.Report, i, d int) relay.LegReport {
	t.Helper()
	l, ok := r.Leg(i, relay.Reverse, d)
	if !ok {
		t.Fatalf("report has no reverse leg %d/%d", i, d)
	}
	return l
}

const pace = 50 * time.Microsecond // 20k packets/s: fast, yet within loopback socket buffers

func testFanOut(t *testing.T, start StartFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), suiteTimeout)
	defer cancel()
	tp := setup(t, start, 1, 2, false)
	st := Stream{SSRC: 0x1234, FirstSeq: 65300, Count: 500} // wraps at 65535
	rs := []*Receiver{receive(t, tp.dests[0][0], st), receive(t, tp.dests[1][0], st)}
	wait := send(t, ctx, &Sender{Conn: listen1(t), To: tp.ingress[0], Stream: st, Interval: pace})
	wait()
	for d, r := range rs {
		res := r.Wait(ctx, 20*time.Millisecond)
		if err := res.Err(st.Count); err != nil {
			t.Errorf("destination %d: %v", d, err)
		}
	}
	rep, _ := waitReport(ctx, tp.inst, func(r *relay.Report) bool {
		l, _ := r.Leg(0, relay.Forward, 0)
		return l.Stats.PacketsOut >= 2*uint64(st.Count)
	})
	sn := fwdLeg(t, &rep, 0)
	if sn.PacketsIn != uint64(st.Count) || sn.PacketsOut != 2*uint64(st.Count) || sn.BytesOut != 2*G711PacketLen*uint64(st.Count) {
		t.Errorf("forward leg in/out = %d/%d packets, %d bytes out; want %d/%d, %d", sn.PacketsIn, sn.PacketsOut, sn.BytesOut, st.Count, 2*st.Count, 2*G711PacketLen*st.Count)
	}
	if sn.Expected != uint64(st.Count) || sn.Lost != 0 || sn.Duplicates != 0 || sn.Reordered != 0 || sn.HighestSeq != 1<<16+uint64(uint16(65300+st.Count-1)) {
		t.Errorf("forward leg sequence stats: %v (highest %d)", sn, sn.HighestSeq)
	}
	if sn.Latency.Count != 2*uint64(st.Count) || sn.Latency.Max <= 0 || sn.Latency.P50 > sn.Latency.Max {
		t.Errorf("forward leg latency: %+v", sn.Latency)
	}
	if sn.SSRC != st.SSRC || sn.ClockRate != 8000 || sn.Drops.Total() != 0 {
		t.Errorf("forward leg: %v", sn)
	}
}

func testMultiStream(t *testing.T, start StartFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), suiteTimeout)
	defer cancel()
	const streams, ndest = 4, 2
	tp := setup(t, start, streams, ndest, false)
	var rs [ndest][streams]*Receiver
	var waits []func()
	for i := range streams {
		st := Stream{SSRC: 0x5000 + uint32(i), PayloadType: 8, FirstSeq: uint16(i * 1000), Count: 200}
		for d := range ndest {
			rs[d][i] = receive(t, tp.dests[d][i], st)
		}
		waits = append(waits, send(t, ctx, &Sender{Conn: listen1(t), To: tp.ingress[i], Stream: st, Interval: 4 * pace}))
	}
	for _, w := range waits {
		w()
	}
	for d := range ndest {
		for i := range streams {
			res := rs[d][i].Wait(ctx, 10*time.Millisecond)
			if err := res.Err(200); err != nil {
				t.Errorf("stream %d destination %d: %v", i, d, err)
			}
		}
	}
	rep := tp.inst.Report()
	for i := range streams {
		if sn := fwdLeg(t, &rep, i); sn.SSRC != 0x5000+uint32(i) || sn.Received != 200 {
			t.Errorf("stream %d: %v", i, sn)
		}
	}
}

func testMalformed(t *testing.T, start StartFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), suiteTimeout)
	defer cancel()
	tp := setup(t, start, 1, 1, false)
	st := Stream{SSRC: 0xabcdef, FirstSeq: 100, Count: 400}
	r := receive(t, tp.dests[0][0], st)
	bad := Malformed(st.SSRC)
	var want rtpcheck.Drops
	rtcp := 0
	oversize := (&Stream{SSRC: 0xbad, Count: 1, PayloadLen: relay.DefaultMaxDatagram + 1 - 12}).Packet(0)
	before := func(k int) [][]byte {
		var extra [][]byte
		if k%10 == 5 {
			b := bad[(k/10)%len(bad)]
			want[b.Reason]++
			extra = append(extra, b.Data)
		}
		if k%50 == 0 {
			rtcp++
			extra = append(extra, RTCPCompound(st.SSRC))
		}
		if k == 7 || k == st.Count-1 {
			want[rtpcheck.Truncated]++
			extra = append(extra, oversize)
		}
		return extra
	}
	send(t, ctx, &Sender{Conn: listen1(t), To: tp.ingress[0], Stream: st, Interval: pace, Before: before})()
	res := r.Wait(ctx, 20*time.Millisecond)
	if err := res.Err(st.Count); err != nil {
		t.Errorf("valid stream damaged: %v", err)
	}
	if res.RTCP != rtcp {
		t.Errorf("received %d RTCP, want %d", res.RTCP, rtcp)
	}
	rep, ok := waitReport(ctx, tp.inst, func(r *relay.Report) bool {
		l, _ := r.Leg(0, relay.Forward, 0)
		return l.Stats.Drops == want
	})
	sn := fwdLeg(t, &rep, 0)
	if !ok {
		t.Errorf("drops = %v, want %v", sn.Drops, want)
	}
	if sn.RTCPIn != uint64(rtcp) || sn.Received != uint64(st.Count) || sn.PacketsOut != uint64(st.Count+rtcp) {
		t.Errorf("forward leg: %v", sn)
	}

	// Without latching, the reverse direction is counted and dropped.
	back := Stream{SSRC: 0x77, Count: 5}
	send(t, ctx, &Sender{Conn: r.Conn(), To: res.From, Stream: back})()
	rep, ok = waitReport(ctx, tp.inst, func(r *relay.Report) bool {
		l, found := r.Leg(0, relay.Reverse, 0)
		return found && l.Stats.Drops[rtpcheck.Unlatched] == 5
	})
	if !ok {
		t.Errorf("reverse without -latch: report %+v", rep.Legs)
	}
}

func testLatching(t *testing.T, start StartFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), suiteTimeout)
	defer cancel()
	tp := setup(t, start, 1, 1, true)
	fwd := Stream{SSRC: 0xca11e4, FirstSeq: 1, Count: 300}
	rev := Stream{SSRC: 0xca11ee, FirstSeq: 60000, Count: 300}
	callee := receive(t, tp.dests[0][0], fwd)
	callerConn := listen1(t)
	rogue := listen1(t)

	// Malformed packets from a stranger first: they must not latch.
	for _, b := range Malformed(0xbad)[:3] {
		if _, err := rogue.WriteToUDPAddrPort(b.Data, tp.ingress[0]); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := waitReport(ctx, tp.inst, func(r *relay.Report) bool {
		l, _ := r.Leg(0, relay.Forward, 0)
		return l.Stats.Drops.Total() == 3
	}); !ok {
		t.Fatal("relay did not count the 3 malformed packets")
	}
	caller := receive(t, callerConn, rev)
	waitFwd := send(t, ctx, &Sender{Conn: callerConn, To: tp.ingress[0], Stream: fwd, Interval: pace})

	// Once the callee hears the caller, the relay has latched: now the
	// stranger's valid packets are refused, and the callee talks back.
	first := callee.WaitFor(ctx, func(r *Result) bool { return r.Received > 0 })
	if first.Received == 0 {
		t.Fatal("callee received nothing")
	}
	stranger := Stream{SSRC: 0xbad, Count: 20}
	waitRogue := send(t, ctx, &Sender{Conn: rogue, To: tp.ingress[0], Stream: stranger, Interval: pace})
	waitRev := send(t, ctx, &Sender{Conn: callee.Conn(), To: first.From, Stream: rev, Interval: pace})
	waitFwd()
	waitRogue()
	waitRev()

	if res := callee.Wait(ctx, 20*time.Millisecond); res.Err(fwd.Count) != nil {
		t.Errorf("forward: %v", res.Err(fwd.Count))
	}
	res := caller.Wait(ctx, 20*time.Millisecond)
	if err := res.Err(rev.Count); err != nil {
		t.Errorf("reverse: %v", err)
	}
	if res.From != tp.ingress[0] {
		t.Errorf("reverse came from %v, want the ingress address %v", res.From, tp.ingress[0])
	}
	rep, ok := waitReport(ctx, tp.inst, func(r *relay.Report) bool {
		l, _ := r.Leg(0, relay.Forward, 0)
		return l.Stats.Drops[rtpcheck.WrongSource] == uint64(stranger.Count)
	})
	if !ok {
		t.Errorf("forward drops %v, want %d WrongSource", fwdLeg(t, &rep, 0).Drops, stranger.Count)
	}
	l, _ := rep.Leg(0, relay.Forward, 0)
	if l.Peer != addrOf(callerConn).String() {
		t.Errorf("forward peer %q, want %v", l.Peer, addrOf(callerConn))
	}
	rl := revLeg(t, &rep, 0, 0)
	if rl.Stats.Received != uint64(rev.Count) || rl.Stats.PacketsOut != uint64(rev.Count) || rl.Peer != addrOf(callee.Conn()).String() || rl.Local != first.From.String() {
		t.Errorf("reverse leg %+v", rl)
	}
}

func testLatchNAT(t *testing.T, start StartFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), suiteTimeout)
	defer cancel()
	tp := setup(t, start, 1, 1, true)
	phase1 := Stream{SSRC: 0x1a7, FirstSeq: 10, Count: 100}
	phase2 := Stream{SSRC: 0x1a7, FirstSeq: 110, Count: 100}
	configured := receive(t, tp.dests[0][0], phase1)
	callerConn := listen1(t)
	send(t, ctx, &Sender{Conn: callerConn, To: tp.ingress[0], Stream: phase1, Interval: pace})()
	res := configured.Wait(ctx, 0)
	if err := res.Err(phase1.Count); err != nil {
		t.Fatalf("phase 1 to the configured address: %v", err)
	}
	egress := res.From

	// The callee's NAT maps it to a new port: its first packet re-latches
	// the destination, and the caller hears it.
	back := Stream{SSRC: 0xbac, Count: 1}
	caller := receive(t, callerConn, back)
	nat := receive(t, listenN(t, 1)[0], phase2)
	send(t, ctx, &Sender{Conn: nat.Conn(), To: egress, Stream: back})()
	if r := caller.Wait(ctx, 0); r.Err(1) != nil {
		t.Fatalf("caller did not hear the callee's new address: %v", r.Err(1))
	}
	send(t, ctx, &Sender{Conn: callerConn, To: tp.ingress[0], Stream: phase2, Interval: pace})()
	if r := nat.Wait(ctx, 20*time.Millisecond); r.Err(phase2.Count) != nil {
		t.Errorf("phase 2 to the latched address: %v", r.Err(phase2.Count))
	}
	if r := configured.Result(); r.Received != phase1.Count || r.Foreign != 0 {
		t.Errorf("configured address got more after the re-latch: %+v", r)
	}
	// The old address is now a wrong source for the reverse direction.
	send(t, ctx, &Sender{Conn: configured.Conn(), To: egress, Stream: Stream{SSRC: 0xbac, FirstSeq: 1, Count: 4}})()
	rep, ok := waitReport(ctx, tp.inst, func(r *relay.Report) bool {
		l, _ := r.Leg(0, relay.Reverse, 0)
		return l.Stats.Drops[rtpcheck.WrongSource] == 4
	})
	rl := revLeg(t, &rep, 0, 0)
	if !ok || rl.Peer != nat.Addr().String() {
		t.Errorf("reverse leg %+v, want peer %v and 4 WrongSource", rl, nat.Addr())
	}
}
