//go:build linux

package runtime

const closedBit = int64(1) << 62

func (l *Loop) callTask(t Task) {
	defer l.recoverPanic()
	t.Run(l)
}

// runTasks runs up to limit posted tasks; it reports whether it emptied the
// queue.
func (l *Loop) runTasks(limit int) bool {
	n := 0
	for n < limit {
		t := l.q.pop()
		if t == nil {
			break
		}
		l.callTask(t)
		n++
	}
	if n < limit {
		for _, t := range l.q.takeOverflow() {
			l.callTask(t)
			n++
		}
	}
	if n > 0 {
		l.st.tasks.Add(uint64(n))
	}
	return n < limit
}

// Post queues t to run on the loop thread. It may be called from any
// goroutine, the loop's own included; it never blocks, and it allocates
// nothing when t is a pointer (or another pointer-shaped value). It wakes the
// loop (one eventfd write) only if the loop announced it is about to sleep.
// Tasks run in the order each producer posted them. After Close has begun it
// returns ErrClosed and t does not run; a task Post accepted always runs.
func (l *Loop) Post(t Task) error {
	if l.posting.Add(1)&closedBit != 0 {
		l.posting.Add(-1)
		return ErrClosed
	}
	if l.q.push(t) {
		l.st.overflowed.Add(1)
	}
	l.kick()
	l.posting.Add(-1)
	return nil
}
