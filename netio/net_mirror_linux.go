//go:build linux

package netio

import (
	"errors"
	"os"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/ring"
)

// The readiness mirror: a TCP Read without package net's EAGAIN read.
//
// Package net spends three system calls per request-response message on a
// connection: the read that returns the request, the write of the reply,
// and a read that returns EAGAIN before the goroutine parks. The last exists
// because internal/poll forgets, at the start of every Read, whether the
// socket became readable since the previous one (it resets the poll
// descriptor), so Read has to look. On the development VM that read costs
// 2.1 µs of the 12–20 µs a message costs the server at 1 000 connections.
//
// A socket set whose connections are busy keeps that knowledge itself: a
// connection's socket joins an edge-triggered epoll set of the set's own
// (the mirror), and a harvester goroutine, waiting for the mirror in Go's
// poller, collects its events in batches. A Read whose previous read
// returned data and drained the socket (less than asked: TCP had nothing
// more queued) and that has seen no edge since parks at once, without a
// read; a Read in between that a deadline ended before it took anything
// (net/http's background read, aborted after every response) leaves that
// knowledge as it was. For each parked reader whose socket it finds
// readable, the harvester queues a RECV with MSG_DONTWAIT into that
// reader's own slice (pinned) and submits them all in one io_uring_enter,
// where they complete inline; each reader wakes with its count. Received
// data still goes only into a slice passed to Read, and unread data stays
// in the socket.
//
// The mirror is an optimisation of waiting, never of semantics: a Read
// that has any reason to doubt it (SyscallConn or File handed out, a read
// deadline passed, the connection closing, the set not busy, a first read,
// a read that returned EAGAIN or a full slice, an edge that announced the
// peer's FIN or an error) reads through Go's poller exactly as package net
// does. A Read with a read deadline parks with it: the mirror keeps one
// timer, the read deadline of its epoll fd in Go's poller, armed for the
// earliest deadline of a parked reader; when it fires, the harvester
// nudges every reader parked with a deadline, and each waits the rest of
// its deadline in Go's poller, where the deadline itself is decided. A
// Read parks on the mirror only while at least mirrorHot readers that had
// data are parked in the set, so a lone connection pays no harvester round
// trip.
// docs/decisions/2026-12-03-net-face-reads-through-go-poller.md has the
// measurements.

// mirrorHot is the number of parked readers, each of which had data at its
// last read, from which Reads in a set park on its mirror (16). A variable
// so that tests can make every eligible Read take the mirror.
var mirrorHot = func() *atomic.Int64 { var v atomic.Int64; v.Store(16); return &v }()

// mirrorConn states.
const (
	mIdle      int32 = iota // no edge seen since the last read began
	mEdge                   // readable since the last read began
	mWaiting                // the reader is parked on sem
	mWaitingDL              // the reader is parked on sem with a read deadline
	mClaimed                // the harvester is reading into the reader's slice
	mHup                    // the peer shut down or the socket failed: nothing parks
	mShut                   // closing: nothing parks, nothing is claimed
)

// hupEvents are the epoll events after which a socket's reads end in EOF or
// an error: a Read that got data from it may still have one of those to
// read, whose edge has been spent (TCP stops a read at the FIN), so its
// Reads leave the mirror for good.
const hupEvents = unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR

// parked reports whether state s has a reader parked on sem.
func parked(s int32) bool { return s == mWaiting || s == mWaitingDL }

// mirrorConn is a connection's membership of its set's mirror, made the
// first time one of its Reads parks there.
type mirrorConn struct {
	// The harvester's read for a parked reader: buf is the reader's slice
	// (written before the state leaves mIdle for mWaiting), res the count
	// or -errno, noRes for none (read after the token).
	buf []byte
	res int32

	s     int32 // the socket, valid while state is not mShut (Close waits out mClaimed)
	slot  int32
	state atomic.Int32
	// sem is the reader's parking place, a semaphore of one token: the
	// reader holds it locked between waits and parks by locking it again;
	// the one who moves the state out of mWaiting or mWaitingDL (the
	// harvester, a nudge or the deadline timer) unlocks it, once. 8 bytes where a channel costs 96: every busy
	// connection has one (48 bytes in all).
	sem sync.Mutex
}

// claim is a parked reader the harvester is reading for: dl if it parked
// with a deadline (mWaitingDL), hup if the edge announced a hangup.
type claim struct {
	mc      *mirrorConn
	dl, hup bool
}

// noRes is mirrorConn.res when the harvester has read nothing for the reader.
const noRes = -1 << 31

