package rtpcheck

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// rtpHeader is an RTP header to marshal (RFC 3550 section 5.1). Padding is the
// padding byte count (0: no padding); ExtProfile and Ext, when set, are the
// header extension's profile and body (a multiple of 4 bytes). The same
// packets marshalled by pion/rtp and checked against its parser are in
// bench/rtpinterop.
type rtpHeader struct {
	Marker         bool
	PayloadType    uint8
	SequenceNumber uint16
	Timestamp      uint32
	SSRC           uint32
	CSRC           []uint32
	Padding        uint8
	ExtProfile     uint16
	Ext            []byte
}

// marshal returns the packet h heads, with payload and h.Padding bytes of
// padding.
func (h rtpHeader) marshal(payload []byte) []byte {
	b := []byte{2<<6 | byte(len(h.CSRC)), h.PayloadType}
	if h.Padding > 0 {
		b[0] |= 0x20
	}
	hasExt := h.ExtProfile != 0 || h.Ext != nil
	if hasExt {
		b[0] |= 0x10
	}
	if h.Marker {
		b[1] |= 0x80
	}
	b = binary.BigEndian.AppendUint16(b, h.SequenceNumber)
	b = binary.BigEndian.AppendUint32(b, h.Timestamp)
	b = binary.BigEndian.AppendUint32(b, h.SSRC)
	for _, c := range h.CSRC {
		b = binary.BigEndian.AppendUint32(b, c)
	}
	if hasExt {
		b = binary.BigEndian.AppendUint16(b, h.ExtProfile)
		b = binary.BigEndian.AppendUint16(b, uint16(len(h.Ext)/4))
		b = append(b, h.Ext...)
	}
	b = append(b, payload...)
	if h.Padding > 0 {
		b = append(b, make([]byte, h.Padding-1)...)
		b = append(b, h.Padding)
	}
	return b
}

// RFC 8285 header extension profiles.
const (
	extOneByte = 0xbede
	extTwoByte = 0x1000
)

func g711Payload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}

// rtcpPacket builds one RTCP packet: header with count and pt, then body
// (whose length must be a multiple of 4), with pad bytes of padding if pad > 0.
func rtcpPacket(count int, pt byte, body []byte, pad int) []byte {
	n := 4 + len(body) + pad
	b := make([]byte, 4, n)
	b[0] = 2<<6 | byte(count)
	if pad > 0 {
		b[0] |= 0x20
	}
	b[1] = pt
	binary.BigEndian.PutUint16(b[2:], uint16(n/4-1))
	b = append(b, body...)
	if pad > 0 {
		b = append(b, make([]byte, pad-1)...)
		b = append(b, byte(pad))
	}
	return b
}

// rr returns a receiver report from ssrc with n report blocks.
func rr(ssrc uint32, n int) []byte {
	body := binary.BigEndian.AppendUint32(nil, ssrc)
	body = append(body, make([]byte, 24*n)...)
	return rtcpPacket(n, RTCPTypeRR, body, 0)
}

// sr returns a sender report from ssrc with n report blocks.
func sr(ssrc uint32, n int) []byte {
	body := binary.BigEndian.AppendUint32(nil, ssrc)
	body = append(body, make([]byte, 20+24*n)...)
	return rtcpPacket(n, RTCPTypeSR, body, 0)
}

// sdes returns an SDES packet with one CNAME chunk.
func sdes(ssrc uint32, cname string) []byte {
	body := binary.BigEndian.AppendUint32(nil, ssrc)
	body = append(body, 1, byte(len(cname)))
	body = append(body, cname...)
	body = append(body, 0) // end of items
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	return rtcpPacket(1, RTCPTypeSDES, body, 0)
}

