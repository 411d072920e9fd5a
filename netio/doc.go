// Package netio is ringwire's TCP and UDP layer: two faces over the same
// io_uring event loops (package runtime).
//
// # The net face
//
// Listen, Dial, DialContext and ListenPacket mirror package net for "tcp",
// "tcp4", "tcp6", "udp", "udp4" and "udp6" and return net.Listener, net.Conn
// and net.PacketConn values, so a service switches with one import change.
// ListenConfig and Dialer take a runtime and a *Config. Read copies from a
// provided buffer into the caller's slice (caller memory is never handed to the
// kernel for receiving); Write first tries send(2) from the calling goroutine,
// then pins what is left and waits for a ring SEND. net.Conn Writes never use
// SEND_ZC: its notification comes only once the peer acknowledges the data,
// and against a peer that stops reading no deadline or Close could take the
// caller's memory back without resetting the connection. Deadlines wake and cancel pending
// operations, whether set before, during or after they block; Close unblocks
// Read and Write. Errors have the stdlib's shapes: *net.OpError wrapping
// *os.SyscallError, net.ErrClosed or os.ErrDeadlineExceeded, and a bare io.EOF.
//
// Sockets are created with socket(2) directly (SOCK_NONBLOCK|SOCK_CLOEXEC,
// plain TCP): since Go 1.24 net.Listen makes MPTCP sockets where the kernel has
// MPTCP, and their connections refuse SEND_ZC. A SEND_ZC refused with
// EOPNOTSUPP is retried as a plain send and the connection stops using it.
//
// Where io_uring is unavailable (ring.Available says why), or when
// Config.ForceFallback is set, the net face returns package net's objects and
// logs the reason once.
//
// # The handler face
//
// ListenConfig.Serve, Dialer.DialHandler, ListenConfig.ListenUDP and
// Dialer.DialUDP run a Handler or PacketHandler on the loop threads: received
// bytes arrive as views into provided-buffer memory (Data), valid during the
// callback or, after Data.Keep, until the lease is released. Receives are
// multishot and re-armed after ENOBUFS (once buffers return) and after any
// final completion. Conn.Write copies into the loop's registered arena;
// Conn.Send sends caller memory; Conn.SendLease and UDPConn.SendLeaseTo send a
// received buffer on without a copy (fixed-buffer SEND_ZC when large enough).
// SEND_ZC is chosen above Config.SendZCThreshold and abandoned for a peer
// whose notifications say the kernel copied anyway (IORING_SEND_ZC_REPORT_USAGE),
// counted in Stats.ZCAbandoned; Conn.Close with a SEND_ZC whose data the
// peer has not acknowledged a second later resets the connection, so that
// the kernel gives the memory back. Each connection's send queue is bounded by
// Config.WriteHighWater (ErrWriteQueueFull, then WritableHandler.OnWritable).
// There is no fallback for this face: without io_uring it returns an error.
//
// Listeners spread connections over the loops with one SO_REUSEPORT socket per
// loop (AcceptReusePort, the default) or one acceptor handing sockets to the
// other loops with IORING_OP_MSG_RING (AcceptHandoff). Accept failing with
// EMFILE, ENFILE, ENOBUFS or ENOMEM backs off (1 ms doubling to 500 ms)
// rather than spinning.
//
// # The default runtime
//
// The package functions and zero-value ListenConfig and Dialer use a runtime
// started on first use (DefaultRuntime). It runs until CloseDefault, which
// closes every socket on it and joins its goroutines; programs that never call
// it keep the loops until exit. Tests that use goleak call CloseDefault first.
//
// # Ownership
//
// A Conn or UDPConn belongs to its loop: its methods are loop thread only,
// and its Handler runs there. A Data's view belongs to the loop until the
// callback returns; Data.Keep transfers the lease to the handler, which
// releases it on the same loop or passes it to SendLease/SendLeaseTo, which
// release it when the send completes. Bytes given to Conn.Send stay the
// caller's responsibility until OnSent. The net face owns its sockets and
// leases; Close releases them.
//
// # Concurrency
//
// The net face is safe for concurrent use as the net.Conn, net.Listener and
// net.PacketConn contracts require: concurrent Reads (and Writes) are
// serialized, and every method may be called from any goroutine. The handler
// face is not: use Loop().Post to reach a Conn from another goroutine.
//
// The loop thread never takes a lock the net face's goroutines hold: received
// data reaches Read and ReadFrom through a single-producer single-consumer
// queue (leaseq), writes hand their buffer over in the task they post, and
// results come back through one-token channels.
package netio