// mirror is one socket set's readiness mirror and its harvester.
type mirror struct {
	set  *sockSet
	epfd int
	ep   *os.File // epfd, waited for in Go's poller
	erc  syscall.RawConn
	ring *ring.Ring

	waiters atomic.Int64 // readers parked on the mirror
	kick    chan struct{}

	// The deadline timer is ep's read deadline: next is what it is armed
	// for (deadlineOf; 0 for none), changed under dmu.
	dmu  sync.Mutex
	next atomic.Int64

	done chan struct{}
	wg   sync.WaitGroup // harvest and registrar

	regMu   sync.Mutex // one registration at a time; regShut
	regShut bool
	regReq  chan *netFD
	regRes  chan *mirrorConn

	mu    sync.Mutex // table, free, closed
	table []*mirrorConn
	free  []int32
	shut  bool

	// The harvester's own state.
	evs     []unix.EpollEvent
	cqes    []ring.CQE
	claimed []claim
	// pins pin the claimed readers' slices, pinsPer to a Pinner: a
	// Pinner holds that many without allocating, and each keeps its
	// storage between batches.
	pins [maxClaims/pinsPer + 1]goruntime.Pinner
	got  int
	poll func(fd uintptr) bool
}

// mirrorMinRead is the shortest Read that parks on the mirror. Shorter
// ones are mostly probes that the application cancels with a deadline
// (net/http reads one byte in the background to see a client leave, and
// aborts that read after every response): parking those too saved nothing
// measurable at 100 connections and cost at 1, since each brings a
// registration and a nudge for a read that never gets data.
const mirrorMinRead = 512

// maxClaims bounds the reads of one harvester batch (the ring's SQ); pinsPer
// is how many pointers a runtime.Pinner holds in its own storage.
const maxClaims, pinsPer = 64, 5

// mirrorFor returns set's mirror, made on first use; nil where the set has
// none (closed, or a ring that cannot do the harvester's reads).
func (set *sockSet) mirrorFor() *mirror {
	if m := set.mir.Load(); m != nil {
		return m
	}
	set.mu.Lock()
	defer set.mu.Unlock()
	if set.closed || set.mirOff {
		return nil
	}
	if m := set.mir.Load(); m != nil {
		return m
	}
	m, err := newMirror(set)
	if err != nil {
		set.mirOff = true
		return nil
	}
	set.mir.Store(m)
	return m
}

func newMirror(set *sockSet) (*mirror, error) {
	r, err := ring.New(&ring.Config{Entries: maxClaims})
	if err != nil {
		return nil, err
	}
	if err := probeNowaitRecv(r); err != nil {
		r.Close()
		return nil, err
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		r.Close()
		return nil, err
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		r.Close()
		return nil, err
	}
	m := &mirror{
		set: set, epfd: epfd, ep: os.NewFile(uintptr(epfd), "epoll"), ring: r,
		kick: make(chan struct{}, 1), done: make(chan struct{}),
		regReq: make(chan *netFD), regRes: make(chan *mirrorConn),
		evs: make([]unix.EpollEvent, 256), cqes: make([]ring.CQE, maxClaims),
		claimed: make([]claim, 0, maxClaims),
	}
	m.erc, _ = m.ep.SyscallConn()
	m.poll = m.pollOnce
	m.wg.Add(2)
	go m.harvest()
	go m.registrar()
	return m, nil
}

// probeNowaitRecv checks that a RECV with MSG_DONTWAIT on an empty socket
// completes at once with EAGAIN instead of waiting for data, which the
// harvester's synchronous batch relies on.
func probeNowaitRecv(r *ring.Ring) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	sqe := r.GetSQE()
	sqe.PrepRecv(fds[0], probeBuf[:], unix.MSG_DONTWAIT)
	if _, err := r.Submit(); err != nil {
		return err
	}
	var c [1]ring.CQE
	if r.Reap(c[:]) != 1 || c[0].Res != -int32(unix.EAGAIN) {
		// Still in flight (the ring closes with it) or another answer.
		return errMirrorProbe
	}
	return nil
}

// probeBuf is the probe's receive buffer: static, so it outlives a probe
// RECV the kernel might still hold when its ring closes.
var probeBuf [1]byte

var errMirrorProbe = os.NewSyscallError("io_uring recv MSG_DONTWAIT", unix.EINPROGRESS)

