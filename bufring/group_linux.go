//go:build linux

package bufring

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"github.com/ringwire/ringwire/ring"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// NewGroup maps a slab of cfg.Count buffers of cfg.Size bytes, registers it with
// r as provided buffer ring cfg.GroupID (IORING_REGISTER_PBUF_RING, liburing
// io_uring_setup_buf_ring) and publishes every buffer. With cfg.Incremental it
// asks for IOU_PBUF_RING_INC and falls back when the kernel refuses (EINVAL).
// On a SINGLE_ISSUER ring call it from the ring's thread. Requires Linux 5.19.
func NewGroup(r *ring.Ring, cfg *Config) (*Group, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	g := &Group{r: r}
	size := int(uint64(c.Count) * uint64(c.Size))
	mem, kind, err := mapSlab(size, slabUseOf(c.HugePages, c.Lazy))
	if err != nil {
		return nil, fmt.Errorf("bufring: group %d: map %d bytes: %w", c.GroupID, size, err)
	}
	g.memMap, g.huge = mem, kind
	ringMap, _, err := mapSlab(int(c.Count)*int(unsafe.Sizeof(ring.Buf{})), slabPlain)
	if err != nil {
		_ = unmap(mem)
		return nil, fmt.Errorf("bufring: group %d: map ring: %w", c.GroupID, err)
	}
	reg := ring.BufReg{
		RingAddr:    uint64(uintptr(unsafe.Pointer(&ringMap[0]))),
		RingEntries: c.Count,
		BGID:        c.GroupID,
	}
	inc := false
	if c.Incremental {
		reg.Flags = ring.PbufRingInc
		err = r.RegisterBufRing(&reg)
		if err == nil {
			inc = true
		} else if errors.Is(err, syscall.EINVAL) {
			reg.Flags = 0
			err = r.RegisterBufRing(&reg)
		}
	} else {
		err = r.RegisterBufRing(&reg)
	}
	if err != nil {
		_ = unmap(ringMap)
		_ = unmap(mem)
		if errors.Is(err, syscall.ENOMEM) {
			// The kernel pins the ring's entries (not the slab) and, without
			// CAP_IPC_LOCK, charges them to RLIMIT_MEMLOCK.
			var lim unix.Rlimit
			_ = unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim)
			ps := os.Getpagesize()
			need := (len(ringMap) + ps - 1) / ps * ps
			return nil, fmt.Errorf("bufring: registering buffer group %d pins %d bytes of ring entries, more than RLIMIT_MEMLOCK (%d bytes, shared by all of this user's pinned memory) has left; raise it by at least %d (ulimit -l, LimitMEMLOCK=) or grant CAP_IPC_LOCK: %w",
				c.GroupID, need, lim.Cur, need, err)
		}
		return nil, fmt.Errorf("bufring: register buffer group %d (%d x %d bytes): %w", c.GroupID, c.Count, c.Size, err)
	}
	g.setup(&c, mem, ringMap)
	g.inc = inc
	c.Logger.Debug("bufring: group registered", zap.Uint16("group", c.GroupID), zap.Uint32("count", c.Count),
		zap.Uint32("size", c.Size), zap.Bool("incremental", inc), zap.String("hugepages", kind))
	return g, nil
}

// Close unregisters the group from its ring and unmaps its memory. Leases still
// held become invalid (their views must not be used). Call it on the ring's
// thread, before or after the ring's Close. Calls after the first return nil.
func (g *Group) Close() error {
	if g == nil || g.closed {
		return nil
	}
	g.closed = true
	var errs []error
	if g.r != nil {
		if err := g.r.UnregisterBufRing(g.id); err != nil && !errors.Is(err, ring.ErrClosed) {
			errs = append(errs, fmt.Errorf("bufring: unregister group %d: %w", g.id, err))
		}
	}
	if g.leased > 0 {
		g.log.Warn("bufring: group closed with leases outstanding", zap.Uint16("group", g.id), zap.Int("in_use", g.leased))
	}
	errs = append(errs, unmap(g.ringMap), unmap(g.memMap))
	g.ringMap, g.memMap, g.mem, g.entries, g.tailWord = nil, nil, nil, nil, nil
	return errors.Join(errs...)
}