func bye(ssrc uint32, pad int) []byte {
	return rtcpPacket(1, RTCPTypeBYE, binary.BigEndian.AppendUint32(nil, ssrc), pad)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestParseValidRTP(t *testing.T) {
	// One-byte elements: id<<4 | len-1, then the bytes; two-byte elements:
	// id, len, then the bytes; zero padding to a multiple of 4.
	oneByteIDs12 := []byte{0x12, 1, 0xaa, 0xbb, 0x22, 2, 0xaa, 0xbb}
	twoByteID1 := append(append([]byte{1, 17}, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17), 0)
	oneByteID3 := []byte{0x32, 3, 0xaa, 0xbb}
	tests := []struct {
		name          string
		h             rtpHeader
		payload       []byte
		wantHeaderLen int
	}{
		{
			name:          "g711",
			h:             rtpHeader{PayloadType: 0, SequenceNumber: 65535, Timestamp: 0xfffffff0, SSRC: 1},
			payload:       g711Payload(160),
			wantHeaderLen: 12,
		},
		{
			name:          "marker pcma",
			h:             rtpHeader{Marker: true, PayloadType: 8, SequenceNumber: 1, SSRC: 2},
			payload:       g711Payload(160),
			wantHeaderLen: 12,
		},
		{
			name:          "dynamic pt 127 with marker",
			h:             rtpHeader{Marker: true, PayloadType: 127, SSRC: 2},
			payload:       g711Payload(10),
			wantHeaderLen: 12,
		},
		{
			name:          "15 csrcs",
			h:             rtpHeader{SSRC: 3, CSRC: []uint32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}},
			payload:       g711Payload(160),
			wantHeaderLen: 12 + 60,
		},
		{
			name:          "one-byte extension",
			h:             rtpHeader{SequenceNumber: 7, Timestamp: 160, SSRC: 0xdecafbad, ExtProfile: extOneByte, Ext: oneByteIDs12},
			payload:       g711Payload(160),
			wantHeaderLen: 12 + 4 + 8,
		},
		{
			name:          "two-byte extension",
			h:             rtpHeader{SequenceNumber: 7, Timestamp: 160, SSRC: 0xdecafbad, ExtProfile: extTwoByte, Ext: twoByteID1},
			payload:       g711Payload(160),
			wantHeaderLen: 12 + 4 + 20,
		},
		{
			name:          "padding 4",
			h:             rtpHeader{Padding: 4, SSRC: 4},
			payload:       g711Payload(160),
			wantHeaderLen: 12,
		},
		{
			name:          "padding only, empty payload",
			h:             rtpHeader{Padding: 255, SSRC: 4},
			wantHeaderLen: 12,
		},
		{
			name:          "empty payload",
			h:             rtpHeader{SSRC: 5},
			wantHeaderLen: 12,
		},
		{
			name: "csrcs, extension and padding",
			h: rtpHeader{
				SequenceNumber: 7, Timestamp: 160, SSRC: 0xdecafbad, CSRC: []uint32{9, 8},
				Padding: 7, ExtProfile: extOneByte, Ext: oneByteID3,
			},
			payload:       g711Payload(33),
			wantHeaderLen: 12 + 8 + 4 + 4,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.h.marshal(tt.payload)
			p, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if p.Kind != KindRTP {
				t.Errorf("Kind = %v, want RTP", p.Kind)
			}
			if p.HeaderLen != tt.wantHeaderLen {
				t.Errorf("HeaderLen = %d, want %d", p.HeaderLen, tt.wantHeaderLen)
			}
			if p.PaddingLen != int(tt.h.Padding) {
				t.Errorf("PaddingLen = %d, want %d", p.PaddingLen, tt.h.Padding)
			}
			if got := p.Payload(b); !bytes.Equal(got, tt.payload) {
				t.Errorf("payload = %x, want %x", got, tt.payload)
			}
			h := tt.h
			hasExt := h.ExtProfile != 0
			if p.Marker != h.Marker || p.PayloadType != h.PayloadType || p.SequenceNumber != h.SequenceNumber ||
				p.Timestamp != h.Timestamp || p.SSRC != h.SSRC || int(p.CSRCCount) != len(h.CSRC) ||
				p.HasExtension != hasExt || (hasExt && p.ExtensionProfile != h.ExtProfile) {
				t.Errorf("Parse = %+v, want %+v", p, h)
			}
		})
	}
}