// register adds fd's socket to the mirror; nil if the mirror is shut or
// epoll_ctl fails. A socket that is readable already reports an edge at
// once, so registering after the draining read loses nothing.
func (m *mirror) register(s int) *mirrorConn {
	mc := &mirrorConn{s: int32(s), res: noRes}
	mc.sem.Lock()
	m.mu.Lock()
	if m.shut {
		m.mu.Unlock()
		return nil
	}
	if n := len(m.free); n > 0 {
		mc.slot, m.free = m.free[n-1], m.free[:n-1]
	} else {
		mc.slot = int32(len(m.table))
		m.table = append(m.table, nil)
	}
	m.table[mc.slot] = mc
	m.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: mc.slot}
	if err := unix.EpollCtl(m.epfd, unix.EPOLL_CTL_ADD, s, &ev); err != nil {
		m.release(mc)
		return nil
	}
	return mc
}

// release frees mc's slot.
func (m *mirror) release(mc *mirrorConn) {
	m.mu.Lock()
	if int(mc.slot) < len(m.table) && m.table[mc.slot] == mc {
		m.table[mc.slot] = nil
		m.free = append(m.free, mc.slot)
	}
	m.mu.Unlock()
}

// settle waits while the harvester reads into mc's reader's slice, then
// moves mc from a parked state to next, waking its reader; it returns the
// state it found. next is mIdle for a nudge (a deadline or SyscallConn:
// the reader re-decides) and mShut for Close.
func (mc *mirrorConn) settle(next int32) int32 {
	for {
		s := mc.state.Load()
		switch {
		case s == mClaimed:
			goruntime.Gosched() // an inline io_uring read: microseconds
			continue
		case s == mShut:
			return s
		case next == mIdle && !parked(s):
			return s
		}
		if mc.state.CompareAndSwap(s, next) {
			if parked(s) {
				mc.sem.Unlock()
			}
			return s
		}
	}
}

// shut takes mc out of the mirror before its socket closes: no reader parks
// and no harvester read starts after it, a parked reader wakes (and finds
// the socket closed), and the socket leaves the epoll set.
func (mc *mirrorConn) shut(m *mirror) {
	if mc.settle(mShut) == mShut {
		return // shut already
	}
	_ = unix.EpollCtl(m.epfd, unix.EPOLL_CTL_DEL, int(mc.s), nil)
	m.release(mc)
}

// park waits on the mirror for b to be read into, or for a reason to read
// through Go's poller; rmu is held, and dl is the read deadline the caller
// found (0 for none). It returns done with the harvester's result, or
// !done when the caller is to read itself.
func (m *mirror) park(c *netTCPConn, mc *mirrorConn, b []byte, dl int64) (n int, err error, done bool) {
	mc.buf = b // before the state publishes it to the harvester
	wait := mWaiting
	if dl != 0 {
		wait = mWaitingDL
	}
	if !mc.state.CompareAndSwap(mIdle, wait) {
		mc.buf = nil
		// An edge, cleared before the caller's read; or mHup or mShut,
		// which leave reads to Go's poller.
		c.clearEdge(mc)
		return 0, nil, false
	}
	// A deadline or SyscallConn set since the caller looked: they nudge a
	// parked reader, but may have looked before this one parked.
	if c.fd.rdl.Load() != dl || c.fd.rawOut.Load() {
		if mc.state.CompareAndSwap(wait, mIdle) {
			mc.buf = nil
			return 0, nil, false
		}
		// The token is on its way.
	}
	if dl != 0 {
		m.arm(dl)
	}
	if m.waiters.Add(1) == 1 {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
	set := m.set
	set.active.Add(1)
	mc.sem.Lock()
	set.active.Add(-1)
	m.waiters.Add(-1)
	mc.buf = nil
	if r := mc.res; r != noRes {
		mc.res = noRes
		if r < 0 {
			return 0, syscall.Errno(-r), true
		}
		return int(r), nil, true
	}
	c.clearEdge(mc)
	return 0, nil, false
}

// clearEdge clears an edge the mirror saw before the caller reads through
// Go's poller. The socket is no longer known to be drained until that read
// takes what the edge announced: a deadline may end the read before it
// does, and the next Read must not park on an edge already spent.
func (c *netTCPConn) clearEdge(mc *mirrorConn) {
	if mc.state.CompareAndSwap(mEdge, mIdle) {
		c.fd.drained = false
	}
}

// harvest collects the mirror's edges while readers are parked on it, and
// reads for them.
func (m *mirror) harvest() {
	defer m.wg.Done()
	for {
		for m.waiters.Load() == 0 {
			select {
			case <-m.kick:
			case <-m.done:
				return
			}
		}
		if err := m.erc.Read(m.poll); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				m.expire()
				continue
			}
			return // the epoll fd closed: the set is shutting down
		}
		m.deliver(m.evs[:m.got])
	}
}

