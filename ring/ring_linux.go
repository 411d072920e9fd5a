//go:build linux

package ring

// Memory shared with the kernel: the SQ ring, the CQ ring and the SQE array are
// mapped from the ring fd with MAP_SHARED|MAP_POPULATE and never touched by the Go
// garbage collector. The head/tail words are accessed with sync/atomic, whose loads
// and stores are sequentially consistent on every Go port and therefore at least as
// strong as liburing's io_uring_smp_load_acquire / io_uring_smp_store_release
// (include/liburing/barrier.h) and, between a store and a later load, as strong
// as io_uring_smp_mb:
//
//   - SQ tail: atomic store after the SQE bytes are written (liburing
//     __io_uring_flush_sq: io_uring_smp_store_release(sq->ktail)), so the kernel
//     never sees a tail that covers an SQE still being filled.
//   - SQ head: atomic load (io_uring_smp_load_acquire(sq->khead) in
//     _io_uring_get_sqe) before reusing a slot the kernel may still be reading.
//   - SQ flags: atomic load (IO_URING_READ_ONCE(*sq->kflags)). For SQPOLL the
//     NEED_WAKEUP check must not be reordered before the tail store; liburing puts
//     io_uring_smp_mb() between them (sq_ring_needs_enter), here the seq-cst
//     store/load pair gives the same order.
//   - CQ tail: atomic load (io_uring_smp_load_acquire(cq->ktail)) before reading CQEs.
//   - CQ head: atomic store after the CQEs were copied out
//     (io_uring_cq_advance: io_uring_smp_store_release(cq->khead)), so the kernel
//     never overwrites a CQE we are still reading. Only this side writes the CQ
//     head and the SQ tail, so reading them back needs no atomic.
//   - CQ overflow and SQ dropped counters: atomic loads (liburing reads
//     *cq->koverflow and *sq->kdropped with IO_URING_READ_ONCE); they are only
//     reported, never used to order CQE or SQE accesses.
//
// The registered ring fd (IORING_REGISTER_RING_FDS) lives in the registering
// thread's io_uring task context, so it is used only for rings that are bound to
// one thread anyway (SetupSingleIssuer); see Config.NoRegisterRingFD.

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ring is one io_uring instance: its submission and completion queues.
//
// A Ring is not safe for concurrent use. With SetupSingleIssuer every submission
// must come from the thread that created it (or enabled it, with SetupRDisabled).
type Ring struct {
	fd        int
	enterFD   uintptr // fd, or the registered index with enterRegistered
	enterFlag uint32  // enterRegisteredRing when the ring fd is registered
	params    Params

	sqRing []byte
	cqRing []byte // aliases sqRing with FeatSingleMmap
	sqeMem []byte

	sqHead    *uint32
	sqTail    *uint32
	sqFlags   *uint32
	sqDropped *uint32
	sqArray   []uint32 // nil with SetupNoSQArray
	sqes      []SQE
	sqMask    uint32
	sqEntries uint32
	sqeHead   uint32 // next SQE the kernel has not been told about
	sqeTail   uint32 // next free SQE

	cqHead     *uint32
	cqTail     *uint32
	cqOverflow *uint32
	cqFlags    *uint32
	cqes       []CQE
	cqMask     uint32

	// Kept here, on the heap, so the pointers handed to io_uring_enter stay valid
	// and nothing is allocated per call.
	arg GeteventsArg
	ts  Timespec

	// After Close the head/tail pointers point here, so a use after Close finds
	// an empty, full-looking ring instead of unmapped memory.
	dead   [8]uint32
	closed bool
}

// New creates a ring. See Available for the errors that mean io_uring cannot be used.
func New(cfg *Config) (*Ring, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Ring{fd: -1}
	r.params.Flags = c.Flags | SetupCQSize
	r.params.CQEntries = c.CQEntries
	r.params.SQThreadIdle = uint32(c.SQThreadIdle / time.Millisecond)
	r.params.SQThreadCPU = c.SQThreadCPU
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(c.Entries), uintptr(unsafe.Pointer(&r.params)), 0)
	if errno != 0 {
		return nil, setupError(errno, r.params.Flags)
	}
	r.fd = int(fd)
	r.enterFD = fd
	if err := r.mmap(); err != nil {
		r.Close()
		return nil, err
	}
	if !c.NoRegisterRingFD && c.Flags&SetupSingleIssuer != 0 {
		// A registration failure (kernel < 5.18) only costs speed.
		_ = r.registerRingFD()
	}
	return r, nil
}

