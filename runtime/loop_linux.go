//go:build linux

package runtime

import (
	"io"
	goruntime "runtime"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/ring"
)

// The Loop, its goroutine and one iteration: run tasks, fire timers, poll or
// sleep (wait_linux.go), reap and dispatch (dispatch_linux.go). Start-up is in
// setup_linux.go, the task hand-off in post_linux.go, operations in
// ops_linux.go, timers in timer_linux.go, shutdown in shutdown_linux.go.

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
	r        *ring.Ring
	tier     Tier
	flags    ring.SetupFlags
	ops      opTable
	wheel    wheel
	cqes     []ring.CQE
	timerCQE ring.CQE // the synthetic CQE a firing timer's handler sees
	owned    []io.Closer
	group    *bufring.Group
	arena    *bufring.Arena
	closing  bool
	bellArm  bool // the doorbell request is in the ring
	bellBuf  *[8]byte
	pinner   goruntime.Pinner
	scratch  scratchMem
	msgAck   OpID
	minWait  time.Duration
	rearmed  bool // CountRearm since the last enter: the next wait skips minWait
	// recancel are the ops whose cancel did not take, cancelled again at the
	// next tick (recancelArmed: that timer is set).
	recancel      []OpID
	recancelArmed bool
	enterErrs     int // io_uring_enter failures logged so far

	// Shared.
	tid    int // the loop thread's id, set before New returns
	ringFD int // set before New returns
	efd    int // the doorbell
	// sleeping is 1 while the loop has announced it is about to wait.
	// Producers swap it to 0 and ring the doorbell.
	sleeping *uint32
	q        *taskQueue
	posting  atomic.Int64 // producers inside Post, plus closedBit
	closeReq atomic.Bool
	done     chan struct{}
	closeErr error // written by the loop before done closes

	st counters
}

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
	cancelRetries atomic.Uint64
	timersFired   atomic.Uint64
	msgRingErrors atomic.Uint64
	strays        atomic.Uint64
	liveOps       atomic.Int64
	liveTimers    atomic.Int64
	_             [64]byte
	wakeups       atomic.Uint64 // producers
	overflowed    atomic.Uint64 // producers
}

func newLoop(id, cpu int, cfg *Config, probe *ring.Probe) *Loop {
	l := &Loop{
		id: id, cpu: cpu, cfg: cfg, probe: probe,
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
		Panics: s.panics.Load(), Cancels: s.cancels.Load(), CancelRetries: s.cancelRetries.Load(), TimersFired: s.timersFired.Load(),
		MsgRingErrors: s.msgRingErrors.Load(), Strays: s.strays.Load(), Yields: s.yields.Load(),
		LiveOps: s.liveOps.Load(), LiveTimers: s.liveTimers.Load(),
	}
}
