//go:build linux

package sockaddr

// This is the one file outside ring/ and bufring/ that uses unsafe. Its
// invariant: unix.RawSockaddrAny is a plain struct of SizeofAny bytes with no
// Go pointers (struct sockaddr_storage), so viewing it as bytes is sound for as
// long as the *unix.RawSockaddrAny stays reachable, which the returned slice
// guarantees by pointing into it. Recvmsg and Sendmsg pass the kernel a
// msghdr on their own stack whose pointers reach the caller's slices; the
// uintptr conversion sits in the Syscall argument list, so the msghdr and
// everything it points to stay alive and unmoved until the call returns.

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// These check at compile time that SizeofAny is sizeof(unix.RawSockaddrAny).
var (
	_ [SizeofAny - unsafe.Sizeof(unix.RawSockaddrAny{})]struct{}
	_ [unsafe.Sizeof(unix.RawSockaddrAny{}) - SizeofAny]struct{}
)

// AnyBytes returns rsa's memory as bytes, for Decode after an accept or a
// getsockname/getpeername that filled it.
func AnyBytes(rsa *unix.RawSockaddrAny) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(rsa)), SizeofAny)
}

// ToUnix returns ap as the x/sys/unix Sockaddr a socket of family takes
// (for bind and for the fallback paths that call x/sys/unix directly).
func ToUnix(ap netip.AddrPort, family int) (unix.Sockaddr, error) {
	a := ap.Addr()
	if !a.IsValid() {
		return nil, ErrInvalidAddr
	}
	switch family {
	case FamilyInet:
		if a.Is4In6() {
			a = a.Unmap()
		}
		if !a.Is4() {
			return nil, ErrFamilyAddrV6
		}
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}, nil
	case FamilyInet6:
		sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
		var r Raw
		if err := r.Set(ap, family); err == nil {
			sa.ZoneId = binary.NativeEndian.Uint32(r.Buf[24:])
		}
		return sa, nil
	}
	return nil, ErrFamily
}

// FromUnix returns the address of an x/sys/unix Sockaddr (from Getsockname,
// Getpeername, Accept4); IPv4-mapped addresses are unmapped as in Decode.
func FromUnix(sa unix.Sockaddr) (netip.AddrPort, error) {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), nil
	case *unix.SockaddrInet6:
		var r Raw
		binary.NativeEndian.PutUint16(r.Buf[0:], FamilyInet6)
		binary.BigEndian.PutUint16(r.Buf[2:], uint16(sa.Port))
		copy(r.Buf[8:24], sa.Addr[:])
		binary.NativeEndian.PutUint32(r.Buf[24:], sa.ZoneId)
		return Decode(r.Buf[:])
	}
	return netip.AddrPort{}, ErrFamily
}

// Disconnect dissolves fd's association with its peer: connect(2) with an
// AF_UNSPEC address. On a TCP socket the kernel runs tcp_disconnect: it
// resets the connection (a RST to a peer with data in flight) and frees the
// send queue at once, which is the only way to make the kernel give back
// memory a zero-copy send still references when the peer does not read.
// The fd stays open. x/sys/unix has no Sockaddr for AF_UNSPEC, so the
// address is a zeroed sockaddr_storage (family 0 is AF_UNSPEC).
func Disconnect(fd int) error {
	var rsa unix.RawSockaddrAny
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), unix.SizeofSockaddrAny)
	if e != 0 {
		return e
	}
	return nil
}

// Recvmsg receives one message on fd with recvmsg(2): the payload into p,
// control messages into oob and the sender's address into *from (read it
// with Decode(AnyBytes(from))). It returns the payload and control lengths
// and the message flags (MSG_TRUNC, MSG_CTRUNC). It allocates nothing: the
// msghdr and iovec live on the stack for the duration of the call, as in
// x/sys/unix's own recvmsg.
func Recvmsg(fd int, p, oob []byte, flags int, from *unix.RawSockaddrAny) (n, oobn, rflags int, err error) {
	var msg unix.Msghdr
	var iov unix.Iovec
	if from != nil {
		msg.Name = (*byte)(unsafe.Pointer(from))
		msg.Namelen = uint32(SizeofAny)
	}
	if len(p) > 0 {
		iov.Base = &p[0]
		iov.SetLen(len(p))
		msg.Iov = &iov
		msg.SetIovlen(1)
	}
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	r, _, e := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if e != 0 {
		return 0, 0, 0, e
	}
	return int(r), int(msg.Controllen), int(msg.Flags), nil
}

// Sendmsg sends p, with the control messages in oob, on fd with
// sendmsg(2) to the encoded address to (Raw.Bytes; empty on a connected
// socket). It allocates nothing. Its msghdr is filled inline, as Recvmsg's
// is: a shared helper taking the msghdr's address makes it escape to the
// heap, two allocations per call (TestUDPMsgAndAllocs).
func Sendmsg(fd int, p, oob, to []byte, flags int) (int, error) {
	var msg unix.Msghdr
	var iov unix.Iovec
	if len(to) > 0 {
		msg.Name = &to[0]
		msg.Namelen = uint32(len(to))
	}
	if len(p) > 0 {
		iov.Base = &p[0]
		iov.SetLen(len(p))
		msg.Iov = &iov
		msg.SetIovlen(1)
	}
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	r, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// Accept4 is accept4(2) on fd with flags, the peer's address written into
// *from (read it with Decode(AnyBytes(from))). Unlike unix.Accept4 it
// allocates nothing: a server accepting many connections leaves no garbage
// per connection behind, which a heap grown by it would keep resident.
func Accept4(fd, flags int, from *unix.RawSockaddrAny) (int, error) {
	l := uint32(SizeofAny)
	r, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(from)), uintptr(unsafe.Pointer(&l)), uintptr(flags), 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

// Getsockname is getsockname(2) on fd into *to, allocating nothing.
func Getsockname(fd int, to *unix.RawSockaddrAny) error {
	return sockName(unix.SYS_GETSOCKNAME, fd, to)
}

// Getpeername is getpeername(2) on fd into *to, allocating nothing.
func Getpeername(fd int, to *unix.RawSockaddrAny) error {
	return sockName(unix.SYS_GETPEERNAME, fd, to)
}

// sockName is getsockname(2) or getpeername(2) (trap) on fd into *to.
func sockName(trap uintptr, fd int, to *unix.RawSockaddrAny) error {
	l := uint32(SizeofAny)
	_, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(to)), uintptr(unsafe.Pointer(&l)))
	if e != 0 {
		return e
	}
	return nil
}
