//go:build linux

package main

import (
	"net"
	"net/netip"
	"time"

	"github.com/ringwire/ringwire/examples/rtprelay/ringrelay"
)

// addRingwireRelayModes registers the io_uring relay mode "ringwire-relay":
// examples/rtprelay/ringrelay, the same job as "gorelay" (a socket per
// stream, RTP validated and counted per packet) on netio's handler API, each
// received buffer forwarded without a copy, with the relay's default 50µs
// latency budget. The optional "ringwire-relay-nobatch" is the same relay
// handling every completion at once, to show what the budget buys, and the
// optional "ringwire-relay-budget200us" and "ringwire-relay-budget1ms" ask
// what a longer budget would buy.
func addRingwireRelayModes(r *registry) {
	r.relay["ringwire-relay"] = func(cfg RelayConfig) (Server, error) { return startRingwireRelay(cfg, 0) }
	r.relay["ringwire-relay-nobatch"] = func(cfg RelayConfig) (Server, error) { return startRingwireRelay(cfg, -1) }
	r.relay["ringwire-relay-budget200us"] = func(cfg RelayConfig) (Server, error) {
		return startRingwireRelay(cfg, 200*time.Microsecond)
	}
	r.relay["ringwire-relay-budget1ms"] = func(cfg RelayConfig) (Server, error) {
		return startRingwireRelay(cfg, time.Millisecond)
	}
}

// ringRelayServer adapts ringrelay.Relay to ringbench: stream i is received
// on its own ingress socket and sent to Dest.Port()+i. It runs
// RelayConfig.Loops event loops (one when 0: the relay's goal is one loop).
type ringRelayServer struct {
	r *ringrelay.Relay
}

func startRingwireRelay(cfg RelayConfig, budget time.Duration) (Server, error) {
	plan, ingress, err := relayIngress(cfg)
	if err != nil {
		return nil, err
	}
	r, err := ringrelay.New(&ringrelay.Config{
		Config:        plan,
		Ingress:       ingress,
		Loops:         max(cfg.Loops, 1),
		ReadBuffer:    4 << 20, // as gorelay's mode
		LatencyBudget: budget,
	})
	if err != nil {
		return nil, err
	}
	return &ringRelayServer{r: r}, nil
}

func (s *ringRelayServer) Addr() net.Addr {
	return net.UDPAddrFromAddrPort(s.r.IngressAddrs()[0])
}

// IngressAddrs returns one address per stream.
func (s *ringRelayServer) IngressAddrs() []netip.AddrPort { return s.r.IngressAddrs() }

// Stats reports the forwarded packets and bytes and the loops'
// io_uring_enter calls.
func (s *ringRelayServer) Stats() ServerStats {
	st := ServerStats{SyscallName: "io_uring_enter", Syscalls: int64(s.r.Stats().Enters)}
	addForwarded(&st, s.r.Report())
	return st
}

func (s *ringRelayServer) Close() error { return s.r.Close() }
