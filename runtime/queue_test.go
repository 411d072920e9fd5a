//go:build linux

package runtime

import (
	"sync"
	"testing"
	"time"

	"github.com/ringwire/ringwire/ring"
)

// seqTask records the order tasks of each producer ran in.
type seqTask struct {
	producer, seq int
	last          []int // per producer, loop thread only
	bad           *int
}

func (s *seqTask) Run(*Loop) {
	if s.last[s.producer] != s.seq-1 {
		*s.bad++
	}
	s.last[s.producer] = s.seq
}

// TestPostOverflowKeepsOrder posts far more than a tiny queue holds from 8
// producers: every task runs once, each producer's in order, and the overflow
// path is used.
func TestPostOverflowKeepsOrder(t *testing.T) {
	rt := newRuntime(t, &Config{Loops: 1, QueueSize: 4})
	l := rt.Loops()[0]
	const producers, per = 8, 5000
	last := make([]int, producers)
	for i := range last {
		last[i] = -1
	}
	bad := 0
	tasks := make([][]seqTask, producers)
	for p := range tasks {
		tasks[p] = make([]seqTask, per)
		for i := range tasks[p] {
			tasks[p][i] = seqTask{producer: p, seq: i, last: last, bad: &bad}
		}
	}
	before := l.Stats()
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range tasks[p] {
				if err := l.Post(&tasks[p][i]); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for l.Stats().Tasks-before.Tasks < producers*per && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	var snapshot []int
	var badSeen int
	call(t, l, func(*Loop) { snapshot = append(snapshot, last...); badSeen = bad })
	for p, v := range snapshot {
		if v != per-1 {
			t.Errorf("producer %d: last task run %d, want %d", p, v, per-1)
		}
	}
	if badSeen != 0 {
		t.Fatalf("%d tasks ran out of their producer's order", badSeen)
	}
	s := l.Stats()
	if s.Posted-before.Posted != producers*per+1 {
		t.Errorf("Posted %d, want %d", s.Posted-before.Posted, producers*per+1)
	}
	t.Logf("%d of %d posts overflowed; %d wakeups", s.Overflowed, producers*per, s.Wakeups-before.Wakeups)
	if s.Overflowed == 0 {
		t.Error("the overflow list was never used with a 4-slot queue")
	}
}

func TestWheelStopAndFar(t *testing.T) {
	var w wheel
	now := time.Now()
	w.init(time.Millisecond, now)
	h := HandlerFunc(func(*Loop, uint64, *ring.CQE) {})
	near := w.add(h, 1, now.Add(3*time.Millisecond))
	far := w.add(h, 2, now.Add(wheelSlots*time.Millisecond+5*time.Millisecond)) // same slot, next revolution
	gone := w.add(h, 3, now.Add(3*time.Millisecond))
	if !w.stop(gone) || w.stop(gone) {
		t.Fatal("stop: first must succeed, second fail")
	}
	if due := w.collect(w.currentTick(now.Add(2 * time.Millisecond))); len(due) != 0 {
		t.Fatalf("due early: %v", due)
	}
	due := w.collect(w.currentTick(now.Add(3 * time.Millisecond)))
	if len(due) != 1 || due[0] != near {
		t.Fatalf("due at 3ms: %v, want [%v]", due, near)
	}
	w.release(int32(uint32(near)))
	if due := w.collect(w.currentTick(now.Add(wheelSlots * time.Millisecond))); len(due) != 0 {
		t.Fatalf("far timer fired a revolution early: %v", due)
	}
	due = w.collect(w.currentTick(now.Add(wheelSlots*time.Millisecond + 6*time.Millisecond)))
	if len(due) != 1 || due[0] != far {
		t.Fatalf("due after a revolution: %v, want [%v]", due, far)
	}
	w.release(int32(uint32(far)))
	if w.count != 0 {
		t.Fatalf("count %d", w.count)
	}
	// A timer in the past fires on the next tick, not a revolution later.
	past := w.add(h, 4, now)
	due = w.collect(w.now + 1)
	if len(due) != 1 || due[0] != past {
		t.Fatalf("past timer: %v", due)
	}
}
