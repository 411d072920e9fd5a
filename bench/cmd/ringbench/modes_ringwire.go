//go:build linux

package main

import (
	"net"

	"github.com/ringwire/ringwire/examples/echo/echoserver"
)

// addRingwireModes registers the io_uring modes:
//
//	ringwire-handler  examples/echo/echoserver on netio's completion handler
//	                  API: every received view is sent back with its lease
//	                  (Data.Keep, Conn.SendLease), no copy in user space
//	ringwire-conn     the same server on netio's drop-in net.Listener, one
//	                  goroutine per connection doing Read then Write
//	ringwire-conn-halfloops  (optional, named in -modes) ringwire-conn with
//	                  half as many loops as CPUs
//
// and the relay modes of modes_ringwire_relay.go. Both echo modes run
// EchoConfig.Loops event loops (the CPUs the server is pinned to; 0: one per
// CPU) and self-report the loops' io_uring_enter count as their syscalls.
func addRingwireModes(r *registry) {
	r.echo["ringwire-handler"] = func(cfg EchoConfig) (Server, error) {
		return startRingwireEcho(cfg, echoserver.APIHandler)
	}
	r.echo["ringwire-conn"] = func(cfg EchoConfig) (Server, error) {
		return startRingwireEcho(cfg, echoserver.APIConn)
	}
	// Optional: the net.Conn server with half as many loops as CPUs, which
	// leaves the goroutines Ps that no loop thread holds.
	r.echo["ringwire-conn-halfloops"] = func(cfg EchoConfig) (Server, error) {
		if cfg.Loops > 1 {
			cfg.Loops /= 2
		}
		return startRingwireEcho(cfg, echoserver.APIConn)
	}
	addRingwireRelayModes(r)
}

// ringwireEcho adapts an echoserver.Server to ringbench.
type ringwireEcho struct {
	s *echoserver.Server
}

func startRingwireEcho(cfg EchoConfig, api echoserver.API) (Server, error) {
	s, err := echoserver.Start(&echoserver.Config{Addr: cfg.Addr, Loops: cfg.Loops, API: api})
	if err != nil {
		return nil, err
	}
	return &ringwireEcho{s: s}, nil
}

func (e *ringwireEcho) Addr() net.Addr { return e.s.Addr() }

// Stats reports the loops' io_uring_enter calls as the server's syscalls.
func (e *ringwireEcho) Stats() ServerStats {
	st := e.s.Stats()
	total := st.Total()
	return ServerStats{
		Syscalls:    int64(total.Enters),
		SyscallName: "io_uring_enter",
		Conns:       st.Conns,
		Bytes:       st.Bytes,
	}
}

func (e *ringwireEcho) Close() error { return e.s.Close() }
