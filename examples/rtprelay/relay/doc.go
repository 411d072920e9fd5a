// Package relay holds the transport-independent part of the RTP relay
// example: its Config and command-line flags, the Plan of sessions (one per
// relayed port) with their latching peers and per-leg statistics, the
// per-datagram decisions (AcceptForward, AcceptReverse) and the statistics
// Report. A transport (Go's net package in gorelay, ringwire's netio in the
// relay's main) only binds sockets, moves datagrams and calls these.
//
// Topology: stream i receives on Config.IngressAddr(i) and sends every valid
// datagram to Config.EgressAddr(i, d) of each destination d, from one egress
// socket per (stream, destination). With Config.Latch, datagrams arriving at
// that egress socket go back to the stream's latched ingress peer, from the
// ingress socket (symmetric RTP, RFC 4961).
//
// # Ownership
//
// The Accept methods read the datagram and keep no reference to it. A Plan
// owns no sockets.
//
// # Concurrency
//
// A Session's forward direction (AcceptForward, Fwd's Sent and Drop) is used
// by one goroutine or event-loop thread at a time, and each Dest's reverse
// direction by one; they may be different ones. Peer addresses are atomic.
// Report and PrintEvery may be called from any goroutine.
package relay
