//go:build linux

package bufring

import (
	"errors"
	"testing"
)

// TestSimTailWrapsUint16 publishes and consumes far more than 65536 ring
// positions, so the u16 tail, the kernel's head and every recorded position
// wrap several times, with bundles and partial buffers straddling the wrap.
func TestSimTailWrapsUint16(t *testing.T) {
	for _, inc := range []bool{false, true} {
		g, k := newSimGroup(t, &Config{Count: 4, Size: 32, Batch: 1, LowWater: 1}, inc)
		var seq byte
		var held []Lease
		wraps := 0
		prev := g.tail
		for i := 0; i < 300_000; i++ {
			c := k.recv(uint32(1+i%70), i%3 == 0)
			l, err := g.Lease(&c)
			if errors.Is(err, ErrNoBuffers) {
				for _, h := range held {
					h.Release()
				}
				held = held[:0]
				g.Flush()
				continue
			}
			if err != nil {
				t.Fatalf("inc=%v step %d: %v", inc, i, err)
			}
			checkLease(t, l, &seq)
			held = append(held, l)
			if len(held) > 2 {
				held[0].Release()
				held = append(held[:0], held[1:]...)
			}
			if g.tail < prev {
				wraps++
			}
			prev = g.tail
		}
		for _, h := range held {
			h.Release()
		}
		g.Flush()
		if wraps < 2 {
			t.Fatalf("inc=%v: tail wrapped %d times, want at least 2", inc, wraps)
		}
		if g.InUse() != 0 || g.Available() != g.Count() || k.avail() != g.Available() {
			t.Fatalf("inc=%v end: in use %d available %d (kernel sees %d)", inc, g.InUse(), g.Available(), k.avail())
		}
	}
}
