//go:build linux

package bufring

// Slabs are anonymous private mappings (off the Go heap). Ordinary slabs are
// not populated: a page becomes resident when first written or when the slab
// is pinned as a fixed buffer, so memory no load needs costs no RSS. Huge page
// slabs are populated up front so the faults take huge pages. Slabs are
// unmapped only by Close, after the kernel's references (buffer ring, fixed
// buffers) are gone or pin the pages themselves.

import (
	"os"

	"golang.org/x/sys/unix"
)

const hugePageSize = 2 << 20

// mapSlab maps at least size bytes. With huge it tries MAP_HUGETLB, then
// madvise(MADV_HUGEPAGE), and reports which worked ("hugetlb", "thp" or "").
func mapSlab(size int, huge bool) (mem []byte, kind string, err error) {
	const prot = unix.PROT_READ | unix.PROT_WRITE
	const flags = unix.MAP_PRIVATE | unix.MAP_ANONYMOUS | unix.MAP_POPULATE
	if huge {
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
	return m, "", nil
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
