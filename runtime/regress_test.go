//go:build linux

package runtime

// Regression tests from the review of the runtime layer, each named after the
// bug it pins.

import (
	"math"
	"math/rand/v2"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
)

// StopTimer with an id this wheel never handed out (another loop's TimerID,
// or one whose record is free) must report false and change nothing. It used
// to release the free record a second time: count went negative and the free
// list got a cycle, so two later timers shared one record.
func TestStopTimerForeignIDCorruptsWheel(t *testing.T) {
	var w wheel
	now := time.Now()
	w.init(time.Millisecond, now)
	h := HandlerFunc(func(*Loop, uint64, *ring.CQE) {})
	// Every fresh record has generation 1: this is what another loop's first
	// timers look like.
	for _, id := range []TimerID{1 << 32, 1<<32 | 5, 1<<32 | 255} {
		if w.stop(id) {
			t.Fatalf("stop(%#x) of a record never handed out = true", uint64(id))
		}
	}
	// A fired (released) timer's id must not stop the record's next user.
	first := w.add(h, 1, now.Add(time.Millisecond))
	w.release(int32(uint32(first)))
	if w.stop(first) {
		t.Fatal("stop of a released timer = true")
	}
	if w.count != 0 {
		t.Fatalf("count %d, want 0", w.count)
	}
	seen := map[uint32]bool{}
	for i := range 600 {
		id := w.add(h, uint64(i), now.Add(time.Duration(i+1)*time.Millisecond))
		if seen[uint32(id)] {
			t.Fatalf("record %d handed out twice", uint32(id))
		}
		seen[uint32(id)] = true
	}
	if w.count != 600 {
		t.Fatalf("count %d, want 600", w.count)
	}
}

// A timer far in the future (time.Now().Add(math.MaxInt64), a "never"
// deadline) used to overflow the tick arithmetic and fire on the next tick.
func TestTimerFarInFutureFiredImmediately(t *testing.T) {
	var w wheel
	now := time.Now()
	w.init(time.Millisecond, now)
	h := HandlerFunc(func(*Loop, uint64, *ring.CQE) {})
	for _, at := range []time.Time{
		now.Add(math.MaxInt64),
		now.Add(200 * 365 * 24 * time.Hour),
		time.Unix(1<<62, 0),
	} {
		id := w.add(h, 0, at)
		if due := w.collect(w.currentTick(now.Add(time.Hour))); len(due) != 0 {
			t.Fatalf("timer at %v fired an hour after %v", at, now)
		}
		if d := w.nextTimeout(now); d < time.Hour {
			t.Fatalf("nextTimeout %v for a timer at %v", d, at)
		}
		if !w.stop(id) {
			t.Fatal("stop of the far timer = false")
		}
	}
}

// enters returns how many io_uring_enter calls l made while f ran.
func enters(l *Loop, f func()) uint64 {
	before := l.Stats().Enters
	f()
	return l.Stats().Enters - before
}

// An idle loop blocks in the ring: the doorbell READ on the eventfd must
// stay pending, not complete at once.
func TestIdleLoopSleeps(t *testing.T) {
	rt := newRuntime(t, &Config{Loops: 1})
	l := rt.Loops()[0]
	call(t, l, func(*Loop) {})
	if n := enters(l, func() { time.Sleep(300 * time.Millisecond) }); n > 5 {
		t.Fatalf("idle loop entered the ring %d times in 300ms", n)
	}
}

// With LatencyBudget and no timer pending, the wait had no general timeout,
// and the kernel ends such a wait when the min-wait timer fires even with no
// completion (io_cqring_min_timer_wakeup: "no general timeout, we are done"):
// an idle loop woke every budget, 20 000 times a second at 50µs.
func TestIdleLoopSleepsWithLatencyBudget(t *testing.T) {
	rt := newRuntime(t, &Config{Loops: 1, LatencyBudget: 50 * time.Microsecond})
	l := rt.Loops()[0]
	testenv.NeedFeature(t, "IORING_FEAT_MIN_TIMEOUT", l.Ring().Features()&ring.FeatMinTimeout != 0)
	call(t, l, func(*Loop) {})
	if n := enters(l, func() { time.Sleep(300 * time.Millisecond) }); n > 5 {
		t.Fatalf("idle loop with a 50µs LatencyBudget entered the ring %d times in 300ms", n)
	}
}

