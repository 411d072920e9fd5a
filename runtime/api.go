package runtime

import (
	"errors"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/ring"
)

// Config configures a Runtime. A nil *Config means all defaults. New works on
// a copy; the caller's struct is never modified.
type Config struct {
	// Loops is the number of event loops. Default: the number of CPUs this
	// process may run on (sched_getaffinity).
	Loops int
	// CPUs, if set, pins loop i to CPU CPUs[i%len(CPUs)] (sched_setaffinity on
	// the loop's thread). Default: no pinning.
	CPUs []int
	// Entries is each ring's submission queue size. Default 512.
	Entries uint32
	// CQEntries is each ring's completion queue size. Default 8*Entries:
	// multishot operations post many CQEs per SQE.
	CQEntries uint32
	// QueueSize is the capacity of each loop's lock-free task queue, rounded up
	// to a power of two. Posts beyond it go to an overflow list (a mutex and an
	// append) until the loop drains it. Default 4096.
	QueueSize int
	// BatchLimit is the most CQEs a loop dispatches, and the most tasks it
	// runs, before it goes back to the ring. Default 256.
	BatchLimit int
	// LatencyBudget, with a kernel that has IORING_FEAT_MIN_TIMEOUT (6.12), lets
	// a waiting loop wait up to this long for BatchLimit completions before it
	// takes what is there; 0 (the default) returns on the first completion.
	LatencyBudget time.Duration
	// TimerTick is the timer wheel's resolution. Default 1ms.
	TimerTick time.Duration
	// ForceCoopTaskrun sets up rings with COOP_TASKRUN|TASKRUN_FLAG even where
	// DEFER_TASKRUN is available (for tests of the fallback tier).
	ForceCoopTaskrun bool
	// Buffers, if set, gives each loop a provided buffer ring (a
	// bufring.Group), created on the loop's thread before Setup runs and
	// closed after its ring: Loop.Group. nil: no group (netio may make its
	// own).
	Buffers *bufring.Config
	// Arena, if set, gives each loop a fixed-buffer arena (bufring.Arena):
	// Loop.Arena. The group's slab and the arena (whichever are set, in that
	// order) get slots in the ring's fixed buffer table
	// (bufring.RegisterFixedOnDemand), and each is registered on the first
	// use of its fixed index; a registration failure (RLIMIT_MEMLOCK) is
	// logged, not fatal: sends from that slab use plain addresses.
	Arena *bufring.ArenaConfig
	// Setup, if set, runs on each loop's thread after its ring exists and
	// before any task: register files or buffers there, and hand what must be
	// closed with the loop to Loop.Own. An error fails New.
	Setup func(l *Loop) error
	// Logger receives the loop's feature tier once at start, panics, and
	// shutdown problems; never anything per operation. nil: zap.NewNop().
	Logger *zap.Logger
	// KeepGOMAXPROCS stops New from raising GOMAXPROCS. By default, when
	// GOMAXPROCS is not larger than Loops, New raises it to Loops+1 (and logs
	// that once): a loop thread keeps its P while it blocks in io_uring_enter,
	// so with no spare P a goroutine the loop has just woken waits for the Go
	// scheduler's monitor (20 µs to 10 ms) to take that P back. The change is
	// process-wide and is not undone by Close.
	KeepGOMAXPROCS bool

	// closeGrace bounds how long Close waits for the kernel's final CQEs
	// (default 5s; tests shorten it).
	closeGrace time.Duration
}

func (c *Config) withDefaults() (Config, error) {
	var out Config
	if c != nil {
		out = *c
	}
	if out.Loops < 0 || out.QueueSize < 0 || out.BatchLimit < 0 || out.LatencyBudget < 0 || out.TimerTick < 0 {
		return out, errors.New("runtime: negative Config field")
	}
	if out.Loops == 0 {
		out.Loops = allowedCPUs()
	}
	if out.Entries == 0 {
		out.Entries = 512
	}
	if out.CQEntries == 0 {
		out.CQEntries = 8 * out.Entries
	}
	if out.QueueSize == 0 {
		out.QueueSize = 4096
	}
	q := 2
	for q < out.QueueSize {
		q <<= 1
	}
	out.QueueSize = q
	if out.BatchLimit == 0 {
		out.BatchLimit = 256
	}
	if out.closeGrace == 0 {
		out.closeGrace = 5 * time.Second
	}
	if out.TimerTick == 0 {
		out.TimerTick = time.Millisecond
	}
	if out.TimerTick < 10*time.Microsecond {
		return out, fmt.Errorf("runtime: TimerTick %v below 10µs", out.TimerTick)
	}
	if out.Logger == nil {
		out.Logger = zap.NewNop()
	}
	for _, cpu := range out.CPUs {
		if cpu < 0 {
			return out, fmt.Errorf("runtime: negative CPU %d", cpu)
		}
	}
	return out, nil
}

