package bufring

// Invariants this file relies on (liburing io_uring_buf_ring_add and
// io_uring_buf_ring_advance):
//
//   - The buffer ring is an array of struct io_uring_buf in memory shared with
//     the kernel. The kernel reads entries from its head up to our tail; the
//     tail is the u16 in the resv field of entry 0 (bytes 14..15).
//   - An entry is filled with plain stores, and then the tail is published with
//     a store-release (liburing io_uring_smp_store_release). Go has no 16-bit
//     atomic, so the tail is published with a sequentially consistent 32-bit
//     atomic store of bytes 12..15 of entry 0: the bid of entry 0 (which only
//     we write; the kernel reads it but never writes it) together with the new
//     tail. Entry 0 is therefore never written as a whole struct, only field by
//     field, so a stale tail is never stored.
//   - The kernel writes addr and len of the entry at its head with
//     IOU_PBUF_RING_INC, and len of a truncated bundle buffer; every entry is
//     rewritten in full (addr, len, bid) before it is published again.
//   - The slab is off-heap (mmap), so views into it are not moved or collected;
//     it is unmapped only by Close.
//
// Nothing the kernel writes is trusted for bookkeeping: the position each buffer
// was published at is kept in Go memory (bufState.pos, shadow), and a CQE is
// validated against it before anything changes.

import (
	"encoding/binary"
	"iter"
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/ringwire/ringwire/ring"
	"go.uber.org/zap"
)

const (
	stKernel  uint8 = 1 << 0 // published: the kernel may fill it
	stPending uint8 = 1 << 1 // released, waiting in the batch to be published
)

type bufState struct {
	gen   uint32 // bumped each time the buffer is published
	refs  uint32 // caller references: leases and retains
	off   uint32 // incremental mode: where the kernel writes next
	pos   uint16 // ring position the buffer was last published at
	next  uint16 // next buffer of a bundle lease that starts here
	state uint8
}

// Stats are a Group's counters. InUse, Available and Pending are buffer counts
// at the time of the call; the others count events since NewGroup.
type Stats struct {
	// InUse is how many buffers the caller holds leases on.
	InUse int
	// Available is how many buffers the kernel holds (published, possibly
	// partly filled in incremental mode).
	Available int
	// Pending is how many released buffers wait for the next Flush.
	Pending int
	// NoBuffers counts CQEs that carried -ENOBUFS.
	NoBuffers uint64
	// DryEnds counts CQEs with data but without F_MORE that left the kernel
	// no buffer: a multishot receive that stopped because the ring ran dry.
	// Bundle receives end this way rather than with ENOBUFS. (A single-shot
	// receive that takes the last buffer is counted too.) NoBuffers+DryEnds
	// counts every starvation.
	DryEnds uint64
	// Leases counts leases handed out; Bundles those covering several buffers.
	Leases  uint64
	Bundles uint64
	// Flushes counts tail stores; Published the buffers they handed back.
	Flushes   uint64
	Published uint64
	// Unused is how many buffers were never published (Config.Lazy): their
	// memory has not been touched.
	Unused int
}

// Group is a provided buffer ring registered with one ring. See the package
// documentation for ownership; a Group is used only from its loop's thread.
type Group struct {
	id       uint16
	count    uint32
	mask     uint16
	size     uint32
	inc      bool
	batch    int
	lowWater int

	mem      []byte     // the slab, count*size bytes (possibly more, rounded)
	memMap   []byte     // the mapping mem lies in
	ringMap  []byte     // the buffer ring entries' mapping
	entries  []ring.Buf // count entries over ringMap
	tailWord *uint32    // bytes 12..15 of entry 0: bid | tail<<16 (little-endian)
	tail     uint16     // next position to publish at

	shadow  []uint16 // position&mask -> bid published there
	bufs    []bufState
	pending []uint16 // released buffers not yet published; cap count

	held   int    // buffers with stKernel
	leased int    // buffers with refs > 0
	fresh  uint32 // buffers [fresh, count) were never published (Config.Lazy)

	fixed   fixedSlot
	starved bool
	stats   Stats
	huge    string
	closed  bool

	r   *ring.Ring
	log *zap.Logger
}

