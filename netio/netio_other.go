//go:build !linux

package netio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/runtime"
)

// On platforms other than Linux there is no io_uring: the net layer is
// package net, and the handler API returns an error wrapping
// errors.ErrUnsupported.

var errUnsupported = fmt.Errorf("netio: the handler API needs Linux io_uring: %w", errors.ErrUnsupported)

// ErrForcedFallback is FallbackReason's answer when Config.ForceFallback
// is set.
var ErrForcedFallback = errors.New("netio: Config.ForceFallback is set")

// FallbackReason reports why the net face returns package net's objects:
// here always, since there is no io_uring.
func FallbackReason(cfg *Config) error {
	if cfg != nil && cfg.ForceFallback {
		return ErrForcedFallback
	}
	return errUnsupported
}

// DefaultRuntime returns an error wrapping errors.ErrUnsupported here.
func DefaultRuntime() (*runtime.Runtime, error) { return runtime.New(nil) }

// CloseDefault does nothing here: the net face is package net.
func CloseDefault() error { return nil }

// StatsOf returns zero counters here.
func StatsOf(*runtime.Runtime) Stats { return Stats{} }

// Listen is net.ListenConfig.Listen here.
func (lc *ListenConfig) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	var nl net.ListenConfig
	return nl.Listen(ctx, network, address)
}

// ListenPacket is net.ListenConfig.ListenPacket here.
func (lc *ListenConfig) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	var nl net.ListenConfig
	return nl.ListenPacket(ctx, network, address)
}

// Serve returns an error wrapping errors.ErrUnsupported here.
func (lc *ListenConfig) Serve(context.Context, string, string, Handler) (*Server, error) {
	return nil, errUnsupported
}

// ListenUDP returns an error wrapping errors.ErrUnsupported here.
func (lc *ListenConfig) ListenUDP(context.Context, string, string, PacketHandler) (*UDPConn, error) {
	return nil, errUnsupported
}

// Dial is net.Dialer.Dial here.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext is net.Dialer.DialContext here.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.Timeout, LocalAddr: d.LocalAddr}
	return nd.DialContext(ctx, network, address)
}

// DialHandler returns an error wrapping errors.ErrUnsupported here.
func (d *Dialer) DialHandler(context.Context, string, string, Handler) (*Conn, error) {
	return nil, errUnsupported
}

// DialUDP returns an error wrapping errors.ErrUnsupported here.
func (d *Dialer) DialUDP(context.Context, string, string, PacketHandler) (*UDPConn, error) {
	return nil, errUnsupported
}

// Server is a handler-API TCP listener; none can be made here.
type Server struct{}

// Addr returns the zero AddrPort.
func (s *Server) Addr() netip.AddrPort { return netip.AddrPort{} }

// Close does nothing.
func (s *Server) Close() error { return nil }

// Conn is a handler-API TCP connection; none exist here.
type Conn struct{}

// Loop returns nil.
func (c *Conn) Loop() *runtime.Loop { return nil }

// FD returns -1.
func (c *Conn) FD() int { return -1 }

// LocalAddr returns the zero AddrPort.
func (c *Conn) LocalAddr() netip.AddrPort { return netip.AddrPort{} }

// RemoteAddr returns the zero AddrPort.
func (c *Conn) RemoteAddr() netip.AddrPort { return netip.AddrPort{} }

// SetContext does nothing.
func (c *Conn) SetContext(any) {}

// Context returns nil.
func (c *Conn) Context() any { return nil }

// Closed returns true.
func (c *Conn) Closed() bool { return true }

// Queued returns 0.
func (c *Conn) Queued() int { return 0 }

// PauseRecv does nothing.
func (c *Conn) PauseRecv() {}

// ResumeRecv does nothing.
func (c *Conn) ResumeRecv() {}

// Write returns an error wrapping errors.ErrUnsupported.
func (c *Conn) Write([]byte) error { return errUnsupported }

// WriteTag returns an error wrapping errors.ErrUnsupported.
func (c *Conn) WriteTag([]byte, uint64) error { return errUnsupported }

// Send returns an error wrapping errors.ErrUnsupported.
func (c *Conn) Send([]byte, uint64) error { return errUnsupported }

// SendLease returns an error wrapping errors.ErrUnsupported.
func (c *Conn) SendLease(bufring.Lease, []byte, uint64) error { return errUnsupported }

// CloseWrite returns an error wrapping errors.ErrUnsupported.
func (c *Conn) CloseWrite() error { return errUnsupported }

// Close does nothing.
func (c *Conn) Close(error) {}

// UDPConn is a handler-API UDP socket; none exist here.
type UDPConn struct{}

// Loop returns nil.
func (u *UDPConn) Loop() *runtime.Loop { return nil }

// FD returns -1.
func (u *UDPConn) FD() int { return -1 }

// LocalAddr returns the zero AddrPort.
func (u *UDPConn) LocalAddr() netip.AddrPort { return netip.AddrPort{} }

// RemoteAddr returns the zero AddrPort.
func (u *UDPConn) RemoteAddr() netip.AddrPort { return netip.AddrPort{} }

// SetContext does nothing.
func (u *UDPConn) SetContext(any) {}

// Context returns nil.
func (u *UDPConn) Context() any { return nil }

// PauseRecv does nothing.
func (u *UDPConn) PauseRecv() {}

// ResumeRecv does nothing.
func (u *UDPConn) ResumeRecv() {}

// WriteTo returns an error wrapping errors.ErrUnsupported.
func (u *UDPConn) WriteTo([]byte, netip.AddrPort, uint64) error { return errUnsupported }

// SendLeaseTo returns an error wrapping errors.ErrUnsupported.
func (u *UDPConn) SendLeaseTo(bufring.Lease, []byte, netip.AddrPort, uint64) error {
	return errUnsupported
}

// Close does nothing.
func (u *UDPConn) Close(error) {}