// arm makes the deadline timer fire no later than dl. A reader parked with
// a deadline publishes its state before it looks at next, and expire
// clears next before it looks at the states: either the reader sees next
// cleared and arms, or expire sees the reader and nudges it.
func (m *mirror) arm(dl int64) {
	if n := m.next.Load(); n != 0 && n <= dl {
		return
	}
	m.dmu.Lock()
	if n := m.next.Load(); n == 0 || dl < n {
		m.next.Store(dl)
		_ = m.ep.SetReadDeadline(mirrorEpoch.Add(time.Duration(dl)))
	}
	m.dmu.Unlock()
}

// expire is the deadline timer's firing: every reader parked with a
// deadline is nudged, to wait for the rest of it in Go's poller (the
// earliest has reached its deadline; the others park again with the next
// Read). Those parking from now on arm the timer again.
func (m *mirror) expire() {
	m.dmu.Lock()
	m.next.Store(0)
	_ = m.ep.SetReadDeadline(time.Time{})
	m.dmu.Unlock()
	m.mu.Lock()
	for _, mc := range m.table {
		if mc != nil && mc.state.CompareAndSwap(mWaitingDL, mIdle) {
			mc.sem.Unlock()
		}
	}
	m.mu.Unlock()
}

// mirrorEpoch is the origin of deadlineOf's clock.
var mirrorEpoch = time.Now()

// deadlineOf is t as the mirror keeps a deadline: nanoseconds since
// mirrorEpoch, measured as Go's poller measures it (t.Sub, on the
// monotonic clock when t has a reading of it), at least 1; 0 for no
// deadline.
func deadlineOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(int64(t.Sub(mirrorEpoch)), 1)
}

// mirrorNow is the present on deadlineOf's clock.
func mirrorNow() int64 { return int64(time.Since(mirrorEpoch)) }

// pollOnce is the harvester's RawConn.Read callback: one epoll_wait that
// does not block; nothing ready waits in Go's poller.
func (m *mirror) pollOnce(fd uintptr) bool {
	n, err := unix.EpollWait(int(fd), m.evs, 0)
	if err != nil || n <= 0 {
		m.got = 0
		return err != nil && err != unix.EINTR
	}
	m.got = n
	return true
}

// deliver hands each event to its connection: a parked reader's socket is
// read into its slice (all of them in one io_uring_enter), any other
// connection is marked readable.
func (m *mirror) deliver(evs []unix.EpollEvent) {
	m.mu.Lock()
	for _, ev := range evs {
		if int(ev.Fd) >= len(m.table) {
			continue
		}
		mc := m.table[ev.Fd]
		if mc == nil {
			continue
		}
		m.mark(mc, ev.Events)
	}
	m.mu.Unlock()
	m.readClaimed()
}

// mark hands one event to mc: a parked reader is claimed and its read
// queued, any other connection marked readable (or hung up). m.mu is held.
func (m *mirror) mark(mc *mirrorConn, events uint32) {
	hup := events&hupEvents != 0
	for {
		switch s := mc.state.Load(); s {
		case mWaiting, mWaitingDL:
			if !mc.state.CompareAndSwap(s, mClaimed) {
				continue
			}
			m.pins[len(m.claimed)/pinsPer].Pin(&mc.buf[0]) // the kernel writes it until its CQE
			sqe := m.ring.GetSQE()
			sqe.PrepRecv(int(mc.s), mc.buf, unix.MSG_DONTWAIT)
			sqe.UserData = uint64(len(m.claimed))
			if m.claimed = append(m.claimed, claim{mc, s == mWaitingDL, hup}); len(m.claimed) == maxClaims {
				m.readClaimed()
			}
			return
		case mIdle, mEdge:
			next := mEdge
			if hup {
				next = mHup
			}
			if s == next || mc.state.CompareAndSwap(s, next) {
				return
			}
		default:
			return // hung up already, or shut
		}
	}
}

