//go:build linux

package bufring

import (
	"errors"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
)

// checkLease verifies the lease's bytes are the sequence the simulated kernel
// wrote, starting at *seq.
func checkLease(t testing.TB, l Lease, seq *byte) {
	t.Helper()
	got := 0
	for s := range l.Segments() {
		for _, b := range s {
			if b != *seq {
				t.Fatalf("lease %d+%d: byte %d = %d, want %d", l.BufferID(), l.Buffers(), got, b, *seq)
			}
			*seq++
			got++
		}
	}
	if got != l.Len() {
		t.Fatalf("segments hold %d bytes, Len %d", got, l.Len())
	}
}

func TestSimSingleBuffers(t *testing.T) {
	g, k := newSimGroup(t, &Config{Count: 8, Size: 64, Batch: 4, LowWater: 1}, false)
	if g.Available() != 8 || g.InUse() != 0 {
		t.Fatalf("fresh group: available %d in use %d", g.Available(), g.InUse())
	}
	var seq byte
	var held []Lease
	for i := 0; i < 8; i++ {
		c := k.recv(64, false)
		l, err := g.Lease(&c)
		if err != nil {
			t.Fatal(err)
		}
		checkLease(t, l, &seq)
		held = append(held, l)
	}
	if g.Available() != 0 || g.InUse() != 8 {
		t.Fatalf("all leased: available %d in use %d", g.Available(), g.InUse())
	}
	c := k.recv(64, false)
	if _, err := g.Lease(&c); !errors.Is(err, ErrNoBuffers) || !errors.Is(err, syscall.ENOBUFS) {
		t.Fatalf("empty ring: err %v, want ErrNoBuffers", err)
	}
	if !g.Starved() || g.Stats().NoBuffers != 1 {
		t.Fatalf("starved %v, NoBuffers %d", g.Starved(), g.Stats().NoBuffers)
	}
	// Batch of 4, low water 1: the first three releases stay pending
	// (available 0 < low water publishes at once, so expect immediate flushes).
	held[0].Release()
	if g.Available() != 1 || g.Pending() != 0 {
		t.Fatalf("below low water: available %d pending %d", g.Available(), g.Pending())
	}
	held[1].Release()
	held[2].Release()
	if g.Available() != 1 || g.Pending() != 2 {
		t.Fatalf("batching: available %d pending %d", g.Available(), g.Pending())
	}
	g.Flush()
	if g.Available() != 3 || g.Pending() != 0 {
		t.Fatalf("after Flush: available %d pending %d", g.Available(), g.Pending())
	}
	for _, l := range held[3:] {
		l.Release()
	}
	g.Flush()
	if g.Available() != 8 || g.InUse() != 0 {
		t.Fatalf("all released: available %d in use %d", g.Available(), g.InUse())
	}
}

func TestSimDoubleReleasePanics(t *testing.T) {
	g, k := newSimGroup(t, &Config{GroupID: 7, Count: 4, Size: 64}, false)
	c := k.recv(10, false)
	l, err := g.Lease(&c)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	defer func() {
		r := recover()
		msg, _ := r.(string)
		if !strings.Contains(msg, "group 7 buffer 0 released twice") {
			t.Fatalf("panic %q, want one naming group 7 buffer 0", r)
		}
	}()
	l.Release()
}

func TestSimBundles(t *testing.T) {
	g, k := newSimGroup(t, &Config{Count: 16, Size: 100, Batch: 1}, false)
	var seq byte
	rng := rand.New(rand.NewPCG(1, 2))
	var held []Lease
	for i := 0; i < 2000; i++ {
		if k.avail() > 0 {
			c := k.recv(uint32(1+rng.IntN(700)), true)
			l, err := g.Lease(&c)
			if err != nil {
				t.Fatal(err)
			}
			checkLease(t, l, &seq)
			held = append(held, l)
		}
		// Release out of order, keeping some held.
		for len(held) > 0 && (rng.IntN(3) == 0 || k.avail() == 0) {
			j := rng.IntN(len(held))
			held[j].Release()
			held[j] = held[len(held)-1]
			held = held[:len(held)-1]
		}
	}
	if g.Stats().Bundles == 0 {
		t.Fatal("no bundle spanned several buffers")
	}
	for _, l := range held {
		l.Release()
	}
	g.Flush()
	if g.Available() != 16 || g.InUse() != 0 {
		t.Fatalf("end: available %d in use %d", g.Available(), g.InUse())
	}
}

func TestSimIncremental(t *testing.T) {
	g, k := newSimGroup(t, &Config{Count: 4, Size: 1000, Batch: 1}, true)
	var seq byte
	c := k.recv(300, false)
	a, err := g.Lease(&c)
	if err != nil || !c.BufMore() {
		t.Fatalf("first: %v, BUF_MORE %v", err, c.BufMore())
	}
	checkLease(t, a, &seq)
	a.Release()
	if g.Available() != 4 || g.Pending() != 0 {
		t.Fatalf("partly filled buffer went back early: available %d pending %d", g.Available(), g.Pending())
	}
	c = k.recv(700, false) // finishes buffer 0
	b, err := g.Lease(&c)
	if err != nil || c.BufMore() || b.BufferID() != 0 || b.Len() != 700 {
		t.Fatalf("second: %v more %v bid %d len %d", err, c.BufMore(), b.BufferID(), b.Len())
	}
	checkLease(t, b, &seq)
	if g.Available() != 3 || g.InUse() != 1 {
		t.Fatalf("after full: available %d in use %d", g.Available(), g.InUse())
	}
	b.Release()
	if g.Available() != 4 {
		t.Fatalf("finished buffer not returned: available %d", g.Available())
	}
}