func setupError(errno syscall.Errno, flags SetupFlags) error {
	err := os.NewSyscallError("io_uring_setup", errno)
	switch errno {
	case unix.EINVAL:
		return fmt.Errorf("ring: setup flags %v not supported by this kernel: %w", flags, err)
	case unix.ENOSYS, unix.EPERM:
		return fmt.Errorf("%w: %w", availabilityError(errno), err)
	case unix.ENOMEM:
		return fmt.Errorf("ring: not enough locked memory for the rings (raise RLIMIT_MEMLOCK): %w", err)
	}
	return err
}

func (r *Ring) mmap() error {
	p := &r.params
	sqSize := uintptr(p.SQOff.Array) + uintptr(p.SQEntries)*4
	if p.Flags&SetupNoSQArray != 0 {
		sqSize = uintptr(p.SQOff.Array) // the kernel still reports where the array would start
		if sqSize == 0 {
			sqSize = uintptr(p.SQOff.Dropped) + 4
		}
	}
	cqSize := uintptr(p.CQOff.CQEs) + uintptr(p.CQEntries)*unsafe.Sizeof(CQE{})
	single := p.Features&FeatSingleMmap != 0
	if single && cqSize > sqSize {
		sqSize = cqSize
	}
	var err error
	r.sqRing, err = mmapRegion(r.fd, offSQRing, int(sqSize))
	if err != nil {
		return fmt.Errorf("ring: mmap SQ ring: %w", err)
	}
	if single {
		r.cqRing = r.sqRing
	} else if r.cqRing, err = mmapRegion(r.fd, offCQRing, int(cqSize)); err != nil {
		return fmt.Errorf("ring: mmap CQ ring: %w", err)
	}
	r.sqeMem, err = mmapRegion(r.fd, offSQEs, int(uintptr(p.SQEntries)*unsafe.Sizeof(SQE{})))
	if err != nil {
		return fmt.Errorf("ring: mmap SQEs: %w", err)
	}
	sq := unsafe.Pointer(&r.sqRing[0])
	r.sqHead = (*uint32)(unsafe.Add(sq, p.SQOff.Head))
	r.sqTail = (*uint32)(unsafe.Add(sq, p.SQOff.Tail))
	r.sqFlags = (*uint32)(unsafe.Add(sq, p.SQOff.Flags))
	r.sqDropped = (*uint32)(unsafe.Add(sq, p.SQOff.Dropped))
	r.sqMask = *(*uint32)(unsafe.Add(sq, p.SQOff.RingMask))
	r.sqEntries = *(*uint32)(unsafe.Add(sq, p.SQOff.RingEntries))
	if p.Flags&SetupNoSQArray == 0 {
		r.sqArray = unsafe.Slice((*uint32)(unsafe.Add(sq, p.SQOff.Array)), p.SQEntries)
		// The array is an identity map, filled once as liburing does for
		// IORING_SETUP_NO_SQARRAY-less rings since 2.5.
		for i := range r.sqArray {
			r.sqArray[i] = uint32(i)
		}
	}
	r.sqes = unsafe.Slice((*SQE)(unsafe.Pointer(&r.sqeMem[0])), p.SQEntries)
	cq := unsafe.Pointer(&r.cqRing[0])
	r.cqHead = (*uint32)(unsafe.Add(cq, p.CQOff.Head))
	r.cqTail = (*uint32)(unsafe.Add(cq, p.CQOff.Tail))
	r.cqOverflow = (*uint32)(unsafe.Add(cq, p.CQOff.Overflow))
	if p.CQOff.Flags != 0 {
		r.cqFlags = (*uint32)(unsafe.Add(cq, p.CQOff.Flags))
	}
	r.cqMask = *(*uint32)(unsafe.Add(cq, p.CQOff.RingMask))
	r.cqes = unsafe.Slice((*CQE)(unsafe.Add(cq, p.CQOff.CQEs)), p.CQEntries)
	return nil
}

