package runtime

import (
	"sync"
	"sync/atomic"
)

// taskQueue is a multi-producer, single-consumer queue of Tasks: a bounded
// array queue (Dmitry Vyukov's sequence-numbered slots) and, for the moments it
// is full, an overflow list behind a mutex. A producer claims a slot with one
// CAS on tail, writes the task and publishes it by storing the slot's sequence;
// the consumer (the loop) reads slots in order without any atomic
// read-modify-write. While the overflow list is non-empty every producer
// appends to it, so that one producer's tasks stay in the order it posted them.
type taskQueue struct {
	_     [64]byte
	tail  atomic.Uint64 // next position producers claim
	_     [56]byte
	head  uint64 // next position the consumer reads; consumer only
	mask  uint64
	slots []qslot
	_     [64]byte

	ovfOn atomic.Bool // the overflow list is non-empty
	mu    sync.Mutex
	ovf   []Task
	spare []Task // the consumer's swap buffer, so draining allocates nothing
}

type qslot struct {
	seq atomic.Uint64
	t   Task
}

func newTaskQueue(size int) *taskQueue {
	q := &taskQueue{mask: uint64(size - 1), slots: make([]qslot, size)}
	for i := range q.slots {
		q.slots[i].seq.Store(uint64(i))
	}
	return q
}

// push enqueues t; it reports whether t went to the overflow list.
func (q *taskQueue) push(t Task) (overflowed bool) {
	if !q.ovfOn.Load() {
		pos := q.tail.Load()
		for {
			s := &q.slots[pos&q.mask]
			seq := s.seq.Load()
			switch d := int64(seq - pos); {
			case d == 0:
				if q.tail.CompareAndSwap(pos, pos+1) {
					s.t = t
					s.seq.Store(pos + 1) // publish
					return false
				}
				pos = q.tail.Load()
			case d < 0: // full
				goto overflow
			default: // another producer claimed pos
				pos = q.tail.Load()
			}
		}
	}
overflow:
	q.mu.Lock()
	q.ovf = append(q.ovf, t)
	q.ovfOn.Store(true)
	q.mu.Unlock()
	return true
}

// pop dequeues the next published task from the array, or returns nil.
// Consumer only.
func (q *taskQueue) pop() Task {
	s := &q.slots[q.head&q.mask]
	if s.seq.Load() != q.head+1 {
		return nil // empty, or the next slot is claimed but not yet published
	}
	t := s.t
	s.t = nil
	s.seq.Store(q.head + q.mask + 1)
	q.head++
	return t
}

// takeOverflow returns the overflow list's tasks (valid until the next call)
// and empties it, once every array slot claimed before them has been read;
// until then it returns nil. Run what it returns before popping again: a
// producer whose task went to the overflow list posts to the array again only
// after ovfOn is cleared here. Consumer only.
func (q *taskQueue) takeOverflow() []Task {
	if !q.ovfOn.Load() {
		return nil
	}
	clear(q.spare)
	q.mu.Lock()
	// A task a producer put in the array before its overflowed one claimed
	// its slot before the append we see under this lock.
	if q.head != q.tail.Load() {
		q.mu.Unlock()
		return nil
	}
	out := q.ovf
	q.ovf = q.spare[:0]
	q.ovfOn.Store(false)
	q.mu.Unlock()
	q.spare = out
	return out
}

// empty reports whether nothing is published or in overflow. A slot claimed
// but not yet published counts as empty: its producer checks the sleep flag
// after publishing, so the loop cannot miss it.
func (q *taskQueue) empty() bool {
	return q.slots[q.head&q.mask].seq.Load() != q.head+1 && !q.ovfOn.Load()
}
