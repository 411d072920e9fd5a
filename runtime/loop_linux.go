//go:build linux

package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/ring"
)

// Loop is one event loop: a goroutine locked to its OS thread, driving one
// ring. See the package documentation for which methods are loop thread only.
type Loop struct {
	local atomic.Value // Local/SetLocal: the socket layer's per-loop state

	id    int
	cpu   int
	cfg   *Config
	log   *zap.Logger
	probe *ring.Probe

	// Loop thread only.
	r         *ring.Ring
	tier      Tier
	flags     ring.SetupFlags
	ops       opTable
	wheel     wheel
	cqes      []ring.CQE
	timerCQE  ring.CQE // the synthetic CQE a firing timer's handler sees
	owned     []io.Closer
	group     *bufring.Group
	arena     *bufring.Arena
	closing   bool
	bellArm   bool // the doorbell request is in the ring
	bellBuf   *[8]byte
	pinner    goruntime.Pinner
	scratch   scratchMem
	msgAck    OpID
	minWait   time.Duration
	rearmed   bool // CountRearm since the last enter: the next wait skips minWait
	enterErrs int  // io_uring_enter failures logged so far

	// Shared.
	tid    int // the loop thread's id, set before New returns
	ringFD int // set before New returns
	efd    int // eventfd mode: the doorbell
	wake   wakeMode
	// sleeping is 1 while the loop has announced it is about to wait (and
	// is the futex word in futex mode). Producers swap it to 0 and wake.
	sleeping *uint32
	q        *taskQueue
	posting  atomic.Int64 // producers inside Post, plus closedBit
	closeReq atomic.Bool
	done     chan struct{}
	closeErr error // written by the loop before done closes

	st counters
}

const closedBit = int64(1) << 62

// counters are the atomic form of Stats.
type counters struct {
	_             [64]byte
	sqes          atomic.Uint64
	cqes          atomic.Uint64
	enters        atomic.Uint64
	yields        atomic.Uint64
	tasks         atomic.Uint64
	enobufs       atomic.Uint64
	rearms        atomic.Uint64
	cqOverflows   atomic.Uint64
	zcNotifs      atomic.Uint64
	zcCopied      atomic.Uint64
	panics        atomic.Uint64
	cancels       atomic.Uint64
	timersFired   atomic.Uint64
	msgRingErrors atomic.Uint64
	strays        atomic.Uint64
	liveOps       atomic.Int64
	liveTimers    atomic.Int64
	_             [64]byte
	wakeups       atomic.Uint64 // producers
	overflowed    atomic.Uint64 // producers
}

// futexWake wakes a FUTEX_WAIT on addr. It is nil in production builds (the
// futex wakeup is a measured alternative, see docs/DESIGN.md); the benchmarks
// set it.
var futexWake func(addr *uint32)

func newLoop(id, cpu int, cfg *Config, probe *ring.Probe) *Loop {
	l := &Loop{
		id: id, cpu: cpu, cfg: cfg, probe: probe, wake: cfg.wake,
		log:      cfg.Logger.With(zap.Int("loop", id)),
		efd:      -1,
		ringFD:   -1,
		sleeping: new(uint32),
		q:        newTaskQueue(cfg.QueueSize),
		done:     make(chan struct{}),
	}
	return l
}

// run is the loop goroutine. It never unlocks its thread: the thread's CPU
// affinity may have been changed, so it exits with the goroutine.
func (l *Loop) run(ready chan<- error) {
	goruntime.LockOSThread()
	defer close(l.done)
	if err := l.setup(); err != nil {
		l.posting.Store(closedBit) // New has not returned: nobody is posting
		l.teardown()
		ready <- err
		return
	}
	ready <- nil
	l.loop()
	l.shutdown()
}

