//go:build linux

package runtime

import (
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
)

// recvRace is a RECV on a socketpair that a peer write and a Cancel race to
// finish. Its handler closes the receiving fd after the final CQE, so an fd
// leak or a second final CQE shows in the counts. The peer's fd is closed by
// the test once its writer is done: closing it here, when the cancel won,
// left the writer to write to a closed (or reused) fd number.
type recvRace struct {
	a, b    int
	buf     []byte
	finals  *atomic.Int64
	results *[3]atomic.Int64 // data, canceled, other
	w       *Waiter
}

func (r *recvRace) HandleCompletion(l *Loop, tag uint64, c *ring.CQE) {
	switch {
	case c.Res > 0:
		r.results[0].Add(1)
	case c.Res == -int32(syscall.ECANCELED) || c.Res == -int32(syscall.EINTR):
		r.results[1].Add(1)
	default:
		r.results[2].Add(1)
	}
	if !c.More() {
		r.finals.Add(1)
		unix.Close(r.a)
		r.w.Wake()
	}
}

func TestCancelRacingCompletion(t *testing.T) {
	rt := newRuntime(t, &Config{Loops: 1})
	l := rt.Loops()[0]
	fdsBefore := fdCount(t)
	var finals, stale atomic.Int64
	var results [3]atomic.Int64
	const rounds = 2000
	for i := range rounds {
		a, b := socketpair(t)
		r := &recvRace{a: a, b: b, buf: make([]byte, 16), finals: &finals, results: &results, w: NewWaiter()}
		var id OpID
		call(t, l, func(l *Loop) {
			sqe, opID, err := l.NewOp(r, uint64(i))
			if err != nil {
				t.Error(err)
				return
			}
			sqe.PrepRecv(a, r.buf, 0)
			l.Pin(opID, &r.buf[0])
			id = opID
		})
		// The peer write and the cancel race; either may win.
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rand.IntN(2) == 0 {
				time.Sleep(time.Duration(rand.IntN(20)) * time.Microsecond)
			}
			_, _ = unix.Write(b, []byte("x"))
		}()
		if err := l.Post(TaskFunc(func(l *Loop) {
			switch err := l.Cancel(id); {
			case errors.Is(err, ErrStaleOp):
				stale.Add(1) // the data won outright: nothing left to cancel
			case err != nil:
				t.Error(err)
			}
		})); err != nil {
			t.Fatal(err)
		}
		r.w.Wait()
		wg.Wait()
		unix.Close(b)
	}
	if finals.Load() != rounds {
		t.Fatalf("%d final CQEs for %d operations", finals.Load(), rounds)
	}
	if results[2].Load() != 0 {
		t.Fatalf("%d unexpected results", results[2].Load())
	}
	t.Logf("data first %d, cancel first %d", results[0].Load(), results[1].Load())
	if got := fdCount(t); got != fdsBefore {
		t.Fatalf("fd count %d, was %d", got, fdsBefore)
	}
	call(t, l, func(l *Loop) {})
	if s := l.Stats(); s.LiveOps != 0 || s.Cancels+uint64(stale.Load()) != rounds || s.Strays != 0 {
		t.Fatalf("stats after the race: %+v", s)
	}
}

// timerProbe records how late each timer fired.
type timerProbe struct {
	at    []time.Time
	late  []time.Duration
	early int
	fired atomic.Int64
}

func (p *timerProbe) HandleCompletion(l *Loop, tag uint64, c *ring.CQE) {
	now := time.Now()
	if c.Res != -int32(syscall.ETIME) {
		panic("timer CQE without -ETIME")
	}
	d := now.Sub(p.at[tag])
	if d < 0 {
		p.early++
	}
	p.late = append(p.late, d)
	p.fired.Add(1)
}

// The stated tolerance, under load on the shared 2-core test machine: no
// timer fires early; half fire within timerMedian of their time (one 1ms tick
// plus scheduling), 99% within timerTolerance, none later than timerMax. The
// tail is the loop thread waiting for a Go P when it returns from its wait,
// not the wheel. Under the race detector the bounds are 5x. When the machine
// is so loaded (CI runs packages in parallel) that Go's own timers, measured
// in the same run under the same load, are late too, each bound becomes twice
// what Go's timers saw plus one tick, whichever is larger: the wheel must not
// be worse than the scheduler it runs on.
const (
	timerMedian    = 5 * time.Millisecond
	timerTolerance = 50 * time.Millisecond
	timerMax       = 200 * time.Millisecond
)

