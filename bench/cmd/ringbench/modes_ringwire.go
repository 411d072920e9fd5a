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
//
// and the relay modes of modes_ringwire_relay.go. ringwire-handler runs
// EchoConfig.Loops event loops (the CPUs the server is pinned to; 0: one per
// CPU) and self-reports the loops' io_uring_enter count as its syscalls;
// ringwire-conn runs none.
func addRingwireModes(r *registry) {
	r.echo["ringwire-handler"] = func(cfg EchoConfig) (Server, error) {
		return startRingwireEcho(cfg, echoserver.APIHandler)
	}
	r.echo["ringwire-conn"] = func(cfg EchoConfig) (Server, error) {
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

// Stats reports the loops' io_uring_enter calls as the server's syscalls;
// ringwire-conn has no loops (netio's sockets wait in Go's poller) and
// reports none, as gonet does.
func (e *ringwireEcho) Stats() ServerStats {
	st := e.s.Stats()
	s := ServerStats{Conns: st.Conns, Bytes: st.Bytes}
	if len(st.Loops) > 0 {
		s.Syscalls, s.SyscallName = int64(st.Total().Enters), "io_uring_enter"
	}
	return s
}

func (e *ringwireEcho) Close() error { return e.s.Close() }