var bigEndian = binary.NativeEndian.Uint16([]byte{0, 1}) == 1

// setup fills the Go-side bookkeeping over already mapped memory and publishes
// every buffer; used by NewGroup and by tests that run without a kernel.
func (g *Group) setup(c *Config, mem, ringMap []byte) {
	g.id = c.GroupID
	g.count = c.Count
	g.mask = uint16(c.Count - 1)
	g.size = c.Size
	g.batch = int(c.Batch)
	g.lowWater = int(c.LowWater)
	g.mem = mem[:uint64(c.Count)*uint64(c.Size)]
	g.ringMap = ringMap
	g.entries = unsafe.Slice((*ring.Buf)(unsafe.Pointer(&ringMap[0])), c.Count)
	g.tailWord = (*uint32)(unsafe.Pointer(&ringMap[12]))
	g.shadow = make([]uint16, c.Count)
	g.bufs = make([]bufState, c.Count)
	g.pending = make([]uint16, 0, c.Count)
	g.fixed.idx = -1
	g.log = c.Logger
	g.fresh = c.Count
	if c.Lazy {
		g.fresh = min(c.Count, c.LowWater+c.Batch)
	}
	for i := range g.fresh {
		g.bufs[i].state = stPending
		g.pending = append(g.pending, uint16(i))
	}
	g.Flush()
}

// topUp publishes the released buffers and, when the kernel would still hold
// fewer than LowWater+Batch, buffers never published before (Config.Lazy).
func (g *Group) topUp() {
	for g.fresh < g.count && g.held+len(g.pending) < g.lowWater+g.batch {
		g.bufs[g.fresh].state = stPending
		g.pending = append(g.pending, uint16(g.fresh))
		g.fresh++
	}
	g.Flush()
}

// ID returns the buffer group id to put in SQE.BufIndex.
func (g *Group) ID() uint16 { return g.id }

// Count returns the number of buffers.
func (g *Group) Count() int { return int(g.count) }

// Size returns the size of each buffer.
func (g *Group) Size() int { return int(g.size) }

// Incremental reports whether the kernel consumes buffers incrementally
// (IOU_PBUF_RING_INC).
func (g *Group) Incremental() bool { return g.inc }

// HugePages reports how the slab is backed: "hugetlb", "thp" (madvise), or "".
func (g *Group) HugePages() string { return g.huge }

// InUse returns how many buffers are leased to the caller.
func (g *Group) InUse() int { return g.leased }

// Available returns how many buffers the kernel holds and may fill.
func (g *Group) Available() int { return g.held }

// Pending returns how many released buffers wait for Flush.
func (g *Group) Pending() int { return len(g.pending) }

// Stats returns the group's counters.
func (g *Group) Stats() Stats {
	s := g.stats
	s.InUse, s.Available, s.Pending = g.leased, g.held, len(g.pending)
	s.Unused = int(g.count - g.fresh)
	return s
}

// Starved reports whether a multishot receive ended with ENOBUFS since the
// last Rearmed. Re-arm it once Available is non-zero (after Flush).
func (g *Group) Starved() bool { return g.starved }

// Rearmed clears Starved; call it after re-arming the receives that ended for
// lack of buffers.
func (g *Group) Rearmed() { g.starved = false }

// FixedIndex returns the fixed buffer index the slab was registered at by
// RegisterFixed, and whether it was. After RegisterFixedOnDemand the first
// call registers it (see there).
func (g *Group) FixedIndex() (uint16, bool) { return g.fixed.index(g.mem, g.log) }

