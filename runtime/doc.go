// Package runtime runs ringwire's event loops: one locked OS thread per loop,
// each driving its own io_uring, its buffer groups and its fixed-buffer arena.
// It knows rings, buffers, operations and timers; it never knows TCP or UDP
// (that is package netio, built on this API).
//
// # Shape
//
// New starts Config.Loops loops (default: one per CPU this process may use).
// Each loop is a goroutine locked to its OS thread, optionally pinned to a CPU,
// that creates its ring on that thread with SINGLE_ISSUER|DEFER_TASKRUN (or
// COOP_TASKRUN|TASKRUN_FLAG where the kernel lacks DEFER_TASKRUN, as
// ring.ProbeKernel says; never by kernel version). One iteration of a loop:
//
//  1. run the Tasks other goroutines posted (Loop.Post);
//  2. advance the timer wheel and fire due timers;
//  3. submit every SQE prepared so far and wait for completions, in one
//     io_uring_enter (the wait is skipped while work is queued);
//  4. dispatch each CQE to the Handler of the operation that produced it.
//
// # Operations
//
// An operation is started on the loop thread with NewOp, which returns a zeroed
// SQE whose user_data already names an op record (an index into the loop's
// table plus a generation; never a Go pointer), and the OpID that is that
// user_data. The caller fills the SQE with a ring.(*SQE).Prep* helper (they
// keep UserData). Every CQE carrying the OpID is passed to the Handler given
// to NewOp, with the tag given to NewOp. A CQE without IORING_CQE_F_MORE is
// the operation's final CQE: after the handler returns, the record is freed and
// its generation bumped, so a stale OpID matches nothing. Multishot operations
// therefore stay live until their final CQE, and SEND_ZC until its F_NOTIF
// CQE. An SQE obtained from NewOp is always submitted: to abandon it, leave it
// as it is (a NOP) or PrepNop it.
//
// Cancel submits an IORING_OP_ASYNC_CANCEL for an operation; its record and its
// pinned memory stay until the kernel's final CQE for it, which the handler
// still receives (usually with -ECANCELED).
//
// # Ownership
//
// A loop owns its ring, its eventfd, its buffer group and arena
// (Config.Buffers and Config.Arena, created on the loop thread: Loop.Group,
// Loop.Arena), the resources handed to it with Own, and every op record. Memory an in-flight
// SQE points to must be off-heap (the arena, the buffer rings) or pinned with
// Loop.Pin until the final CQE (Loop.Scratch gives each operation 64 off-heap
// bytes for a sockaddr or a timespec). Runtime.Close cancels every in-flight operation, waits for the kernel
// to let go of each (bounded), closes every resource and fd the loops own,
// unmaps all memory and joins every goroutine New started. If the kernel
// still holds an operation when the bound is reached, Close reports it and
// never releases the memory that operation may still write to.
//
// # Concurrency
//
// Methods documented "loop thread only" (NewOp, Cancel, Pin, Scratch, Timer,
// StopTimer, NewMailbox, CloseMailbox, MsgRing, Ring, Own, Group, Arena,
// CountRearm, InFlight, ReportPanic)
// must be called from a Handler or Task running on that loop, or from
// Config.Setup (OnLoopThread tells). Everything else (Post, Stats, ID, RingFD,
// Closing, Logger, OnLoopThread, and
// all Runtime methods) may be called from any goroutine. Post is lock-free
// (a bounded multi-producer queue, with a mutex-guarded overflow list used only
// while the queue is full) and allocates nothing when the Task is a pointer.
// A producer makes a wakeup syscall only when the loop has announced it is
// about to sleep; while the loop is busy, posting costs a few atomic
// operations and no syscall.
// Waiter is the matching primitive for the way back: a goroutine parks in
// Wait, the loop calls Wake from a Handler.
// docs/decisions/2026-11-26-hand-off-doorbell-and-parking.md records the
// alternatives measured for both directions and why these won.
//
// # Timers
//
// Loop.Timer schedules a handler call on a hashed timer wheel (Config.TimerTick
// resolution, default 1ms). The wheel is driven by the ring: while timers are
// pending, the loop's single wait carries a timeout to the first tick that
// fires one (IORING_ENTER_EXT_ARG; at most an hour), so thousands of deadlines
// cost no Go timer, no extra SQE and no CQE each, and a distant deadline
// costs an idle loop no wakeups. A timer fires no earlier than its time and normally
// within one tick after it. A fired timer calls its Handler with a synthetic
// CQE: UserData is the TimerID, Res is -ETIME.
//
// # Panics
//
// A panic in a Handler or Task is recovered on the loop, counted in
// Stats.Panics and logged (the first few with their stack, then sampled); the
// loop goes on with its next completion or task. The op record of a panicking
// final completion is still freed. The runtime itself panics only on a broken
// internal invariant.
//
// # Spreading work
//
// Loop.MsgRing posts a CQE into another loop's ring (IORING_OP_MSG_RING),
// addressed to a mailbox the target created with NewMailbox; with NewOp and
// ring.(*SQE).PrepMsgRingFD a loop can also pass a fixed file. netio decides
// between one SO_REUSEPORT listener per loop and one acceptor passing
// connections with MSG_RING, and measures both.
package runtime