func mmapRegion(fd int, off int64, size int) ([]byte, error) {
	b, err := unix.Mmap(fd, off, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	return b, nil
}

// Close unregisters the ring fd, unmaps the rings and closes the fd. It is safe to
// call more than once; calls after the first return nil. Operations still in
// flight are cancelled by the kernel when the fd is closed. After Close, GetSQE
// returns nil, PeekBatch and Reap return 0, and calls that would enter the
// kernel return ErrClosed. A SetupSingleIssuer ring must be closed on its thread.
func (r *Ring) Close() error {
	if r == nil || r.closed {
		return nil
	}
	if r.enterFlag != 0 {
		// Before closed is set: Register refuses a closed ring. Without
		// this the thread's registered-ring table keeps the ring alive
		// until the thread exits. A failure (Close on another thread)
		// leaves the entry to be dropped when that thread exits.
		_ = r.unregisterRingFD()
	}
	r.closed = true
	var errs []error
	if r.sqeMem != nil {
		errs = append(errs, unix.Munmap(r.sqeMem))
	}
	if r.cqRing != nil && &r.cqRing[0] != &r.sqRing[0] {
		errs = append(errs, unix.Munmap(r.cqRing))
	}
	if r.sqRing != nil {
		errs = append(errs, unix.Munmap(r.sqRing))
	}
	r.sqeMem, r.cqRing, r.sqRing, r.sqes, r.cqes, r.sqArray = nil, nil, nil, nil, nil, nil
	r.sqHead, r.sqTail, r.sqFlags, r.sqDropped = &r.dead[0], &r.dead[1], &r.dead[2], &r.dead[3]
	r.cqHead, r.cqTail, r.cqOverflow, r.cqFlags = &r.dead[4], &r.dead[5], &r.dead[6], &r.dead[7]
	r.sqEntries, r.sqMask, r.cqMask, r.sqeHead, r.sqeTail = 0, 0, 0, 0, 0
	if r.fd >= 0 {
		errs = append(errs, unix.Close(r.fd))
		r.fd = -1
	}
	return errors.Join(errs...)
}

// FD returns the ring's file descriptor (for MSG_RING targets and eventfd setup).
func (r *Ring) FD() int { return r.fd }

// Params returns the parameters the kernel filled in at setup.
func (r *Ring) Params() Params { return r.params }

// Features returns the IORING_FEAT_* bits reported at setup.
func (r *Ring) Features() Features { return r.params.Features }

// SQEntries returns the submission queue size.
func (r *Ring) SQEntries() uint32 { return r.sqEntries }

// CQEntries returns the completion queue size.
func (r *Ring) CQEntries() uint32 { return r.params.CQEntries }

// GetSQE returns the next free SQE, zeroed, or nil when the submission queue is
// full (submit, then try again). liburing: io_uring_get_sqe.
func (r *Ring) GetSQE() *SQE {
	head := atomic.LoadUint32(r.sqHead)
	if r.sqeTail-head >= r.sqEntries {
		return nil
	}
	sqe := &r.sqes[r.sqeTail&r.sqMask]
	r.sqeTail++
	*sqe = SQE{}
	return sqe
}

// SQSpace returns how many SQEs GetSQE can hand out before the queue is full.
func (r *Ring) SQSpace() uint32 { return r.sqEntries - (r.sqeTail - atomic.LoadUint32(r.sqHead)) }

// SQReady returns how many SQEs are prepared but not yet submitted.
func (r *Ring) SQReady() uint32 { return r.sqeTail - r.sqeHead }

// flushSQ publishes prepared SQEs to the kernel and returns how many the kernel
// has yet to consume. liburing: __io_uring_flush_sq.
func (r *Ring) flushSQ() uint32 {
	if r.sqeHead != r.sqeTail {
		r.sqeHead = r.sqeTail
		atomic.StoreUint32(r.sqTail, r.sqeTail) // store-release of the SQ tail
	}
	return r.sqeTail - atomic.LoadUint32(r.sqHead)
}

// Submit hands prepared SQEs to the kernel and returns how many it consumed.
// liburing: io_uring_submit.
func (r *Ring) Submit() (int, error) { return r.submit(0, false) }

// SubmitAndWait submits and waits until at least waitNr completions are ready.
// liburing: io_uring_submit_and_wait.
func (r *Ring) SubmitAndWait(waitNr uint32) (int, error) { return r.submit(waitNr, false) }

// SubmitAndGetEvents submits and, in the same io_uring_enter, runs pending task
// work and flushes overflowed completions without waiting; with
// SetupDeferTaskrun this is how completions become visible without blocking.
// liburing: io_uring_submit_and_get_events.
func (r *Ring) SubmitAndGetEvents() (int, error) { return r.submit(0, true) }

// submit is liburing's __io_uring_submit: enter the kernel only when there is
// something to submit (and no SQPOLL thread to do it) or completions to wait for
// or to flush.
func (r *Ring) submit(waitNr uint32, getEvents bool) (int, error) {
	if r.closed {
		return 0, ErrClosed
	}
	submitted := r.flushSQ()
	var flags uint32
	needEnter := false
	if submitted > 0 { // liburing sq_ring_needs_enter
		if r.params.Flags&SetupSQPoll == 0 {
			needEnter = true
		} else if atomic.LoadUint32(r.sqFlags)&sqNeedWakeup != 0 { // ordered after the tail store: see the file comment
			flags |= enterSQWakeup
			needEnter = true
		}
	}
	if getEvents || waitNr > 0 || r.cqNeedsEnter() {
		flags |= enterGetEvents
		needEnter = true
	}
	if !needEnter {
		return int(submitted), nil
	}
	n, err := r.enter(submitted, waitNr, flags|r.enterFlag, nil, 0)
	return int(n), err
}

// cqNeedsEnter reports whether completions are held back in the kernel: an
// overflowed CQ, task work flagged by IORING_SETUP_TASKRUN_FLAG, or an IOPOLL
// ring, which completes only when polled. liburing: cq_ring_needs_enter.
func (r *Ring) cqNeedsEnter() bool {
	return r.params.Flags&SetupIOPoll != 0 || atomic.LoadUint32(r.sqFlags)&(sqCQOverflow|sqTaskrun) != 0
}

// enter is the one io_uring_enter call site. It uses Syscall6 (not RawSyscall) so
// a blocking wait hands the P to another M.
func (r *Ring) enter(toSubmit, minComplete, flags uint32, arg unsafe.Pointer, argSize uintptr) (uint32, error) {
	if r.closed {
		return 0, ErrClosed
	}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, r.enterFD, uintptr(toSubmit), uintptr(minComplete),
			uintptr(flags), uintptr(arg), argSize)
		if errno == 0 {
			return uint32(n), nil
		}
		if errno == unix.EINTR {
			continue
		}
		return 0, errnoErr("io_uring_enter", errno)
	}
}