// Flush publishes every released buffer to the kernel with one tail store.
// liburing: io_uring_buf_ring_add for each, then io_uring_buf_ring_advance.
func (g *Group) Flush() {
	if len(g.pending) == 0 || g.closed {
		return
	}
	base := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(g.mem))))
	t := g.tail
	for _, bid := range g.pending {
		e := &g.entries[t&g.mask]
		e.Addr = base + uint64(bid)*uint64(g.size)
		e.Len = g.size
		e.BID = bid // never Resv: in entry 0 it is the tail
		g.shadow[t&g.mask] = bid
		b := &g.bufs[bid]
		b.pos = t
		b.off = 0
		b.gen++
		b.state = stKernel
		t++
	}
	n := len(g.pending)
	g.pending = g.pending[:0]
	g.held += n
	g.tail = t
	bid0 := uint32(g.entries[0].BID)
	w := bid0 | uint32(t)<<16
	if bigEndian {
		w = bid0<<16 | uint32(t)
	}
	atomic.StoreUint32(g.tailWord, w) // store-release of the tail
	g.stats.Flushes++
	g.stats.Published += uint64(n)
}

func (g *Group) corrupt(c *ring.CQE, why string) error {
	return &CQEError{Group: g.id, BufferID: c.BufferID(), Res: c.Res, Flags: c.Flags, Reason: why}
}

// Lease decodes a CQE of a request that selected buffers from this group and
// returns a lease on the bytes it received. Pass it every CQE of such requests:
//
//   - a result of -ENOBUFS returns ErrNoBuffers and counts the event (and, when
//     the CQE lacks F_MORE, marks the group Starved);
//   - a CQE with data but without F_MORE that leaves the kernel no buffer also
//     marks the group Starved and counts in Stats.DryEnds: bundle receives
//     stop that way when the ring runs dry;
//   - another negative result returns the CQE's error;
//   - a CQE without F_BUFFER, or one that consumed no bytes, returns the zero
//     Lease and nil;
//   - a CQE naming a buffer the group cannot account for returns a *CQEError
//     and changes nothing.
//
// Lease does not allocate.
func (g *Group) Lease(c *ring.CQE) (Lease, error) {
	if c.Res < 0 {
		if c.HasBuffer() {
			return Lease{}, g.corrupt(c, "error result with F_BUFFER")
		}
		if c.Res == -int32(syscall.ENOBUFS) {
			g.stats.NoBuffers++
			if !c.More() {
				g.starved = true
			}
			if g.fresh < g.count {
				g.topUp()
			}
			return Lease{}, ErrNoBuffers
		}
		return Lease{}, c.Err()
	}
	if !c.HasBuffer() {
		return Lease{}, nil
	}
	if g.closed {
		return Lease{}, ErrClosed
	}
	bid := c.BufferID()
	if uint32(bid) >= g.count {
		return Lease{}, g.corrupt(c, "buffer id out of range")
	}
	first := &g.bufs[bid]
	if first.state&stKernel == 0 {
		return Lease{}, g.corrupt(c, "buffer not held by the kernel")
	}
	n := uint32(c.Res)
	if g.inc {
		return g.leaseInc(c, bid, n)
	}
	k := (n + g.size - 1) / g.size
	if k == 0 {
		k = 1 // a zero-byte completion still consumed its buffer
	}
	if k > uint32(g.held) {
		return Lease{}, g.corrupt(c, "byte count spans more buffers than the kernel holds")
	}
	p := first.pos
	for i := uint32(0); i < k; i++ {
		q := p + uint16(i)
		if uint16(g.tail-q)-1 >= uint16(g.count) { // q not in [tail-count, tail)
			return Lease{}, g.corrupt(c, "bundle runs past the ring tail")
		}
		b := &g.bufs[g.shadow[q&g.mask]]
		if b.state&stKernel == 0 || b.pos != q {
			return Lease{}, g.corrupt(c, "bundle covers a buffer the kernel does not hold")
		}
	}
	// Validated; commit.
	prev := bid
	for i := uint32(0); i < k; i++ {
		cur := g.shadow[(p+uint16(i))&g.mask]
		b := &g.bufs[cur]
		b.state = 0
		b.refs = 1
		if i > 0 {
			g.bufs[prev].next = cur
		}
		prev = cur
	}
	g.held -= int(k)
	g.leased += int(k)
	l := Lease{g: g, gen: first.gen, bid: bid, nbuf: uint16(k), n: n}
	if n == 0 {
		l.Release()
		return Lease{}, nil
	}
	g.noteEnd(c)
	if g.held < g.lowWater && g.fresh < g.count {
		g.topUp()
	}
	g.stats.Leases++
	if k > 1 {
		g.stats.Bundles++
	}
	return l, nil
}

