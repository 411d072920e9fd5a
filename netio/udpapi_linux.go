//go:build linux

package netio

import (
	"context"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/runtime"
)

// ListenUDP opens a UDP socket bound to address for the handler API and
// starts receiving on one of the runtime's loops (the next in turn); h's
// methods run there. To close it, call u.Close on that loop (for example from
// a runtime.Task posted to u.Loop()).
func (lc *ListenConfig) ListenUDP(ctx context.Context, network, address string, h PacketHandler) (*UDPConn, error) {
	return openUDP(ctx, lc.Runtime, lc.Config, network, address, false, h)
}

// DialUDP opens a UDP socket connected to address for the handler API:
// datagrams from other sources are not delivered, and ECONNREFUSED from an
// ICMP port unreachable reaches h.OnError.
func (d *Dialer) DialUDP(ctx context.Context, network, address string, h PacketHandler) (*UDPConn, error) {
	return openUDP(ctx, d.Runtime, d.Config, network, address, true, h)
}

func openUDP(ctx context.Context, rt *runtime.Runtime, c *Config, network, address string, connect bool, h PacketHandler) (*UDPConn, error) {
	op := "listen"
	if connect {
		op = "dial"
	}
	cfg, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	k, ok := parseNetwork(network)
	if !ok || k.stream {
		return nil, opErr(op, network, nil, nil, "", net.UnknownNetworkError(network))
	}
	if cfg.ForceFallback || fallback(&cfg) {
		return nil, opErr(op, network, nil, nil, "", errNoHandlerFallback)
	}
	if rt == nil {
		if rt, err = DefaultRuntime(); err != nil {
			return nil, opErr(op, network, nil, nil, "", err)
		}
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
	var u *UDPConn
	l := rt.Next()
	err = runOn(l, func(l *runtime.Loop) error {
		ls, err := stateOf(l)
		if err != nil {
			return err
		}
		u = newUDPConn(ls, &cfg, fd, family, h)
		u.local, u.remote, u.connected = local, remote, connect
		u.armRecv()
		return nil
	})
	if err != nil {
		closeFD(fd)
		return nil, opErr(op, network, nil, udpAddrOrNil(ap), "", err)
	}
	return u, nil
}
