package bufring

import (
	"fmt"

	"go.uber.org/zap"
)

// Config configures a Group. The zero value and nil both mean the defaults.
type Config struct {
	// GroupID is the buffer group id (BufferGroupID) SQEs name in BufIndex
	// with IOSQE_BUFFER_SELECT. Each group of a ring needs its own. Default 0.
	GroupID uint16
	// Count is the number of buffers, a power of two no larger than 32768.
	// Default 256: buffers are shared by every connection of the loop, so the
	// count follows the receives in flight, not the connections.
	Count uint32
	// Size is the size of each buffer in bytes. Default 16384: large enough
	// for a GRO-coalesced TCP segment train or a jumbo datagram, small enough
	// that 256 of them (4 MiB) hold about 3 ms of a 10 Gbit/s stream.
	Size uint32
	// Incremental asks for incremental consumption (IOU_PBUF_RING_INC, Linux
	// 6.12): a receive consumes only the bytes it got from a buffer, and the
	// rest of the buffer serves the next receive. Used only when the kernel
	// accepts it; Group.Incremental reports the outcome.
	Incremental bool
	// Batch is how many released buffers are gathered before they are
	// published with one tail store. Default Count/16 (at least 1).
	Batch uint32
	// LowWater: when the kernel holds fewer buffers than this, a release
	// publishes at once instead of waiting for a full batch. Default Count/4.
	LowWater uint32
	// Lazy publishes only LowWater+Batch buffers at first and the rest, never
	// touched before, only when the kernel holds fewer than LowWater. The
	// kernel takes buffers in ring order, so an eager group cycles through
	// every buffer and keeps the whole slab resident even when a handful
	// would do; a lazy one touches only the buffers its load needed. Once
	// published a buffer stays in circulation. The slab is advised
	// MADV_NOHUGEPAGE, so that with transparent huge pages set to "always"
	// touching one buffer does not fault in 2 MiB. With HugePages the slab is
	// populated up front and Lazy saves nothing.
	Lazy bool
	// HugePages backs the slab with huge pages: MAP_HUGETLB when the system
	// has a huge page pool, otherwise madvise(MADV_HUGEPAGE), otherwise
	// ordinary pages.
	HugePages bool
	// Logger receives setup and teardown messages, never per-buffer ones.
	// Default zap.NewNop().
	Logger *zap.Logger
}

// Defaults used when the Config leaves a field zero.
const (
	DefaultCount = 256
	DefaultSize  = 16 << 10
	// MaxCount is the largest Count: the kernel takes fewer than 65536 ring
	// entries, and Count is a power of two.
	MaxCount = 1 << 15
)

func (c *Config) withDefaults() (Config, error) {
	var out Config
	if c != nil {
		out = *c
	}
	if out.Count == 0 {
		out.Count = DefaultCount
	}
	if out.Size == 0 {
		out.Size = DefaultSize
	}
	if out.Count&(out.Count-1) != 0 || out.Count > MaxCount {
		return out, fmt.Errorf("bufring: Count %d is not a power of two in [1, %d]", out.Count, MaxCount)
	}
	if uint64(out.Count)*uint64(out.Size) > 1<<40 {
		return out, fmt.Errorf("bufring: Count*Size (%d*%d) too large", out.Count, out.Size)
	}
	if out.Batch == 0 {
		out.Batch = max(1, out.Count/16)
	}
	if out.Batch > out.Count {
		out.Batch = out.Count
	}
	if out.LowWater == 0 {
		out.LowWater = out.Count / 4
	}
	if out.LowWater > out.Count {
		out.LowWater = out.Count
	}
	if out.Logger == nil {
		out.Logger = zap.NewNop()
	}
	return out, nil
}

// Class is one size class of an Arena: Count blocks of Size bytes.
type Class struct {
	Size  uint32
	Count uint32
}

// ArenaConfig configures an Arena. Nil means the defaults.
type ArenaConfig struct {
	// Classes are the size classes, in any order; Alloc picks the smallest
	// class that fits and has a free block. Default DefaultClasses.
	Classes []Class
	// HugePages backs the arena with huge pages when available (see Config.HugePages).
	HugePages bool
	// Logger receives setup messages only. Default zap.NewNop().
	Logger *zap.Logger
}

// DefaultClasses are the Arena size classes used when ArenaConfig.Classes is
// empty: 128x4 KiB, 64x16 KiB, 32x64 KiB and 8x256 KiB, 5.5 MiB in all, under
// the common 8 MiB RLIMIT_MEMLOCK. Sends are held only until their notification
// CQE (microseconds to a round trip), so a loop needs memory for the sends in
// flight, not for every connection.
var DefaultClasses = []Class{{4 << 10, 128}, {16 << 10, 64}, {64 << 10, 32}, {256 << 10, 8}}

func (c *ArenaConfig) withDefaults() (ArenaConfig, error) {
	var out ArenaConfig
	if c != nil {
		out = *c
	}
	if len(out.Classes) == 0 {
		out.Classes = DefaultClasses
	}
	out.Classes = append([]Class(nil), out.Classes...)
	// insertion sort by size: few classes
	for i := 1; i < len(out.Classes); i++ {
		for j := i; j > 0 && out.Classes[j].Size < out.Classes[j-1].Size; j-- {
			out.Classes[j], out.Classes[j-1] = out.Classes[j-1], out.Classes[j]
		}
	}
	if len(out.Classes) > 255 {
		return out, fmt.Errorf("bufring: %d size classes, at most 255", len(out.Classes))
	}
	var total uint64
	for _, cl := range out.Classes {
		if cl.Size == 0 || cl.Count == 0 {
			return out, fmt.Errorf("bufring: size class %+v has a zero field", cl)
		}
		total += uint64(cl.Size) * uint64(cl.Count)
	}
	if total > 1<<30 {
		return out, fmt.Errorf("bufring: arena of %d bytes exceeds the 1 GiB a fixed buffer may span", total)
	}
	if out.Logger == nil {
		out.Logger = zap.NewNop()
	}
	return out, nil
}
