//go:build !linux

package echoserver

import (
	"errors"
	"fmt"
	"net"

	"github.com/ringwire/ringwire/runtime"
)

var errUnsupported = fmt.Errorf("echoserver: needs Linux io_uring: %w", errors.ErrUnsupported)

// Server is a running echo server; on this platform Start always fails.
type Server struct{}

// Start returns an error wrapping errors.ErrUnsupported.
func Start(cfg *Config) (*Server, error) {
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	return nil, errUnsupported
}

// Addr returns nil.
func (s *Server) Addr() net.Addr { return nil }

// Runtime returns nil.
func (s *Server) Runtime() *runtime.Runtime { return nil }

// Fallback returns nil.
func (s *Server) Fallback() error { return nil }

// Stats returns zero counters.
func (s *Server) Stats() Stats { return Stats{} }

// Close returns nil.
func (s *Server) Close() error { return nil }
