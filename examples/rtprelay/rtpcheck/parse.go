package rtpcheck

import (
	"encoding/binary"
	"strconv"
)

// Kind tells RTP from RTCP.
type Kind uint8

// Packet kinds.
const (
	// KindRTP is an RTP data packet (RFC 3550 §5).
	KindRTP Kind = iota + 1
	// KindRTCP is an RTCP compound packet (RFC 3550 §6).
	KindRTCP
)

// String returns "RTP", "RTCP" or "Kind(n)".
func (k Kind) String() string {
	switch k {
	case KindRTP:
		return "RTP"
	case KindRTCP:
		return "RTCP"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// RTCP packet types of RFC 3550 §12.1 that the compound-packet rule names.
const (
	RTCPTypeSR   = 200 // sender report
	RTCPTypeRR   = 201 // receiver report
	RTCPTypeSDES = 202 // source description
	RTCPTypeBYE  = 203 // goodbye
	RTCPTypeAPP  = 204 // application-defined
)

// Header sizes in bytes.
const (
	RTPHeaderLen  = 12 // fixed RTP header, without CSRCs or extension
	RTCPHeaderLen = 4  // RTCP common header: V/P/count, PT, length
)

// Packet is the validated summary of one datagram. It holds no reference to
// the datagram: the payload is recovered with Payload(b) from the same bytes.
// For KindRTCP, only Kind, PayloadType (the first packet's type), SSRC (the
// first packet's sender SSRC), RTCPCount and PaddingLen are set.
type Packet struct {
	// Kind is KindRTP or KindRTCP.
	Kind Kind
	// Marker is the RTP M bit.
	Marker bool
	// PayloadType is the RTP payload type (0..127), or for RTCP the first
	// packet's packet type (200 or 201).
	PayloadType uint8
	// CSRCCount is the RTP CC field.
	CSRCCount uint8
	// SequenceNumber is the RTP sequence number.
	SequenceNumber uint16
	// ExtensionProfile is the "defined by profile" field of the RTP header
	// extension (0xBEDE for RFC 8285 one-byte headers); valid if HasExtension.
	ExtensionProfile uint16
	// HasExtension is the RTP X bit.
	HasExtension bool
	// Timestamp is the RTP timestamp.
	Timestamp uint32
	// SSRC is the RTP SSRC, or the first RTCP packet's sender SSRC.
	SSRC uint32
	// HeaderLen is the RTP header length in bytes: 12 + 4×CC, plus 4 + 4×length
	// for the extension. Zero for RTCP.
	HeaderLen int
	// PaddingLen is the number of padding bytes at the end (the last octet's
	// value if the P bit is set, else 0), for RTP and for RTCP's last packet.
	PaddingLen int
	// RTCPCount is the number of packets in an RTCP compound packet.
	RTCPCount int
}

// Payload returns the RTP payload of b, the datagram p was parsed from:
// b[HeaderLen : len(b)-PaddingLen]. It returns nil for RTCP.
func (p *Packet) Payload(b []byte) []byte {
	if p.Kind != KindRTP {
		return nil
	}
	return b[p.HeaderLen : len(b)-p.PaddingLen]
}

// IsRTCP reports whether a datagram whose second octet is b1 is RTCP when RTP
// and RTCP share a port: RFC 5761 §4 reserves second octets 192..223 (RTP
// payload types 64..95 with the marker bit set) for RTCP packet types.
func IsRTCP(b1 byte) bool { return b1 >= 192 && b1 <= 223 }

// Parse validates b as an RTP packet or an RTCP compound packet and returns
// its summary. The error is nil or a Reason; Parse does not allocate.
func Parse(b []byte) (Packet, error) {
	var p Packet
	r := Check(b, &p)
	return p, r.Err()
}

// Check is Parse for hot paths: it fills *p and returns OK, or the first
// reason b is malformed, in which case *p is partially filled.
//
// RTP (RFC 3550 §5.1): version 2; 12+4×CC bytes fit; with the X bit, the
// 4-byte extension header and its 4×length bytes fit; with the P bit, the last
// octet (the padding count, which counts itself) is nonzero and at most the
// bytes after the header.
//
// RTCP (RFC 3550 §6.1 and A.2, demultiplexed by RFC 5761 §4): each packet in
// the compound is version 2, its length field (in 32-bit words minus one) fits
// the remaining bytes and the report count (6 words per report block, after
// the 1-word RR or 6-word SR sender part); the first packet is SR or RR, later
// types are in 192..223, only the last may be padded (§6.4.1; a one-packet
// compound may be, which A.2's stricter mask would refuse), and the lengths
// add up to the datagram exactly.
func Check(b []byte, p *Packet) Reason {
	if len(b) < 2 {
		return TooShort
	}
	if b[0]>>6 != 2 {
		return BadVersion
	}
	if IsRTCP(b[1]) {
		return checkRTCP(b, p)
	}
	return checkRTP(b, p)
}

func checkRTP(b []byte, p *Packet) Reason {
	p.Kind = KindRTP
	if len(b) < RTPHeaderLen {
		return TooShort
	}
	cc := b[0] & 0x0f
	p.CSRCCount = cc
	p.Marker = b[1]&0x80 != 0
	p.PayloadType = b[1] & 0x7f
	p.SequenceNumber = binary.BigEndian.Uint16(b[2:])
	p.Timestamp = binary.BigEndian.Uint32(b[4:])
	p.SSRC = binary.BigEndian.Uint32(b[8:])
	n := RTPHeaderLen + 4*int(cc)
	if n > len(b) {
		return BadCSRC
	}
	if b[0]&0x10 != 0 {
		p.HasExtension = true
		if n+4 > len(b) {
			return BadExtension
		}
		p.ExtensionProfile = binary.BigEndian.Uint16(b[n:])
		words := int(binary.BigEndian.Uint16(b[n+2:]))
		n += 4 + 4*words
		if n > len(b) {
			return BadExtension
		}
	}
	p.HeaderLen = n
	if b[0]&0x20 != 0 {
		pad := int(b[len(b)-1])
		if pad == 0 || pad > len(b)-n {
			return BadPadding
		}
		p.PaddingLen = pad
	}
	return OK
}

func checkRTCP(b []byte, p *Packet) Reason {
	p.Kind = KindRTCP
	off := 0
	for off < len(b) {
		rest := b[off:]
		if len(rest) < RTCPHeaderLen {
			return TooShort
		}
		if rest[0]>>6 != 2 {
			return BadVersion
		}
		pt := rest[1]
		count := int(rest[0] & 0x1f)
		size := 4 * (int(binary.BigEndian.Uint16(rest[2:])) + 1)
		if size > len(rest) {
			return BadRTCPLength
		}
		first := off == 0
		last := off+size == len(b)
		if first {
			if pt != RTCPTypeSR && pt != RTCPTypeRR {
				return BadRTCPType
			}
			p.PayloadType = pt
			if size < 8 {
				return BadRTCPLength
			}
			p.SSRC = binary.BigEndian.Uint32(rest[4:])
		} else if !IsRTCP(pt) {
			return BadRTCPType
		}
		pad := 0
		if rest[0]&0x20 != 0 {
			// RFC 3550 §6.4.1: padding only on the last packet of the compound
			// (which may also be the first, in a one-packet compound).
			if !last {
				return BadPadding
			}
			pad = int(b[len(b)-1])
			if pad == 0 || pad > size-RTCPHeaderLen {
				return BadPadding
			}
			p.PaddingLen = pad
		}
		switch pt {
		case RTCPTypeSR:
			if size-pad < 28+24*count {
				return BadRTCPLength
			}
		case RTCPTypeRR:
			if size-pad < 8+24*count {
				return BadRTCPLength
			}
		}
		p.RTCPCount++
		off += size
	}
	return OK
}
