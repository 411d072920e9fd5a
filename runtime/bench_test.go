//go:build linux

package runtime

import (
	goruntime "runtime"
	"testing"
	"time"

	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
)

var wakeModes = []struct {
	name string
	mode wakeMode
}{
	{"eventfd", wakeEventFD},
	{"futex", wakeFutex},
	{"eventfd+budget50us", wakeEventFD | wakeBudgetFlag},
}

var parkers = []struct {
	name string
	new  func() parker
}{
	{"chan", newChanParker},
	{"cond", newCondParker},
	{"wg", newWGParker},
	{"spin", newSpinParker},
}

func benchRuntime(b *testing.B, mode wakeMode) *Runtime {
	if mode&^wakeBudgetFlag == wakeFutex {
		p, err := ring.ProbeKernel()
		testenv.NeedIOUring(b, err)
		testenv.NeedFeature(b, "IORING_OP_FUTEX_WAIT (6.7)", p.Supports(ring.OpFutexWait))
	}
	cfg := &Config{Loops: 1, wake: mode &^ wakeBudgetFlag}
	if mode&wakeBudgetFlag != 0 {
		cfg.LatencyBudget = 50 * time.Microsecond
	}
	return newRuntime(b, cfg)
}

func reportLoop(b *testing.B, l *Loop, before Stats, ops int) {
	s := l.Stats()
	b.ReportMetric(float64(s.Enters-before.Enters)/float64(ops), "enters/op")
	b.ReportMetric(float64(s.Wakeups-before.Wakeups)/float64(ops), "wakeups/op")
}

// BenchmarkRoundTrip is the cross-goroutine hand-off: a goroutine posts a task
// that submits a NOP; its completion wakes the goroutine. serial measures one
// goroutine's latency (ns/op is the round trip); parallel runs GOMAXPROCS
// goroutines per b.RunParallel (ns/op is the inverse of throughput).
func BenchmarkRoundTrip(b *testing.B) {
	for _, wm := range wakeModes {
		for _, pk := range parkers {
			b.Run(wm.name+"/"+pk.name+"/serial", func(b *testing.B) {
				rt := benchRuntime(b, wm.mode)
				l := rt.Loops()[0]
				n := &nopRT{w: pk.new()}
				before := l.Stats()
				b.ReportAllocs()
				ops := 0
				for b.Loop() {
					if err := n.roundTrip(l); err != nil {
						b.Fatal(err)
					}
					ops++
				}
				reportLoop(b, l, before, ops)
			})
			b.Run(wm.name+"/"+pk.name+"/parallel", func(b *testing.B) {
				parallelRoundTrips(b, wm.mode, pk.new, 4)
			})
		}
	}
}

// parallelRoundTrips runs b.N round trips on one loop from p×GOMAXPROCS
// goroutines (b.RunParallel), each keeping one in flight, and reports the
// loop's enters and wakeups per operation.
func parallelRoundTrips(b *testing.B, mode wakeMode, newWaiter func() parker, p int) {
	rt := benchRuntime(b, mode)
	l := rt.Loops()[0]
	before := l.Stats()
	b.ReportAllocs()
	b.SetParallelism(p)
	b.RunParallel(func(pb *testing.PB) {
		n := &nopRT{w: newWaiter()}
		for pb.Next() {
			if err := n.roundTrip(l); err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportLoop(b, l, before, b.N)
}

// BenchmarkConcurrent1000 keeps 1000 round trips in flight: 1000 goroutines
// (b.RunParallel with SetParallelism), each posting a NOP and waiting for it
// before posting the next. It reports io_uring_enter calls and producer
// wakeup syscalls per operation. Target: at most 0.1 enters/op.
//
// An earlier version fed the 1000 goroutines one token at a time from the
// benchmark goroutine, which then set the pace: under CPU contention it kept
// far fewer than 1000 round trips in flight, and the loop, finding a few
// tasks per iteration, entered the kernel for each small batch.
//
// Each goroutine allocates its waiter once; at small -benchtime those 1000
// setups show in B/op and allocs/op (0 allocs/op from 20000x up).
func BenchmarkConcurrent1000(b *testing.B) {
	const workers = 1000
	for _, wm := range wakeModes {
		for _, pk := range parkers {
			b.Run(wm.name+"/"+pk.name, func(b *testing.B) {
				procs := goruntime.GOMAXPROCS(0)
				parallelRoundTrips(b, wm.mode, pk.new, (workers+procs-1)/procs)
			})
		}
	}
}

// wakeBudgetFlag: benchmarks run the loop with a 50µs LatencyBudget.
const wakeBudgetFlag wakeMode = 0x80

// inflight keeps n NOPs in flight on the loop: each completion starts the
// next, until total have completed; then it wakes w.
type inflight struct {
	started, done, total int
	w                    *Waiter
}

func (f *inflight) start(l *Loop) {
	if f.started >= f.total {
		return
	}
	sqe, _, err := l.NewOp(f, 0)
	if err != nil {
		return
	}
	sqe.PrepNop()
	f.started++
}

func (f *inflight) HandleCompletion(l *Loop, tag uint64, c *ring.CQE) {
	f.done++
	if f.done == f.total {
		f.w.Wake()
		return
	}
	f.start(l)
}

// BenchmarkInflight1000 keeps 1000 NOPs in flight from the loop itself (no
// goroutine hand-off): each b.Loop iteration completes 10 000 operations,
// each completion starting the next. It reports the loop's own batching
// (enters/op) and ns per operation.
func BenchmarkInflight1000(b *testing.B) {
	rt := newRuntime(b, &Config{Loops: 1, Entries: 1024})
	l := rt.Loops()[0]
	const perIter, window = 10_000, 1000
	f := &inflight{w: NewWaiter(), total: perIter}
	task := TaskFunc(func(l *Loop) {
		f.started, f.done = 0, 0
		for range window {
			f.start(l)
		}
	})
	before := l.Stats()
	b.ReportAllocs()
	iters := 0
	start := time.Now()
	for b.Loop() {
		if err := l.Post(task); err != nil {
			b.Fatal(err)
		}
		f.w.Wait()
		iters++
	}
	ops := iters * perIter
	b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(ops), "ns/nop")
	reportLoop(b, l, before, ops)
}
