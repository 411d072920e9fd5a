//go:build linux

package netio

import (
	"sync"
	"testing"
)

// The ring keeps order across its overflow list, releases only what the
// reader finished with, and survives index wraparound.
func TestLeaseqOverflowKeepsOrder(t *testing.T) {
	var q leaseq[int]
	q.tail.Store(^uint32(0) - 5) // wrap the indices during the test
	q.head.Store(^uint32(0) - 5)
	q.rel.Store(^uint32(0) - 5)
	next, want := 0, 0
	var released []int
	rel := func(v *int) { released = append(released, *v) }
	for round := range 5 {
		for range leaseqCap + 7 { // 7 more than fit
			q.push(next)
			next++
		}
		if len(q.over) != 7 || q.unread() != leaseqCap || q.unreadLoop() != leaseqCap+7 {
			t.Fatalf("round %d: over %d unread %d/%d", round, len(q.over), q.unread(), q.unreadLoop())
		}
		if n := q.releaseRead(rel); n != 0 {
			t.Fatalf("released %d before any read", n)
		}
		for q.unreadLoop() > 0 {
			for p := q.peek(); p != nil; p = q.peek() {
				if *p != want {
					t.Fatalf("round %d: read %d, want %d", round, *p, want)
				}
				want++
				q.advance()
			}
			if q.unreleased() == 0 {
				t.Fatal("read entries not counted as unreleased")
			}
			q.releaseRead(rel)
			q.refill()
		}
	}
	if want != next || len(released) != next {
		t.Fatalf("read %d and released %d of %d", want, len(released), next)
	}
	for i, v := range released {
		if v != i {
			t.Fatalf("released[%d] = %d", i, v)
		}
	}
}

// releaseAll takes read and unread entries and the overflow.
func TestLeaseqReleaseAll(t *testing.T) {
	var q leaseq[int]
	for i := range leaseqCap + 3 {
		q.push(i)
	}
	q.advance()
	q.advance()
	n := 0
	q.releaseAll(func(*int) { n++ })
	if n != leaseqCap+3 || len(q.over) != 0 || q.releaseRead(func(*int) { n++ }) != 0 {
		t.Fatalf("released %d, over %d", n, len(q.over))
	}
}

// A loop goroutine and a reader goroutine exchange 200 000 entries; the
// race detector checks the hand-over, the test checks order and that every
// entry is released exactly once.
func TestLeaseqConcurrent(t *testing.T) {
	const total = 200_000
	var q leaseq[uint64]
	var wg sync.WaitGroup
	readUpTo := make(chan struct{}, 1)
	wg.Add(1)
	go func() { // reader
		defer wg.Done()
		var want uint64
		for want < total {
			p := q.peek()
			if p == nil {
				<-readUpTo
				continue
			}
			if *p != want {
				t.Errorf("read %d, want %d", *p, want)
				return
			}
			want++
			q.advance()
		}
	}()
	var released uint64
	rel := func(v *uint64) {
		if *v != released {
			t.Errorf("released %d, want %d", *v, released)
		}
		released++
	}
	for i := uint64(0); i < total; i++ { // loop
		q.releaseRead(rel)
		q.refill()
		q.push(i)
		select {
		case readUpTo <- struct{}{}:
		default:
		}
	}
	for released < total {
		q.releaseRead(rel)
		q.refill()
		select {
		case readUpTo <- struct{}{}:
		default:
		}
	}
	wg.Wait()
}