// WaitCQEs submits pending SQEs and waits until at least n completions are ready,
// or until timeout passes (timeout <= 0 waits without limit). With minWait > 0 and
// FeatMinTimeout (Linux 6.12), the kernel waits at least minWait for n completions
// and afterwards returns as soon as one is ready (with no timeout, minWait itself
// ends the wait; a kernel without FeatMinTimeout then uses minWait as the
// timeout, so the wait stays bounded). When the time is up with the CQ still empty the error is
// syscall.ETIME itself (not wrapped, so it does not allocate); callers typically
// treat it as "nothing yet". When it is up with fewer than n but at least one
// completion ready, the result is a nil error. An interrupted wait (EINTR) is
// restarted with the full timeout.
// liburing: io_uring_submit_and_wait_min_timeout / io_uring_submit_and_wait_timeout.
func (r *Ring) WaitCQEs(n uint32, timeout, minWait time.Duration) (int, error) {
	if timeout <= 0 && minWait <= 0 {
		return r.submit(n, false)
	}
	submitted := r.flushSQ()
	flags := r.enterFlag | enterGetEvents | enterExtArg
	if r.params.Flags&SetupSQPoll != 0 && atomic.LoadUint32(r.sqFlags)&sqNeedWakeup != 0 {
		flags |= enterSQWakeup
	}
	r.arg = GeteventsArg{}
	if timeout <= 0 && r.params.Features&FeatMinTimeout == 0 {
		timeout = minWait // the bound the caller asked for, as near as this kernel gets
	}
	if timeout > 0 {
		r.ts = Timespec{Sec: int64(timeout / time.Second), Nsec: int64(timeout % time.Second)}
		r.arg.TS = uint64(uintptr(unsafe.Pointer(&r.ts)))
	}
	if minWait > 0 && r.params.Features&FeatMinTimeout != 0 {
		r.arg.MinWaitUsec = uint32(minWait / time.Microsecond)
	}
	got, err := r.enter(submitted, n, flags, unsafe.Pointer(&r.arg), unsafe.Sizeof(r.arg))
	return int(got), err
}

