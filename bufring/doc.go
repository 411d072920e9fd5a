// Package bufring owns the memory that ringwire's event loops hand to the kernel:
// provided buffer rings that receives land in, and a registered arena that large
// sends leave from. It tracks who holds each piece of that memory.
//
// # Provided buffer rings
//
// A [Group] is one provided buffer ring (IORING_REGISTER_PBUF_RING, Linux 5.19):
// one off-heap slab (mmap, huge pages when asked for and available) cut into
// Count buffers of Size bytes, registered under a buffer group id. A multishot
// receive prepared with the group id (ring.SQE.PrepRecvMultishot,
// PrepRecvBundle) lets the kernel pick buffers from it; every CQE of such a
// request is given to [Group.Lease], which turns the buffer the CQE names into a
// [Lease]: a small value holding a view of the bytes received. Releasing the lease
// hands the buffer back to the kernel. Returned buffers are published in batches
// with one store-release of the ring tail per batch (liburing
// io_uring_buf_ring_add + io_uring_buf_ring_advance); [Group.Flush] publishes the
// batch now, and a release publishes at once when the kernel holds fewer than
// Config.LowWater buffers. A Config.Lazy group publishes only LowWater+Batch
// buffers at first and adds buffers it never published only when the kernel runs
// low, so memory its load never needed is never touched.
//
// Bundle CQEs (IORING_RECVSEND_BUNDLE, Linux 6.10) cover several buffers: the
// CQE names the first buffer, and its res bytes span the ring entries that follow
// the position that buffer was published at. Group.Lease walks them and returns
// one Lease covering all of them; [Lease.Segments] iterates the views.
//
// With Config.Incremental and a kernel that supports IOU_PBUF_RING_INC (Linux
// 6.12), each CQE consumes only res bytes from the current buffer, starting where
// the previous CQE for that buffer stopped; while the CQE carries
// IORING_CQE_F_BUF_MORE the kernel keeps filling the buffer, so it goes back to
// the ring only after a CQE without F_BUF_MORE has arrived and every lease on it
// is released. Several leases may then share one buffer. The offset each CQE
// starts at is tracked per buffer, so CQEs of one group must be decoded in the
// order the ring posted them (as a loop that reaps its CQ in order does).
//
// # Exhaustion
//
// ENOBUFS is back-pressure, not an error: when a multishot receive finds the ring
// empty its last CQE carries -ENOBUFS and no F_MORE. Group.Lease returns
// [ErrNoBuffers] for it (errors.Is(err, syscall.ENOBUFS) holds), counts the event
// in [Stats].NoBuffers and remembers that a receive is waiting. A bundle
// receive instead stops with a data CQE lacking F_MORE once the ring is empty;
// Group.Lease counts that in [Stats].DryEnds. The loop releases
// leases, calls [Group.Flush], and re-arms the receive once [Group.Available] is
// non-zero; [Group.Starved] reports whether any receive ended that way since
// the last [Group.Rearmed].
//
// # Fixed buffers
//
// An [Arena] is one off-heap slab with a size-class allocator ([Class]) whose
// [FixedLease]s are sent with SEND_ZC (ring.SQE.PrepSendZCFixed) or written with
// WRITE_FIXED. [RegisterFixed] registers arenas and groups as the ring's fixed
// buffers (IORING_REGISTER_BUFFERS), each slab as one buffer index, so a buffer
// received into a Group can be forwarded with SEND_ZC without a copy
// ([Lease.FixedIndex], the pattern of liburing's examples/proxy.c).
//
// # Ownership
//
// Every buffer is held by exactly one party at a time: the kernel (published in
// the ring), the caller (leased), or the group's pending batch (released, not yet
// published). A lease carries a reference; [Lease.Retain] and [FixedLease.Retain]
// add one, for example for a SEND_ZC in flight, and each Release drops one. The
// buffer is free when the last reference is dropped. A zero-copy send holds its
// reference until the send's final CQE and its notification CQE: [SendDone]
// reports which CQE that is. [Group.InUse], [Group.Available], [Arena.InUse] and
// [Arena.Available] expose the counts, so leaks show.
//
// Releasing a lease whose buffer is no longer leased (released twice, or a lease
// from a buffer since republished) panics with a message naming the group and
// buffer id ("bufring: group 3 buffer 17 released twice"), since it means two
// owners believed they held the same memory. With incremental consumption several
// leases share a buffer, and a double release is caught when releases on that
// buffer outnumber its leases. Views must not be used after Release; the memory
// stays mapped until Close, so a stale view reads other data rather than faulting.
//
// A Lease's views stay valid until its Release. Group.Close and Arena.Close unmap
// the slab: call them after every lease is released and after the ring's buffers
// are unregistered or the ring is closed.
//
// # Concurrency
//
// A Group or Arena belongs to one event loop and is used only from that loop's
// thread; nothing in this package locks. Leases, releases and CQE decoding
// allocate nothing. NewGroup, RegisterFixed and Close call io_uring_register and,
// on a ring created with SINGLE_ISSUER, must run on the ring's thread.
//
// # Sizing
//
// Buffers are shared by every connection of a loop, so their memory follows the
// bytes in flight (received but not yet consumed), not the connection count. The
// defaults (256 buffers of 16 KiB, 4 MiB per loop) hold about 3 ms of a 10 Gbit/s
// stream, which covers a loop that consumes its CQEs every millisecond with
// room for bursts; raise Count for many slow consumers and Size for bulk
// streams. Registering memory as fixed buffers pins it and counts against
// RLIMIT_MEMLOCK (unless the process has CAP_IPC_LOCK); an ENOMEM from
// registration is returned as an error naming RLIMIT_MEMLOCK and the bytes needed.
package bufring
