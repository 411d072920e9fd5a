//go:build linux

package netio

import (
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/sockaddr"
)

// Sockets are created here with plain socket(2), never through package net:
// since Go 1.24 net.Listen makes MPTCP sockets where the kernel has MPTCP, and
// connections accepted from those reject SEND_ZC with EOPNOTSUPP.

// socketFor picks the family for a bind or connect address under network kind
// k, as package net does (favoriteAddrFamily): an unspecified address on "tcp"
// or "udp" gets a dual-stack IPv6 socket.
func socketFor(k netKind, ap netip.AddrPort) (family int, v6only bool) {
	a := ap.Addr()
	switch {
	case !a.IsValid() || a.IsUnspecified():
		if k.v4 && !k.v6 {
			return unix.AF_INET, false
		}
		if k.v6 && !k.v4 {
			return unix.AF_INET6, true
		}
		if a.IsValid() && a.Is4() {
			return unix.AF_INET, false
		}
		return unix.AF_INET6, false
	case a.Is4() || a.Is4In6():
		return unix.AF_INET, false
	}
	return unix.AF_INET6, k.v6 && !k.v4
}

// newSocket creates a non-blocking, close-on-exec socket (plain TCP, protocol 0).
func newSocket(family, sotype int, v6only bool) (int, error) {
	fd, err := unix.Socket(family, sotype|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if family == unix.AF_INET6 {
		v := 0
		if v6only {
			v = 1
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v); err != nil {
			unix.Close(fd)
			return -1, os.NewSyscallError("setsockopt", err)
		}
	}
	if sotype == unix.SOCK_DGRAM && family == unix.AF_INET6 || sotype == unix.SOCK_DGRAM && family == unix.AF_INET {
		// As package net does: allow broadcast on UDP sockets.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1)
	}
	return fd, nil
}

// bindAddr returns the address to bind for ap on a socket of family.
func bindAddr(ap netip.AddrPort, family int) netip.AddrPort {
	if ap.Addr().IsValid() {
		return ap
	}
	if family == unix.AF_INET {
		return netip.AddrPortFrom(netip.IPv4Unspecified(), ap.Port())
	}
	return netip.AddrPortFrom(netip.IPv6Unspecified(), ap.Port())
}

// listenSocket creates a bound socket: a listening TCP socket (sotype
// SOCK_STREAM) with SO_REUSEADDR, or a bound UDP socket. reusePort sets
// SO_REUSEPORT for one listener per loop.
func listenSocket(k netKind, ap netip.AddrPort, backlog int, reusePort bool) (fd int, local netip.AddrPort, err error) {
	family, v6only := socketFor(k, ap)
	sotype := unix.SOCK_DGRAM
	if k.stream {
		sotype = unix.SOCK_STREAM
	}
	fd, err = newSocket(family, sotype, v6only)
	if err != nil {
		return -1, local, err
	}
	fail := func(call string, e error) (int, netip.AddrPort, error) {
		unix.Close(fd)
		return -1, netip.AddrPort{}, os.NewSyscallError(call, e)
	}
	if k.stream {
		if e := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); e != nil {
			return fail("setsockopt", e)
		}
	}
	if reusePort {
		if e := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); e != nil {
			return fail("setsockopt", e)
		}
	}
	sa, e := sockaddr.ToUnix(bindAddr(ap, family), family)
	if e != nil {
		unix.Close(fd)
		return -1, local, e
	}
	if e := unix.Bind(fd, sa); e != nil {
		return fail("bind", e)
	}
	if k.stream {
		if e := unix.Listen(fd, backlog); e != nil {
			return fail("listen", e)
		}
	}
	local, e = localAddr(fd)
	if e != nil {
		return fail("getsockname", e)
	}
	return fd, local, nil
}

// localAddr is fd's bound address (getsockname), read without an
// allocation: every accepted connection asks for it.
func localAddr(fd int) (netip.AddrPort, error) { return sockName(fd, false) }

// peerAddr is fd's peer address (getpeername), read without an allocation.
func peerAddr(fd int) (netip.AddrPort, error) { return sockName(fd, true) }

// sockName reads and decodes fd's bound or (peer) connected address. It
// calls the sockaddr function by name, not through a func value, which
// would move rsa to the heap.
func sockName(fd int, peer bool) (netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	var err error
	if peer {
		err = sockaddr.Getpeername(fd, &rsa)
	} else {
		err = sockaddr.Getsockname(fd, &rsa)
	}
	if err != nil {
		return netip.AddrPort{}, err
	}
	return sockaddr.Decode(sockaddr.AnyBytes(&rsa))
}

// listenBacklog is the kernel's somaxconn, as package net reads it.
func listenBacklog() int {
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		return unix.SOMAXCONN
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	if n <= 0 {
		return unix.SOMAXCONN
	}
	if n > 1<<16-1 {
		n = 1<<16 - 1
	}
	return n
}

func toUnix(ap netip.AddrPort, family int) (unix.Sockaddr, error) {
	return sockaddr.ToUnix(ap, family)
}
