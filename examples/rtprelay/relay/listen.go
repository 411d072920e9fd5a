package relay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// ListenConsecutiveUDP binds n UDP sockets on ip at consecutive ports, for
// tests and for relays whose -in or -out ports are chosen at run time: it
// binds the first to an ephemeral port and the rest to the ports after it,
// starting over (at most tries times) when one of those is taken. The caller
// owns the returned sockets.
func ListenConsecutiveUDP(ip netip.Addr, n, tries int) ([]*net.UDPConn, error) {
	if n < 1 {
		return nil, fmt.Errorf("relay: %d sockets requested", n)
	}
	var lastErr error
	for range max(tries, 1) {
		conns, err := listenRun(ip, n)
		if err == nil {
			return conns, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("relay: no %d consecutive free UDP ports on %v: %w", n, ip, lastErr)
}

func listenRun(ip netip.Addr, n int) ([]*net.UDPConn, error) {
	first, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return nil, err
	}
	conns := []*net.UDPConn{first}
	base := first.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	for i := 1; i < n; i++ {
		port := int(base) + i
		if port > 65535 {
			err = errors.New("port range past 65535")
			break
		}
		var c *net.UDPConn
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port))))
		if err != nil {
			break
		}
		conns = append(conns, c)
	}
	if err != nil {
		for _, c := range conns {
			c.Close()
		}
		return nil, err
	}
	return conns, nil
}