func (l *Loop) setup() error {
	l.tid = unix.Gettid()
	if l.cpu >= 0 {
		var set unix.CPUSet
		set.Set(l.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("runtime: loop %d: pin to CPU %d: %w", l.id, l.cpu, os.NewSyscallError("sched_setaffinity", err))
		}
	}
	p := l.probe
	// The tier comes from what the probe saw the kernel accept, never from its version.
	if p.Setup&ring.SetupDeferTaskrun != 0 && p.Setup&ring.SetupSingleIssuer != 0 && !l.cfg.ForceCoopTaskrun {
		l.tier = TierDeferTaskrun
		l.flags = ring.SetupSingleIssuer | ring.SetupDeferTaskrun | ring.SetupTaskrunFlag
	} else if p.Setup&ring.SetupCoopTaskrun != 0 && p.Setup&ring.SetupTaskrunFlag != 0 {
		l.tier = TierCoopTaskrun
		l.flags = ring.SetupCoopTaskrun | ring.SetupTaskrunFlag | p.Setup&ring.SetupSingleIssuer
	} else {
		return fmt.Errorf("runtime: kernel lacks COOP_TASKRUN and DEFER_TASKRUN (setup flags seen: %v); ringwire needs Linux 6.1 or later: %w",
			p.Setup, errors.ErrUnsupported)
	}
	l.flags |= p.Setup & (ring.SetupSubmitAll | ring.SetupNoSQArray)
	rc := &ring.Config{Entries: l.cfg.Entries, CQEntries: l.cfg.CQEntries, Flags: l.flags}
	r, err := ring.New(rc)
	if err != nil && l.flags&ring.SetupTaskrunFlag != 0 && l.tier == TierDeferTaskrun {
		// TASKRUN_FLAG beside DEFER_TASKRUN only saves syscalls; drop it if refused.
		l.flags &^= ring.SetupTaskrunFlag
		rc.Flags = l.flags
		r, err = ring.New(rc)
	}
	if err != nil {
		return fmt.Errorf("runtime: loop %d: %w", l.id, err)
	}
	l.r = r
	l.ringFD = r.FD()
	l.cqes = make([]ring.CQE, l.cfg.BatchLimit)
	l.ops.init(1024)
	l.wheel.init(l.cfg.TimerTick, time.Now())
	if l.cfg.LatencyBudget > 0 && r.Features()&ring.FeatMinTimeout != 0 {
		l.minWait = l.cfg.LatencyBudget
	}
	l.pinner.Pin(l.sleeping)
	switch l.wake {
	case wakeEventFD:
		fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
		if err != nil {
			return fmt.Errorf("runtime: loop %d: %w", l.id, os.NewSyscallError("eventfd", err))
		}
		l.efd = fd
		l.bellBuf = new([8]byte)
		l.pinner.Pin(l.bellBuf)
	case wakeFutex:
		if !p.Supports(ring.OpFutexWait) || futexWake == nil {
			return fmt.Errorf("runtime: futex wakeup needs IORING_OP_FUTEX_WAIT (Linux 6.7): %w", errors.ErrUnsupported)
		}
	}
	l.msgAck = l.ops.alloc(msgAckHandler{}, 0, opMailbox|opInternal)
	if err := l.setupBuffers(); err != nil {
		return err
	}
	if l.cfg.Setup != nil {
		if err := l.callSetup(); err != nil {
			return err
		}
	}
	wake := "eventfd"
	if l.wake == wakeFutex {
		wake = "futex"
	}
	l.log.Info("runtime: loop started",
		zap.Int("cpu", l.cpu),
		zap.Stringer("tier", l.tier),
		zap.Stringer("setup", l.flags),
		zap.Stringer("features", r.Features()),
		zap.String("wakeup", wake),
		zap.Bool("min_wait", l.minWait > 0))
	return nil
}