// One pending timer an hour away used to make the loop wake on every tick
// (1000 io_uring_enter calls a second): the wait timeout was always "the next
// tick", not the next tick that can fire a timer. With netio arming a read
// deadline per connection that is every idle loop.
func TestFarTimerWakesIdleLoopEveryTick(t *testing.T) {
	rt := newRuntime(t, &Config{Loops: 1})
	l := rt.Loops()[0]
	var id TimerID
	fired := make(chan struct{}, 1)
	h := HandlerFunc(func(*Loop, uint64, *ring.CQE) { fired <- struct{}{} })
	call(t, l, func(l *Loop) { id = l.Timer(h, 0, time.Now().Add(time.Hour)) })
	if n := enters(l, func() { time.Sleep(300 * time.Millisecond) }); n > 15 {
		t.Fatalf("loop with one timer an hour away entered the ring %d times in 300ms", n)
	}
	// A near timer added meanwhile still fires on time.
	start := time.Now()
	call(t, l, func(l *Loop) { l.Timer(h, 1, time.Now().Add(20*time.Millisecond)) })
	select {
	case <-fired:
		if d := time.Since(start); d < 20*time.Millisecond {
			t.Fatalf("near timer fired after %v, before its time", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("near timer never fired")
	}
	call(t, l, func(l *Loop) {
		if !l.StopTimer(id) {
			t.Error("far timer was not pending")
		}
	})
}

// spinner keeps a loop busy: it posts itself again every time it runs, so the
// task queue is never empty, and it starts no operation.
type spinner struct {
	stop atomic.Bool
	runs atomic.Int64
}

func (s *spinner) Run(l *Loop) {
	s.runs.Add(1)
	if !s.stop.Load() {
		_ = l.Post(s)
	}
}

// A loop busy with tasks but with no operation of its own in flight used to
// skip io_uring_enter altogether, so MSG_RING CQEs for its mailboxes (task
// work, with DEFER_TASKRUN) were never delivered while it stayed busy.
func TestMailboxStarvedWhileLoopBusy(t *testing.T) {
	probe, err := ring.ProbeKernel()
	testenv.NeedIOUring(t, err)
	testenv.NeedFeature(t, "IORING_OP_MSG_RING (5.18)", probe.Supports(ring.OpMsgRing))
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{name: "defer_taskrun", cfg: Config{Loops: 2}},
		{name: "coop_taskrun", cfg: Config{Loops: 2, ForceCoopTaskrun: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRuntime(t, &tc.cfg)
			src, dst := rt.Loops()[0], rt.Loops()[1]
			m := &mailbox{got: make(chan int32, 10)}
			var box OpID
			call(t, dst, func(l *Loop) { box = l.NewMailbox(m, 7) })
			sp := &spinner{}
			if err := dst.Post(sp); err != nil {
				t.Fatal(err)
			}
			defer sp.stop.Store(true)
			for sp.runs.Load() < 100 {
				time.Sleep(time.Millisecond)
			}
			call(t, src, func(l *Loop) {
				if err := l.MsgRing(dst, box, 42); err != nil {
					t.Error(err)
				}
			})
			select {
			case res := <-m.got:
				if res != 42 {
					t.Fatalf("mailbox got %d, want 42", res)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("MSG_RING not delivered to a busy loop in 2s (%d spins)", sp.runs.Load())
			}
		})
	}
}

// Close racing with many producers: every Post that returned nil runs
// exactly once, every Post after Close returns ErrClosed, nothing hangs or
// panics.
func TestCloseRacingPosts(t *testing.T) {
	testenv.NeedIOUring(t, ring.Available())
	for round := range 5 {
		rt, err := New(&Config{Loops: 2, QueueSize: 8})
		if err != nil {
			t.Fatal(err)
		}
		var accepted, ran atomic.Int64
		task := TaskFunc(func(*Loop) { ran.Add(1) })
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for p := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l := rt.Loops()[p%2]
				for i := 0; i < 200_000; i++ {
					if err := l.Post(task); err != nil {
						if err != ErrClosed {
							t.Errorf("Post: %v", err)
						}
						return
					}
					accepted.Add(1)
					select {
					case <-stop:
					default:
					}
				}
			}()
		}
		time.Sleep(time.Duration(round+1) * time.Millisecond)
		done := make(chan error, 1)
		go func() { done <- rt.Close() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Close hung with producers posting")
		}
		close(stop)
		wg.Wait()
		if a, r := accepted.Load(), ran.Load(); a != r {
			t.Fatalf("round %d: %d posts accepted, %d ran", round, a, r)
		}
		for _, l := range rt.Loops() {
			if err := l.Post(task); err != ErrClosed {
				t.Fatalf("Post after Close: %v", err)
			}
		}
	}
}