// readClaimed submits the claimed readers' RECVs in one io_uring_enter,
// where they complete inline, and wakes each reader with its result.
func (m *mirror) readClaimed() {
	if len(m.claimed) == 0 {
		return
	}
	stats := m.set.stats
	for done := 0; done < len(m.claimed); {
		if _, err := m.ring.SubmitAndWait(1); err != nil {
			// The RECVs write into the readers' slices until they
			// complete: nothing but their completion may release them.
			// A kernel short of memory refuses for a while (the SQEs
			// stay queued); anything else on a live ring is a broken
			// invariant.
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ENOMEM) || errors.Is(err, unix.EBUSY) {
				time.Sleep(time.Millisecond)
				continue
			}
			panic("netio: mirror: " + err.Error())
		}
		k := m.ring.Reap(m.cqes)
		for _, c := range m.cqes[:k] {
			cl := m.claimed[c.UserData]
			mc := cl.mc
			if c.Res == -int32(unix.EAGAIN) && !cl.hup {
				// A stale edge: still parked. The deadline timer of one
				// parked with a deadline is still armed for it, since only
				// this goroutine (expire) disarms it.
				wait := mWaiting
				if cl.dl {
					wait = mWaitingDL
				}
				mc.state.Store(wait)
				continue
			}
			if c.Res != -int32(unix.EAGAIN) {
				mc.res = c.Res
				if stats != nil {
					stats.mirrorReads.Add(1)
				}
			}
			if cl.hup {
				mc.state.Store(mHup)
			} else {
				mc.state.Store(mIdle) // the read began before any later edge
			}
			mc.sem.Unlock()
		}
		done += k
	}
	for i := 0; i <= (len(m.claimed)-1)/pinsPer; i++ {
		m.pins[i].Unpin()
	}
	m.claimed = m.claimed[:0]
}

// close stops the harvester and frees the mirror; the set's sockets are
// closed already.
func (m *mirror) close() {
	m.mu.Lock()
	m.shut = true
	m.mu.Unlock()
	m.regMu.Lock()
	m.regShut = true
	close(m.regReq)
	m.regMu.Unlock()
	close(m.done)
	_ = m.ep.Close() // evicts the harvester from Go's poller
	m.wg.Wait()
	_ = m.ring.Close()
}

// mirrorRead parks c's Read of b on its set's mirror if the set has one;
// ok with the harvester's result, !ok when the caller is to read through
// Go's poller. rmu is held.
func (c *netTCPConn) mirrorRead(set *sockSet, b []byte, dl int64) (n int, err error, ok bool) {
	m := set.mirrorFor()
	if m == nil {
		return 0, nil, false
	}
	mc := c.fd.mc.Load()
	if mc == nil {
		if mc = c.fd.joinMirrorAside(m); mc == nil {
			return 0, nil, false
		}
	}
	return m.park(c, mc, b, dl)
}

// joinMirrorAside has the mirror's registrar run joinMirror for fd, once
// per connection: the registration's call chain (RawConn, epoll_ctl) is
// deeper than a Read's, and on the reader's own stack it doubled that
// stack for many connections (2 KiB each, until a GC shrinks it).
func (fd *netFD) joinMirrorAside(m *mirror) *mirrorConn {
	m.regMu.Lock()
	defer m.regMu.Unlock()
	if m.regShut {
		return nil
	}
	m.regReq <- fd
	return <-m.regRes
}

// registrar joins sockets to the mirror for joinMirrorAside.
func (m *mirror) registrar() {
	defer m.wg.Done()
	for fd := range m.regReq {
		m.regRes <- fd.joinMirror(m)
	}
}

// joinMirror registers fd's socket with m, under the fdMutex so that the
// number cannot be closed and reused meanwhile. Close and joinMirror each
// publish their half (closed, mc) before looking at the other's, so one of
// them sees both and shuts mc while the socket is still open.
func (fd *netFD) joinMirror(m *mirror) *mirrorConn {
	var mc *mirrorConn
	_ = fd.control(func(s int) error {
		if fd.closed.Load() {
			return nil
		}
		if mc = m.register(s); mc == nil {
			return nil
		}
		fd.mc.Store(mc)
		if fd.closed.Load() {
			mc.shut(m)
			mc = nil
		}
		return nil
	})
	return mc
}

// leaveMirror takes fd out of its set's mirror before its socket closes.
func (fd *netFD) leaveMirror() {
	mc := fd.mc.Load()
	if mc == nil {
		return
	}
	if m := fd.owner.mir.Load(); m != nil {
		mc.shut(m)
	}
}

// nudge makes a Read parked on the mirror decide again (a read deadline
// was set, or SyscallConn or File handed out).
func (fd *netFD) nudge() {
	if mc := fd.mc.Load(); mc != nil {
		mc.settle(mIdle)
	}
}