// setupBuffers creates the loop's buffer group and arena (Config.Buffers,
// Config.Arena) on the loop thread, and registers them as fixed buffers.
func (l *Loop) setupBuffers() error {
	var slabs []bufring.Slab
	if l.cfg.Buffers != nil {
		bc := *l.cfg.Buffers
		if bc.Logger == nil {
			bc.Logger = l.log
		}
		g, err := bufring.NewGroup(l.r, &bc)
		if err != nil {
			return fmt.Errorf("runtime: loop %d: %w", l.id, err)
		}
		l.group = g
		slabs = append(slabs, g)
	}
	if l.cfg.Arena != nil {
		ac := *l.cfg.Arena
		if ac.Logger == nil {
			ac.Logger = l.log
		}
		a, err := bufring.NewArena(&ac)
		if err != nil {
			return fmt.Errorf("runtime: loop %d: %w", l.id, err)
		}
		l.arena = a
		slabs = append(slabs, a)
	}
	if len(slabs) > 0 {
		if err := bufring.RegisterFixedOnDemand(l.r, slabs...); err != nil {
			l.log.Warn("runtime: buffers not registered as fixed buffers; SEND_ZC falls back to plain addresses", zap.Error(err))
		}
	}
	return nil
}

// Group returns the loop's provided buffer group (Config.Buffers), or nil.
// Loop thread only, like everything in bufring.
func (l *Loop) Group() *bufring.Group { return l.group }

// Arena returns the loop's fixed-buffer arena (Config.Arena), or nil. Loop
// thread only.
func (l *Loop) Arena() *bufring.Arena { return l.arena }

func (l *Loop) callSetup() (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("runtime: loop %d: Config.Setup panicked: %v", l.id, v)
		}
	}()
	if err := l.cfg.Setup(l); err != nil {
		return fmt.Errorf("runtime: loop %d: Config.Setup: %w", l.id, err)
	}
	return nil
}

// loop is the steady state: tasks, timers, one enter, dispatch.
func (l *Loop) loop() {
	lastYield, gap := time.Now(), yieldEvery
	for !l.closeReq.Load() {
		ranAll := l.runTasks(l.cfg.BatchLimit)
		now := time.Now()
		l.fireTimers(now)
		if now.Sub(lastYield) > gap {
			start := time.Now() // after the timers: only the yield's own cost counts
			lastYield = l.yield()
			gap = nextYieldGap(gap, lastYield.Sub(start))
		}
		if !ranAll || l.r.CQReady() > 0 || !l.q.empty() {
			l.poll()
		} else {
			l.sleep()
		}
		l.reap()
	}
}

// yieldEvery is how often the loop passes through the Go scheduler; see
// yield. Under CPU contention a yield is slow (see nextYieldGap) and the
// gap grows up to yieldEveryMax.
const (
	yieldEvery    = 5 * time.Millisecond
	yieldEveryMax = 100 * time.Millisecond
	yieldSlow     = time.Millisecond
)

// yield lets the Go scheduler see the loop goroutine reschedule, and returns
// the time it got back. sysmon treats a goroutine that has not been through
// the scheduler for 10ms (forcePreemptNS) as hogging its P and, since a
// signal cannot preempt a thread blocked in a syscall, takes the P away in
// every io_uring_enter wait longer than a sysmon tick. With every P idle,
// sysmon then sleeps, and the loop's return from each wait wakes it
// (exitsyscall: notewakeup of sysmonnote): a futex on the loop thread and
// futex, nanosleep and sched_yield on sysmon's, per wakeup. A Gosched every
// few milliseconds keeps the loop from looking like a hog.
func (l *Loop) yield() time.Time {
	l.st.yields.Add(1)
	goruntime.Gosched()
	return time.Now()
}

// nextYieldGap adapts the gap between yields to what the last one cost. A
// locked goroutine's Gosched is a hand-off through another thread and back,
// microseconds on idle CPUs but milliseconds each way when they are
// contended, and the loop handles nothing meanwhile: with 4 CPU hogs on 2
// CPUs, yielding every 5ms took timer lateness from a p50 of 5ms to one of
// 10–22ms. So a slow yield doubles the gap (up to yieldEveryMax) and a fast
// one halves it back toward yieldEvery: where yields are cheap the loop keeps
// sysmon quiet, and where they are not it mostly does not pay for them.
func nextYieldGap(gap, took time.Duration) time.Duration {
	switch {
	case took > yieldSlow:
		return min(2*gap, yieldEveryMax)
	case took < yieldSlow/4:
		return max(gap/2, yieldEvery)
	}
	return gap
}

