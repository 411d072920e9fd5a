//go:build linux

package runtime

import (
	"errors"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/ring"
)

// The loop's wait, and the producers' wakeup that ends it.
//
// A loop with nothing to do waits in io_uring_enter for a completion. For a
// goroutine that posts a task to end that wait, the loop keeps a doorbell in
// its ring: a READ on an eventfd, which completes when a producer writes to
// the eventfd. A write is a syscall, so producers write only when the loop has
// announced that it is about to wait:
//
//	loop: sleep                          producer: Post, then kick
//	arm the doorbell (once per wakeup)   push the task
//	store sleeping = 1                   load sleeping; if 1, swap it to 0,
//	load the task queue and closeReq       and if the swap saw 1, write the
//	io_uring_enter: submit and wait        eventfd (one wakeup per sleep)
//	store sleeping = 0
//
// Each side stores, then loads what the other stored (Dekker's pattern, with
// sequentially consistent atomics): either the loop sees the task and does
// not wait, or the producer sees sleeping and rings. requestClose (in
// shutdown_linux.go) takes the producer's side with closeReq. The eventfd is
// closed only after every producer has left Post (stopPosting, in
// post_linux.go).

// sleep announces the loop is about to wait, makes sure the doorbell is armed,
// and waits, submitting everything prepared in the same io_uring_enter.
func (l *Loop) sleep() {
	if !l.bellArm {
		l.armBell()
		if !l.bellArm {
			// No doorbell (the SQ stayed full): a producer could not wake
			// a wait, so do not wait.
			l.poll()
			return
		}
	}
	atomic.StoreUint32(l.sleeping, 1)
	if !l.q.empty() || l.closeReq.Load() {
		atomic.StoreUint32(l.sleeping, 0)
		l.poll()
		return
	}
	timeout := l.wheel.nextTimeout(time.Now())
	want := uint32(1)
	minWait := l.minWait
	if l.rearmed {
		minWait = 0 // see CountRearm
		l.rearmed = false
	}
	if minWait > 0 {
		want = uint32(l.cfg.BatchLimit)
		if timeout <= 0 {
			// Without a general timeout the kernel ends the wait when
			// minWait passes, completions or not: an idle loop would
			// wake every budget. A far one keeps "sleep until woken".
			timeout = time.Hour
		}
	}
	n, err := l.r.WaitCQEs(want, timeout, minWait)
	atomic.StoreUint32(l.sleeping, 0)
	l.st.enters.Add(1)
	l.st.sqes.Add(uint64(n))
	l.enterError(err)
}

// kick wakes the loop if it announced it is about to sleep. Callers hold a
// count in posting.
func (l *Loop) kick() {
	if atomic.LoadUint32(l.sleeping) == 0 || atomic.SwapUint32(l.sleeping, 0) == 0 {
		return
	}
	l.st.wakeups.Add(1)
	_, _ = unix.Write(l.efd, wakeOne[:])
}

var wakeOne = [8]byte{1}

// armBell puts the doorbell request into the ring: a READ on the eventfd,
// which completes once a producer writes to it.
func (l *Loop) armBell() {
	sqe := l.getSQE()
	if sqe == nil {
		return // SQ full: the loop will not block long, it has SQEs to submit
	}
	id := l.ops.alloc(bellHandler{}, 0, opInternal)
	sqe.UserData = uint64(id)
	sqe.PrepRead(l.efd, l.bellBuf[:], 0)
	l.bellArm = true
}

type bellHandler struct{}

func (bellHandler) HandleCompletion(l *Loop, _ uint64, _ *ring.CQE) { l.bellArm = false }

// poll submits what is prepared and collects completions without waiting,
// in one io_uring_enter, and only if there is something to submit, an
// operation in flight (besides the doorbell), or completions the kernel holds
// back as task work: MSG_RING CQEs for a mailbox arrive that way, and without
// TASKRUN_FLAG to announce them the loop must ask every time.
func (l *Loop) poll() {
	inFlight := l.ops.live - l.ops.persistent
	if l.bellArm {
		inFlight--
	}
	var n int
	var err error
	switch {
	case inFlight > 0 || l.r.CQNeedsEnter() || l.flags&ring.SetupTaskrunFlag == 0:
		n, err = l.r.SubmitAndGetEvents()
	case l.r.SQReady() > 0:
		n, err = l.r.Submit()
	default:
		return
	}
	l.rearmed = false // submitted without waiting: nothing to hold back
	l.st.enters.Add(1)
	l.st.sqes.Add(uint64(n))
	l.enterError(err)
}

func (l *Loop) enterError(err error) {
	if err == nil {
		return
	}
	switch {
	case errors.Is(err, syscall.ETIME), errors.Is(err, syscall.EINTR), errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EBUSY):
		return // a timeout, or the kernel asks us to reap first
	}
	// Anything else means a broken ring: log the first few, and go on (Close
	// still works).
	if l.enterErrs < 16 {
		l.enterErrs++
		l.log.Error("runtime: io_uring_enter failed", zap.Error(err))
	}
}
