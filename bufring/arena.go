package bufring

// The arena's slab is off-heap (mmap); views into it never move. Blocks are
// handed out by index from per-class free stacks held in Go memory, so a
// corrupt or stale FixedLease can never make the allocator hand out memory
// twice: every release is checked against the block's generation and
// reference count first.

import (
	"strconv"

	"github.com/ringwire/ringwire/ring"
	"go.uber.org/zap"
)

type arenaClass struct {
	size  uint32
	count uint32
	first uint32   // global index of the class's first block
	off   uint64   // byte offset of the class's region in the slab
	free  []uint32 // stack of free global block indexes
}

type block struct {
	gen   uint32 // bumped on every allocation
	refs  uint32
	class uint8
}

// ArenaStats are an Arena's counters.
type ArenaStats struct {
	// InUse and Available are blocks leased and free.
	InUse, Available int
	// InUseBytes is the capacity of the blocks leased.
	InUseBytes int
	// Allocs counts successful Allocs; Exhausted those that failed with
	// ErrArenaExhausted.
	Allocs, Exhausted uint64
}

// Arena is a slab with a size-class allocator of FixedLeases, meant to be
// registered as a fixed buffer (RegisterFixed) for SEND_ZC and WRITE_FIXED. It
// is used only from its loop's thread.
type Arena struct {
	mem     []byte
	memMap  []byte
	classes []arenaClass
	blocks  []block
	inUse   int
	inBytes int
	fixed   fixedSlot
	huge    string
	stats   ArenaStats
	closed  bool
	log     *zap.Logger
}

func (a *Arena) setup(c *ArenaConfig, mem []byte) {
	a.fixed.idx = -1
	a.log = c.Logger
	var off uint64
	var nblocks uint32
	for _, cl := range c.Classes {
		nblocks += cl.Count
	}
	a.blocks = make([]block, nblocks)
	a.classes = make([]arenaClass, len(c.Classes))
	var first uint32
	for i, cl := range c.Classes {
		ac := arenaClass{size: cl.Size, count: cl.Count, first: first, off: off, free: make([]uint32, cl.Count)}
		for j := range ac.free {
			// Stack top is the end: lowest addresses are handed out first.
			ac.free[j] = first + cl.Count - 1 - uint32(j)
			a.blocks[first+uint32(j)].class = uint8(i)
		}
		a.classes[i] = ac
		first += cl.Count
		off += uint64(cl.Size) * uint64(cl.Count)
	}
	a.mem = mem[:off]
}

// Alloc leases a block of at least n bytes from the smallest class that fits
// and has a free block. The lease's Bytes has length n and the block's
// capacity. It returns ErrTooLarge when no class fits n and ErrArenaExhausted
// when every fitting class is empty. It does not allocate.
func (a *Arena) Alloc(n int) (FixedLease, error) {
	if a.closed {
		return FixedLease{}, ErrClosed
	}
	fits := false
	for i := range a.classes {
		c := &a.classes[i]
		if uint64(c.size) < uint64(n) {
			continue
		}
		fits = true
		if len(c.free) == 0 {
			continue
		}
		idx := c.free[len(c.free)-1]
		c.free = c.free[:len(c.free)-1]
		b := &a.blocks[idx]
		b.gen++
		b.refs = 1
		a.inUse++
		a.inBytes += int(c.size)
		a.stats.Allocs++
		return FixedLease{a: a, gen: b.gen, idx: idx, n: uint32(max(n, 0))}, nil
	}
	if !fits {
		return FixedLease{}, ErrTooLarge
	}
	a.stats.Exhausted++
	return FixedLease{}, ErrArenaExhausted
}

// InUse returns how many blocks are leased.
func (a *Arena) InUse() int { return a.inUse }

// Available returns how many blocks are free.
func (a *Arena) Available() int { return len(a.blocks) - a.inUse }

// Stats returns the arena's counters.
func (a *Arena) Stats() ArenaStats {
	s := a.stats
	s.InUse, s.Available, s.InUseBytes = a.inUse, len(a.blocks)-a.inUse, a.inBytes
	return s
}

// FixedIndex returns the fixed buffer index the arena was registered at by
// RegisterFixed, and whether it was. After RegisterFixedOnDemand the first
// call registers it (see there).
func (a *Arena) FixedIndex() (uint16, bool) { return a.fixed.index(a.mem, a.log) }

// HugePages reports how the slab is backed: "hugetlb", "thp" (madvise), or "".
func (a *Arena) HugePages() string { return a.huge }

func (a *Arena) blockOff(idx uint32) (off uint64, size uint32) {
	b := &a.blocks[idx]
	c := &a.classes[b.class]
	return c.off + uint64(idx-c.first)*uint64(c.size), c.size
}