// poll submits what is prepared and collects completions without waiting,
// in one io_uring_enter, and only if there is something to submit, an
// operation in flight (besides the doorbell), or completions the kernel holds
// back as task work: MSG_RING CQEs for a mailbox arrive that way, and without
// TASKRUN_FLAG to announce them the loop must ask every time.
func (l *Loop) poll() {
	inFlight := l.ops.live - l.ops.persistent
	if l.bellArm {
		inFlight--
	}
	var n int
	var err error
	switch {
	case inFlight > 0 || l.r.CQNeedsEnter() || l.flags&ring.SetupTaskrunFlag == 0:
		n, err = l.r.SubmitAndGetEvents()
	case l.r.SQReady() > 0:
		n, err = l.r.Submit()
	default:
		return
	}
	l.rearmed = false // submitted without waiting: nothing to hold back
	l.st.enters.Add(1)
	l.st.sqes.Add(uint64(n))
	l.enterError(err)
}

// sleep announces the loop is about to wait, makes sure the doorbell is armed,
// and waits, submitting everything prepared in the same io_uring_enter.
func (l *Loop) sleep() {
	if !l.bellArm {
		l.armBell()
		if !l.bellArm {
			// No doorbell (the SQ stayed full): a producer could not wake
			// a wait, so do not wait.
			l.poll()
			return
		}
	}
	atomic.StoreUint32(l.sleeping, 1)
	if !l.q.empty() || l.closeReq.Load() {
		atomic.StoreUint32(l.sleeping, 0)
		l.poll()
		return
	}
	timeout := l.wheel.nextTimeout(time.Now())
	want := uint32(1)
	minWait := l.minWait
	if l.rearmed {
		minWait = 0 // see CountRearm
		l.rearmed = false
	}
	if minWait > 0 {
		want = uint32(l.cfg.BatchLimit)
		if timeout <= 0 {
			// Without a general timeout the kernel ends the wait when
			// minWait passes, completions or not: an idle loop would
			// wake every budget. A far one keeps "sleep until woken".
			timeout = time.Hour
		}
	}
	n, err := l.r.WaitCQEs(want, timeout, minWait)
	atomic.StoreUint32(l.sleeping, 0)
	l.st.enters.Add(1)
	l.st.sqes.Add(uint64(n))
	l.enterError(err)
}

func (l *Loop) enterError(err error) {
	if err == nil {
		return
	}
	switch {
	case errors.Is(err, syscall.ETIME), errors.Is(err, syscall.EINTR), errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EBUSY):
		return // a timeout, or the kernel asks us to reap first
	}
	// Anything else means a broken ring: log the first few, and go on (Close
	// still works).
	if l.enterErrs < 16 {
		l.enterErrs++
		l.log.Error("runtime: io_uring_enter failed", zap.Error(err))
	}
}

// armBell puts the doorbell request into the ring: a READ on the eventfd, or a
// FUTEX_WAIT on the sleeping word that completes once a producer swaps it.
func (l *Loop) armBell() {
	sqe := l.getSQE()
	if sqe == nil {
		return // SQ full: the loop will not block long, it has SQEs to submit
	}
	id := l.ops.alloc(bellHandler{}, 0, opInternal)
	sqe.UserData = uint64(id)
	switch l.wake {
	case wakeEventFD:
		sqe.PrepRead(l.efd, l.bellBuf[:], 0)
	case wakeFutex:
		sqe.PrepFutexWait(l.sleeping, 1, ring.FutexBitsetMatchAny, ring.Futex2SizeU32|ring.Futex2Private)
	}
	l.bellArm = true
}

type bellHandler struct{}

func (bellHandler) HandleCompletion(l *Loop, _ uint64, _ *ring.CQE) { l.bellArm = false }

type msgAckHandler struct{}

func (msgAckHandler) HandleCompletion(l *Loop, _ uint64, c *ring.CQE) {
	if c.Res < 0 {
		l.st.msgRingErrors.Add(1)
	}
}

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