func (g *Group) leaseInc(c *ring.CQE, bid uint16, n uint32) (Lease, error) {
	if n == 0 {
		return Lease{}, nil // nothing consumed; the buffer stays with the kernel
	}
	first := &g.bufs[bid]
	start := first.off
	p := first.pos
	remain := n
	var k uint32
	lastFull := false
	for remain > 0 {
		if k >= uint32(g.held) {
			return Lease{}, g.corrupt(c, "byte count spans more buffers than the kernel holds")
		}
		q := p + uint16(k)
		if uint16(g.tail-q)-1 >= uint16(g.count) {
			return Lease{}, g.corrupt(c, "bundle runs past the ring tail")
		}
		b := &g.bufs[g.shadow[q&g.mask]]
		if b.state&stKernel == 0 || b.pos != q || (k > 0 && b.off != 0) {
			return Lease{}, g.corrupt(c, "bundle covers a buffer the kernel does not hold")
		}
		avail := g.size - b.off
		take := min(remain, avail)
		remain -= take
		lastFull = take == avail
		k++
	}
	if lastFull == c.BufMore() {
		return Lease{}, g.corrupt(c, "F_BUF_MORE disagrees with the bytes consumed")
	}
	remain = n
	prev := bid
	for i := uint32(0); i < k; i++ {
		cur := g.shadow[(p+uint16(i))&g.mask]
		b := &g.bufs[cur]
		take := min(remain, g.size-b.off)
		remain -= take
		b.off += take
		if b.refs == 0 {
			g.leased++
		}
		b.refs++
		if b.off == g.size {
			b.state = 0
			g.held--
		}
		if i > 0 {
			g.bufs[prev].next = cur
		}
		prev = cur
	}
	g.noteEnd(c)
	if g.held < g.lowWater && g.fresh < g.count {
		g.topUp()
	}
	g.stats.Leases++
	if k > 1 {
		g.stats.Bundles++
	}
	return Lease{g: g, gen: first.gen, bid: bid, nbuf: uint16(k), off: start, n: n}, nil
}

// noteEnd marks the group starved when c ended its request and the kernel
// holds no buffer: the receive stopped because the ring ran dry.
func (g *Group) noteEnd(c *ring.CQE) {
	if !c.More() && g.held == 0 {
		g.stats.DryEnds++
		g.starved = true
	}
}

func (g *Group) doublePanic(bid uint16, what string) {
	panic("bufring: group " + strconv.Itoa(int(g.id)) + " buffer " + strconv.Itoa(int(bid)) + " " + what)
}

func (g *Group) check(l *Lease, what string) {
	b := &g.bufs[l.bid]
	if b.gen != l.gen || b.refs == 0 {
		if what == "released" {
			g.doublePanic(l.bid, "released twice (or never leased)")
		}
		g.doublePanic(l.bid, what+" after release")
	}
}

func (g *Group) release(l *Lease) {
	g.check(l, "released")
	bid := l.bid
	for i := 0; i < int(l.nbuf); i++ {
		b := &g.bufs[bid]
		if b.refs == 0 {
			g.doublePanic(bid, "released twice (bundle member)")
		}
		next := b.next
		b.refs--
		if b.refs == 0 {
			g.leased--
			if b.state&stKernel == 0 {
				b.state = stPending
				g.pending = append(g.pending, bid)
			}
		}
		bid = next
	}
	if len(g.pending) >= g.batch || g.held < g.lowWater {
		g.topUp()
	}
}