// When operations are still in flight after the close grace, Close closes
// the ring anyway, and the kernel tears it down asynchronously: memory those
// operations point to may still be written. Teardown used to unpin it right
// after closing the ring, handing the memory back to the garbage collector
// while the kernel could still write to it.
func TestCloseAfterGraceFreedMemoryKernelMayUse(t *testing.T) {
	testenv.NeedIOUring(t, ring.Available())
	rt, err := New(&Config{Loops: 1, closeGrace: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	l := rt.Loops()[0]
	a, b := socketpair(t)
	defer unix.Close(b)
	var collected atomic.Int64
	call(t, l, func(l *Loop) {
		l.Own(fdCloser(a))
		buf := new([4096]byte)
		goruntime.AddCleanup(buf, func(*atomic.Int64) { collected.Add(1) }, &collected)
		sqe, id, err := l.NewOp(nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		sqe.PrepRecv(a, buf[:], 0)
		l.Pin(id, buf)
	})
	if err := rt.Close(); err == nil {
		t.Fatal("Close with a receive in flight after the grace returned nil")
	}
	for range 5 {
		goruntime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	if n := collected.Load(); n != 0 {
		t.Fatalf("%d buffers of an operation the kernel never completed were garbage collected", n)
	}
}

// Close from a Handler or Task used to wait for its own loop forever. It
// returns an error there instead, and a later Close from outside works.
func TestCloseFromLoopThreadDeadlocked(t *testing.T) {
	testenv.NeedIOUring(t, ring.Available())
	rt, err := New(&Config{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	if err := rt.Loops()[1].Post(TaskFunc(func(*Loop) { errc <- rt.Close() })); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Close on a loop thread returned nil")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close on a loop thread hung")
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWheelMatchesModel drives the wheel with random adds, stops and clock
// jumps (up to several revolutions, and "never" deadlines) against a plain
// map: every timer fires at the first collect at or after its tick, none
// early, none twice, none lost; and nextTimeout never sleeps past the
// earliest pending deadline.
func TestWheelMatchesModel(t *testing.T) {
	const tick = time.Millisecond
	rng := newRand(t)
	var w wheel
	epoch := time.Now()
	w.init(tick, epoch)
	h := HandlerFunc(func(*Loop, uint64, *ring.CQE) {})
	model := map[TimerID]int64{} // pending timer -> deadline tick
	var ids []TimerID
	now := int64(0) // current tick
	for step := 0; step < 20000; step++ {
		switch op := rng.IntN(10); {
		case op < 5:
			var at time.Time
			switch rng.IntN(20) {
			case 0:
				at = epoch.Add(math.MaxInt64)
			case 1:
				at = epoch.Add(time.Duration(now-int64(rng.IntN(50))) * tick) // past
			default:
				off := rng.IntN(3 * wheelSlots)
				at = epoch.Add(time.Duration(now)*tick + time.Duration(off)*tick + time.Duration(rng.IntN(int(tick))))
			}
			id := w.add(h, 0, at)
			want := w.tickOf(at)
			if want <= w.now {
				want = w.now + 1
			}
			model[id] = want
			ids = append(ids, id)
		case op < 7 && len(ids) > 0:
			id := ids[rng.IntN(len(ids))]
			_, pending := model[id]
			if got := w.stop(id); got != pending {
				t.Fatalf("step %d: stop = %v, pending %v", step, got, pending)
			}
			delete(model, id)
		default:
			nowT := epoch.Add(time.Duration(now) * tick)
			if d := w.nextTimeout(nowT); len(model) > 0 {
				first := int64(math.MaxInt64)
				for _, when := range model {
					first = min(first, when)
				}
				if first-now < int64(maxWait/tick) && nowT.Add(d).After(epoch.Add(time.Duration(first)*tick)) {
					t.Fatalf("step %d: nextTimeout %v sleeps past the first deadline (tick %d, now %d)", step, d, first, now)
				}
			}
			switch rng.IntN(10) {
			case 0:
				now += int64(wheelSlots + rng.IntN(3*wheelSlots))
			default:
				now += int64(rng.IntN(40))
			}
			for _, id := range w.collect(now) {
				when, ok := model[id]
				if !ok {
					t.Fatalf("step %d: timer %#x fired but is not pending", step, uint64(id))
				}
				if when > now {
					t.Fatalf("step %d: timer due at %d fired at %d", step, when, now)
				}
				delete(model, id)
				i, _ := w.lookup(id)
				w.release(i)
			}
			for id, when := range model {
				if when <= now {
					t.Fatalf("step %d: timer %#x due at %d not fired at %d", step, uint64(id), when, now)
				}
			}
		}
		if w.count != len(model) {
			t.Fatalf("step %d: count %d, model %d", step, w.count, len(model))
		}
	}
}

func newRand(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, 1))
}

// rearmer re-arms itself from its own handler, at a time already past, and
// stops a timer of the same batch.
type rearmer struct {
	n     int
	ticks []int64
	done  chan struct{}
}

func (r *rearmer) HandleCompletion(l *Loop, tag uint64, c *ring.CQE) {
	r.n++
	r.ticks = append(r.ticks, l.wheel.now)
	if r.n == 50 {
		close(r.done)
		return
	}
	l.Timer(r, tag, time.Now().Add(-time.Second))
}

// A timer scheduled from a timer handler, even for a time already past,
// fires on a later tick, never within the same batch (which would loop
// without end).
func TestTimerRearmedFromItsHandler(t *testing.T) {
	rt := newRuntime(t, &Config{Loops: 1})
	l := rt.Loops()[0]
	r := &rearmer{done: make(chan struct{})}
	call(t, l, func(l *Loop) { l.Timer(r, 0, time.Now()) })
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("re-armed timers stopped firing")
	}
	var ticks []int64
	call(t, l, func(*Loop) { ticks = append(ticks, r.ticks...) })
	for i := 1; i < len(ticks); i++ {
		if ticks[i] <= ticks[i-1] {
			t.Fatalf("firing %d on tick %d, after firing %d on tick %d: same batch", i, ticks[i], i-1, ticks[i-1])
		}
	}
}

// A loop that keeps waking passes through the Go scheduler every few
// milliseconds. Without it sysmon counted the loop goroutine as a 10ms hog
// and took its P in every wait, and each return from a wait woke sysmon from
// its deep sleep: 1.5 syscalls per datagram in the 100-stream relay at 50
// packets/s, 0.6 with the yield (ringbench; see
// docs/decisions/2026-11-26-loop-yield-for-sysmon.md).
func TestBusyLoopYields(t *testing.T) {
	rt := newRuntime(t, &Config{Loops: 1})
	l := rt.Loops()[0]
	before := l.Stats().Yields
	start := time.Now()
	for time.Since(start) < 2*time.Second && l.Stats().Yields-before < 5 {
		call(t, l, func(*Loop) {})
		time.Sleep(time.Millisecond)
	}
	n, took := l.Stats().Yields-before, time.Since(start)
	if n < 5 {
		t.Fatalf("loop yielded %d times in %v of activity, want one per %v", n, took, yieldEvery)
	}
	if most := uint64(took/yieldEvery) + 1; n > most {
		t.Fatalf("loop yielded %d times in %v, more than one per %v", n, took, yieldEvery)
	}
}

// A slow yield (contended CPUs) doubles the gap to the next, up to
// yieldEveryMax; a fast one halves it back toward yieldEvery.
func TestNextYieldGap(t *testing.T) {
	gap := yieldEvery
	for range 10 {
		gap = nextYieldGap(gap, 5*yieldSlow)
	}
	if gap != yieldEveryMax {
		t.Fatalf("after slow yields the gap is %v, want %v", gap, yieldEveryMax)
	}
	if g := nextYieldGap(gap, yieldSlow/2); g != gap {
		t.Fatalf("a middling yield moved the gap from %v to %v", gap, g)
	}
	for range 10 {
		gap = nextYieldGap(gap, time.Microsecond)
	}
	if gap != yieldEvery {
		t.Fatalf("after fast yields the gap is %v, want %v", gap, yieldEvery)
	}
}

// TestCancelFailureDroppedLeftOpInFlight pins a lost cancel: a cancel that
// does not take posts a failure CQE (-ENOENT when the kernel does not find
// the operation where it looks, -EALREADY when it is running), and the
// runtime used to drop that CQE (user_data 0), so nothing cancelled the
// operation again: on Linux 6.1 and 6.12 a send blocked on a peer's zero
// window survived its Close, and the connection never finished closing.
// Here the cancel reaches the kernel just before the operation it names (a
// one-hour timeout, submitted in the same io_uring_enter), so it must fail
// with -ENOENT; the runtime has to cancel again, and the timeout must end.
func TestCancelFailureDroppedLeftOpInFlight(t *testing.T) {
	rt := newRuntime(t, &Config{Loops: 1})
	l := rt.Loops()[0]
	ended := make(chan int32, 1)
	h := HandlerFunc(func(_ *Loop, _ uint64, c *ring.CQE) { ended <- c.Res })
	ts := &ring.Timespec{Sec: 3600}
	before := l.Stats()
	call(t, l, func(l *Loop) {
		id := l.ops.alloc(h, 0, 0)
		l.Pin(id, ts)
		// The cancel's SQE first, as Cancel prepares it, then the target's.
		cs := l.getSQE()
		cs.PrepCancel64(uint64(id), 0)
		cs.UserData = uint64(id) | cancelMark
		cs.Flags |= ring.SQECQESkipSuccess
		l.st.cancels.Add(1)
		sqe := l.getSQE()
		sqe.PrepTimeout(ts, 0, 0)
		sqe.UserData = uint64(id)
	})
	select {
	case res := <-ended:
		if res != -int32(unix.ECANCELED) {
			t.Fatalf("the timeout ended with %d, want -ECANCELED", res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the timeout is still in flight 10s after its cancel failed: the failure was dropped")
	}
	after := l.Stats()
	if r := after.CancelRetries - before.CancelRetries; r < 1 {
		t.Fatalf("%d cancels retried, want at least 1", r)
	}
	t.Logf("cancels %d, retried %d", after.Cancels-before.Cancels, after.CancelRetries-before.CancelRetries)
}
