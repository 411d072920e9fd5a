package netio

import (
	"context"
	"net"
	"syscall"
	"time"

	"github.com/ringwire/ringwire/runtime"
)

// ListenConfig creates listeners on a runtime's loops; the zero value uses
// the default runtime (see DefaultRuntime) and default Config.
type ListenConfig struct {
	// Runtime runs the sockets; nil means the default runtime.
	Runtime *runtime.Runtime
	// Loop, if set, is the loop ListenUDP, FileUDP and ListenPacket put their
	// socket on, instead of the next loop of Runtime in turn (so that sockets
	// that forward to each other share a loop). It must be one of Runtime's
	// loops when Runtime is set; with Runtime nil it is used as is. TCP
	// listeners spread over all the loops and ignore it.
	Loop *runtime.Loop
	// Config holds the options; nil means defaults.
	Config *Config
	// Control, KeepAlive and KeepAliveConfig are net.ListenConfig's, with its
	// semantics, for the net face's listeners: Control runs after the socket
	// is created and before it is bound; accepted connections get keep-alive
	// probes (15 s) unless KeepAlive is negative.
	Control         func(network, address string, c syscall.RawConn) error
	KeepAlive       time.Duration
	KeepAliveConfig net.KeepAliveConfig
}

// Dialer connects on a runtime's loops; the zero value uses the default
// runtime and default Config.
type Dialer struct {
	// Runtime runs the sockets; nil means the default runtime.
	Runtime *runtime.Runtime
	// Loop, if set, is the loop every socket this Dialer opens runs on
	// (Dial, DialContext, DialHandler, DialUDP), instead of the next loop of
	// Runtime in turn: a proxy dials its upstream on the loop of the
	// connection it serves, so that the two forward to each other without a
	// hand-off. It must be one of Runtime's loops when Runtime is set; with
	// Runtime nil it is used as is.
	Loop *runtime.Loop
	// Config holds the options; nil means defaults.
	Config *Config
	// Timeout and Deadline bound the connect, as net.Dialer's do; zero
	// means none beyond the context's.
	Timeout  time.Duration
	Deadline time.Time
	// LocalAddr is the address to bind before connecting, as
	// net.Dialer.LocalAddr (a *net.TCPAddr or *net.UDPAddr); nil chooses one.
	LocalAddr net.Addr
	// KeepAlive and KeepAliveConfig are net.Dialer's: TCP connections get
	// keep-alive probes (15 s) unless KeepAlive is negative.
	KeepAlive       time.Duration
	KeepAliveConfig net.KeepAliveConfig
	// Control and ControlContext are net.Dialer's: called after the socket
	// is created and before it connects (ControlContext wins when both are set).
	Control        func(network, address string, c syscall.RawConn) error
	ControlContext func(ctx context.Context, network, address string, c syscall.RawConn) error
}

// Listen announces on the local network address, like net.Listen, for "tcp",
// "tcp4" and "tcp6", on the default runtime.
func Listen(network, address string) (net.Listener, error) {
	var lc ListenConfig
	return lc.Listen(context.Background(), network, address)
}

// Dial connects to address, like net.Dial, for "tcp", "tcp4", "tcp6", "udp",
// "udp4" and "udp6", on the default runtime.
func Dial(network, address string) (net.Conn, error) {
	var d Dialer
	return d.DialContext(context.Background(), network, address)
}

// DialContext is Dial with a context bounding the connect.
func DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var d Dialer
	return d.DialContext(ctx, network, address)
}

// ListenPacket announces on the local address, like net.ListenPacket, for
// "udp", "udp4" and "udp6", on the default runtime.
func ListenPacket(network, address string) (net.PacketConn, error) {
	var lc ListenConfig
	return lc.ListenPacket(context.Background(), network, address)
}