// reap dispatches every ready CQE, BatchLimit at a time, and flushes a CQ
// overflow when the kernel flags one.
func (l *Loop) reap() {
	for round := 0; round < 4; round++ {
		n := l.r.Reap(l.cqes)
		if n == 0 {
			break
		}
		l.st.cqes.Add(uint64(n))
		for i := range n {
			l.dispatch(&l.cqes[i])
		}
		if n < len(l.cqes) {
			break
		}
	}
	if l.r.CQOverflowed() {
		l.st.cqOverflows.Add(1)
		l.enterError(l.r.FlushOverflow())
		l.st.enters.Add(1)
	}
	l.st.liveOps.Store(int64(l.ops.live - l.ops.internal))
}

// dispatch hands one CQE to its operation's handler. It allocates nothing.
func (l *Loop) dispatch(c *ring.CQE) {
	if c.UserData == 0 {
		return // fire-and-forget requests of the runtime (cancels)
	}
	idx := uint32(c.UserData)
	r := l.ops.get(OpID(c.UserData))
	if r == nil || r.state != opLive {
		l.st.strays.Add(1)
		return
	}
	if c.Res == -int32(syscall.ENOBUFS) {
		l.st.enobufs.Add(1)
	}
	if c.Flags&ring.CQEFNotif != 0 {
		l.st.zcNotifs.Add(1)
		if c.ZCCopied() {
			l.st.zcCopied.Add(1)
		}
	}
	final := c.Flags&ring.CQEFMore == 0 && r.flags&opMailbox == 0
	if final {
		r.state = opDone
	}
	if h := r.h; h != nil {
		l.callHandler(h, r.tag, c)
	}
	if final {
		l.ops.release(idx) // re-indexed: the handler may have grown the table
	}
}

func (l *Loop) callHandler(h Handler, tag uint64, c *ring.CQE) {
	defer l.recoverPanic()
	h.HandleCompletion(l, tag, c)
}

func (l *Loop) callTask(t Task) {
	defer l.recoverPanic()
	t.Run(l)
}

func (l *Loop) recoverPanic() {
	if v := recover(); v != nil {
		l.onPanic(v)
	}
}

// ReportPanic records v, a panic recovered by a Handler or Task itself so
// that it could clean up after it, as the loop records the panics it
// recovers: counted in Stats.Panics and logged. Call it from the deferred
// function that recovered, so that the logged stack is the panic's. Loop
// thread only.
func (l *Loop) ReportPanic(v any) { l.onPanic(v) }

func (l *Loop) onPanic(v any) {
	n := l.st.panics.Add(1)
	// The first few with their stack, then one in 1024: a handler that
	// panics on every message must not turn the log into the hot path.
	if n <= 8 || n%1024 == 0 {
		l.log.Error("runtime: recovered panic in handler or task",
			zap.Any("panic", v), zap.Uint64("panics", n), zap.StackSkip("stack", 3))
	}
}

// runTasks runs up to limit posted tasks; it reports whether it emptied the
// queue.
func (l *Loop) runTasks(limit int) bool {
	n := 0
	for n < limit {
		t := l.q.pop()
		if t == nil {
			break
		}
		l.callTask(t)
		n++
	}
	if n < limit {
		for _, t := range l.q.takeOverflow() {
			l.callTask(t)
			n++
		}
	}
	if n > 0 {
		l.st.tasks.Add(uint64(n))
	}
	return n < limit
}

