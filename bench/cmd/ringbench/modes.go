//go:build linux

package main

import (
	"net"
	"net/netip"
)

// ServerStats is what a server reports about itself over the control channel.
// Counters are cumulative since start; the parent takes differences.
type ServerStats struct {
	// Syscalls is a self-reported syscall count (for example io_uring_enter calls
	// taken from an event loop's statistics), 0 when the mode does not count.
	Syscalls int64 `json:"syscalls,omitempty"`
	// SyscallName names what Syscalls counts ("io_uring_enter").
	SyscallName string `json:"syscall_name,omitempty"`
	// Conns is the number of connections accepted.
	Conns int64 `json:"conns,omitempty"`
	// Bytes is the number of payload bytes echoed or forwarded.
	Bytes int64 `json:"bytes,omitempty"`
	// Packets is the number of datagrams forwarded (relays).
	Packets int64 `json:"packets,omitempty"`
}

// Server is one echo server or relay running inside `ringbench serve`.
type Server interface {
	// Addr is the bound address the load generator connects or sends to.
	Addr() net.Addr
	// Stats returns cumulative counters; it is safe to call concurrently with traffic.
	Stats() ServerStats
	// Close stops the server and joins its goroutines; it is idempotent.
	Close() error
}

// EchoConfig configures an echo server.
type EchoConfig struct {
	// Addr is the TCP address to listen on, "127.0.0.1:0" in practice.
	Addr string
	// Loops is the number of event loops (or CPUs) the server may use; 0 means
	// one per CPU in the process's affinity mask.
	Loops int
}

// RelayConfig configures a UDP relay: every datagram received is sent to Dest.
type RelayConfig struct {
	// Addr is the UDP address to receive on, "127.0.0.1:0" in practice. A
	// relay with one ingress socket per stream binds Streams sockets on its IP
	// and reports them through IngressServer.
	Addr string
	// Dest is the UDP address every datagram is forwarded to.
	Dest string
	// Streams is the number of RTP streams the load will send.
	Streams int
	// Loops is as in EchoConfig.
	Loops int
}

// IngressServer is implemented by relays with one ingress socket per stream
// (examples/rtprelay/gorelay): stream i sends to IngressAddrs()[i%len].
type IngressServer interface {
	// IngressAddrs returns the ingress sockets' addresses, indexed by stream.
	IngressAddrs() []netip.AddrPort
}

// EchoFactory starts an echo server that writes back every byte it reads.
type EchoFactory func(cfg EchoConfig) (Server, error)

// RelayFactory starts a UDP relay.
type RelayFactory func(cfg RelayConfig) (Server, error)

// registry maps mode names to server factories. Adding a mode is one file that
// adds to it (see modes_ringwire.go).
type registry struct {
	echo  map[string]EchoFactory
	relay map[string]RelayFactory
}

// newRegistry returns every mode this build knows.
func newRegistry() *registry {
	r := &registry{echo: map[string]EchoFactory{}, relay: map[string]RelayFactory{}}
	r.echo["gonet"] = startGoNetEcho
	r.echo["gnet"] = startGnetEcho
	r.relay["udpconn"] = startUDPConnRelay
	r.relay["gorelay"] = startGoRelay
	addRingwireModes(r)
	return r
}

// defaultEchoOrder and defaultRelayOrder fix the column order of known modes;
// modes not listed follow in name order.
var (
	defaultEchoOrder  = []string{"gonet", "gnet", "ringwire-conn", "ringwire-handler"}
	defaultRelayOrder = []string{"gorelay", "udpconn", "ringwire-relay"}
)

// optionalModes run only when named in -modes or -relay-modes: variants that
// answer a question (what does the default cost or buy?) rather than rows
// every run needs.
var optionalModes = map[string]bool{
	"ringwire-relay-nobatch": true, "ringwire-relay-budget200us": true, "ringwire-relay-budget1ms": true,
}
