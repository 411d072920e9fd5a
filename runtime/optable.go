package runtime

import goruntime "runtime"

// opRec is one operation's record. The kernel only ever sees its address in
// the table (index plus generation, in user_data), never a Go pointer; the
// table may therefore grow (and move) at any time on the loop thread.
type opRec struct {
	h     Handler
	tag   uint64
	pin   *goruntime.Pinner // Pin: allocated once per slot, reused
	gen   uint32
	next  int32 // free list link
	state uint8
	flags uint8
}

const (
	opFree uint8 = iota
	opLive       // in flight
	opDone       // final CQE being dispatched; freed when its handler returns
)

const (
	opPinned   uint8 = 1 << iota // pin holds objects
	opMailbox                    // persistent: no kernel request behind it
	opInternal                   // the runtime's own (doorbell, MSG_RING acks)
)

type opTable struct {
	recs       []opRec
	free       int32
	live       int // records in use
	persistent int // mailboxes and internal persistent records among them
	internal   int // the runtime's own records among them
}

func (t *opTable) init(n int) {
	t.free = -1
	t.grow(n)
}

func (t *opTable) grow(n int) {
	old := len(t.recs)
	if n <= old {
		n = 2 * old
	}
	t.recs = append(t.recs, make([]opRec, n-old)...)
	for i := n - 1; i >= old; i-- {
		t.recs[i].gen = 1
		t.recs[i].next = t.free
		t.free = int32(i)
	}
}

func (t *opTable) alloc(h Handler, tag uint64, flags uint8) OpID {
	if t.free < 0 {
		t.grow(0)
	}
	i := t.free
	r := &t.recs[i]
	t.free = r.next
	r.h, r.tag, r.state, r.flags, r.next = h, tag, opLive, flags, -1
	t.live++
	if flags&opMailbox != 0 {
		t.persistent++
	}
	if flags&opInternal != 0 {
		t.internal++
	}
	return OpID(uint64(r.gen)<<32 | uint64(i))
}

// get returns the record id names if it is live, else nil. The pointer is
// valid until the table grows (any NewOp).
func (t *opTable) get(id OpID) *opRec {
	i := uint64(uint32(id))
	if i >= uint64(len(t.recs)) {
		return nil
	}
	r := &t.recs[i]
	if r.gen != uint32(uint64(id)>>32) || r.state == opFree {
		return nil
	}
	return r
}

func (t *opTable) release(i uint32) {
	r := &t.recs[i]
	if r.flags&opPinned != 0 {
		r.pin.Unpin()
	}
	if r.flags&opMailbox != 0 {
		t.persistent--
	}
	if r.flags&opInternal != 0 {
		t.internal--
	}
	r.h, r.tag, r.state, r.flags = nil, 0, opFree, 0
	r.gen++
	if r.gen == 0 || r.gen > maxGen {
		r.gen = 1
	}
	r.next = t.free
	t.free = int32(i)
	t.live--
}

// maxGen is the largest generation: 31 bits, so that an OpID never has bit 63
// set, which marks the CQE of a cancel (cancelMark).
const maxGen = 1<<31 - 1
