//go:build linux

package bufring

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/ringwire/ringwire/ring"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// NewArena maps an arena for the size classes of cfg. Register it with
// RegisterFixed before sending from it with PrepSendZCFixed or PrepWriteFixed.
func NewArena(cfg *ArenaConfig) (*Arena, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var total int
	for _, cl := range c.Classes {
		total += int(cl.Size) * int(cl.Count)
	}
	mem, kind, err := mapSlab(total, slabUseOf(c.HugePages, false))
	if err != nil {
		return nil, fmt.Errorf("bufring: map arena of %d bytes: %w", total, err)
	}
	a := &Arena{memMap: mem, huge: kind}
	a.setup(&c, mem)
	c.Logger.Debug("bufring: arena mapped", zap.Int("bytes", total), zap.Int("classes", len(c.Classes)), zap.String("hugepages", kind))
	return a, nil
}

// Close unmaps the arena. Leases still held become invalid. Unregister the
// ring's fixed buffers (or close the ring) first if the arena was registered.
// Calls after the first return nil.
func (a *Arena) Close() error {
	if a == nil || a.closed {
		return nil
	}
	a.closed = true
	if a.inUse > 0 {
		a.log.Warn("bufring: arena closed with leases outstanding", zap.Int("in_use", a.inUse))
	}
	err := unmap(a.memMap)
	a.memMap, a.mem = nil, nil
	return err
}

// RegisterFixed registers the slabs as r's fixed buffers with one
// IORING_REGISTER_BUFFERS call (liburing io_uring_register_buffers), slab i
// at buffer index i, and records each index (Arena.FixedIndex,
// Group.FixedIndex). A ring has one fixed buffer table; register every slab in
// one call. Registration pins the memory: an ENOMEM becomes an error naming
// RLIMIT_MEMLOCK and the bytes needed. Requires Linux 5.1.
func RegisterFixed(r *ring.Ring, slabs ...Slab) error {
	bufs := make([][]byte, len(slabs))
	var total uint64
	for i, s := range slabs {
		mem, _ := s.slab()
		if mem == nil {
			return fmt.Errorf("bufring: register fixed buffers: slab %d is closed", i)
		}
		bufs[i] = mem
		total += uint64(len(mem))
	}
	if err := r.RegisterBuffers(bufs); err != nil {
		if errors.Is(err, syscall.ENOMEM) && !strings.Contains(err.Error(), "RLIMIT_MEMLOCK") {
			var lim unix.Rlimit
			_ = unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim)
			return fmt.Errorf("bufring: registering %d slabs as fixed buffers pins %d bytes, beyond RLIMIT_MEMLOCK (%d bytes); raise it to at least %d (ulimit -l, LimitMEMLOCK=) or grant CAP_IPC_LOCK: %w",
				len(slabs), total, lim.Cur, total, err)
		}
		return fmt.Errorf("bufring: register %d fixed buffers (%d bytes): %w", len(slabs), total, err)
	}
	for i, s := range slabs {
		_, fixed := s.slab()
		fixed.idx, fixed.ring = int32(i), nil
	}
	return nil
}

// RegisterFixedOnDemand gives r a sparse fixed buffer table with one slot
// per slab (slab i at index i, as RegisterFixed) but registers a slab only
// when its FixedIndex (or a lease's) is first asked for, with
// IORING_REGISTER_BUFFERS_UPDATE. Registration pins the slab's memory, and
// pinning makes every page of it resident: a server that never sends with
// SEND_ZC from fixed buffers then never pays for them in RSS, and a receive
// slab holds only the pages the kernel has written. If the later
// registration fails (RLIMIT_MEMLOCK), FixedIndex reports false and logs it
// once. Requires Linux 5.19 (sparse tables).
func RegisterFixedOnDemand(r *ring.Ring, slabs ...Slab) error {
	for i, s := range slabs {
		if mem, _ := s.slab(); mem == nil {
			return fmt.Errorf("bufring: register fixed buffers: slab %d is closed", i)
		}
	}
	if err := r.RegisterBuffersSparse(uint32(len(slabs))); err != nil {
		return fmt.Errorf("bufring: register a sparse table of %d fixed buffers: %w", len(slabs), err)
	}
	for i, s := range slabs {
		_, fixed := s.slab()
		fixed.idx, fixed.ring, fixed.slot = -1, r, uint32(i)
	}
	return nil
}
