// Package ringrelay is the RTP relay example's ringwire transport: every
// socket is a netio handler-API UDP socket (netio.ListenConfig.ListenUDP)
// driven by an io_uring event loop, receiving with one multishot recvmsg into
// the loop's provided buffer ring. The relay logic (validation, latching,
// statistics) is package relay's; ringrelay only moves datagrams.
//
// A datagram is forwarded without a copy: OnPacket validates the view of the
// provided buffer (rtpcheck, no allocation), keeps the buffer's lease
// (netio.Data.Keep), takes one extra reference per further destination
// (bufring.Lease.Retain) and hands the lease to each egress socket's
// SendLeaseTo; the buffer goes back to the ring when the last send
// completes. The time from arrival to that send's completion is recorded in
// the leg's latency histogram. Malformed datagrams are counted by reason and
// their buffer is returned at once; a send that cannot be queued
// (netio.ErrWriteQueueFull) is counted as SendFailed.
//
// Sessions are spread over Config.Loops event loops (stream i on loop
// i mod Loops); a session's ingress and egress sockets share one loop, so a
// lease never leaves the loop that owns its buffer.
//
// # Ownership
//
// A Relay owns its runtimes (one single-loop runtime.Runtime per loop) and
// every socket on them. Pre-bound Config.Ingress sockets are closed and their
// addresses bound again by netio (netio cannot adopt a descriptor). A
// received buffer is owned by the relay from Keep until its last send
// completes.
//
// # Concurrency
//
// Each session's datagrams are handled on its loop's thread. New and Close
// may be called from any goroutine; Close is idempotent and joins the loops.
// Report, Plan, Stats and IngressAddrs may be called from any goroutine.
package ringrelay
