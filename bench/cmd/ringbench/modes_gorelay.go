//go:build linux

package main

import (
	"net"
	"net/netip"

	"github.com/ringwire/ringwire/examples/rtprelay/gorelay"
	"github.com/ringwire/ringwire/examples/rtprelay/relay"
)

// goRelayServer adapts the example's Go-net relay (examples/rtprelay/gorelay:
// one net.UDPConn and one goroutine per ingress and egress socket, RTP
// validated per packet) to ringbench: stream i is received on its own ingress
// socket and sent to Dest.Port()+i.
type goRelayServer struct {
	r *gorelay.Relay
}

func startGoRelay(cfg RelayConfig) (Server, error) {
	plan, ingress, err := relayIngress(cfg)
	if err != nil {
		return nil, err
	}
	r, err := gorelay.New(&gorelay.Config{
		Config:     plan,
		Ingress:    ingress,
		ReadBuffer: 4 << 20,
	})
	if err != nil {
		return nil, err
	}
	return &goRelayServer{r: r}, nil
}

func (g *goRelayServer) Addr() net.Addr {
	return net.UDPAddrFromAddrPort(g.r.IngressAddrs()[0])
}

// IngressAddrs returns one address per stream.
func (g *goRelayServer) IngressAddrs() []netip.AddrPort { return g.r.IngressAddrs() }

func (g *goRelayServer) Stats() ServerStats {
	var st ServerStats
	addForwarded(&st, g.r.Report())
	return st
}

func (g *goRelayServer) Close() error { return g.r.Close() }

// relayIngress is the setup every relay mode shares: the relay configuration
// for cfg (stream i goes to Dest.Port()+i) and its ingress sockets, bound to
// cfg.Streams consecutive ports on cfg.Addr's address.
func relayIngress(cfg RelayConfig) (relay.Config, []*net.UDPConn, error) {
	dest, err := netip.ParseAddrPort(cfg.Dest)
	if err != nil {
		return relay.Config{}, nil, err
	}
	bind, err := netip.ParseAddrPort(cfg.Addr)
	if err != nil {
		return relay.Config{}, nil, err
	}
	n := max(cfg.Streams, 1)
	ingress, err := relay.ListenConsecutiveUDP(bind.Addr(), n, 20)
	if err != nil {
		return relay.Config{}, nil, err
	}
	return relay.Config{Out: []netip.AddrPort{dest}, Streams: n}, ingress, nil
}

// addForwarded adds the packets and bytes a relay sent on its forward legs.
func addForwarded(st *ServerStats, rep relay.Report) {
	for _, l := range rep.Legs {
		if l.Dir == relay.Forward {
			st.Packets += int64(l.Stats.PacketsOut)
			st.Bytes += int64(l.Stats.BytesOut)
		}
	}
}
