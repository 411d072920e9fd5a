//go:build linux

package bufring

// A user-space stand-in for the kernel's side of a provided buffer ring, used to
// drive the bookkeeping through orders of events a real socket rarely produces
// (and to fuzz it). It reads the ring exactly as the kernel does: the tail from
// entry 0 with an atomic load, entries from its own head, and in incremental
// mode it advances addr and shrinks len of the entry at its head in place
// (io_kbuf_inc_commit). Real-kernel tests are in group_linux_test.go.

import (
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/ringwire/ringwire/ring"
)

type simKernel struct {
	g    *Group
	head uint16
	seq  byte // the next byte value written, so views can be checked
	// noFill skips writing the bytes (benchmarks measure the bookkeeping).
	noFill bool
}

func newSimGroup(tb testing.TB, cfg *Config, inc bool) (*Group, *simKernel) {
	tb.Helper()
	c, err := cfg.withDefaults()
	if err != nil {
		tb.Fatal(err)
	}
	mem, _, err := mapSlab(int(c.Count*c.Size), slabPlain)
	if err != nil {
		tb.Fatal(err)
	}
	rm, _, err := mapSlab(int(c.Count)*16, slabPlain)
	if err != nil {
		tb.Fatal(err)
	}
	g := &Group{memMap: mem}
	g.setup(&c, mem, rm)
	g.inc = inc
	tb.Cleanup(func() { _ = g.Close() })
	return g, &simKernel{g: g}
}

func (k *simKernel) tail() uint16 {
	w := atomic.LoadUint32((*uint32)(unsafe.Pointer(&k.g.ringMap[12])))
	if bigEndian {
		return uint16(w)
	}
	return uint16(w >> 16)
}

func (k *simKernel) avail() int { return int(uint16(k.tail() - k.head)) }

// recv simulates one receive of up to n bytes (n > 0), as one buffer or, with
// bundle, as many buffers as needed. It fills the bytes it claims with a
// running sequence and returns the CQE the kernel would post.
func (k *simKernel) recv(n uint32, bundle bool) ring.CQE {
	g := k.g
	if k.avail() == 0 {
		return ring.CQE{Res: -int32(105)} // -ENOBUFS
	}
	var res uint32
	var flags ring.CQEFlags
	first := uint16(0)
	for i := 0; n > 0 && k.avail() > 0; i++ {
		e := &g.entries[k.head&g.mask]
		if i == 0 {
			first = e.BID
		}
		take := min(n, e.Len)
		off := e.Addr - uint64(uintptr(unsafe.Pointer(&g.mem[0])))
		dst := g.mem[off : off+uint64(take)]
		for j := range dst {
			if k.noFill {
				break
			}
			dst[j] = k.seq
			k.seq++
		}
		n -= take
		res += take
		if g.inc {
			e.Addr += uint64(take)
			e.Len -= take
			if e.Len > 0 {
				flags |= ring.CQEFBufMore
				break
			}
			k.head++
		} else {
			k.head++
		}
		if !bundle {
			break
		}
	}
	flags |= ring.CQEFBuffer | ring.CQEFMore
	return ring.CQE{Res: int32(res), Flags: flags | ring.CQEFlags(first)<<ring.CQEBufferShift}
}