// TestSimRandom drives random receives (single, bundle, incremental) and
// random releases and retains, checking that no two live leases share bytes,
// that every view holds what was written there, and that no buffer is lost.
func TestSimRandom(t *testing.T) {
	for _, inc := range []bool{false, true} {
		g, k := newSimGroup(t, &Config{Count: 32, Size: 256, Batch: 5, LowWater: 3}, inc)
		rng := rand.New(rand.NewPCG(uint64(len(t.Name())), 9))
		var seq byte
		type live struct {
			l    Lease
			refs int
		}
		var held []live
		owner := make([]int, len(g.mem)) // byte -> live lease tag, 0 = none
		tag := 0
		mark := func(l Lease, v int) {
			for s := range l.Segments() {
				off := int(uintptr(unsafePtr(s)) - uintptr(unsafePtr(g.mem)))
				for i := range s {
					if v != 0 && owner[off+i] != 0 {
						t.Fatalf("byte %d leased twice (tags %d and %d)", off+i, owner[off+i], v)
					}
					owner[off+i] = v
				}
			}
		}
		for i := 0; i < 20000; i++ {
			switch op := rng.IntN(10); {
			case op < 5:
				c := k.recv(uint32(1+rng.IntN(600)), rng.IntN(2) == 0)
				l, err := g.Lease(&c)
				if errors.Is(err, ErrNoBuffers) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				checkLease(t, l, &seq)
				tag++
				mark(l, tag)
				held = append(held, live{l, 1})
			case op < 6 && len(held) > 0:
				j := rng.IntN(len(held))
				held[j].l.Retain()
				held[j].refs++
			case len(held) > 0:
				j := rng.IntN(len(held))
				held[j].refs--
				if held[j].refs == 0 {
					mark(held[j].l, 0)
				}
				held[j].l.Release()
				if held[j].refs == 0 {
					held[j] = held[len(held)-1]
					held = held[:len(held)-1]
				}
			case op == 9:
				g.Flush()
			}
			if !inc && g.InUse()+g.Available()+g.Pending() != g.Count() {
				t.Fatalf("step %d: in use %d + available %d + pending %d != %d", i, g.InUse(), g.Available(), g.Pending(), g.Count())
			}
		}
		for _, h := range held {
			for ; h.refs > 0; h.refs-- {
				h.l.Release()
			}
		}
		g.Flush()
		if g.InUse() != 0 || g.Available() != g.Count() || k.avail() != int(g.Available()) {
			t.Fatalf("inc=%v end: in use %d available %d (kernel sees %d)", inc, g.InUse(), g.Available(), k.avail())
		}
	}
}

func TestSimCorruptCQE(t *testing.T) {
	g, k := newSimGroup(t, &Config{Count: 8, Size: 64}, false)
	for _, tc := range []struct {
		name string
		cqe  func() (res int32, bid uint16)
	}{
		{name: "id out of range", cqe: func() (int32, uint16) { return 10, 8 }},
		{name: "id far out of range", cqe: func() (int32, uint16) { return 10, 65535 }},
		{name: "bundle beyond ring", cqe: func() (int32, uint16) { return 64*8 + 1, 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, bid := tc.cqe()
			c := ringCQE(res, bid, 0)
			l, err := g.Lease(&c)
			if !errors.Is(err, ErrCorruptCQE) || !l.IsZero() {
				t.Fatalf("got %v, %v; want ErrCorruptCQE", l, err)
			}
			if g.Available() != 8 {
				t.Fatalf("corrupt CQE changed the accounting: available %d", g.Available())
			}
		})
	}
	// A buffer already leased, named again.
	c := k.recv(10, false)
	l, err := g.Lease(&c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Lease(&c); !errors.Is(err, ErrCorruptCQE) {
		t.Fatalf("same CQE twice: %v, want ErrCorruptCQE", err)
	}
	l.Release()
}

func TestRotation(t *testing.T) {
	a, ka := newSimGroup(t, &Config{GroupID: 1, Count: 2, Size: 64}, false)
	b, _ := newSimGroup(t, &Config{GroupID: 2, Count: 4, Size: 64}, false)
	rot := NewRotation(a, b)
	if rot.Next() != a || rot.Group(2) != b || rot.Group(9) != nil {
		t.Fatal("rotation does not start on the first group")
	}
	var held []Lease
	for i := 0; i < 2; i++ {
		c := ka.recv(10, false)
		l, err := a.Lease(&c)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
	}
	if g := rot.Next(); g != b || rot.Rotations != 1 {
		t.Fatalf("starved group a: Next gave group %d (rotations %d), want 2", g.ID(), rot.Rotations)
	}
	for _, l := range held {
		l.Release()
	}
	rot.Flush()
	if rot.Available() != 6 || rot.Next() != b {
		t.Fatalf("available %d, current %d", rot.Available(), rot.Current().ID())
	}
}
