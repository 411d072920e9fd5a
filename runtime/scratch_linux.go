package runtime

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// scratchSlots is how many operations' scratch one mapping holds (a page).
const scratchSlots = 4096 / ScratchSize

// scratchMem is off-heap memory, ScratchSize bytes per op-table slot, mapped
// a page at a time as the table grows. Pages never move and are unmapped
// only when the ring is gone, so the kernel may read a slot for as long as
// its operation lives, with no Pinner on the hot path.
type scratchMem struct {
	pages [][]byte
}

// slot returns slot i's bytes, mapping its page on first use.
func (m *scratchMem) slot(i uint32) ([]byte, error) {
	p := int(i / scratchSlots)
	for len(m.pages) <= p {
		b, err := unix.Mmap(-1, 0, scratchSlots*ScratchSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return nil, fmt.Errorf("runtime: map scratch page: %w", err)
		}
		m.pages = append(m.pages, b)
	}
	off := int(i%scratchSlots) * ScratchSize
	return m.pages[p][off : off+ScratchSize : off+ScratchSize], nil
}

// close unmaps every page. Only once the kernel can no longer read them.
func (m *scratchMem) close() {
	for _, b := range m.pages {
		_ = unix.Munmap(b)
	}
	m.pages = nil
}

// Scratch returns ScratchSize bytes of off-heap memory that belong to
// operation id until its final CQE has been dispatched: the place for small
// things an SQE points to (a destination sockaddr, a timespec) without
// pinning Go memory per operation. Its contents are whatever the slot's
// previous operation left. It returns nil if id is not live or the page could
// not be mapped. It allocates nothing once the slot's page exists. Loop
// thread only.
func (l *Loop) Scratch(id OpID) []byte {
	if l.ops.get(id) == nil {
		return nil
	}
	b, err := l.scratch.slot(uint32(id))
	if err != nil {
		return nil
	}
	return b
}