func (l *Loop) fireTimers(now time.Time) {
	if l.wheel.count == 0 {
		l.wheel.now = l.wheel.currentTick(now)
		return
	}
	due := l.wheel.collect(l.wheel.currentTick(now))
	for k := 0; k < len(due); k++ {
		id := l.wheel.due[k] // re-read: a handler may add timers (not to due)
		i, ok := l.wheel.lookup(id)
		if !ok {
			continue // stopped by an earlier handler of this batch
		}
		rec := &l.wheel.recs[i]
		h, tag := rec.h, rec.tag
		l.wheel.release(i)
		l.st.timersFired.Add(1)
		if h != nil {
			l.timerCQE = ring.CQE{UserData: uint64(id), Res: -int32(syscall.ETIME)}
			l.callHandler(h, tag, &l.timerCQE)
		}
	}
	l.st.liveTimers.Store(int64(l.wheel.count))
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

// Cancel asks the kernel to cancel operation id (IORING_OP_ASYNC_CANCEL). The
// operation's handler still receives its final CQE (usually -ECANCELED, or
// the result if it completed first); until then its record, pinned memory and
// kept values stay. It returns ErrStaleOp if id is not live. Loop thread only.
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
	sqe.UserData = 0
	sqe.Flags |= ring.SQECQESkipSuccess
	l.st.cancels.Add(1)
	return nil
}

// Live reports whether id names an operation whose final CQE has not been
// dispatched. Loop thread only.
func (l *Loop) Live(id OpID) bool {
	r := l.ops.get(id)
	return r != nil && r.state == opLive
}

