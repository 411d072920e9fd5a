//go:build linux

package netio

import "sync/atomic"

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

// refill moves overflowed entries into the ring while it has room. Loop
// thread.
func (q *leaseq[T]) refill() {
	n := 0
	for n < len(q.over) && q.tryPush(q.over[n]) {
		n++
	}
	if n > 0 {
		clear(q.over[:n])
		q.over = append(q.over[:0], q.over[n:]...)
	}
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
