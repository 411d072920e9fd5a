package rtpinterop

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"

	"github.com/ringwire/ringwire/examples/rtprelay/rtpcheck"
	"github.com/ringwire/ringwire/examples/rtprelay/rtptest"
)

func mustMarshal(t testing.TB, p *rtp.Packet) []byte {
	t.Helper()
	b, err := p.Marshal()
	if err != nil {
		t.Fatalf("pion marshal: %v", err)
	}
	return b
}

func g711Payload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}

// TestCheckAgreesWithPion marshals packets with pion/rtp (CSRCs, RFC 8285
// one- and two-byte extensions, padding, empty payloads) and requires
// rtpcheck.Parse to read the same fields and payload as pion's Unmarshal.
func TestCheckAgreesWithPion(t *testing.T) {
	withExt := func(profile uint16, ids ...uint8) rtp.Header {
		h := rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 7, Timestamp: 160, SSRC: 0xdecafbad}
		for _, id := range ids {
			var err error
			if profile == rtp.ExtensionProfileTwoByte {
				err = h.SetExtensionWithProfile(id, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}, profile)
			} else {
				err = h.SetExtension(id, []byte{id, 0xaa, 0xbb})
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return h
	}
	tests := []struct {
		name          string
		pkt           rtp.Packet
		wantHeaderLen int
	}{
		{
			name:          "g711",
			pkt:           rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 65535, Timestamp: 0xfffffff0, SSRC: 1}, Payload: g711Payload(160)},
			wantHeaderLen: 12,
		},
		{
			name:          "marker pcma",
			pkt:           rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, PayloadType: 8, SequenceNumber: 1, SSRC: 2}, Payload: g711Payload(160)},
			wantHeaderLen: 12,
		},
		{
			name:          "dynamic pt 127 with marker",
			pkt:           rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, PayloadType: 127, SSRC: 2}, Payload: g711Payload(10)},
			wantHeaderLen: 12,
		},
		{
			name:          "15 csrcs",
			pkt:           rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 3, CSRC: []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}}, Payload: g711Payload(160)},
			wantHeaderLen: 12 + 60,
		},
		{
			name:          "one-byte extension",
			pkt:           rtp.Packet{Header: withExt(rtp.ExtensionProfileOneByte, 1, 2), Payload: g711Payload(160)},
			wantHeaderLen: 12 + 4 + 8,
		},
		{
			name:          "two-byte extension",
			pkt:           rtp.Packet{Header: withExt(rtp.ExtensionProfileTwoByte, 1), Payload: g711Payload(160)},
			wantHeaderLen: 12 + 4 + 20,
		},
		{
			name:          "padding 4",
			pkt:           rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, PaddingSize: 4, SSRC: 4}, Payload: g711Payload(160)},
			wantHeaderLen: 12,
		},
		{
			name:          "padding only, empty payload",
			pkt:           rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, PaddingSize: 255, SSRC: 4}},
			wantHeaderLen: 12,
		},
		{
			name:          "empty payload",
			pkt:           rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 5}},
			wantHeaderLen: 12,
		},
		{
			name: "csrcs, extension and padding",
			pkt: func() rtp.Packet {
				h := withExt(rtp.ExtensionProfileOneByte, 3)
				h.CSRC = []uint32{9, 8}
				h.Padding, h.PaddingSize = true, 7
				return rtp.Packet{Header: h, Payload: g711Payload(33)}
			}(),
			wantHeaderLen: 12 + 8 + 4 + 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustMarshal(t, &tt.pkt)
			p, err := rtpcheck.Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var ref rtp.Packet
			if err := ref.Unmarshal(b); err != nil {
				t.Fatalf("pion unmarshal: %v", err)
			}
			if p.Kind != rtpcheck.KindRTP {
				t.Errorf("Kind = %v, want RTP", p.Kind)
			}
			if p.HeaderLen != tt.wantHeaderLen {
				t.Errorf("HeaderLen = %d, want %d", p.HeaderLen, tt.wantHeaderLen)
			}
			if p.PaddingLen != int(ref.Header.PaddingSize) {
				t.Errorf("PaddingLen = %d, want %d", p.PaddingLen, ref.Header.PaddingSize)
			}
			if got := p.Payload(b); !bytes.Equal(got, ref.Payload) || !bytes.Equal(got, tt.pkt.Payload) {
				t.Errorf("payload = %x, want %x", got, ref.Payload)
			}
			h := ref.Header
			if p.Marker != h.Marker || p.PayloadType != h.PayloadType || p.SequenceNumber != h.SequenceNumber ||
				p.Timestamp != h.Timestamp || p.SSRC != h.SSRC || int(p.CSRCCount) != len(h.CSRC) ||
				p.HasExtension != h.Extension || (h.Extension && p.ExtensionProfile != h.ExtensionProfile) {
				t.Errorf("Parse = %+v, pion = %+v", p, h)
			}
		})
	}
}