// KeepAlive keeps v reachable until operation id's final CQE has been
// dispatched; a later call replaces the value. Call it right after NewOp (an
// operation cannot complete before the loop's next enter). A stale id is
// ignored. Storing a pointer allocates nothing. Loop thread only.
func (l *Loop) KeepAlive(id OpID, v any) {
	if r := l.ops.get(id); r != nil {
		r.keep = v
	}
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

// Timer calls h.HandleCompletion(l, tag, cqe) on the loop at or after at
// (normally within one Config.TimerTick), with a synthetic cqe whose UserData
// is the TimerID and Res is -ETIME. Pending timers are discarded by Close.
// Loop thread only.
func (l *Loop) Timer(h Handler, tag uint64, at time.Time) TimerID {
	id := l.wheel.add(h, tag, at)
	l.st.liveTimers.Store(int64(l.wheel.count))
	return id
}

// StopTimer cancels a pending timer and reports whether it was pending.
// Loop thread only.
func (l *Loop) StopTimer(id TimerID) bool {
	ok := l.wheel.stop(id)
	l.st.liveTimers.Store(int64(l.wheel.count))
	return ok
}

// Own hands c to the loop: it is closed on the loop thread when the loop
// shuts down, after every operation has finished (or the wait for them gave
// up: see InFlight), in reverse order of Own. Loop thread only.
func (l *Loop) Own(c io.Closer) { l.owned = append(l.owned, c) }

// InFlight returns how many kernel operations of the loop have not had their
// final CQE (mailboxes and the runtime's doorbell not counted). A Closer
// handed to Own that finds it non-zero runs after shutdown gave up waiting
// for them (Runtime.Close then returns an error): the kernel may still write
// to the memory they point to, so that memory must stay mapped, as the
// loop's own buffer group and arena do. Loop thread only.
func (l *Loop) InFlight() int {
	n := l.ops.live - l.ops.persistent
	if l.bellArm {
		n--
	}
	return n
}

// OnLoopThread reports whether the caller runs on the loop's thread: in one
// of its Handlers or Tasks, or in Config.Setup. There, a call that posts to
// the loop and waits for the result would wait forever. Any goroutine.
func (l *Loop) OnLoopThread() bool {
	select {
	case <-l.done:
		return false // the thread has exited: its id may be reused
	default:
		return l.tid == unix.Gettid()
	}
}

// SetLocal stores v as the loop's local value: per-loop state of the layer
// that runs sockets on the loop (netio keeps its buffer group, arena and
// counters there), so that layer needs no registry keyed by loop. Call it on
// the loop thread; v must always have the same concrete type. The runtime never
// looks at v; hand it to Own as well if it must be closed with the loop.
func (l *Loop) SetLocal(v any) { l.local.Store(v) }

// Local returns the value SetLocal stored, or nil. Any goroutine.
func (l *Loop) Local() any { return l.local.Load() }

// Ring returns the loop's ring, for registrations (files, buffers). Loop
// thread only: the ring is SINGLE_ISSUER.
func (l *Loop) Ring() *ring.Ring { return l.r }

// Probe returns what the kernel supports, as probed by New.
func (l *Loop) Probe() *ring.Probe { return l.probe }

// Tier returns the task-running mode the loop's ring was set up with.
func (l *Loop) Tier() Tier { return l.tier }

// CountRearm records that a multishot operation was re-armed after its final
// CQE (Stats.Rearms), and makes the loop's next wait return on the first
// completion, without the latency budget: the re-armed operation completes at
// once if data queued while it was down, and that completion (a zero-length
// datagram ends a multishot recvmsg, so a flood of them ends it again and
// again) must not wait a whole budget to be handled and re-armed. Loop
// thread only.
func (l *Loop) CountRearm() {
	l.st.rearms.Add(1)
	l.rearmed = true
}

// Post queues t to run on the loop thread. It may be called from any
// goroutine, the loop's own included; it never blocks, and it allocates
// nothing when t is a pointer (or another pointer-shaped value). It wakes the
// loop (one eventfd write) only if the loop announced it is about to sleep.
// Tasks run in the order each producer posted them. After Close has begun it
// returns ErrClosed and t does not run; a task Post accepted always runs.
func (l *Loop) Post(t Task) error {
	if l.posting.Add(1)&closedBit != 0 {
		l.posting.Add(-1)
		return ErrClosed
	}
	if l.q.push(t) {
		l.st.overflowed.Add(1)
	}
	l.kick()
	l.posting.Add(-1)
	return nil
}

// requestClose asks the loop to shut down and wakes it. Like Post it counts
// itself in posting, so that the loop closes its eventfd only after every
// kick that might write to it has returned.
func (l *Loop) requestClose() {
	l.closeReq.Store(true)
	if l.posting.Add(1)&closedBit == 0 {
		// Dekker with sleep(): it stores sleeping, then loads closeReq; we
		// stored closeReq, and kick loads sleeping.
		l.kick()
	}
	l.posting.Add(-1)
}

// kick wakes the loop if it announced it is about to sleep. Callers hold a
// count in posting.
func (l *Loop) kick() {
	if atomic.LoadUint32(l.sleeping) == 0 || atomic.SwapUint32(l.sleeping, 0) == 0 {
		return
	}
	l.st.wakeups.Add(1)
	switch l.wake {
	case wakeEventFD:
		_, _ = unix.Write(l.efd, wakeOne[:])
	case wakeFutex:
		futexWake(l.sleeping)
	}
}

var wakeOne = [8]byte{1}

// ID returns the loop's index in Runtime.Loops.
func (l *Loop) ID() int { return l.id }

// CPU returns the CPU the loop is pinned to, or -1.
func (l *Loop) CPU() int { return l.cpu }

// RingFD returns the loop's ring fd, the target of MSG_RING requests.
func (l *Loop) RingFD() int { return l.ringFD }

// Logger returns the loop's logger (with a "loop" field).
func (l *Loop) Logger() *zap.Logger { return l.log }

// Closing reports whether Close has begun. Any goroutine.
func (l *Loop) Closing() bool { return l.closeReq.Load() }

// Stats returns the loop's counters. Any goroutine; no locks.
func (l *Loop) Stats() Stats {
	s := &l.st
	return Stats{
		Loop: l.id, CPU: l.cpu,
		SQEs: s.sqes.Load(), CQEs: s.cqes.Load(), Enters: s.enters.Load(),
		Wakeups: s.wakeups.Load(), Posted: l.q.tail.Load() + s.overflowed.Load(), Tasks: s.tasks.Load(),
		Overflowed: s.overflowed.Load(), ENOBUFS: s.enobufs.Load(), Rearms: s.rearms.Load(),
		CQOverflows: s.cqOverflows.Load(), ZCNotifs: s.zcNotifs.Load(), ZCCopied: s.zcCopied.Load(),
		Panics: s.panics.Load(), Cancels: s.cancels.Load(), TimersFired: s.timersFired.Load(),
		MsgRingErrors: s.msgRingErrors.Load(), Strays: s.strays.Load(), Yields: s.yields.Load(),
		LiveOps: s.liveOps.Load(), LiveTimers: s.liveTimers.Load(),
	}
}

// shutdown cancels what is in flight, waits (bounded) for the kernel to let
// go, runs the last tasks, and releases everything the loop owns.
func (l *Loop) shutdown() {
	l.closing = true
	l.runTasks(1 << 30)
	l.cancelAll()
	grace := l.cfg.closeGrace
	start := time.Now()
	last := start
	for l.ops.live > l.ops.persistent && time.Since(start) < grace {
		n, err := l.r.WaitCQEs(1, 10*time.Millisecond, 0)
		l.st.enters.Add(1)
		l.st.sqes.Add(uint64(n))
		l.enterError(err)
		l.reap()
		l.runTasks(1 << 30)
		if time.Since(last) > 250*time.Millisecond {
			l.cancelAll() // operations a task started meanwhile
			last = time.Now()
		}
	}
	if n := l.ops.live - l.ops.persistent; n > 0 {
		l.closeErr = fmt.Errorf("runtime: loop %d: %d operations still in flight after %v; closing the ring cancels them", l.id, n, grace)
		l.log.Error("runtime: operations still in flight at close", zap.Int("ops", n))
	}
	// No Post can start after this; wait for those inside Post, then run
	// what they queued.
	for {
		v := l.posting.Load()
		if v&closedBit == 0 && !l.posting.CompareAndSwap(v, v|closedBit) {
			continue
		}
		if l.posting.Load()&^closedBit == 0 {
			break
		}
		goruntime.Gosched()
	}
	l.runTasks(1 << 30)
	l.teardown()
}

// cancelAll submits an ASYNC_CANCEL for every live kernel operation.
func (l *Loop) cancelAll() {
	for i := range l.ops.recs {
		r := &l.ops.recs[i]
		if r.state == opLive && r.flags&opMailbox == 0 {
			_ = l.Cancel(OpID(uint64(r.gen)<<32 | uint64(i)))
		}
	}
	n, err := l.r.Submit()
	l.st.enters.Add(1)
	l.st.sqes.Add(uint64(n))
	l.enterError(err)
}

// abandoned keeps reachable, for the life of the process, the loops that
// closed their rings with operations still in flight (see teardown).
var abandoned struct {
	mu    sync.Mutex
	loops []*Loop
}

// teardown releases what setup acquired, in reverse, on the loop thread.
//
// If operations are still in flight (the kernel ignored cancellation for the
// whole grace), closing the ring does not stop them at once: the kernel tears
// the ring down asynchronously, and until then it may still write to the
// memory they point to. That memory is therefore never handed back: the op
// records keep their pins and values, the buffer group and arena stay
// mapped, and the loop itself stays reachable. The fds are still closed (the
// kernel holds its own references to the files).
func (l *Loop) teardown() {
	var errs []error
	if l.closeErr != nil {
		errs = append(errs, l.closeErr)
	}
	stuck := l.ops.live > l.ops.persistent
	for i := len(l.owned) - 1; i >= 0; i-- {
		if err := l.owned[i].Close(); err != nil {
			errs = append(errs, err)
		}
	}
	l.owned = nil
	if l.r != nil {
		if err := l.r.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if l.efd >= 0 {
		_ = unix.Close(l.efd)
		l.efd = -1
	}
	if stuck {
		abandoned.mu.Lock()
		abandoned.loops = append(abandoned.loops, l)
		abandoned.mu.Unlock()
	} else {
		// After the ring: the kernel has let go of every buffer.
		if err := l.group.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := l.arena.Close(); err != nil {
			errs = append(errs, err)
		}
		l.group, l.arena = nil, nil
		for i := range l.ops.recs {
			if l.ops.recs[i].state != opFree {
				l.ops.release(uint32(i))
			}
		}
		l.pinner.Unpin()
		l.scratch.close()
	}
	l.st.liveOps.Store(int64(l.ops.live - l.ops.internal))
	l.wheel = wheel{}
	l.st.liveTimers.Store(0)
	l.closeErr = errors.Join(errs...)
}
