//go:build linux

package runtime

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Shutdown, in the order it happens on the loop thread:
//
//  1. requestClose (from Runtime.Close) sets closeReq and kicks the loop; the
//     loop finishes its iteration and leaves loop().
//  2. closing is set: NewOp and MsgRing fail with ErrClosed from here on.
//  3. The queued tasks run; every live kernel operation gets an ASYNC_CANCEL;
//     the loop reaps and runs tasks until each operation's final CQE has been
//     dispatched, for at most closeGrace (5s), cancelling again every 250ms.
//  4. stopPosting: Post fails from here on; the tasks already accepted run.
//  5. teardown: what was handed to Own closes (in reverse), then the ring,
//     then the eventfd; once the ring is gone, the buffer group, the arena,
//     the op records' pins and the scratch pages are released. If operations
//     were still in flight, that memory is kept for the life of the process.

// requestClose asks the loop to shut down and wakes it. Like Post it counts
// itself in posting, so that the loop closes its eventfd only after every
// kick that might write to it has returned.
func (l *Loop) requestClose() {
	l.closeReq.Store(true)
	if l.posting.Add(1)&closedBit == 0 {
		// Dekker with sleep(): it stores sleeping, then loads closeReq; we
		// stored closeReq, and kick loads sleeping.
		l.kick()
	}
	l.posting.Add(-1)
}

// shutdown cancels what is in flight, waits (bounded) for the kernel to let
// go, runs the last tasks, and releases everything the loop owns.
func (l *Loop) shutdown() {
	l.closing = true
	l.runTasks(1 << 30)
	l.cancelAll()
	grace := l.cfg.closeGrace
	start := time.Now()
	last := start
	for l.ops.live > l.ops.persistent && time.Since(start) < grace {
		n, err := l.r.WaitCQEs(1, 10*time.Millisecond, 0)
		l.st.enters.Add(1)
		l.st.sqes.Add(uint64(n))
		l.enterError(err)
		l.reap()
		l.runTasks(1 << 30)
		if time.Since(last) > 250*time.Millisecond {
			l.cancelAll() // operations a task started meanwhile
			last = time.Now()
		}
	}
	if n := l.ops.live - l.ops.persistent; n > 0 {
		l.closeErr = fmt.Errorf("runtime: loop %d: %d operations still in flight after %v; closing the ring cancels them", l.id, n, grace)
		l.log.Error("runtime: operations still in flight at close", zap.Int("ops", n))
	}
	l.stopPosting()
	l.runTasks(1 << 30) // what the last producers queued
	l.teardown()
}

// cancelAll submits an ASYNC_CANCEL for every live kernel operation.
func (l *Loop) cancelAll() {
	for i := range l.ops.recs {
		r := &l.ops.recs[i]
		if r.state == opLive && r.flags&opMailbox == 0 {
			_ = l.Cancel(OpID(uint64(r.gen)<<32 | uint64(i)))
		}
	}
	n, err := l.r.Submit()
	l.st.enters.Add(1)
	l.st.sqes.Add(uint64(n))
	l.enterError(err)
}

// abandoned keeps reachable, for the life of the process, the loops that
// closed their rings with operations still in flight (see teardown).
var abandoned struct {
	mu    sync.Mutex
	loops []*Loop
}

// teardown releases what setup acquired, in reverse, on the loop thread.
//
// If operations are still in flight (the kernel ignored cancellation for the
// whole grace), closing the ring does not stop them at once: the kernel tears
// the ring down asynchronously, and until then it may still write to the
// memory they point to. That memory is therefore never handed back: the op
// records keep their pins, the buffer group and arena stay
// mapped, and the loop itself stays reachable. The fds are still closed (the
// kernel holds its own references to the files).
func (l *Loop) teardown() {
	var errs []error
	if l.closeErr != nil {
		errs = append(errs, l.closeErr)
	}
	stuck := l.ops.live > l.ops.persistent
	for i := len(l.owned) - 1; i >= 0; i-- {
		if err := l.owned[i].Close(); err != nil {
			errs = append(errs, err)
		}
	}
	l.owned = nil
	if l.r != nil {
		if err := l.r.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if l.efd >= 0 {
		_ = unix.Close(l.efd)
		l.efd = -1
	}
	if stuck {
		abandoned.mu.Lock()
		abandoned.loops = append(abandoned.loops, l)
		abandoned.mu.Unlock()
	} else {
		// After the ring: the kernel has let go of every buffer.
		if err := l.group.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := l.arena.Close(); err != nil {
			errs = append(errs, err)
		}
		l.group, l.arena = nil, nil
		for i := range l.ops.recs {
			if l.ops.recs[i].state != opFree {
				l.ops.release(uint32(i))
			}
		}
		l.pinner.Unpin()
		l.scratch.close()
	}
	l.st.liveOps.Store(int64(l.ops.live - l.ops.internal))
	l.wheel = wheel{}
	l.st.liveTimers.Store(0)
	l.closeErr = errors.Join(errs...)
}
