//go:build linux

package runtime

import (
	goruntime "runtime"
	"time"

	"github.com/ringwire/ringwire/ring"
)

// Starting operations: NewOp hands out an SQE tied to a new op record, Pin
// holds what the SQE points to, Cancel asks the kernel to stop it; mailboxes
// and MsgRing carry CQEs between loops.

// getSQE returns a free SQE, submitting first if the queue is full.
func (l *Loop) getSQE() *ring.SQE {
	if s := l.r.GetSQE(); s != nil {
		return s
	}
	n, err := l.r.Submit()
	l.st.enters.Add(1)
	l.st.sqes.Add(uint64(n))
	l.enterError(err)
	return l.r.GetSQE()
}

// NewOp starts an operation: it returns a zeroed SQE whose UserData names a
// new op record, and that OpID. Fill the SQE with a ring Prep helper (they
// keep UserData); it is submitted with the loop's next io_uring_enter. Every
// CQE of the operation goes to h (nil: dropped) with tag, until the final one
// (no IORING_CQE_F_MORE). It fails with ErrClosed once Close has begun, and
// with ring.ErrSQFull if the submission queue stays full after a submit.
// Loop thread only.
func (l *Loop) NewOp(h Handler, tag uint64) (*ring.SQE, OpID, error) {
	if l.closing {
		return nil, 0, ErrClosed
	}
	sqe := l.getSQE()
	if sqe == nil {
		return nil, 0, ring.ErrSQFull
	}
	id := l.ops.alloc(h, tag, 0)
	sqe.UserData = uint64(id)
	return sqe, id, nil
}

// Pin pins the object ptr points to (runtime.Pinner) until operation id's
// final CQE has been dispatched: use it for Go memory an SQE points to (a
// buffer, a sockaddr, a msghdr). Call it right after NewOp. A stale id is
// ignored. Loop thread only.
func (l *Loop) Pin(id OpID, ptr any) {
	r := l.ops.get(id)
	if r == nil {
		return
	}
	if r.pin == nil {
		r.pin = new(goruntime.Pinner)
	}
	r.pin.Pin(ptr)
	r.flags |= opPinned
}

// Cancel asks the kernel to cancel operation id (IORING_OP_ASYNC_CANCEL). The
// operation's handler still receives its final CQE (usually -ECANCELED, or
// the result if it completed first); until then its record and pinned memory
// stay. A cancel that does not take (the kernel found the operation between
// two states, or running and not yet interrupted) is submitted again on the
// next timer tick for as long as the operation lives. It returns ErrStaleOp
// if id is not live. Loop thread only.
func (l *Loop) Cancel(id OpID) error {
	r := l.ops.get(id)
	if r == nil || r.state != opLive || r.flags&opMailbox != 0 {
		return ErrStaleOp
	}
	sqe := l.getSQE()
	if sqe == nil {
		return ring.ErrSQFull
	}
	sqe.PrepCancel64(uint64(id), 0)
	sqe.UserData = uint64(id) | cancelMark // only a failure posts a CQE
	sqe.Flags |= ring.SQECQESkipSuccess
	l.st.cancels.Add(1)
	return nil
}

// cancelMark marks the user_data of a cancel: the cancelled OpID with bit 63
// set, which no OpID has (maxGen). A cancel posts a CQE only when it fails.
const cancelMark = 1 << 63

// cancelFailed handles a cancel's failure CQE for op id: -ENOENT when the
// kernel did not find the operation where cancels look (its completion is on
// the way, or it sat in a retry between two polls), -EALREADY when it found it
// running and signalled the worker. While the operation lives, the cancel
// is retried on the next tick: a send blocked on a zero window would
// otherwise never end, and neither would the Close waiting for it.
func (l *Loop) cancelFailed(id OpID) {
	if r := l.ops.get(id); r == nil || r.state != opLive {
		return // it completed meanwhile
	}
	l.st.cancelRetries.Add(1)
	l.recancel = append(l.recancel, id)
	if !l.recancelArmed {
		l.recancelArmed = true
		l.Timer(recancelTimer{}, 0, time.Now().Add(l.cfg.TimerTick))
	}
}

// recancelTimer submits the cancels that did not take again.
type recancelTimer struct{}

func (recancelTimer) HandleCompletion(l *Loop, _ uint64, _ *ring.CQE) {
	l.recancelArmed = false
	ids := l.recancel
	l.recancel = l.recancel[:0]
	for _, id := range ids {
		_ = l.Cancel(id) // ErrStaleOp: it has ended meanwhile
	}
}

// NewMailbox creates a persistent record with no kernel request behind it,
// for CQEs other loops post with MsgRing (or MSG_RING SQEs of their own). Each
// such CQE goes to h with tag; the record lives until CloseMailbox. Loop
// thread only.
func (l *Loop) NewMailbox(h Handler, tag uint64) OpID {
	return l.ops.alloc(h, tag, opMailbox)
}

// CloseMailbox frees a mailbox; CQEs that arrive for it later are counted as
// strays. Loop thread only.
func (l *Loop) CloseMailbox(id OpID) error {
	r := l.ops.get(id)
	if r == nil || r.flags&(opMailbox|opInternal) != opMailbox {
		return ErrStaleOp
	}
	l.ops.release(uint32(id))
	return nil
}

// MsgRing posts a CQE into target's ring (IORING_OP_MSG_RING, Linux 5.18): on
// target, the mailbox to receives a CQE with Res res. The source side's CQE
// is consumed by the runtime; failures are counted in Stats.MsgRingErrors.
// To pass a fixed file instead, use NewOp and ring.(*SQE).PrepMsgRingFD with
// target.RingFD(). Loop thread only.
func (l *Loop) MsgRing(target *Loop, to OpID, res int32) error {
	if l.closing {
		return ErrClosed
	}
	sqe := l.getSQE()
	if sqe == nil {
		return ring.ErrSQFull
	}
	sqe.PrepMsgRing(target.ringFD, uint32(res), uint64(to), 0)
	sqe.UserData = uint64(l.msgAck)
	sqe.Flags |= ring.SQECQESkipSuccess
	return nil
}

type msgAckHandler struct{}

func (msgAckHandler) HandleCompletion(l *Loop, _ uint64, c *ring.CQE) {
	if c.Res < 0 {
		l.st.msgRingErrors.Add(1)
	}
}