func (g *Group) retain(l *Lease) {
	g.check(l, "retained")
	bid := l.bid
	for i := 0; i < int(l.nbuf); i++ {
		b := &g.bufs[bid]
		b.refs++
		bid = b.next
	}
}

// Lease is a caller's hold on bytes the kernel received into a Group: one
// buffer, a run of buffers (a bundle), or a slice of one buffer (incremental
// mode). It is a small value; copies refer to the same hold, and exactly one
// Release ends it (plus one per Retain). The zero Lease holds nothing, and its
// Release does nothing.
type Lease struct {
	g    *Group
	gen  uint32
	n    uint32 // bytes
	off  uint32 // offset of the first byte in the first buffer
	bid  uint16 // first buffer
	nbuf uint16 // buffers covered
}

// IsZero reports whether the lease holds nothing.
func (l Lease) IsZero() bool { return l.g == nil }

// Len returns the number of bytes received.
func (l Lease) Len() int { return int(l.n) }

// BufferID returns the id of the (first) buffer.
func (l Lease) BufferID() uint16 { return l.bid }

// Buffers returns how many buffers the lease covers (more than one for a bundle).
func (l Lease) Buffers() int { return int(l.nbuf) }

// Group returns the group the lease came from.
func (l Lease) Group() *Group { return l.g }

// Bytes returns the bytes in the first buffer. For a lease of one buffer
// (Buffers() == 1) that is every byte received; for a bundle use Segments.
// The view is valid until Release.
func (l Lease) Bytes() []byte {
	if l.g == nil {
		return nil
	}
	end := min(l.n, l.g.size-l.off)
	o := uint64(l.bid)*uint64(l.g.size) + uint64(l.off)
	return l.g.mem[o : o+uint64(end) : o+uint64(end)]
}

// Segments yields the views of every buffer the lease covers, in order.
func (l Lease) Segments() iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		if l.g == nil {
			return
		}
		g := l.g
		bid, off, remain := l.bid, l.off, l.n
		for i := 0; i < int(l.nbuf) && remain > 0; i++ {
			take := min(remain, g.size-off)
			o := uint64(bid)*uint64(g.size) + uint64(off)
			if !yield(g.mem[o : o+uint64(take) : o+uint64(take)]) {
				return
			}
			remain -= take
			off = 0
			bid = g.bufs[bid].next
		}
	}
}

// AppendTo appends the received bytes to dst and returns the result.
func (l Lease) AppendTo(dst []byte) []byte {
	if l.g == nil {
		return dst
	}
	g := l.g
	bid, off, remain := l.bid, l.off, l.n
	for i := 0; i < int(l.nbuf) && remain > 0; i++ {
		take := min(remain, g.size-off)
		o := uint64(bid)*uint64(g.size) + uint64(off)
		dst = append(dst, g.mem[o:o+uint64(take)]...)
		remain -= take
		off = 0
		bid = g.bufs[bid].next
	}
	return dst
}

// FixedIndex returns the fixed buffer index covering the lease's bytes when
// the group's slab was registered with RegisterFixed, for PrepSendZCFixed and
// PrepWriteFixed (each segment lies inside that one registered buffer).
func (l Lease) FixedIndex() (uint16, bool) {
	if l.g == nil {
		return 0, false
	}
	return l.g.FixedIndex()
}

// Retain adds a reference, for example for a zero-copy send of the bytes that
// stays in flight after the caller is done with them; each Retain needs its own
// Release. It panics if the lease was already released.
func (l Lease) Retain() {
	if l.g != nil {
		l.g.retain(&l)
	}
}

// Release drops a reference; when the last is dropped the buffers go back to
// the kernel (with the next batch). It panics, naming the buffer, when the
// lease was already released: see the package documentation.
func (l Lease) Release() {
	if l.g != nil {
		l.g.release(&l)
	}
}
