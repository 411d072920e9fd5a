package netio

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/ringwire/ringwire/bufring"
)

// Handler receives the events of handler-API TCP connections. Every method
// is called on the connection's loop thread and must not block. A method that
// panics closes its connection with a *PanicError (the loop goes on).
type Handler interface {
	// OnOpen is called once for a new connection, accepted or dialed, before
	// any data. Receiving starts when it returns.
	OnOpen(c *Conn)
	// OnData is called for each receive completion. d's bytes are a view of
	// the loop's provided-buffer memory, valid until OnData returns unless the
	// handler calls d.Keep and so takes the buffer's lease.
	OnData(c *Conn, d *Data)
	// OnClose is called once when the connection is closed and its socket is
	// gone, with the reason: nil for Close(nil), io.EOF when the peer closed
	// and the handler is not a PeerCloseHandler, a *PanicError when a
	// callback panicked, or the error (an *os.SyscallError for a kernel error
	// such as ECONNRESET).
	OnClose(c *Conn, err error)
}

// PeerCloseHandler is implemented by a Handler that wants half-closed
// connections: OnPeerClose is called when the peer shut down its sending side
// (FIN); the connection stays open for sending until Close. Without it the
// connection is closed with io.EOF once its queued sends are done.
type PeerCloseHandler interface {
	OnPeerClose(c *Conn)
}

// SendHandler is implemented by a Handler that wants to know when each
// Send, SendLease or Write has completed: OnSent gets the tag given with it
// and nil, or the error that ended it (net.ErrClosed if the connection was
// closed first).
type SendHandler interface {
	OnSent(c *Conn, tag uint64, err error)
}

// WritableHandler is implemented by a Handler that wants to know when a
// connection whose queue went above Config.WriteHighWater has drained below
// half of it: the moment to resume writing after ErrWriteQueueFull.
type WritableHandler interface {
	OnWritable(c *Conn)
}

// Data is one receive completion: a view of provided-buffer memory. The view
// is valid until the callback returns, unless Keep is called. A Data is
// reused for the next completion: do not keep the *Data itself.
type Data struct {
	lease     bufring.Lease
	view      []byte
	from      netip.AddrPort
	truncated bool
	kept      bool
}

// Bytes returns the received bytes, a view of the provided buffer.
func (d *Data) Bytes() []byte { return d.view }

// Len returns the number of bytes received.
func (d *Data) Len() int { return len(d.view) }

// Keep hands the buffer's lease to the caller, who must Release it on this
// loop's thread once done (or pass it to SendLease, which releases it); the
// view from Bytes stays valid until then.
func (d *Data) Keep() bufring.Lease {
	d.kept = true
	return d.lease
}

// From returns the source address of a datagram (UDP only).
func (d *Data) From() netip.AddrPort { return d.from }

// Truncated reports that the datagram was larger than the buffer and its
// tail was discarded (MSG_TRUNC; UDP only).
func (d *Data) Truncated() bool { return d.truncated }

// PacketHandler receives the events of a handler-API UDP socket, on its
// loop thread. A method that panics closes the socket with a *PanicError.
type PacketHandler interface {
	// OnPacket is called for each datagram. d's bytes are the payload, a view
	// of provided-buffer memory valid until OnPacket returns unless d.Keep is
	// called; d.From is the source and d.Truncated reports MSG_TRUNC.
	OnPacket(u *UDPConn, d *Data)
	// OnError is told of errors the socket reports without closing, such as
	// ECONNREFUSED on a connected socket after an ICMP port unreachable.
	// Receiving goes on.
	OnError(u *UDPConn, err error)
	// OnClose is called once when the socket is closed, with the reason given
	// to Close (a *PanicError when a callback panicked).
	OnClose(u *UDPConn, err error)
}

// PacketSendHandler is implemented by a PacketHandler that wants to know
// when each send completes.
type PacketSendHandler interface {
	OnSent(u *UDPConn, tag uint64, err error)
}

// PanicError is the reason OnClose reports for a Conn or UDPConn closed
// because one of its handler's callbacks panicked. netio recovers the panic
// where it calls the callback, reports it to the loop (runtime Stats.Panics,
// and the loop's logger with the stack), and closes the socket as though the
// callback had called Close with the PanicError and returned: the loop goes
// on serving every other socket, and a listener keeps accepting.
type PanicError struct {
	Callback string // the callback that panicked: "OnOpen", "OnData", ...
	Value    any    // the value it panicked with
}

// Error names the callback and the value it panicked with.
func (e *PanicError) Error() string {
	return fmt.Sprintf("netio: handler %s panicked: %v", e.Callback, e.Value)
}

// Unwrap returns the panic's value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// ErrLoopThread is wrapped by the error of a handler-API call that would wait
// for an event loop, made on a loop thread (in a Handler callback or a
// runtime.Task) where that wait could never end: Server.Close, and
// ListenConfig.Serve, ListenUDP and Dialer.DialUDP aimed at another loop.
// Make the call from another goroutine (go s.Close()).
var ErrLoopThread = errors.New("netio: call would wait for an event loop from a loop thread")
