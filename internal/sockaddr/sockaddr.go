package sockaddr

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
)

// Linux address families and sockaddr sizes. They are Linux's values on every
// platform: this package describes what the Linux kernel reads and writes.
const (
	FamilyInet  = 2  // AF_INET
	FamilyInet6 = 10 // AF_INET6

	SizeofInet4 = 16  // sizeof(struct sockaddr_in)
	SizeofInet6 = 28  // sizeof(struct sockaddr_in6)
	SizeofAny   = 112 // sizeof(struct sockaddr_storage) as x/sys/unix's RawSockaddrAny
)

// Raw is room for one encoded sockaddr_in or sockaddr_in6, with its length.
// Its zero value is empty. The bytes live inside the Raw, so a Raw embedded in
// an operation record is memory the kernel can read while the record lives.
type Raw struct {
	Buf [SizeofInet6]byte
	Len uint32
}

// Bytes returns the encoded address, a view of r.Buf.
func (r *Raw) Bytes() []byte { return r.Buf[:r.Len] }

// Set encodes ap for a socket of family (FamilyInet or FamilyInet6). An IPv4
// address on an IPv6 socket is written as an IPv4-mapped IPv6 address.
func (r *Raw) Set(ap netip.AddrPort, family int) error {
	n, err := Encode(r.Buf[:], ap, family)
	r.Len = uint32(n)
	return err
}

// Errors returned by Encode and Decode. They are returned unwrapped so that
// neither function allocates.
var (
	ErrShort        = errors.New("sockaddr: buffer too short")
	ErrFamily       = errors.New("sockaddr: unsupported address family")
	ErrInvalidAddr  = errors.New("sockaddr: invalid address")
	ErrFamilyAddrV6 = errors.New("sockaddr: IPv6 address on an IPv4 socket")
)

// Encode writes ap into dst as the sockaddr a socket of family expects and
// returns the number of bytes written (SizeofInet4 or SizeofInet6). dst must
// hold SizeofInet6 bytes for an IPv6 socket. An IPv4 or IPv4-mapped address on
// an IPv4 socket is written unmapped; an IPv4 address on an IPv6 socket is
// written IPv4-mapped. A zone that is a decimal number is taken as the scope id.
func Encode(dst []byte, ap netip.AddrPort, family int) (int, error) {
	a := ap.Addr()
	if !a.IsValid() {
		return 0, ErrInvalidAddr
	}
	switch family {
	case FamilyInet:
		if a.Is4In6() {
			a = a.Unmap()
		}
		if !a.Is4() {
			return 0, ErrFamilyAddrV6
		}
		if len(dst) < SizeofInet4 {
			return 0, ErrShort
		}
		clear(dst[:SizeofInet4])
		binary.NativeEndian.PutUint16(dst[0:], FamilyInet)
		binary.BigEndian.PutUint16(dst[2:], ap.Port())
		ip := a.As4()
		copy(dst[4:8], ip[:])
		return SizeofInet4, nil
	case FamilyInet6:
		if len(dst) < SizeofInet6 {
			return 0, ErrShort
		}
		clear(dst[:SizeofInet6])
		binary.NativeEndian.PutUint16(dst[0:], FamilyInet6)
		binary.BigEndian.PutUint16(dst[2:], ap.Port())
		// dst[4:8] is sin6_flowinfo, left zero.
		ip := a.As16()
		copy(dst[8:24], ip[:])
		if z := a.Zone(); z != "" {
			if id, err := strconv.ParseUint(z, 10, 32); err == nil {
				binary.NativeEndian.PutUint32(dst[24:], uint32(id))
			} else if ifi, err := net.InterfaceByName(z); err == nil {
				binary.NativeEndian.PutUint32(dst[24:], uint32(ifi.Index))
			}
		}
		return SizeofInet6, nil
	}
	return 0, ErrFamily
}

// Decode parses a sockaddr_in or sockaddr_in6 from b, which may be longer than
// the address (a sockaddr_storage). An IPv4-mapped IPv6 address is returned
// unmapped, as an IPv4 address, so that addresses compare equal whichever
// socket family carried them. A non-zero scope id becomes a decimal zone.
// Decode allocates only for a non-zero scope id.
func Decode(b []byte) (netip.AddrPort, error) {
	if len(b) < 2 {
		return netip.AddrPort{}, ErrShort
	}
	switch binary.NativeEndian.Uint16(b[0:]) {
	case FamilyInet:
		if len(b) < SizeofInet4 {
			return netip.AddrPort{}, ErrShort
		}
		port := binary.BigEndian.Uint16(b[2:])
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port), nil
	case FamilyInet6:
		if len(b) < SizeofInet6 {
			return netip.AddrPort{}, ErrShort
		}
		port := binary.BigEndian.Uint16(b[2:])
		a := netip.AddrFrom16([16]byte(b[8:24]))
		if a.Is4In6() {
			return netip.AddrPortFrom(a.Unmap(), port), nil
		}
		if id := binary.NativeEndian.Uint32(b[24:]); id != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(id), 10))
		}
		return netip.AddrPortFrom(a, port), nil
	}
	return netip.AddrPort{}, ErrFamily
}

// FamilyOf returns the socket family to use for ap: FamilyInet for an IPv4 or
// IPv4-mapped address, FamilyInet6 otherwise.
func FamilyOf(ap netip.AddrPort) int {
	if a := ap.Addr(); a.Is4() || a.Is4In6() {
		return FamilyInet
	}
	return FamilyInet6
}
