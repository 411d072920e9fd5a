// Package rtpcheck validates RTP and RTCP datagrams and keeps per-stream
// statistics for the RTP relay example, independently of the transport that
// moves the datagrams (Go's net package or ringwire's netio).
//
// Check (and Parse) classify a datagram as RTP or RTCP, demultiplexing by
// RFC 5761 §4 (second octet 192..223 is RTCP), and validate it as RFC 3550
// §5.1, §6.1 and A.2 describe, without allocating. A malformed datagram yields
// a Reason, so that a relay counts drops by reason in a Drops table.
//
// Stream keeps RFC 3550 receiver statistics (A.1 sequence tracking with wrap
// counting, A.3 expected and lost, A.8 interarrival jitter) plus reordering,
// duplicates and the relay's added latency as a log-bucketed Histogram; its
// Snapshot marshals to JSON and prints as one line.
//
// # Ownership
//
// Check and Parse keep no reference to the datagram: Packet holds offsets and
// Payload re-slices the caller's bytes, so the caller may reuse its buffer
// (a provided buffer, a pooled slice) as soon as it has the Packet.
//
// # Concurrency
//
// Check, Parse and ClockRate are pure. A Stream is updated by one goroutine
// or event-loop thread (Receive, Sent, Drop) and read by any goroutine
// (Snapshot): an internal mutex, uncontended on the update path, makes the
// snapshot consistent. A Histogram is not safe for concurrent use.
package rtpcheck
