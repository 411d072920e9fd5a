//go:build linux

package bufring

// Slabs are anonymous private mappings (off the Go heap). Ordinary slabs are
// not populated: a page becomes resident when first written or when the slab
// is pinned as a fixed buffer, so memory no load needs costs no RSS. With
// transparent huge pages set to "always" (Debian's default) the first write
// into a 2 MiB-aligned stretch faults in a whole huge page, so a lazy slab,
// which counts on most of it never being touched, is advised
// MADV_NOHUGEPAGE. Huge page slabs are populated up front so the faults take
// huge pages. Slabs are unmapped only by Close, after the kernel's references
// (buffer ring, fixed buffers) are gone or pin the pages themselves.

import (
	"os"

	"golang.org/x/sys/unix"
)

const hugePageSize = 2 << 20

// slabUse says how a slab will be touched, and so how to back it.
type slabUse int

const (
	slabPlain slabUse = iota // ordinary pages, as the system's THP setting says
	slabLazy                 // mostly never touched: no transparent huge pages
	slabHuge                 // huge pages, populated up front
)

// mapSlab maps at least size bytes. For slabHuge it tries MAP_HUGETLB, then
// madvise(MADV_HUGEPAGE), and reports which worked ("hugetlb", "thp" or "").
func mapSlab(size int, use slabUse) (mem []byte, kind string, err error) {
	const prot = unix.PROT_READ | unix.PROT_WRITE
	const flags = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_POPULATE
	if use == slabHuge {
		hs := (size + hugePageSize - 1) &^ (hugePageSize - 1)
		if m, err := unix.Mmap(-1, 0, hs, prot, flags|unix.MAP_HUGETLB); err == nil {
			return m, "hugetlb", nil
		}
		m, err := unix.Mmap(-1, 0, hs, prot, flags&^unix.MAP_POPULATE)
		if err != nil {
			return nil, "", os.NewSyscallError("mmap", err)
		}
		kind := ""
		if unix.Madvise(m, unix.MADV_HUGEPAGE) == nil {
			kind = "thp"
		}
		// Populate after the advice, so faults take huge pages.
		for i := 0; i < len(m); i += os.Getpagesize() {
			m[i] = 0
		}
		return m, kind, nil
	}
	// Not populated: a page becomes resident when first written (by the
	// kernel, for a receive buffer) or when the slab is registered as a
	// fixed buffer, so memory no one uses costs no RSS.
	m, err := unix.Mmap(-1, 0, size, prot, flags&^unix.MAP_POPULATE)
	if err != nil {
		return nil, "", os.NewSyscallError("mmap", err)
	}
	if use == slabLazy {
		// Fails only where the kernel has no transparent huge pages
		// (EINVAL), and then there is no huge page to fault in.
		_ = unix.Madvise(m, unix.MADV_NOHUGEPAGE)
	}
	return m, "", nil
}

// slabUseOf is how a group's or arena's slab is backed: huge pages win over
// Lazy, which then saves the publishing but not the memory.
func slabUseOf(huge, lazy bool) slabUse {
	switch {
	case huge:
		return slabHuge
	case lazy:
		return slabLazy
	}
	return slabPlain
}

func unmap(m []byte) error {
	if m == nil {
		return nil
	}
	if err := unix.Munmap(m); err != nil {
		return os.NewSyscallError("munmap", err)
	}
	return nil
}
