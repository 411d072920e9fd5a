//go:build linux

package bufring

import (
	"errors"
	"testing"
	"time"

	"github.com/ringwire/ringwire/ring"
)

// TestRotationRealKernel streams through two small groups with a Rotation:
// when a multishot receive ends for lack of buffers it is re-armed at once on
// the other group, without waiting for the starved one's leases to come back.
// Leases are released one reap later than they arrive, so the starved group is
// still empty when the receive is re-armed. The bytes must arrive in order.
func TestRotationRealKernel(t *testing.T) {
	r := newRing(t)
	a := newGroup(t, r, &Config{GroupID: 11, Count: 4, Size: 4096})
	b := newGroup(t, r, &Config{GroupID: 12, Count: 4, Size: 4096})
	rot := NewRotation(a, b)
	rx, tx := tcpPair(t)
	const total = 2 << 20
	wait := sendPattern(t, tx, total, 64<<10, 0)
	armed := rot.Next()
	arm := func(g *Group) {
		sqe := r.GetSQE()
		sqe.PrepRecvMultishot(rx, g.ID(), 0)
		sqe.UserData = uint64(g.ID())
		armed = g
	}
	arm(armed)
	cqes := make([]ring.CQE, 64)
	var prev, cur []Lease
	got, rearms, immediate := 0, 0, 0
	for deadline := time.Now().Add(30 * time.Second); got < total; {
		if time.Now().After(deadline) {
			t.Fatalf("timed out with %d of %d bytes", got, total)
		}
		ended := false
		for _, c := range reap(t, r, cqes, 200*time.Millisecond) {
			g := rot.Group(uint16(c.UserData))
			if g == nil {
				t.Fatalf("CQE names no group: %+v", c)
			}
			l, err := g.Lease(&c)
			switch {
			case errors.Is(err, ErrNoBuffers):
			case err != nil:
				t.Fatalf("after %d bytes: %v", got, err)
			case c.Res == 0:
				t.Fatalf("EOF after %d of %d bytes", got, total)
			default:
				for i, v := range l.Bytes() {
					if v != pattern(got+i) {
						t.Fatalf("byte %d = %d, want %d", got+i, v, pattern(got+i))
					}
				}
				got += l.Len()
				cur = append(cur, l)
			}
			if !c.More() {
				ended = true
			}
		}
		for _, l := range prev {
			l.Release()
		}
		prev, cur = cur, prev[:0]
		rot.Flush()
		if ended {
			starved := armed
			if !starved.Starved() {
				t.Fatalf("receive on group %d ended but the group is not Starved", starved.ID())
			}
			next := rot.Next()
			if next.Available() == 0 {
				for _, l := range prev { // both groups empty: give back what we hold
					l.Release()
				}
				prev = prev[:0]
				rot.Flush()
				next = rot.Next()
			} else if next != starved {
				immediate++
			}
			starved.Rearmed()
			arm(next)
			rearms++
		}
	}
	for _, l := range prev {
		l.Release()
	}
	rot.Flush()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("2 MiB through 2 groups of 4x4 KiB: %d re-arms, %d on the other group at once, %d rotations; ENOBUFS a=%d b=%d",
		rearms, immediate, rot.Rotations, a.Stats().NoBuffers, b.Stats().NoBuffers)
	if rot.Rotations == 0 || immediate == 0 {
		t.Fatalf("never rotated: %d rotations, %d immediate re-arms of %d", rot.Rotations, immediate, rearms)
	}
	if a.Stats().Leases == 0 || b.Stats().Leases == 0 {
		t.Fatalf("one group unused: %d and %d leases", a.Stats().Leases, b.Stats().Leases)
	}
	if a.InUse()+b.InUse() != 0 || rot.Available() != 8 {
		t.Fatalf("end: in use %d+%d, available %d", a.InUse(), b.InUse(), rot.Available())
	}
}