func TestParseRTCP(t *testing.T) {
	tests := []struct {
		name      string
		b         []byte
		want      Reason
		wantCount int
		wantPT    uint8
		wantPad   int
	}{
		{name: "RR no blocks", b: rr(11, 0), wantCount: 1, wantPT: RTCPTypeRR},
		{name: "RR+SDES", b: cat(rr(11, 1), sdes(11, "ringwire@example")), wantCount: 2, wantPT: RTCPTypeRR},
		{name: "SR+SDES+BYE", b: cat(sr(12, 2), sdes(12, "x"), bye(12, 0)), wantCount: 3, wantPT: RTCPTypeSR},
		{name: "RR+BYE padded last", b: cat(rr(13, 0), bye(13, 8)), wantCount: 2, wantPT: RTCPTypeRR, wantPad: 8},
		{name: "single RR padded", b: rtcpPacket(0, RTCPTypeRR, binary.BigEndian.AppendUint32(nil, 1), 4), wantCount: 1, wantPT: RTCPTypeRR, wantPad: 4},
		{name: "RR+RTPFB", b: cat(rr(14, 0), rtcpPacket(1, 205, make([]byte, 12), 0)), wantCount: 2, wantPT: RTCPTypeRR},

		{name: "first is SDES", b: cat(sdes(1, "a"), rr(1, 0)), want: BadRTCPType},
		{name: "first is BYE", b: bye(1, 0), want: BadRTCPType},
		{name: "first is 192", b: rtcpPacket(0, 192, make([]byte, 4), 0), want: BadRTCPType},
		{name: "second not RTCP type", b: cat(rr(1, 0), rtcpPacket(0, 100, nil, 0)), want: BadRTCPType},
		{name: "padding on first of two", b: cat(rtcpPacket(0, RTCPTypeRR, binary.BigEndian.AppendUint32(nil, 1), 4), bye(1, 0)), want: BadPadding},
		{name: "padding count zero", b: func() []byte { b := cat(rr(1, 0), bye(1, 4)); b[len(b)-1] = 0; return b }(), want: BadPadding},
		{name: "padding eats header", b: func() []byte { b := cat(rr(1, 0), bye(1, 4)); b[len(b)-1] = 9; return b }(), want: BadPadding},
		{name: "length past end", b: func() []byte { b := rr(1, 0); b[3]++; return b }(), want: BadRTCPLength},
		{name: "lengths short of datagram", b: cat(rr(1, 0), []byte{0x80, 202}), want: TooShort},
		{name: "RR count exceeds length", b: func() []byte { b := rr(1, 1); b[0] = b[0]&^0x1f | 2; return b }(), want: BadRTCPLength},
		{name: "SR too short for sender info", b: rtcpPacket(0, RTCPTypeSR, make([]byte, 8), 0), want: BadRTCPLength},
		{name: "RR header only", b: rtcpPacket(0, RTCPTypeRR, nil, 0), want: BadRTCPLength},
		{name: "second bad version", b: func() []byte { b := cat(rr(1, 0), bye(1, 0)); b[8] = 1 << 6; return b }(), want: BadVersion},
		{name: "three bytes", b: []byte{0x80, 201, 0}, want: TooShort},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			got := Check(tt.b, &p)
			if got != tt.want {
				t.Fatalf("Check = %v, want %v", got, tt.want)
			}
			if p.Kind != KindRTCP {
				t.Errorf("Kind = %v, want RTCP", p.Kind)
			}
			if got != OK {
				return
			}
			if p.RTCPCount != tt.wantCount || p.PayloadType != tt.wantPT || p.PaddingLen != tt.wantPad {
				t.Errorf("Packet = %+v, want count %d pt %d pad %d", p, tt.wantCount, tt.wantPT, tt.wantPad)
			}
			if p.Payload(tt.b) != nil {
				t.Error("Payload of RTCP is not nil")
			}
		})
	}
}

// Malformed returns one hand-built malformed datagram per parse Reason, keyed
// by the reason Check must return for it.
func malformed() []struct {
	name string
	b    []byte
	want Reason
} {
	g := func(mut func(b []byte) []byte) []byte {
		return mut(rtpHeader{SequenceNumber: 1, SSRC: 1}.marshal(g711Payload(160)))
	}
	return []struct {
		name string
		b    []byte
		want Reason
	}{
		{"empty", nil, TooShort},
		{"one byte", []byte{0x80}, TooShort},
		{"11 bytes", g(func(b []byte) []byte { return b[:11] }), TooShort},
		{"version 0", g(func(b []byte) []byte { b[0] &^= 0xc0; return b }), BadVersion},
		{"version 1", g(func(b []byte) []byte { b[0] = b[0]&^0xc0 | 0x40; return b }), BadVersion},
		{"version 3", g(func(b []byte) []byte { b[0] |= 0xc0; return b }), BadVersion},
		{"stun-like", []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, BadVersion},
		{"cc 15 in 12 bytes", g(func(b []byte) []byte { b[0] |= 0x0f; return b[:12] }), BadCSRC},
		{"cc 15 in 70 bytes", g(func(b []byte) []byte { b[0] |= 0x0f; return b[:70] }), BadCSRC},
		{"x without ext header", g(func(b []byte) []byte { b[0] |= 0x10; return b[:14] }), BadExtension},
		{"ext length past end", g(func(b []byte) []byte {
			b[0] |= 0x10
			binary.BigEndian.PutUint16(b[12:], 0xbede)
			binary.BigEndian.PutUint16(b[14:], 41) // 4+164 > 160 after the fixed header
			return b
		}), BadExtension},
		{"ext length max", g(func(b []byte) []byte {
			b[0] |= 0x10
			binary.BigEndian.PutUint16(b[14:], 0xffff)
			return b
		}), BadExtension},
		{"padding count 0", g(func(b []byte) []byte { b[0] |= 0x20; b[len(b)-1] = 0; return b }), BadPadding},
		{"padding past header", g(func(b []byte) []byte { b[0] |= 0x20; b = b[:20]; b[19] = 9; return b }), BadPadding},
		{"padding in bare header", g(func(b []byte) []byte { b[0] |= 0x20; return b[:12] }), BadPadding},
		{"rtcp length past end", func() []byte { b := rr(1, 0); b[3] = 9; return b }(), BadRTCPLength},
		{"rtcp first is app", rtcpPacket(0, RTCPTypeAPP, make([]byte, 8), 0), BadRTCPType},
	}
}

