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

// TestSimStaleLeaseReleasePanics releases a lease whose buffer has since gone
// back to the kernel and been leased again: the stale copy must panic naming
// the buffer, and must not take the new owner's buffer away.
func TestSimStaleLeaseReleasePanics(t *testing.T) {
	g, k := newSimGroup(t, &Config{GroupID: 8, Count: 2, Size: 64, Batch: 1}, false)
	c := k.recv(10, false)
	stale, err := g.Lease(&c)
	if err != nil || stale.BufferID() != 0 {
		t.Fatalf("first lease: buffer %d, %v", stale.BufferID(), err)
	}
	stale.Release()
	g.Flush()
	var cur Lease
	for cur.IsZero() || cur.BufferID() != 0 { // cycle until buffer 0 is leased again
		if cur.g != nil {
			cur.Release()
		}
		c = k.recv(10, false)
		if cur, err = g.Lease(&c); err != nil {
			t.Fatal(err)
		}
	}
	func() {
		defer func() {
			msg, _ := recover().(string)
			if !strings.Contains(msg, "group 8 buffer 0 released twice") {
				t.Fatalf("panic %q, want one naming group 8 buffer 0", msg)
			}
		}()
		stale.Release()
	}()
	if g.InUse() != 1 || cur.Len() != 10 {
		t.Fatalf("the stale release disturbed the live lease: in use %d", g.InUse())
	}
	cur.Release()
	g.Flush()
	if g.InUse() != 0 || g.Available() != 2 {
		t.Fatalf("end: in use %d available %d", g.InUse(), g.Available())
	}
}

// checkStates checks that every buffer is in exactly one place (kernel,
// pending batch, or caller; kernel and caller at once only for a partly
// consumed buffer in incremental mode) and that the counters agree.
func checkStates(t testing.TB, g *Group, k *simKernel, step int) {
	t.Helper()
	var kernel, pending, leased int
	for bid, b := range g.bufs {
		switch {
		case b.state == stKernel|stPending:
			t.Fatalf("step %d: buffer %d both published and pending", step, bid)
		case b.state == 0 && b.refs == 0 && uint32(bid) < g.fresh:
			t.Fatalf("step %d: buffer %d lost: not published, pending or leased", step, bid)
		case b.state == stPending && b.refs != 0:
			t.Fatalf("step %d: buffer %d pending while leased", step, bid)
		case b.state == stKernel && b.refs != 0 && !g.inc:
			t.Fatalf("step %d: buffer %d published while leased", step, bid)
		}
		if b.state == stKernel {
			kernel++
		}
		if b.state == stPending {
			pending++
		}
		if b.refs != 0 {
			leased++
		}
	}
	if kernel != g.Available() || pending != g.Pending() || leased != g.InUse() || k.avail() != g.Available() {
		t.Fatalf("step %d: states kernel %d pending %d leased %d; counters available %d pending %d in use %d; kernel sees %d",
			step, kernel, pending, leased, g.Available(), g.Pending(), g.InUse(), k.avail())
	}
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
			case op == 9:
				g.Flush()
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
			}
			if !inc && g.InUse()+g.Available()+g.Pending() != g.Count() {
				t.Fatalf("step %d: in use %d + available %d + pending %d != %d", i, g.InUse(), g.Available(), g.Pending(), g.Count())
			}
			checkStates(t, g, k, i)
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
