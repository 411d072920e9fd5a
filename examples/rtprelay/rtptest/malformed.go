package rtptest

import (
	"encoding/binary"

	"github.com/ringwire/ringwire/examples/rtprelay/rtpcheck"
)

// Bad is a malformed datagram and the Reason rtpcheck gives for it.
type Bad struct {
	// Name says what is wrong, for test names.
	Name string
	// Data is the datagram.
	Data []byte
	// Reason is what rtpcheck.Check returns for Data.
	Reason rtpcheck.Reason
}

// Malformed returns hand-built malformed datagrams covering every reason
// rtpcheck.Check returns, each derived from a valid G.711 packet of ssrc.
func Malformed(ssrc uint32) []Bad {
	st := Stream{SSRC: ssrc, Count: 1}
	g := func(mut func(b []byte) []byte) []byte { return mut(st.Packet(0)) }
	rr := RTCPCompound(ssrc)
	return []Bad{
		{"truncated header", g(func(b []byte) []byte { return b[:11] }), rtpcheck.TooShort},
		{"version 1", g(func(b []byte) []byte { b[0] = b[0]&^0xc0 | 0x40; return b }), rtpcheck.BadVersion},
		{"version 0 (STUN-like)", g(func(b []byte) []byte { b[0] &^= 0xc0; return b }), rtpcheck.BadVersion},
		{"CSRC count past end", g(func(b []byte) []byte { b[0] |= 0x0f; return b[:40] }), rtpcheck.BadCSRC},
		{"extension length past end", g(func(b []byte) []byte {
			b[0] |= 0x10
			binary.BigEndian.PutUint16(b[12:], 0xbede)
			binary.BigEndian.PutUint16(b[14:], 200)
			return b
		}), rtpcheck.BadExtension},
		{"padding count zero", g(func(b []byte) []byte { b[0] |= 0x20; b[len(b)-1] = 0; return b }), rtpcheck.BadPadding},
		{"padding past header", g(func(b []byte) []byte { b[0] |= 0x20; b[len(b)-1] = 200; return b }), rtpcheck.BadPadding},
		{"RTCP length past end", func() []byte { b := append([]byte(nil), rr...); b[3] += 10; return b }(), rtpcheck.BadRTCPLength},
		{"RTCP first packet SDES", rr[8:], rtpcheck.BadRTCPType},
		{"RTCP padding not last", func() []byte { b := append([]byte(nil), rr...); b[0] |= 0x20; return b }(), rtpcheck.BadPadding},
	}
}

// RTCPCompound returns a valid RTCP compound packet from ssrc: an empty
// receiver report followed by an SDES with a CNAME, as RFC 3550 §6.1 requires.
func RTCPCompound(ssrc uint32) []byte {
	b := []byte{0x80, rtpcheck.RTCPTypeRR, 0, 1}
	b = binary.BigEndian.AppendUint32(b, ssrc)
	sdes := []byte{0x81, rtpcheck.RTCPTypeSDES, 0, 0}
	sdes = binary.BigEndian.AppendUint32(sdes, ssrc)
	sdes = append(sdes, 1, 8)
	sdes = append(sdes, "rtptest!"...)
	sdes = append(sdes, 0, 0) // end of items, pad to a word
	binary.BigEndian.PutUint16(sdes[2:], uint16(len(sdes)/4-1))
	return append(b, sdes...)
}
