//go:build linux

package runtime

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{name: "defer_taskrun", cfg: Config{Loops: 1}},
		{name: "coop_taskrun", cfg: Config{Loops: 1, ForceCoopTaskrun: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ring.ProbeKernel()
			testenv.NeedIOUring(t, err)
			rt := newRuntime(t, &tc.cfg)
			l := rt.Loops()[0]
			want := TierDeferTaskrun
			if tc.cfg.ForceCoopTaskrun {
				want = TierCoopTaskrun
			} else {
				testenv.NeedFeature(t, "IORING_SETUP_DEFER_TASKRUN (6.1)", p.Setup&ring.SetupDeferTaskrun != 0)
			}
			if l.Tier() != want {
				t.Fatalf("tier %v, want %v", l.Tier(), want)
			}
			n := &nopRT{w: newChanParker()}
			for range 1000 {
				if err := n.roundTrip(l); err != nil {
					t.Fatal(err)
				}
			}
			if n.errs.Load() != 0 {
				t.Fatalf("%d NewOp errors", n.errs.Load())
			}
			s := l.Stats()
			if s.Tasks < 1000 || s.CQEs < 1000 || s.SQEs < 1000 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}

// countOp counts each completion of op tag exactly once.
type countOp struct {
	counts []atomic.Uint32
	done   atomic.Int64
	errs   atomic.Int64
}

func (c *countOp) HandleCompletion(l *Loop, tag uint64, cqe *ring.CQE) {
	if cqe.Res < 0 && cqe.Res != -62 { // -ETIME from the timeouts
		c.errs.Add(1)
	}
	c.counts[tag].Add(1)
	c.done.Add(1)
}

// startOps is a task that starts ops [from, from+n), alternating NOPs and
// short timeouts.
type startOps struct {
	c        *countOp
	from, n  int
	ts       ring.Timespec
	w        *Waiter
	failures int
}

func (s *startOps) Run(l *Loop) {
	for i := s.from; i < s.from+s.n; i++ {
		sqe, id, err := l.NewOp(s.c, uint64(i))
		if err != nil {
			s.failures++
			continue
		}
		if i%8 == 0 {
			sqe.PrepTimeout(&s.ts, 0, 0)
			l.Pin(id, &s.ts)
		} else {
			sqe.PrepNop()
		}
	}
	s.w.Wake()
}

func TestHundredThousandOpsFrom64Goroutines(t *testing.T) {
	rt := newRuntime(t, &Config{Loops: 2, Entries: 256})
	const total, producers, batch = 100_000, 64, 50
	c := &countOp{counts: make([]atomic.Uint32, total)}
	var wg sync.WaitGroup
	var failures atomic.Int64
	deadline := time.Now().Add(30 * time.Second)
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := rt.Loops()[p%len(rt.Loops())]
			s := &startOps{c: c, ts: ring.Timespec{Nsec: 100_000}, w: NewWaiter()}
			for from := p * batch; from < total; from += producers * batch {
				s.from, s.n = from, min(batch, total-from)
				if err := l.Post(s); err != nil {
					t.Error(err)
					return
				}
				s.w.Wait()
				if time.Now().After(deadline) {
					t.Error("timed out")
					return
				}
			}
			failures.Add(int64(s.failures))
		}()
	}
	wg.Wait()
	for c.done.Load() < total && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if failures.Load() != 0 || c.errs.Load() != 0 {
		t.Fatalf("%d NewOp failures, %d error completions", failures.Load(), c.errs.Load())
	}
	for i := range c.counts {
		if n := c.counts[i].Load(); n != 1 {
			t.Fatalf("op %d completed %d times", i, n)
		}
	}
	// A loop publishes LiveOps after each reap, so it may lag the last
	// completion by one loop iteration: poll until every loop reports zero.
	waitFor(5*time.Second, func() bool { return liveOps(rt.Stats()) == 0 })
	var sqes, enters uint64
	for _, s := range rt.Stats() {
		sqes += s.SQEs
		enters += s.Enters
		if s.LiveOps != 0 {
			t.Errorf("loop %d: %d live ops 5s after all completed", s.Loop, s.LiveOps)
		}
	}
	t.Logf("%d ops, %d SQEs, %d enters (%.3f enters/op)", total, sqes, enters, float64(enters)/total)
}

// liveOps sums LiveOps over the loops.
func liveOps(stats []Stats) int64 {
	var n int64
	for _, s := range stats {
		n += s.LiveOps
	}
	return n
}

func TestPostAfterClose(t *testing.T) {
	testenv.NeedIOUring(t, ring.Available())
	rt, err := New(&Config{Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	l := rt.Loops()[0]
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rt.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := l.Post(TaskFunc(func(*Loop) {})); !errors.Is(err, ErrClosed) {
		t.Fatalf("Post after Close: %v", err)
	}
}

// TestLoopLocal checks the per-loop slot the socket layer keeps its state in:
// nil until set, then visible from any goroutine.
func TestLoopLocal(t *testing.T) {
	rt := newRuntime(t, &Config{Loops: 2})
	type state struct{ id int }
	for _, l := range rt.Loops() {
		if v := l.Local(); v != nil {
			t.Fatalf("loop %d: Local before SetLocal = %v", l.ID(), v)
		}
		call(t, l, func(l *Loop) { l.SetLocal(&state{id: l.ID()}) })
	}
	for _, l := range rt.Loops() {
		s, ok := l.Local().(*state)
		if !ok || s.id != l.ID() {
			t.Fatalf("loop %d: Local = %v", l.ID(), l.Local())
		}
	}
}
