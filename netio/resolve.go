package netio

import (
	"context"
	"net"
	"net/netip"
	"strconv"
)

// netKind describes a network name such as "tcp6".
type netKind struct {
	stream bool
	v4, v6 bool // which families the name allows (both for "tcp"/"udp")
}

func parseNetwork(network string) (netKind, bool) {
	switch network {
	case "tcp":
		return netKind{stream: true, v4: true, v6: true}, true
	case "tcp4":
		return netKind{stream: true, v4: true}, true
	case "tcp6":
		return netKind{stream: true, v6: true}, true
	case "udp":
		return netKind{v4: true, v6: true}, true
	case "udp4":
		return netKind{v4: true}, true
	case "udp6":
		return netKind{v6: true}, true
	}
	return netKind{}, false
}

// resolve turns "host:port" into candidate addresses for network, literal
// addresses without a lookup. An empty host yields the invalid Addr (any
// address) with the port. For dialing, an empty host means the local system,
// as in package net.
func resolve(ctx context.Context, k netKind, network, address string, dial bool) ([]netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := parsePort(ctx, network, portStr)
	if err != nil {
		return nil, err
	}
	if host == "" {
		if !dial {
			return []netip.AddrPort{netip.AddrPortFrom(netip.Addr{}, port)}, nil
		}
		if k.v4 {
			host = "127.0.0.1"
		} else {
			host = "::1"
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !familyOK(k, a) {
			return nil, &net.AddrError{Err: "address family mismatch", Addr: address}
		}
		return []netip.AddrPort{netip.AddrPortFrom(a, port)}, nil
	}
	ipnet := "ip"
	if k.v4 && !k.v6 {
		ipnet = "ip4"
	} else if k.v6 && !k.v4 {
		ipnet = "ip6"
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, ipnet, host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, 0, len(ips))
	// IPv4 first, as package net prefers when it has to pick one (listen).
	for _, pass := range []bool{true, false} {
		for _, a := range ips {
			a = a.Unmap()
			if a.Is4() == pass && familyOK(k, a) {
				out = append(out, netip.AddrPortFrom(a, port))
			}
		}
	}
	if len(out) == 0 {
		return nil, &net.AddrError{Err: "no suitable address found", Addr: address}
	}
	return out, nil
}

func familyOK(k netKind, a netip.Addr) bool {
	if a.Is4() || a.Is4In6() {
		return k.v4 || (k.v6 && a.Is4In6())
	}
	return k.v6
}

func parsePort(ctx context.Context, network, s string) (uint16, error) {
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		return uint16(n), nil
	}
	p, err := net.DefaultResolver.LookupPort(ctx, network, s)
	if err != nil {
		return 0, err
	}
	return uint16(p), nil
}