// TestStreamPacketIsPionMarshal requires rtptest's packets to be exactly the
// bytes pion/rtp marshals for the same header and payload.
func TestStreamPacketIsPionMarshal(t *testing.T) {
	s := rtptest.Stream{SSRC: 0x01020304, PayloadType: 8, FirstSeq: 65534, Count: 4, PayloadLen: 40}
	for k := range s.Count {
		seq := s.FirstSeq + uint16(k)
		p := rtp.Packet{
			Header: rtp.Header{
				Version: 2, Marker: k == 0, PayloadType: s.PayloadType,
				SequenceNumber: seq, Timestamp: uint32(k) * rtptest.G711PayloadLen, SSRC: s.SSRC,
			},
			Payload: make([]byte, s.PayloadLen),
		}
		rtptest.FillPayload(p.Payload, s.SSRC, seq)
		if got, want := s.Packet(k), mustMarshal(t, &p); !bytes.Equal(got, want) {
			t.Fatalf("packet %d:\nrtptest %x\npion    %x", k, got, want)
		}
	}
}

// FuzzCheckAgainstPion is a differential fuzz of rtpcheck.Check against
// pion/rtp's Unmarshal: pion's rules are Check's plus the RFC 8285 element
// walk, so whatever pion accepts, Check must accept, with the same payload and
// header fields.
func FuzzCheckAgainstPion(f *testing.F) {
	f.Add(mustMarshal(f, &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1, SSRC: 1}, Payload: g711Payload(160)}))
	f.Add(mustMarshal(f, &rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, PaddingSize: 4, Extension: true, ExtensionProfile: 0xbede, CSRC: []uint32{1}}, Payload: g711Payload(20)}))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 2 || b[0]>>6 != 2 || rtpcheck.IsRTCP(b[1]) {
			return
		}
		var ref rtp.Packet
		if err := ref.Unmarshal(b); err != nil {
			return
		}
		var p rtpcheck.Packet
		if r := rtpcheck.Check(b, &p); r != rtpcheck.OK {
			t.Fatalf("pion accepts, Check says %v", r)
		}
		if got := p.Payload(b); !bytes.Equal(got, ref.Payload) {
			t.Fatalf("payload %x, pion %x", got, ref.Payload)
		}
		if p.SSRC != ref.SSRC || p.SequenceNumber != ref.SequenceNumber || int(p.CSRCCount) != len(ref.CSRC) {
			t.Fatalf("Parse %+v, pion %+v", p, ref.Header)
		}
	})
}

// BenchmarkParse compares rtpcheck.Check with pion/rtp's Unmarshal on the
// same G.711 packet (pion reuses its Packet, so neither allocates here).
// Compare with `benchstat -col /impl`.
func BenchmarkParse(b *testing.B) {
	pkt := mustMarshal(b, &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1, SSRC: 1}, Payload: g711Payload(160)})
	b.Run("impl=rtpcheck/rtp", func(b *testing.B) {
		b.ReportAllocs()
		var p rtpcheck.Packet
		for b.Loop() {
			if rtpcheck.Check(pkt, &p) != rtpcheck.OK {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("impl=pion/rtp", func(b *testing.B) {
		b.ReportAllocs()
		var p rtp.Packet
		for b.Loop() {
			if err := p.Unmarshal(pkt); err != nil {
				b.Fatal(err)
			}
		}
	})
}
