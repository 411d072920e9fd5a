//go:build linux

package runtime

import (
	"syscall"

	"go.uber.org/zap"

	"github.com/ringwire/ringwire/ring"
)

// Dispatch: each reaped CQE goes to the Handler of the operation whose op
// record its user_data names, and a final CQE frees that record. A panic in a
// handler or task is recovered here, counted and logged, and the loop goes on.

// reap dispatches every ready CQE, BatchLimit at a time, and flushes a CQ
// overflow when the kernel flags one.
func (l *Loop) reap() {
	for round := 0; round < 4; round++ {
		n := l.r.Reap(l.cqes)
		if n == 0 {
			break
		}
		l.st.cqes.Add(uint64(n))
		for i := range n {
			l.dispatch(&l.cqes[i])
		}
		if n < len(l.cqes) {
			break
		}
	}
	if l.r.CQOverflowed() {
		l.st.cqOverflows.Add(1)
		l.enterError(l.r.FlushOverflow())
		l.st.enters.Add(1)
	}
	l.st.liveOps.Store(int64(l.ops.live - l.ops.internal))
}

// dispatch hands one CQE to its operation's handler. It allocates nothing.
func (l *Loop) dispatch(c *ring.CQE) {
	if c.UserData&cancelMark != 0 {
		l.cancelFailed(OpID(c.UserData &^ cancelMark))
		return
	}
	idx := uint32(c.UserData)
	r := l.ops.get(OpID(c.UserData))
	if r == nil || r.state != opLive {
		l.st.strays.Add(1)
		return
	}
	if c.Res == -int32(syscall.ENOBUFS) {
		l.st.enobufs.Add(1)
	}
	if c.Flags&ring.CQEFNotif != 0 {
		l.st.zcNotifs.Add(1)
		if c.ZCCopied() {
			l.st.zcCopied.Add(1)
		}
	}
	final := c.Flags&ring.CQEFMore == 0 && r.flags&opMailbox == 0
	if final {
		r.state = opDone
	}
	if h := r.h; h != nil {
		l.callHandler(h, r.tag, c)
	}
	if final {
		l.ops.release(idx) // re-indexed: the handler may have grown the table
	}
}

func (l *Loop) callHandler(h Handler, tag uint64, c *ring.CQE) {
	defer l.recoverPanic()
	h.HandleCompletion(l, tag, c)
}

func (l *Loop) recoverPanic() {
	if v := recover(); v != nil {
		l.onPanic(v)
	}
}

// ReportPanic records v, a panic recovered by a Handler or Task itself so
// that it could clean up after it, as the loop records the panics it
// recovers: counted in Stats.Panics and logged. Call it from the deferred
// function that recovered, so that the logged stack is the panic's. Loop
// thread only.
func (l *Loop) ReportPanic(v any) { l.onPanic(v) }

func (l *Loop) onPanic(v any) {
	n := l.st.panics.Add(1)
	// The first few with their stack, then one in 1024: a handler that
	// panics on every message must not turn the log into the hot path.
	if n <= 8 || n%1024 == 0 {
		l.log.Error("runtime: recovered panic in handler or task",
			zap.Any("panic", v), zap.Uint64("panics", n), zap.StackSkip("stack", 3))
	}
}