func TestTimersUnderLoad(t *testing.T) {
	rt := newRuntime(t, &Config{Loops: 1})
	l := rt.Loops()[0]
	const timers = 20000
	p := &timerProbe{at: make([]time.Time, timers)}
	stopped := 0
	// Load: 2 goroutines doing NOP round trips for the whole test.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := &nopRT{w: newChanParker()}
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := n.roundTrip(l); err != nil {
					return
				}
			}
		}()
	}
	// The reference: Go timers over the same spread, under the same load,
	// armed in the same window as the loop's, so that a stall of the whole
	// process (a busy machine) makes both late alike.
	goLate := make([]time.Duration, 2000)
	var goWG sync.WaitGroup
	for i := range goLate {
		at := time.Now().Add(time.Duration(1+rand.IntN(200)) * time.Millisecond)
		goWG.Add(1)
		time.AfterFunc(time.Until(at), func() {
			goLate[i] = time.Since(at)
			goWG.Done()
		})
	}
	// Scheduled 1000 at a time, as a server arms deadlines: a few per task.
	var ids []TimerID
	for from := 0; from < timers; from += 1000 {
		call(t, l, func(l *Loop) {
			for i := from; i < from+1000; i++ {
				p.at[i] = time.Now().Add(time.Duration(1+rand.IntN(200)) * time.Millisecond)
				ids = append(ids, l.Timer(p, uint64(i), p.at[i]))
			}
		})
	}
	// Stop every tenth; those must never fire.
	call(t, l, func(l *Loop) {
		for i := 0; i < timers; i += 10 {
			if l.StopTimer(ids[i]) {
				stopped++
			} else if p.at[i].After(time.Now()) {
				t.Errorf("StopTimer(%d) = false before its time", i)
			}
			if l.StopTimer(ids[i]) {
				t.Errorf("second StopTimer(%d) = true", i)
			}
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for p.fired.Load() < int64(timers-stopped) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	var late []time.Duration
	call(t, l, func(l *Loop) { late = slices.Clone(p.late) })
	if len(late) != timers-stopped {
		t.Fatalf("%d timers fired, want %d", len(late), timers-stopped)
	}
	if p.early != 0 {
		t.Fatalf("%d timers fired early", p.early)
	}
	goWG.Wait()
	slices.Sort(late)
	slices.Sort(goLate)
	q := func(d []time.Duration) (p50, p99, max time.Duration) {
		return d[len(d)/2], d[len(d)*99/100], d[len(d)-1]
	}
	p50, p99, max := q(late)
	g50, g99, gmax := q(goLate)
	bound := func(abs, goRef time.Duration) time.Duration {
		return stdmax(abs*raceScale, 2*goRef+time.Millisecond)
	}
	b50, b99, bmax := bound(timerMedian, g50), bound(timerTolerance, g99), bound(timerMax, gmax)
	t.Logf("lateness p50 %v p99 %v max %v; Go timers under the same load p50 %v p99 %v max %v; bounds %v %v %v",
		p50, p99, max, g50, g99, gmax, b50, b99, bmax)
	if p50 > b50 || p99 > b99 || max > bmax {
		t.Fatalf("lateness p50 %v (bound %v), p99 %v (bound %v), max %v (bound %v)", p50, b50, p99, b99, max, bmax)
	}
	if s := l.Stats(); s.LiveTimers != 0 || s.TimersFired != uint64(timers-stopped) {
		t.Fatalf("stats: %+v", s)
	}
}

// multishotSink counts the CQEs of multishot operations and their final CQEs.
type multishotSink struct {
	cqes, finals atomic.Int64
}

func (m *multishotSink) HandleCompletion(l *Loop, tag uint64, c *ring.CQE) {
	m.cqes.Add(1)
	if !c.More() {
		m.finals.Add(1)
	}
}

type fdCloser int

func (f fdCloser) Close() error { return unix.Close(int(f)) }

func TestCloseWithLiveMultishot(t *testing.T) {
	probe, err := ring.ProbeKernel()
	testenv.NeedIOUring(t, err)
	testenv.NeedFeature(t, "IORING_OP_POLL_ADD", probe.Supports(ring.OpPollAdd))
	fdsBefore := fdCount(t)
	rt, err := New(&Config{Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	sink := &multishotSink{}
	// The kernel reads a timespec when it prepares the request, at the
	// loop's next enter, after the task has returned: both live on the heap,
	// pinned until their operation's final CQE.
	ts := &ring.Timespec{Nsec: int64(time.Millisecond)}
	long := &ring.Timespec{Sec: 3600}
	for _, l := range rt.Loops() {
		a, b := socketpair(t)
		call(t, l, func(l *Loop) {
			l.Own(fdCloser(a))
			l.Own(fdCloser(b))
			sqe, _, err := l.NewOp(sink, 1)
			if err != nil {
				t.Fatal(err)
			}
			sqe.PrepPollMultishot(a, unix.POLLIN)
			sqe, id, err := l.NewOp(sink, 2)
			if err != nil {
				t.Fatal(err)
			}
			sqe.PrepTimeout(ts, 0, ring.TimeoutMultishot)
			l.Pin(id, ts)
			// A long one-shot timeout too.
			sqe, id, err = l.NewOp(sink, 3)
			if err != nil {
				t.Fatal(err)
			}
			sqe.PrepTimeout(long, 0, 0)
			l.Pin(id, long)
		})
		if _, err := unix.Write(b, []byte("ping")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // let the multishots post a few CQEs
	start := time.Now()
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %v; %d CQEs, %d finals", time.Since(start), sink.cqes.Load(), sink.finals.Load())
	if sink.finals.Load() != 6 {
		t.Fatalf("%d final CQEs, want 6", sink.finals.Load())
	}
	if sink.cqes.Load() <= 6 {
		t.Fatalf("only %d CQEs: the multishots never fired", sink.cqes.Load())
	}
	if err := rt.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if got := fdCount(t); got != fdsBefore {
		t.Fatalf("fd count %d after Close, was %d", got, fdsBefore)
	}
	for _, s := range rt.Stats() {
		if s.LiveOps != 0 {
			t.Fatalf("loop %d: %d live ops after Close", s.Loop, s.LiveOps)
		}
	}
}

type panicky struct{ calls atomic.Int64 }

func (p *panicky) HandleCompletion(l *Loop, tag uint64, c *ring.CQE) {
	p.calls.Add(1)
	if tag == 1 {
		panic("handler boom")
	}
}

func TestPanicRecovered(t *testing.T) {
	rt := newRuntime(t, &Config{Loops: 1})
	l := rt.Loops()[0]
	p := &panicky{}
	call(t, l, func(l *Loop) {
		for tag := range uint64(3) {
			sqe, _, err := l.NewOp(p, tag)
			if err != nil {
				t.Fatal(err)
			}
			sqe.PrepNop()
		}
	})
	if err := l.Post(TaskFunc(func(*Loop) { panic("task boom") })); err != nil {
		t.Fatal(err)
	}
	// The loop lives on: a round trip still works.
	n := &nopRT{w: newChanParker()}
	if err := n.roundTrip(l); err != nil {
		t.Fatal(err)
	}
	call(t, l, func(*Loop) {})
	if got := p.calls.Load(); got != 3 {
		t.Fatalf("%d handler calls, want 3", got)
	}
	s := l.Stats()
	if s.Panics != 2 || s.LiveOps != 0 {
		t.Fatalf("Panics %d (want 2), LiveOps %d (want 0)", s.Panics, s.LiveOps)
	}
}

func TestDispatchZeroAllocs(t *testing.T) {
	rt := newRuntime(t, &Config{Loops: 1})
	l := rt.Loops()[0]
	n := &nopRT{w: newChanParker()}
	for range 100 { // warm up: table, queue, timers
		if err := n.roundTrip(l); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if err := n.roundTrip(l); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Post→NOP→dispatch→Wake round trip, want 0", allocs)
	}
	// The same with a timer armed and stopped, and a timer firing.
	tm := &timerTask{w: NewWaiter()}
	for range 10 {
		tm.run(l)
	}
	allocs = testing.AllocsPerRun(200, func() { tm.run(l) })
	if allocs != 0 {
		t.Fatalf("%v allocations per timer round trip, want 0", allocs)
	}
}

// timerTask arms a timer 1µs away and a far one it stops, then waits for the
// first to fire.
type timerTask struct{ w *Waiter }

func (tt *timerTask) Run(l *Loop) {
	far := l.Timer(tt, 1, time.Now().Add(time.Hour))
	l.StopTimer(far)
	l.Timer(tt, 0, time.Now().Add(time.Microsecond))
}

func (tt *timerTask) HandleCompletion(l *Loop, tag uint64, c *ring.CQE) { tt.w.Wake() }

func (tt *timerTask) run(l *Loop) {
	_ = l.Post(tt)
	tt.w.Wait()
}

type mailbox struct {
	got chan int32
}

func (m *mailbox) HandleCompletion(l *Loop, tag uint64, c *ring.CQE) { m.got <- c.Res }

func TestMsgRing(t *testing.T) {
	probe, err := ring.ProbeKernel()
	testenv.NeedIOUring(t, err)
	testenv.NeedFeature(t, "IORING_OP_MSG_RING (5.18)", probe.Supports(ring.OpMsgRing))
	rt := newRuntime(t, &Config{Loops: 2})
	src, dst := rt.Loops()[0], rt.Loops()[1]
	m := &mailbox{got: make(chan int32, 10)}
	var box OpID
	call(t, dst, func(l *Loop) { box = l.NewMailbox(m, 7) })
	for i := range int32(5) {
		call(t, src, func(l *Loop) {
			if err := l.MsgRing(dst, box, 100+i); err != nil {
				t.Error(err)
			}
		})
		select {
		case res := <-m.got:
			if res != 100+i {
				t.Fatalf("mailbox got %d, want %d", res, 100+i)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("MSG_RING never arrived")
		}
	}
	call(t, dst, func(l *Loop) {
		if err := l.CloseMailbox(box); err != nil {
			t.Error(err)
		}
		if err := l.CloseMailbox(box); !errors.Is(err, ErrStaleOp) {
			t.Errorf("second CloseMailbox: %v", err)
		}
	})
	if s := src.Stats(); s.MsgRingErrors != 0 {
		t.Fatalf("%d MSG_RING errors", s.MsgRingErrors)
	}
}

func TestSetupAndOwn(t *testing.T) {
	testenv.NeedIOUring(t, ring.Available())
	var closed atomic.Int64
	var onLoop atomic.Int64
	rt, err := New(&Config{Loops: 2, CPUs: []int{0}, Setup: func(l *Loop) error {
		onLoop.Add(1)
		if l.Ring() == nil {
			return errors.New("no ring in Setup")
		}
		l.Own(closerFunc(func() error { closed.Add(1); return nil }))
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if onLoop.Load() != 2 {
		t.Fatalf("Setup ran %d times", onLoop.Load())
	}
	for _, l := range rt.Loops() {
		if l.CPU() != 0 {
			t.Fatalf("loop %d on CPU %d", l.ID(), l.CPU())
		}
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if closed.Load() != 2 {
		t.Fatalf("%d owned closers closed, want 2", closed.Load())
	}
	_, err = New(&Config{Loops: 2, Setup: func(l *Loop) error {
		if l.ID() == 1 {
			return errors.New("boom")
		}
		return nil
	}})
	if err == nil {
		t.Fatal("New with a failing Setup succeeded")
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{name: "negative loops", cfg: Config{Loops: -1}},
		{name: "tiny tick", cfg: Config{TimerTick: time.Microsecond}},
		{name: "negative cpu", cfg: Config{CPUs: []int{-2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if rt, err := New(&tc.cfg); err == nil {
				rt.Close()
				t.Fatal("New accepted an invalid Config")
			}
		})
	}
	c, err := (*Config)(nil).withDefaults()
	if err != nil || c.Loops < 1 || c.QueueSize != 4096 || c.Logger == nil {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
}

func stdmax(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}
