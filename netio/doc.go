// Package netio is ringwire's TCP and UDP layer: two faces over the same
// io_uring event loops (package runtime).
//
// # The net face
//
// Listen, Dial, DialContext and ListenPacket mirror package net for "tcp",
// "tcp4", "tcp6", "udp", "udp4" and "udp6" and return net.Listener, net.Conn
// and net.PacketConn values with the method sets of *net.TCPListener,
// *net.TCPConn and *net.UDPConn (SyscallConn, File, ReadMsgUDP, WriteMsgUDP,
// SetKeepAliveConfig and the rest), so a service switches with one import
// change. ListenConfig and Dialer take a runtime, a *Config, and package
// net's Control, KeepAlive and KeepAliveConfig, with net's semantics and
// defaults (keep-alive on, 15 s).
//
// Each net-face socket is made with socket(2) (SOCK_NONBLOCK|SOCK_CLOEXEC,
// plain TCP: since Go 1.24 net.Listen makes MPTCP sockets where the kernel
// has MPTCP, and their connections refuse SEND_ZC) and handed to Go's poller
// through os.NewFile. Read receives straight into the caller's slice from the
// calling goroutine, Write sends from it, and a call that finds the socket
// empty (or full) parks in the poller, exactly as package net's calls do:
// the deadline is checked before the system call, Close evicts waiters, and
// the fd number cannot be reused under a call in progress (SyscallConn's
// Control, Read and Write run under the same lock). Unread data stays in the
// socket's own receive buffer, where TCP's flow control pushes back on the
// sender: a connection whose application does not read holds no memory of
// the loop's. ReadFrom, WriteTo and io.Copy between stream sockets splice
// (splice(2) through a pipe), and from a regular file use sendfile(2).
// Errors have package net's shapes: *net.OpError wrapping *os.SyscallError,
// net.ErrClosed or os.ErrDeadlineExceeded, and a bare io.EOF.
//
// One thing the net face does that package net cannot: on a busy socket set
// (at least 16 parked readers whose last read returned data), a TCP Read
// whose previous read drained the socket does not read again only to be
// told EAGAIN. It parks on the set's readiness mirror, an epoll set of
// netio's own, and the mirror's harvester goroutine reads for all the
// parked readers it finds readable in one io_uring_enter, into each
// reader's own slice (Stats.MirrorReads counts these). SyscallConn or
// File, Close, a deadline passed, the peer's FIN, or any read that could
// not prove the socket drained sends a Read through Go's poller as before.
// A Read with a read deadline parks with it (the mirror's one timer sends
// it back to the poller by then), and a Read that a deadline ended before
// it took anything (net/http's aborted background read) changes nothing,
// so net/http's next Read parks there too. See
// docs/decisions/2026-12-03-net-face-reads-through-go-poller.md.
//
// A net-face socket opened with a runtime (ListenConfig.Runtime,
// Dialer.Runtime) belongs to one of its loops, and one opened without to
// the package's default set: when the runtime closes (Runtime.Close), or
// CloseDefault runs, its sockets close, and their blocked and later calls
// return net.ErrClosed. docs/decisions has why the net face no longer reads
// through the loops.
//
// Where io_uring is unavailable (ring.Available says why), or when
// Config.ForceFallback is set, the net face returns package net's own objects
// and logs the reason once; FallbackReason tells a program which path it got
// and why.
//
// What cannot be matched: a library that type-asserts a concrete
// *net.TCPConn or *net.UDPConn (grpc's TCP_USER_TIMEOUT setting, for one)
// skips the net face's connections, since Go has no way to make another
// type one of those. Set such options yourself through SyscallConn, or
// accept with AcceptTCP, which returns a *net.TCPConn that package net runs.
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
// An empty Send, Write or SendLease is a no-op. A callback that panics closes
// its socket with a *PanicError, as if it had called Close, and the loop
// serves the others. A socket whose SO_LINGER makes close(2) wait is closed by
// a goroutine the loop's shutdown joins, never on the loop thread. A call that
// would wait for a loop (Server.Close, DialHandler, Serve over several loops)
// returns an error wrapping ErrLoopThread when made on a loop thread. There
// is no fallback for this face: without io_uring it returns an error.
//
// Listeners spread connections over the loops with one SO_REUSEPORT socket per
// loop (AcceptReusePort, the default) or one acceptor handing sockets to the
// other loops with IORING_OP_MSG_RING (AcceptHandoff). Accept failing with
// EMFILE, ENFILE, ENOBUFS or ENOMEM backs off (1 ms doubling to 500 ms)
// rather than spinning.
//
// # The default runtime
//
// The handler API's zero-value ListenConfig and Dialer use a runtime started
// on first use (DefaultRuntime). The net face's package functions and
// zero-value ListenConfig and Dialer start none: their sockets need no loop.
// CloseDefault closes the net-face sockets opened without a runtime and the
// default runtime, joining its goroutines; programs that never call it keep
// them until exit. Tests that use goleak call CloseDefault first.
//
// # Ownership
//
// A Conn or UDPConn belongs to its loop: its methods are loop thread only,
// and its Handler runs there. A Data's view belongs to the loop until the
// callback returns; Data.Keep transfers the lease to the handler, which
// releases it on the same loop or passes it to SendLease/SendLeaseTo, which
// release it when the send completes. Bytes given to Conn.Send stay the
// caller's responsibility until OnSent. The net face owns its sockets and
// never hands caller memory to the kernel beyond the system call that uses
// it; Close releases the socket.
//
// # Concurrency
//
// The net face is safe for concurrent use as the net.Conn, net.Listener and
// net.PacketConn contracts require: concurrent Reads (and Writes) are
// serialized, and every method may be called from any goroutine. The handler
// face is not: use Loop().Post to reach a Conn from another goroutine.
package netio
