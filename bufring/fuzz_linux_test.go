//go:build linux

package bufring

import (
	"errors"
	"testing"

	"github.com/ringwire/ringwire/ring"
)

// FuzzGroupCQE feeds a group a mix of CQEs from the simulated kernel and
// arbitrary (corrupt) ones, interleaved with releases and flushes. Whatever
// the CQEs say, Lease must return an error rather than panic, every view it
// hands out must lie inside the slab, and the accounting must stay whole.
func FuzzGroupCQE(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 10, 0, 0, 8, 0, 10, 0, 2, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 255, 255, 0, 16, 1, 0, 0, 3, 0, 2, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0, 255, 255, 1, 0, 0, 100, 0, 1, 0, 0, 200, 1})
	f.Add([]byte{1, 17, 3, 0, 0, 200, 1, 0, 0, 50, 0, 0, 7, 0, 1, 0, 2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		inc := data[0]&1 != 0
		g, k := newSimGroup(t, &Config{Count: 8, Size: 64, Batch: 3, LowWater: 2}, inc)
		lo, hi := uintptrOf(g.mem), uintptrOf(g.mem)+uintptr(len(g.mem))
		var held []Lease
		data = data[1:]
		for len(data) >= 5 {
			op, bid, res := data[0], uint16(data[1])|uint16(data[2])<<8, int32(int16(uint16(data[3])|uint16(data[4])<<8))
			data = data[5:]
			var c ring.CQE
			switch op % 4 {
			case 0: // arbitrary
				flags := ring.CQEFlags(op>>2) & (ring.CQEFBuffer | ring.CQEFMore | ring.CQEFBufMore)
				c = ring.CQE{Res: res, Flags: flags | ring.CQEFlags(bid)<<ring.CQEBufferShift}
			case 1: // what the kernel would post
				if res <= 0 {
					res = 1
				}
				c = k.recv(uint32(res), op&4 != 0)
			case 2:
				if len(held) > 0 {
					j := int(bid) % len(held)
					held[j].Release()
					held[j] = held[len(held)-1]
					held = held[:len(held)-1]
				}
				continue
			case 3:
				g.Flush()
				continue
			}
			l, err := g.Lease(&c)
			if err != nil {
				if !l.IsZero() {
					t.Fatalf("error %v with a lease", err)
				}
				if c.HasBuffer() && c.Res >= 0 && !errors.Is(err, ErrCorruptCQE) {
					t.Fatalf("buffer CQE error %v is not ErrCorruptCQE", err)
				}
				continue
			}
			n := 0
			for s := range l.Segments() {
				if len(s) > 0 && (uintptrOf(s) < lo || uintptrOf(s)+uintptr(len(s)) > hi) {
					t.Fatalf("view [%#x,+%d) outside the slab [%#x,%#x)", uintptrOf(s), len(s), lo, hi)
				}
				n += len(s)
			}
			if n != l.Len() {
				t.Fatalf("segments %d bytes, Len %d", n, l.Len())
			}
			if !l.IsZero() {
				held = append(held, l)
			}
			if !inc && g.InUse()+g.Available()+g.Pending() != g.Count() {
				t.Fatalf("in use %d + available %d + pending %d != %d", g.InUse(), g.Available(), g.Pending(), g.Count())
			}
		}
		for _, l := range held {
			l.Release()
		}
		g.Flush()
		if g.InUse() != 0 {
			t.Fatalf("in use %d after releasing every lease", g.InUse())
		}
		if !inc && g.Available() != g.Count() {
			t.Fatalf("available %d after releasing every lease, want %d", g.Available(), g.Count())
		}
	})
}
