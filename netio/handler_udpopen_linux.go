//go:build linux

package netio

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/runtime"
)

// ListenUDP opens a UDP socket bound to address for the handler API and
// starts receiving on lc.Loop, or else on one of the runtime's loops (the next
// in turn; called on a loop thread, the caller's loop); h's methods run there.
// To close it, call u.Close on that loop (for example from a runtime.Task
// posted to u.Loop()). On a loop thread, a Loop other than the caller's is
// refused with an error wrapping ErrLoopThread.
func (lc *ListenConfig) ListenUDP(ctx context.Context, network, address string, h PacketHandler) (*UDPConn, error) {
	return openUDP(ctx, lc.Runtime, lc.Loop, lc.Config, network, address, false, h)
}

// DialUDP opens a UDP socket connected to address for the handler API:
// datagrams from other sources are not delivered, and ECONNREFUSED from an
// ICMP port unreachable reaches h.OnError. The socket runs on d.Loop, or else
// on the next loop of the runtime in turn (on a loop thread: as ListenUDP).
func (d *Dialer) DialUDP(ctx context.Context, network, address string, h PacketHandler) (*UDPConn, error) {
	return openUDP(ctx, d.Runtime, d.Loop, d.Config, network, address, true, h)
}

// errForeignLoop is returned when ListenConfig.Loop or Dialer.Loop is not
// one of the Runtime's loops.
var errForeignLoop = errors.New("netio: Loop does not belong to Runtime")

// pickLoop returns the loop a new socket runs on: l if set (checked to be
// one of rt's loops when rt is set), else rt's next loop, rt nil meaning the
// default runtime.
func pickLoop(rt *runtime.Runtime, l *runtime.Loop) (*runtime.Loop, error) {
	if l != nil {
		if rt == nil {
			return l, nil
		}
		for _, x := range rt.Loops() {
			if x == l {
				return l, nil
			}
		}
		return nil, errForeignLoop
	}
	if rt == nil {
		var err error
		if rt, err = DefaultRuntime(); err != nil {
			return nil, err
		}
	}
	return rt.Next(), nil
}

// handlerLoop picks the loop of a new handler-API socket as pickLoop does,
// except on a loop thread of rt (the default runtime when rt is nil): there,
// with no l, it is the caller's own loop, where the socket is set up inline
// (runOn); an l other than the caller's loop is refused with ErrLoopThread,
// since waiting for it would block the caller's loop (and deadlock if that
// loop waited for this one).
func handlerLoop(rt *runtime.Runtime, l *runtime.Loop) (*runtime.Loop, error) {
	if l == nil {
		var err error
		if rt, err = orDefault(rt); err != nil {
			return nil, err
		}
		if own := callerLoop(rt); own != nil {
			return own, nil
		}
		return rt.Next(), nil
	}
	l, err := pickLoop(rt, l)
	if err != nil {
		return nil, err
	}
	if err := waitableFrom(rt, l); err != nil {
		return nil, err
	}
	return l, nil
}

func openUDP(ctx context.Context, rt *runtime.Runtime, pick *runtime.Loop, c *Config, network, address string, connect bool, h PacketHandler) (*UDPConn, error) {
	op := "listen"
	if connect {
		op = "dial"
	}
	cfg, k, err := checkHandlerCall(op, c, network, false)
	if err != nil {
		return nil, err
	}
	l, err := handlerLoop(rt, pick)
	if err != nil {
		return nil, opErr(op, network, nil, nil, "", err)
	}
	aps, err := resolve(ctx, k, network, address, connect)
	if err != nil {
		return nil, opErr(op, network, nil, nil, "", err)
	}
	ap := aps[0]
	var fd int
	var local, remote netip.AddrPort
	family, _ := socketFor(k, ap)
	if connect {
		fd, err = newSocket(family, unix.SOCK_DGRAM, false)
		if err != nil {
			return nil, opErr(op, network, nil, udpAddrOrNil(ap), "socket", err)
		}
		sa, err := toUnix(ap, family)
		if err == nil {
			err = unix.Connect(fd, sa)
		}
		if err == nil {
			local, err = localAddr(fd)
		}
		if err != nil {
			closeFD(fd)
			return nil, opErr(op, network, nil, udpAddrOrNil(ap), "connect", err)
		}
		remote = ap
	} else {
		fd, local, err = listenSocket(k, ap, 0, false)
		if err != nil {
			return nil, opErr(op, network, nil, udpAddrOrNil(ap), "bind", err)
		}
	}
	u, err := startUDP(l, &cfg, fd, family, local, remote, connect, h)
	if err != nil {
		return nil, opErr(op, network, nil, udpAddrOrNil(ap), "", err)
	}
	return u, nil
}