// CQReady returns how many completions are ready to be read.
func (r *Ring) CQReady() uint32 { return atomic.LoadUint32(r.cqTail) - *r.cqHead }

// PeekBatch copies up to len(dst) ready completions into dst and returns how many.
// It does not consume them: call CQAdvance with the count once they are handled.
// liburing: io_uring_peek_batch_cqe.
func (r *Ring) PeekBatch(dst []CQE) int {
	tail := atomic.LoadUint32(r.cqTail) // load-acquire of the CQ tail
	head := *r.cqHead                   // only we write the head
	n := int(tail - head)
	if n > len(dst) {
		n = len(dst)
	}
	for i := 0; i < n; i++ {
		dst[i] = r.cqes[(head+uint32(i))&r.cqMask]
	}
	return n
}

// CQAdvance marks n completions as consumed, one store for the whole batch.
// liburing: io_uring_cq_advance.
func (r *Ring) CQAdvance(n uint32) {
	if n > 0 {
		atomic.StoreUint32(r.cqHead, *r.cqHead+n) // store-release of the CQ head
	}
}

// Reap copies up to len(dst) ready completions into dst, consumes them, and
// returns how many. It is PeekBatch followed by CQAdvance.
func (r *Ring) Reap(dst []CQE) int {
	n := r.PeekBatch(dst)
	r.CQAdvance(uint32(n))
	return n
}

// CQOverflowed reports whether the kernel has completions it could not post
// because the CQ was full (IORING_SQ_CQ_OVERFLOW). Call FlushOverflow after
// draining the CQ to bring them in.
func (r *Ring) CQOverflowed() bool { return atomic.LoadUint32(r.sqFlags)&sqCQOverflow != 0 }

// CQNeedsEnter reports whether completions are held back in the kernel until
// the next io_uring_enter with GETEVENTS (GetEvents, SubmitAndGetEvents): an
// overflowed CQ, task work flagged by SetupTaskrunFlag (with
// SetupDeferTaskrun or SetupCoopTaskrun; MSG_RING CQEs from other rings
// arrive this way), or an IOPOLL ring. A loop that skips io_uring_enter while
// it has nothing to submit checks this first. liburing: cq_ring_needs_enter.
func (r *Ring) CQNeedsEnter() bool { return r.cqNeedsEnter() }

// Overflow returns the kernel's count of completions dropped for lack of CQ space.
// With FeatNoDrop (5.5) nothing is dropped and this stays 0; the overflow is held
// in the kernel until flushed.
func (r *Ring) Overflow() uint32 { return atomic.LoadUint32(r.cqOverflow) }

// Dropped returns the kernel's count of invalid SQEs it skipped.
func (r *Ring) Dropped() uint32 { return atomic.LoadUint32(r.sqDropped) }

// FlushOverflow asks the kernel to move overflowed completions into the CQ
// (io_uring_enter with GETEVENTS and min_complete 0). liburing: io_uring_get_events.
func (r *Ring) FlushOverflow() error {
	_, err := r.enter(0, 0, r.enterFlag|enterGetEvents, nil, 0)
	return err
}

// GetEvents runs pending task work and flushes overflow without waiting; with
// DEFER_TASKRUN this is how completions become visible without blocking. It does
// not submit. liburing: io_uring_get_events.
func (r *Ring) GetEvents() error { return r.FlushOverflow() }
