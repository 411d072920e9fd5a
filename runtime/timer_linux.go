//go:build linux

package runtime

import (
	"syscall"
	"time"

	"github.com/ringwire/ringwire/ring"
)

// The loop's side of the timer wheel (wheel.go): Timer and StopTimer on the
// loop thread, and fireTimers once per iteration. The wait in sleep carries
// the time to the next due tick as its timeout.

// Timer calls h.HandleCompletion(l, tag, cqe) on the loop at or after at
// (normally within one Config.TimerTick), with a synthetic cqe whose UserData
// is the TimerID and Res is -ETIME. Pending timers are discarded by Close.
// Loop thread only.
func (l *Loop) Timer(h Handler, tag uint64, at time.Time) TimerID {
	id := l.wheel.add(h, tag, at)
	l.st.liveTimers.Store(int64(l.wheel.count))
	return id
}

// StopTimer cancels a pending timer and reports whether it was pending.
// Loop thread only.
func (l *Loop) StopTimer(id TimerID) bool {
	ok := l.wheel.stop(id)
	l.st.liveTimers.Store(int64(l.wheel.count))
	return ok
}

func (l *Loop) fireTimers(now time.Time) {
	if l.wheel.count == 0 {
		l.wheel.now = l.wheel.currentTick(now)
		return
	}
	due := l.wheel.collect(l.wheel.currentTick(now))
	for k := 0; k < len(due); k++ {
		id := l.wheel.due[k] // re-read: a handler may add timers (not to due)
		i, ok := l.wheel.lookup(id)
		if !ok {
			continue // stopped by an earlier handler of this batch
		}
		rec := &l.wheel.recs[i]
		h, tag := rec.h, rec.tag
		l.wheel.release(i)
		l.st.timersFired.Add(1)
		if h != nil {
			l.timerCQE = ring.CQE{UserData: uint64(id), Res: -int32(syscall.ETIME)}
			l.callHandler(h, tag, &l.timerCQE)
		}
	}
	l.st.liveTimers.Store(int64(l.wheel.count))
}