func TestParseMalformed(t *testing.T) {
	seen := map[Reason]bool{}
	for _, tt := range malformed() {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.b)
			var r Reason
			if !errors.As(err, &r) || r != tt.want {
				t.Fatalf("Parse err = %v, want %v (packet %+v)", err, tt.want, p)
			}
			seen[tt.want] = true
		})
	}
	for r := TooShort; r <= BadRTCPType; r++ {
		if !seen[r] {
			t.Errorf("no malformed case for %v", r)
		}
	}
}

func TestParseAllocs(t *testing.T) {
	good := rtpHeader{SSRC: 1, CSRC: []uint32{1}, Padding: 3}.marshal(g711Payload(160))
	bad := malformed()[12].b
	rtcp := cat(rr(1, 1), sdes(1, "a"), bye(1, 4))
	var sink int
	for name, b := range map[string][]byte{"rtp": good, "malformed": bad, "rtcp": rtcp} {
		if n := testing.AllocsPerRun(1000, func() {
			p, err := Parse(b)
			if err != nil {
				sink++
			}
			sink += p.HeaderLen
		}); n != 0 {
			t.Errorf("%s: Parse allocates %v times", name, n)
		}
	}
	_ = sink
}

func TestReasonStrings(t *testing.T) {
	names := map[string]bool{}
	for r := Reason(0); r < NumReasons; r++ {
		s := r.String()
		if s == "" || strings.HasPrefix(s, "Reason(") || names[s] {
			t.Errorf("reason %d has name %q", r, s)
		}
		names[s] = true
	}
	if got := Reason(200).String(); got != "Reason(200)" {
		t.Errorf("Reason(200).String() = %q", got)
	}
	if got := BadPadding.Error(); got != "rtpcheck: BadPadding" {
		t.Errorf("Error() = %q", got)
	}
	if OK.Err() != nil {
		t.Error("OK.Err() != nil")
	}
}

// FuzzParse checks Check's invariants on any datagram; bench/rtpinterop
// fuzzes it against pion/rtp's parser.
func FuzzParse(f *testing.F) {
	for _, m := range malformed() {
		f.Add(m.b)
	}
	f.Add(rtpHeader{Padding: 4, ExtProfile: extOneByte, Ext: []byte{}, CSRC: []uint32{1}}.marshal(g711Payload(20)))
	f.Add(cat(sr(1, 1), sdes(1, "abc"), bye(1, 4)))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Packet
		r := Check(b, &p)
		if r >= Truncated {
			t.Fatalf("Check returned relay-level reason %v", r)
		}
		if r != OK {
			return
		}
		if p.HeaderLen+p.PaddingLen > len(b) || p.HeaderLen < 0 || p.PaddingLen < 0 {
			t.Fatalf("header %d + padding %d > len %d", p.HeaderLen, p.PaddingLen, len(b))
		}
		switch p.Kind {
		case KindRTP:
			if p.HeaderLen < RTPHeaderLen {
				t.Fatalf("RTP header length %d", p.HeaderLen)
			}
			_ = p.Payload(b)
			if p.SSRC != binary.BigEndian.Uint32(b[8:]) || p.SequenceNumber != binary.BigEndian.Uint16(b[2:]) || int(p.CSRCCount) != int(b[0]&0x0f) {
				t.Fatalf("Parse %+v of header %x", p, b[:12])
			}
		case KindRTCP:
			if p.RTCPCount < 1 || len(b)%4 != 0 {
				t.Fatalf("RTCP %+v for %d bytes", p, len(b))
			}
		default:
			t.Fatalf("OK with kind %v", p.Kind)
		}
	})
}
