package runtime

import (
	"math"
	"time"
)

// wheel is a hashed timer wheel: wheelSlots lists of timers, indexed by
// deadline tick modulo wheelSlots. A timer further away than one revolution
// stays in its slot and is skipped until its tick comes. Records live in a
// table addressed like op records (index plus generation), linked into their
// slot's list by index, so scheduling, stopping and firing allocate nothing
// once the table has grown to the peak number of timers.
type wheel struct {
	tick  time.Duration
	epoch time.Time // monotonic origin of ticks
	now   int64     // the last tick processed
	slots [wheelSlots]int32
	recs  []timerRec
	free  int32
	count int
	due   []TimerID // scratch for advance
	// hint is a lower bound of every pending timer's deadline tick: add
	// lowers it, nextTimeout recomputes it once it has passed. The loop
	// sleeps until it, so a lone distant timer costs no wakeup per tick.
	hint int64
}

// maxWait bounds one wait for a timer, so that a deadline beyond it costs
// one wakeup an hour, and tick arithmetic never overflows.
const maxWait = time.Hour

const wheelSlots = 4096

type timerRec struct {
	h          Handler
	tag        uint64
	when       int64 // deadline tick
	gen        uint32
	prev, next int32 // slot list links, -1 at the ends
	slot       int32 // -1 when not in a slot
	live       bool  // handed out by add, not yet released
}

func (w *wheel) init(tick time.Duration, now time.Time) {
	w.tick = tick
	w.epoch = now
	w.free = -1
	w.hint = math.MaxInt64
	for i := range w.slots {
		w.slots[i] = -1
	}
	w.grow()
}

func (w *wheel) grow() {
	old := len(w.recs)
	n := old * 2
	if n == 0 {
		n = 256
	}
	w.recs = append(w.recs, make([]timerRec, n-old)...)
	for i := n - 1; i >= old; i-- {
		w.recs[i] = timerRec{gen: 1, next: w.free, slot: -1, prev: -1}
		w.free = int32(i)
	}
}

// tickOf returns the first tick at or after t. It rounds up without adding
// to d, which may be math.MaxInt64 (time.Time.Sub saturates).
func (w *wheel) tickOf(t time.Time) int64 {
	d := t.Sub(w.epoch)
	if d <= 0 {
		return 0
	}
	n := int64(d / w.tick)
	if d%w.tick != 0 {
		n++
	}
	return n
}

// currentTick returns the last whole tick that has passed at now.
func (w *wheel) currentTick(now time.Time) int64 { return int64(now.Sub(w.epoch) / w.tick) }

func (w *wheel) add(h Handler, tag uint64, at time.Time) TimerID {
	when := w.tickOf(at)
	if when <= w.now {
		when = w.now + 1 // due: fires on the next advance that sees a new tick
	}
	if w.free < 0 {
		w.grow()
	}
	i := w.free
	r := &w.recs[i]
	w.free = r.next
	r.h, r.tag, r.when, r.live = h, tag, when, true
	w.hint = min(w.hint, when)
	s := int32(when & (wheelSlots - 1))
	r.slot, r.prev, r.next = s, -1, w.slots[s]
	if r.next >= 0 {
		w.recs[r.next].prev = i
	}
	w.slots[s] = i
	w.count++
	return TimerID(uint64(r.gen)<<32 | uint64(i))
}

func (w *wheel) lookup(id TimerID) (int32, bool) {
	i := int64(uint32(id))
	if id == 0 || i >= int64(len(w.recs)) || !w.recs[i].live || w.recs[i].gen != uint32(uint64(id)>>32) {
		return 0, false
	}
	return int32(i), true
}

func (w *wheel) unlink(i int32) {
	r := &w.recs[i]
	if r.prev >= 0 {
		w.recs[r.prev].next = r.next
	} else {
		w.slots[r.slot] = r.next
	}
	if r.next >= 0 {
		w.recs[r.next].prev = r.prev
	}
	r.slot, r.prev, r.next = -1, -1, -1
}

func (w *wheel) release(i int32) {
	r := &w.recs[i]
	r.h, r.live = nil, false
	r.gen++
	if r.gen == 0 {
		r.gen = 1
	}
	r.next = w.free
	w.free = i
	w.count--
}

// stop cancels a pending timer; it reports whether the timer was pending.
func (w *wheel) stop(id TimerID) bool {
	i, ok := w.lookup(id)
	if !ok {
		return false
	}
	if w.recs[i].slot >= 0 {
		w.unlink(i)
	}
	w.release(i)
	return true
}

// collect moves the timers due at tick cur into w.due (unlinked, not yet
// released) and returns them.
func (w *wheel) collect(cur int64) []TimerID {
	w.due = w.due[:0]
	if cur <= w.now || w.count == 0 || cur < w.hint {
		if cur > w.now {
			w.now = cur
		}
		return w.due
	}
	from := w.now + 1
	if cur-w.now > wheelSlots {
		from = cur - wheelSlots + 1 // every slot once
	}
	for t := from; t <= cur; t++ {
		i := w.slots[t&(wheelSlots-1)]
		for i >= 0 {
			next := w.recs[i].next
			if w.recs[i].when <= cur {
				w.unlink(i)
				w.due = append(w.due, TimerID(uint64(w.recs[i].gen)<<32|uint64(i)))
			}
			i = next
		}
	}
	w.now = cur
	return w.due
}

// earliest returns the deadline tick of the first pending timer (exactly),
// or math.MaxInt64. It visits slots in tick order from w.now+1 and stops at
// the first tick no earlier than the best deadline seen; at worst (every
// timer more than a revolution away) that is every slot and every timer.
func (w *wheel) earliest() int64 {
	best := int64(math.MaxInt64)
	for t := w.now + 1; t <= w.now+wheelSlots && t < best; t++ {
		for i := w.slots[t&(wheelSlots-1)]; i >= 0; i = w.recs[i].next {
			best = min(best, w.recs[i].when)
		}
	}
	return best
}

// nextTimeout returns how long until the first tick that fires a timer
// (at most maxWait), or 0 when no timer is pending.
func (w *wheel) nextTimeout(now time.Time) time.Duration {
	if w.count == 0 {
		return 0
	}
	if w.hint <= w.now {
		w.hint = w.earliest()
	}
	if w.hint-w.now > int64(maxWait/w.tick) {
		return maxWait
	}
	d := w.epoch.Add(time.Duration(w.hint) * w.tick).Sub(now)
	if d < time.Microsecond {
		d = time.Microsecond
	}
	return min(d, maxWait)
}
