// Package ring is ringwire's binding to Linux io_uring: ring setup and
// teardown, the submission and completion queues, one preparation helper per
// operation ringwire uses, registration (buffers, files, provided buffer rings,
// restrictions, NAPI) and a kernel probe. It is a binding and nothing more: no
// event loop, no buffer pool, no sockets. Those live in bufring, runtime and
// netio.
//
// Names follow liburing: [Ring.GetSQE], [Ring.Submit], [Ring.SubmitAndWait],
// [Ring.PeekBatch] and [Ring.CQAdvance] (io_uring_peek_batch_cqe and
// io_uring_cq_advance), and (*SQE).PrepXxx for io_uring_prep_xxx, each naming
// the liburing function it mirrors and the first kernel that has it. A typical
// round trip:
//
//	r, err := ring.New(nil)
//	if err != nil { ... } // errors.Is(err, ring.ErrUnavailable): no io_uring here
//	defer r.Close()
//	sqe := r.GetSQE()
//	sqe.PrepRecv(fd, buf, 0)
//	sqe.UserData = 42
//	r.SubmitAndWait(1)
//	var cqes [16]ring.CQE
//	n := r.Reap(cqes[:])
//	// cqes[:n]: UserData 42, Res = bytes received or -errno (CQE.Err).
//
// [Available] says whether io_uring can be used at all, and why not (kernel
// too old, a seccomp profile, kernel.io_uring_disabled); [ProbeKernel] says
// which operations, setup flags and registrations this kernel has.
//
// On other platforms the package builds, and [New], [Available] and
// [ProbeKernel] return an error wrapping [errors.ErrUnsupported].
//
// # Ownership of memory the kernel sees
//
// The SQ ring, the CQ ring and the SQE array are mmap'd from the ring fd and
// unmapped by [Ring.Close]; the garbage collector never sees them. A *SQE from
// GetSQE is valid until the next Submit; a CQE is copied out of the ring by
// PeekBatch/Reap, so the copy stays valid after CQAdvance.
//
// Every pointer a Prep helper stores in an SQE (buffer, sockaddr, msghdr,
// iovec, timespec, futex word, fd array) is read by the kernel when the SQE is
// submitted and, for operations that complete asynchronously, at any time until
// their final CQE; for SEND_ZC and SENDMSG_ZC until the notification CQE
// (CQE.Notif). The caller owns that memory and keeps it alive and unmoved until
// then: off-heap (mmap) or pinned with runtime.Pinner. Go's garbage collector
// does not move heap objects today, but it may free them, and a stack-allocated
// value moves when its goroutine's stack grows: never hand the kernel the
// address of a local variable that outlives the call that submits it.
//
// Registered buffers ([Ring.RegisterBuffers]) and provided buffer rings
// ([Ring.RegisterBufRing]) must stay mapped until they are unregistered or the
// ring is closed. Registration arguments themselves are only read during the
// io_uring_register call.
//
// user_data is opaque to the kernel and to this package: never put a Go pointer
// in it (the garbage collector cannot see it there); use an index plus a
// generation into a table of operation records.
//
// # Concurrency: single issuer
//
// A [Ring] is not safe for concurrent use: one goroutine submits and reaps. A
// ring created with [SetupSingleIssuer] (and [SetupDeferTaskrun], which requires
// it) is further bound to one OS thread: the kernel rejects submissions (and,
// with DEFER_TASKRUN, waits) from any other thread with EEXIST. Call
// runtime.LockOSThread before [New] and create, drive, register on and close
// the ring from that goroutine. For such rings New also registers the ring fd
// (IORING_REGISTER_RING_FDS), which lives in that thread's io_uring context;
// closing the ring from another thread would leave that registration, and the
// ring's memory, held until the thread exits.
//
// The only operations meant to cross rings are [SQE.PrepMsgRing] and
// [SQE.PrepMsgRingFD], which post to another ring through the kernel; they need
// no lock on the target ring.
//
// Every wait goes through unix.Syscall6 (never RawSyscall), so a goroutine
// blocked in io_uring_enter hands its P to another thread.
package ring