// startUDP makes the UDPConn for fd on l and starts receiving; on error it
// closes fd.
func startUDP(l *runtime.Loop, cfg *Config, fd, family int, local, remote netip.AddrPort, connect bool, h PacketHandler) (*UDPConn, error) {
	var u *UDPConn
	err := runOn(l, func(l *runtime.Loop) error {
		ls, err := stateOf(l)
		if err != nil {
			return err
		}
		u = newUDPConn(ls, cfg, fd, family, h)
		u.local, u.remote, u.connected = local, remote, connect
		u.armRecv()
		return nil
	})
	if err != nil {
		closeFD(fd)
		return nil, err
	}
	return u, nil
}

// FileUDP adopts a UDP socket opened elsewhere (inherited, or bound by a
// privileged helper) for the handler API, as net.FilePacketConn does for
// package net: it uses a duplicate of f's descriptor, which the UDPConn
// closes when it closes, so the caller may and should close f itself. A
// socket connected with connect(2) is treated as DialUDP's are: only its
// peer's datagrams arrive, and RemoteAddr reports the peer. The socket runs
// on lc.Loop, or else on the next loop of the runtime in turn. f is left in
// the blocking mode it had (io_uring does not need O_NONBLOCK). Errors are
// *net.OpError with Op "file".
func (lc *ListenConfig) FileUDP(f *os.File, h PacketHandler) (*UDPConn, error) {
	const op = "file"
	fail := func(call string, err error) (*UDPConn, error) {
		return nil, opErr(op, "file+net", nil, nil, call, err)
	}
	cfg, err := lc.Config.withDefaults()
	if err != nil {
		return fail("", err)
	}
	if cfg.ForceFallback || fallback(&cfg) {
		return fail("", errNoHandlerFallback)
	}
	if f == nil {
		return fail("", os.ErrInvalid)
	}
	fd, err := dupFile(f)
	if err != nil {
		return fail("dup", err)
	}
	family, local, remote, err := udpSocketInfo(fd)
	if err != nil {
		closeFD(fd)
		return fail("getsockopt", err)
	}
	l, err := handlerLoop(lc.Runtime, lc.Loop)
	if err != nil {
		closeFD(fd)
		return fail("", err)
	}
	network := "udp4"
	if family == unix.AF_INET6 {
		network = "udp6"
	}
	u, err := startUDP(l, &cfg, fd, family, local, remote, remote.IsValid(), h)
	if err != nil {
		return nil, opErr(op, network, udpAddrOrNil(local), nil, "", err)
	}
	return u, nil
}

// dupFile returns a close-on-exec duplicate of f's descriptor, without
// f.Fd (which would switch f to blocking mode).
func dupFile(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, os.NewSyscallError("fcntl", derr)
	}
	return nfd, nil
}

// udpSocketInfo checks that fd is an AF_INET or AF_INET6 UDP socket and
// returns its family, bound address and, when connected, its peer.
func udpSocketInfo(fd int) (family int, local, remote netip.AddrPort, err error) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return 0, local, remote, os.NewSyscallError("getsockopt", err)
	}
	family, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return 0, local, remote, os.NewSyscallError("getsockopt", err)
	}
	proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil {
		return 0, local, remote, os.NewSyscallError("getsockopt", err)
	}
	if typ != unix.SOCK_DGRAM || proto != unix.IPPROTO_UDP || family != unix.AF_INET && family != unix.AF_INET6 {
		return 0, local, remote, os.NewSyscallError("getsockopt", syscall.EPROTOTYPE)
	}
	if local, err = localAddr(fd); err != nil {
		return 0, local, remote, os.NewSyscallError("getsockname", err)
	}
	remote, err = peerAddr(fd)
	if errors.Is(err, unix.ENOTCONN) {
		err = nil
	}
	if err != nil {
		return 0, local, remote, os.NewSyscallError("getpeername", err)
	}
	return family, local, remote, nil
}

// udpAddrOrNil returns ap as a net.Addr for an error: a *net.UDPAddr, with
// only the port when ap has no address.
func udpAddrOrNil(ap netip.AddrPort) net.Addr {
	if !ap.Addr().IsValid() {
		return &net.UDPAddr{Port: int(ap.Port())}
	}
	return net.UDPAddrFromAddrPort(ap)
}
