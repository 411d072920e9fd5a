package rtpcheck

import (
	"testing"
	"time"
)

// BenchmarkParse is Check on a G.711 packet and on an RTCP compound;
// bench/rtpinterop runs the RTP half beside pion/rtp's Unmarshal (the names
// match).
func BenchmarkParse(b *testing.B) {
	pkt := rtpHeader{SequenceNumber: 1, SSRC: 1}.marshal(g711Payload(160))
	compound := cat(rr(1, 1), sdes(1, "ringwire"), bye(1, 0))
	b.Run("impl=rtpcheck/rtp", func(b *testing.B) {
		b.ReportAllocs()
		var p Packet
		for b.Loop() {
			if Check(pkt, &p) != OK {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("impl=rtpcheck/rtcp", func(b *testing.B) {
		b.ReportAllocs()
		var p Packet
		for b.Loop() {
			if Check(compound, &p) != OK {
				b.Fatal("invalid")
			}
		}
	})
}

// BenchmarkStream is the per-packet statistics cost of a relay with one
// destination: Receive, then Sent.
func BenchmarkStream(b *testing.B) {
	s := NewStream(nil)
	p := Packet{Kind: KindRTP, SSRC: 1}
	var now time.Duration
	b.ReportAllocs()
	for b.Loop() {
		p.SequenceNumber++
		p.Timestamp += 160
		now += 20 * time.Millisecond
		s.Receive(&p, 172, now)
		s.Sent(172, 5*time.Microsecond)
	}
}

func BenchmarkSnapshot(b *testing.B) {
	s := NewStream(nil)
	for i := range 1000 {
		s.Sent(172, time.Duration(i)*time.Microsecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Snapshot()
	}
}
