//go:build linux

package netio

import (
	"sync/atomic"

	"github.com/ringwire/ringwire/runtime"
)

// leaseqCap is how many entries a leaseq's ring holds. A net.Conn pauses its
// receive at readAheadLeases unread entries, so the ring is rarely full; what
// does not fit waits in the loop's overflow list.
const leaseqCap = 16

// leaseq hands received entries (leases, datagrams) from a connection's loop
// to its reader goroutine and back without a lock, so the loop thread never
// waits for a reader.
//
// One ring, three indices: slots [rel, head) hold entries the reader has
// finished with, which the loop releases; [head, tail) hold entries not yet
// read. The loop is the only writer of the slots, of tail and of rel; the
// reader (one at a time: readMu) is the only writer of head. Each index is
// published with an atomic store, so whatever a side wrote before the store
// (a slot's contents, the reader's last use of a slot's bytes) happens before
// the other side's load that observes it. The loop refills a slot only after
// rel has passed it, and rel never passes head, so the loop never writes a
// slot the reader may be reading.
type leaseq[T any] struct {
	slots [leaseqCap]T
	tail  atomic.Uint32 // loop: next slot to fill
	head  atomic.Uint32 // reader: next slot to read
	rel   atomic.Uint32 // loop: next slot to release
	over  []T           // loop only: entries that found the ring full, in order
}

// push queues v for the reader. Loop thread.
func (q *leaseq[T]) push(v T) {
	if len(q.over) > 0 || !q.tryPush(v) {
		q.over = append(q.over, v)
	}
}

func (q *leaseq[T]) tryPush(v T) bool {
	t := q.tail.Load()
	if t-q.rel.Load() == leaseqCap {
		return false
	}
	q.slots[t%leaseqCap] = v
	q.tail.Store(t + 1)
	return true
}

// refill moves overflowed entries into the ring while it has room and
// returns how many it moved. Loop thread.
func (q *leaseq[T]) refill() int {
	n := 0
	for n < len(q.over) && q.tryPush(q.over[n]) {
		n++
	}
	if n > 0 {
		clear(q.over[:n])
		q.over = append(q.over[:0], q.over[n:]...)
	}
	return n
}

// releaseRead hands each entry the reader has finished with to f, clears its
// slot and returns how many there were. Loop thread.
func (q *leaseq[T]) releaseRead(f func(*T)) int {
	r, h := q.rel.Load(), q.head.Load()
	if int32(h-r) <= 0 {
		return 0 // nothing read since, or releaseAll ran ahead of the reader
	}
	var zero T
	for i := r; i != h; i++ {
		s := &q.slots[i%leaseqCap]
		f(s)
		*s = zero
	}
	q.rel.Store(h)
	return int(h - r)
}

// releaseAll hands every entry, read or not, to f. Loop thread, and only
// when the reader will not look at the queue again (the connection is closed
// for reads and no Read is inside it).
func (q *leaseq[T]) releaseAll(f func(*T)) {
	r, t := q.rel.Load(), q.tail.Load()
	var zero T
	for i := r; i != t; i++ {
		s := &q.slots[i%leaseqCap]
		f(s)
		*s = zero
	}
	q.rel.Store(t)
	for i := range q.over {
		f(&q.over[i])
	}
	clear(q.over)
	q.over = q.over[:0]
}

// unreadLoop counts the entries not yet read, overflow included. Loop thread.
func (q *leaseq[T]) unreadLoop() int {
	return int(q.tail.Load()-q.head.Load()) + len(q.over)
}

// Reader side (one reader at a time).

// peek returns the oldest unread entry in the ring, or nil.
func (q *leaseq[T]) peek() *T {
	h := q.head.Load()
	if h == q.tail.Load() {
		return nil
	}
	return &q.slots[h%leaseqCap]
}

// advance marks the entry peek returned as read: the loop may release it.
func (q *leaseq[T]) advance() { q.head.Add(1) }

// unread counts the entries in the ring the reader has not read.
func (q *leaseq[T]) unread() int { return int(q.tail.Load() - q.head.Load()) }

// unreleased counts the entries the reader has read and the loop has not
// yet released.
func (q *leaseq[T]) unreleased() int { return max(0, int(int32(q.head.Load()-q.rel.Load()))) }

// readSide is the receive half tcpConn and packetConn share: the queue, the
// read-ahead pause, the posting of releases and the close protocol that lets
// the loop reclaim the queue without waiting for a reader.
type readSide[T any] struct {
	rq        leaseq[T]
	rbytes    atomic.Int64 // bytes received and not yet read
	paused    bool         // loop: receive paused for read-ahead
	pausedR   atomic.Bool  // paused, as the reader sees it
	relPosted atomic.Bool  // a release task is posted and has not started
	reading   atomic.Bool  // a read is looking at rq
	rclosed   atomic.Bool  // closed on the loop: rq is reclaimed once no read is in it

	rloop              *runtime.Loop
	relTask, reclaimTk runtime.Task
}

func (r *readSide[T]) init(l *runtime.Loop, release, reclaim runtime.Task) {
	r.rloop, r.relTask, r.reclaimTk = l, release, reclaim
}

// setPaused records the pause state for the loop and the reader. Loop thread.
func (r *readSide[T]) setPaused(p bool) {
	r.paused = p
	r.pausedR.Store(p)
}

// enterQueue starts a read's look at the queue; false if the loop has closed
// it (the read then reports the connection closed).
func (r *readSide[T]) enterQueue() bool {
	r.reading.Store(true)
	if r.rclosed.Load() {
		r.leaveQueue()
		return false
	}
	return true
}

// leaveQueue ends a read's look at the queue; if the loop closed the
// connection meanwhile and left the queue to it, it posts the reclaim.
func (r *readSide[T]) leaveQueue() {
	r.reading.Store(false)
	if r.rclosed.Load() {
		_ = r.rloop.Post(r.reclaimTk) // a loop that is gone took its buffers along
	}
}

// closeForReads marks the queue closed and reports whether the loop may
// reclaim it now: not while a read is inside, which then posts the reclaim
// when it leaves. Each side stores its own flag before it loads the other's
// (sequentially consistent), so at least one of them sees the other's.
// Loop thread.
func (r *readSide[T]) closeForReads() bool {
	r.rclosed.Store(true)
	return !r.reading.Load()
}

// startRelease begins a release task: it clears relPosted first, so a post
// made while the task runs is not lost, and reports whether the queue is
// still open (after a close the reclaim takes everything). Loop thread.
func (r *readSide[T]) startRelease() bool {
	r.relPosted.Store(false)
	return !r.rclosed.Load()
}

// postRelease posts the release task unless it is pending; false if the
// loop is gone.
func (r *readSide[T]) postRelease() bool {
	if !r.relPosted.CompareAndSwap(false, true) {
		return true
	}
	return r.rloop.Post(r.relTask) == nil
}
