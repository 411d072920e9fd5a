//go:build linux

package runtime

import goruntime "runtime"

// The task hand-off. Any goroutine hands the loop a Task with Post: a push on
// the lock-free queue (queue.go) and, if the loop announced it is about to
// wait, a kick (wait_linux.go). The loop runs the queued tasks at the top of
// each iteration (runTasks). posting counts the producers inside Post; at
// shutdown, stopPosting sets closedBit in it and waits for them to leave, so
// that every task Post accepted runs and no kick writes to a closed eventfd.
// The way back, from the loop to a waiting goroutine, is Waiter (waiter.go).

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

// closedBit, set in posting, ends posting: Post then returns ErrClosed.
const closedBit = int64(1) << 62

// stopPosting sets closedBit, so that no Post can start, and waits for the
// producers inside Post to leave. After it every task Post accepted is in the
// queue, and no kick can write to the eventfd.
func (l *Loop) stopPosting() {
	for {
		v := l.posting.Load()
		if v&closedBit == 0 && !l.posting.CompareAndSwap(v, v|closedBit) {
			continue
		}
		if l.posting.Load()&^closedBit == 0 {
			return
		}
		goruntime.Gosched()
	}
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

func (l *Loop) callTask(t Task) {
	defer l.recoverPanic()
	t.Run(l)
}