// Handler receives the completions of the operations it started (NewOp) and
// the firing of its timers (Timer). It is called on the loop thread, with the
// tag given when the operation or timer was created. cqe is valid only during
// the call. A handler must not block: the whole loop waits for it.
type Handler interface {
	HandleCompletion(l *Loop, tag uint64, cqe *ring.CQE)
}

// HandlerFunc adapts a function to Handler. A func value that captures no
// variables converts to Handler without allocating.
type HandlerFunc func(l *Loop, tag uint64, cqe *ring.CQE)

// HandleCompletion calls f.
func (f HandlerFunc) HandleCompletion(l *Loop, tag uint64, cqe *ring.CQE) { f(l, tag, cqe) }

// Task is work posted to a loop from any goroutine; Run is called once, on the
// loop thread. Post a pointer type so that posting allocates nothing.
type Task interface {
	Run(l *Loop)
}

// TaskFunc adapts a function to Task.
type TaskFunc func(l *Loop)

// Run calls f.
func (f TaskFunc) Run(l *Loop) { f(l) }

// OpID names one operation of one loop: it is the user_data of the
// operation's SQEs (generation<<32 | table index). It never holds a Go pointer.
// The zero OpID names nothing.
type OpID uint64

// TimerID names one timer of one loop; the zero TimerID names nothing.
type TimerID uint64

// Tier is the task-running mode a loop's ring was set up with.
type Tier uint8

// Tiers, best first.
const (
	// TierDeferTaskrun: SINGLE_ISSUER|DEFER_TASKRUN (Linux 6.1). Completion
	// work runs only when the loop enters the ring, never interrupting it.
	TierDeferTaskrun Tier = iota + 1
	// TierCoopTaskrun: COOP_TASKRUN|TASKRUN_FLAG (5.19), SINGLE_ISSUER where
	// available.
	TierCoopTaskrun
)

// String returns "defer_taskrun" or "coop_taskrun".
func (t Tier) String() string {
	switch t {
	case TierDeferTaskrun:
		return "defer_taskrun"
	case TierCoopTaskrun:
		return "coop_taskrun"
	}
	return "none"
}

// Stats are one loop's counters, read without locks. Each field is read
// atomically, but the struct is not a consistent snapshot across fields.
type Stats struct {
	Loop int // the loop's index
	CPU  int // the CPU it is pinned to, or -1

	SQEs    uint64 // SQEs submitted to the kernel
	CQEs    uint64 // CQEs reaped
	Enters  uint64 // io_uring_enter calls
	Wakeups uint64 // wakeup syscalls producers made (eventfd writes)
	Posted  uint64 // tasks posted (Post)
	Tasks   uint64 // tasks run
	// Overflowed counts posts that found the task queue full and used the
	// overflow list.
	Overflowed uint64
	// ENOBUFS counts CQEs with -ENOBUFS: a provided buffer group ran dry.
	ENOBUFS uint64
	// Rearms counts multishot operations re-armed after their final CQE
	// (bumped by their owner with CountRearm).
	Rearms uint64
	// CQOverflows counts times the kernel flagged a CQ overflow and the loop
	// flushed it.
	CQOverflows uint64
	// ZCNotifs counts SEND_ZC notification CQEs; ZCCopied those the kernel
	// reported as copied rather than sent from the user's pages.
	ZCNotifs uint64
	ZCCopied uint64
	// Panics counts panics recovered from Handlers and Tasks.
	Panics uint64
	// Cancels counts ASYNC_CANCEL requests submitted (Cancel and Close),
	// CancelRetries those submitted again because the first did not take.
	Cancels       uint64
	CancelRetries uint64
	// TimersFired counts timers that fired.
	TimersFired uint64
	// MsgRingErrors counts MsgRing sends the kernel refused.
	MsgRingErrors uint64
	// Strays counts CQEs whose user_data matched no live operation.
	Strays uint64
	// Yields counts the loop's passes through the Go scheduler (every 5ms
	// of activity; see docs/decisions/2026-11-26-loop-yield-for-sysmon.md).
	Yields uint64
	// LiveOps is the number of op records in use (mailboxes included, the
	// runtime's own doorbell and acknowledgement records not);
	// LiveTimers the number of pending timers.
	LiveOps    int64
	LiveTimers int64
}

// ErrClosed is returned by Post, NewOp and MsgRing once Close has begun.
// It wraps net.ErrClosed so errors.Is(err, net.ErrClosed) holds.
var ErrClosed = fmt.Errorf("runtime: loop closed: %w", net.ErrClosed)

// ErrStaleOp is returned for an OpID that names no live operation of the loop
// (its final CQE was already dispatched, or it belongs to another loop).
var ErrStaleOp = errors.New("runtime: operation not live")

// ScratchSize is the size of the off-heap scratch space Loop.Scratch gives
// each operation: room for a sockaddr_in6 (28 bytes) with space to spare.
const ScratchSize = 64