func (a *Arena) check(l *FixedLease, what string) *block {
	if uint64(l.idx) >= uint64(len(a.blocks)) {
		panic("bufring: arena block " + strconv.Itoa(int(l.idx)) + " " + what + ": no such block")
	}
	b := &a.blocks[l.idx]
	if b.gen != l.gen || b.refs == 0 {
		if what == "released" {
			panic("bufring: arena block " + strconv.Itoa(int(l.idx)) + " released twice (or never leased)")
		}
		panic("bufring: arena block " + strconv.Itoa(int(l.idx)) + " " + what + " after release")
	}
	return b
}

// FixedLease is a caller's hold on one arena block. It is a small value; the
// reference count lives in the arena, so copies refer to the same hold. The
// zero FixedLease holds nothing.
type FixedLease struct {
	a   *Arena
	gen uint32
	idx uint32
	n   uint32
}

// IsZero reports whether the lease holds nothing.
func (l FixedLease) IsZero() bool { return l.a == nil }

// Bytes returns the leased memory: length as requested from Alloc, capacity
// the block's size. Valid until the last Release.
func (l FixedLease) Bytes() []byte {
	if l.a == nil {
		return nil
	}
	off, size := l.a.blockOff(l.idx)
	return l.a.mem[off : off+uint64(l.n) : off+uint64(size)]
}

// Cap returns the block's size.
func (l FixedLease) Cap() int {
	if l.a == nil {
		return 0
	}
	_, size := l.a.blockOff(l.idx)
	return int(size)
}

// Block returns the block's index in the arena (for diagnostics).
func (l FixedLease) Block() uint32 { return l.idx }

// FixedIndex returns the fixed buffer index to pass to PrepSendZCFixed or
// PrepWriteFixed, and whether the arena was registered.
func (l FixedLease) FixedIndex() (uint16, bool) {
	if l.a == nil {
		return 0, false
	}
	return l.a.FixedIndex()
}

// Retain adds a reference, typically for a send in flight: the block stays
// leased until that send's final CQE and, for SEND_ZC, its notification (see
// SendDone). It panics if the lease was already released.
func (l FixedLease) Retain() {
	if l.a != nil {
		l.a.check(&l, "retained").refs++
	}
}

// Release drops a reference; the block is free when the last one is dropped.
// It panics, naming the block, when the lease was already released.
func (l FixedLease) Release() {
	if l.a == nil {
		return
	}
	b := l.a.check(&l, "released")
	b.refs--
	if b.refs > 0 {
		return
	}
	c := &l.a.classes[b.class]
	c.free = append(c.free, l.idx) // cap is the class count: never grows
	l.a.inUse--
	l.a.inBytes -= int(c.size)
}

// SendDone reports whether c is the last CQE of a send: the kernel no longer
// reads the send's buffer, and the reference held for it can be released. For
// SEND_ZC and SENDMSG_ZC that is the notification CQE (F_NOTIF), or the result
// CQE when it lacks F_MORE (no notification follows); for any other send or
// write it is the one CQE.
func SendDone(c *ring.CQE) bool { return c.Notif() || !c.More() }

// Slab is memory that RegisterFixed can register as a fixed buffer: a *Group
// or an *Arena.
type Slab interface {
	slab() (mem []byte, fixed *fixedSlot)
}

func (g *Group) slab() ([]byte, *fixedSlot) { return g.mem, &g.fixed }
func (a *Arena) slab() ([]byte, *fixedSlot) { return a.mem, &a.fixed }

// fixedSlot is where a slab sits in its ring's fixed buffer table.
type fixedSlot struct {
	idx  int32      // registered at this index, or -1
	ring *ring.Ring // RegisterFixedOnDemand: register at slot on first use
	slot uint32
}

// index returns the slab's fixed buffer index, registering it first when
// RegisterFixedOnDemand left it pending. One attempt: if it fails (memlock),
// the slab stays unregistered and senders use plain addresses.
func (f *fixedSlot) index(mem []byte, log *zap.Logger) (uint16, bool) {
	if f.idx < 0 && f.ring != nil && mem != nil {
		r := f.ring
		f.ring = nil
		if err := r.UpdateBuffers(f.slot, [][]byte{mem}); err != nil {
			log.Warn("bufring: registering a slab as a fixed buffer on first use failed; sends from it use plain addresses",
				zap.Int("bytes", len(mem)), zap.Error(err))
		} else {
			f.idx = int32(f.slot)
		}
	}
	return uint16(f.idx), f.idx >= 0
}
