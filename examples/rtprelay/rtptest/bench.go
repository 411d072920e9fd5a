package rtptest

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/ringwire/ringwire/examples/rtprelay/relay"
)

// Bench measures a relay's forwarding of one G.711 stream on loopback: each
// iteration is one 172-byte packet through the relay, sent in windows of
// window packets that the benchmark then reads back (so a slow relay is not
// flooded into drops; a datagram that does not arrive within a second fails
// the benchmark). A nil start measures the same traffic without a relay, the
// baseline for ratios. Besides ns/op and allocs/op (of the whole process,
// relay included), it reports pkt/s and, from the relay's Report, its added
// latency: p50-ns, p99-ns, p99.9-ns, max-ns.
func Bench(b *testing.B, start StartFunc, window int) {
	window = max(window, 1)
	ingress := listenN(b, 1)
	dst := listenN(b, 1)[0]
	defer dst.Close()
	_ = dst.SetReadBuffer(1 << 20)
	src := listenN(b, 1)[0]
	defer src.Close()

	to := addrOf(dst)
	var inst Instance
	if start != nil {
		cfg := relay.Config{In: addrOf(ingress[0]), Out: []netip.AddrPort{addrOf(dst)}}
		var err error
		if inst, err = start(b, &cfg, ingress); err != nil {
			b.Fatal(err)
		}
		defer inst.Close()
		to = addrOf(ingress[0])
	} else {
		ingress[0].Close()
	}

	pkt := (&Stream{SSRC: 0xbe4c4, Count: 1}).Packet(0)
	buf := make([]byte, 2048)
	var seq uint16
	readN := func(n int) {
		if err := dst.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
			b.Fatal(err)
		}
		for range n {
			if _, _, err := dst.ReadFromUDPAddrPort(buf); err != nil {
				b.Fatalf("after %d packets: %v", seq, err)
			}
		}
	}
	// Warm up: latch nothing, but fault in the relay's paths and buffers.
	for range window {
		seq++
		binary.BigEndian.PutUint16(pkt[2:], seq)
		if _, err := src.WriteToUDPAddrPort(pkt, to); err != nil {
			b.Fatal(err)
		}
	}
	readN(window)

	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	pending := 0
	t0 := time.Now()
	for b.Loop() {
		seq++
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*160)
		if _, err := src.WriteToUDPAddrPort(pkt, to); err != nil {
			b.Fatal(err)
		}
		if pending++; pending == window {
			readN(pending)
			pending = 0
		}
	}
	readN(pending)
	el := time.Since(t0)
	b.ReportMetric(float64(b.N)/el.Seconds(), "pkt/s")
	if inst != nil {
		rep := inst.Report()
		if l, ok := rep.Leg(0, relay.Forward, 0); ok {
			lat := l.Stats.Latency
			b.ReportMetric(float64(lat.P50), "p50-ns")
			b.ReportMetric(float64(lat.P99), "p99-ns")
			b.ReportMetric(float64(lat.P999), "p99.9-ns")
			b.ReportMetric(float64(lat.Max), "max-ns")
		}
	}
}
