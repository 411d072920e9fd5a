//go:build linux

package runtime

import (
	"errors"
	"fmt"
	goruntime "runtime"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/ring"
)

// Runtime is a set of event loops. Its methods may be called from any
// goroutine except Close, which must not be called from a loop thread.
type Runtime struct {
	loops     []*Loop
	next      atomic.Uint64
	closeOnce sync.Once
}

// New probes the kernel (ring.ProbeKernel), starts cfg.Loops loops and waits
// until each has created its ring and run cfg.Setup. If any loop fails to
// start, the others are closed and the first error is returned; an error
// wrapping ring.ErrUnavailable means io_uring cannot be used here at all.
func New(cfg *Config) (*Runtime, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	probe, err := ring.ProbeKernel()
	if err != nil {
		return nil, err
	}
	if !c.KeepGOMAXPROCS {
		ensureSpareP(c.Loops, c.Logger)
	}
	cp := &c
	rt := &Runtime{loops: make([]*Loop, c.Loops)}
	ready := make(chan error, c.Loops)
	for i := range rt.loops {
		cpu := -1
		if len(c.CPUs) > 0 {
			cpu = c.CPUs[i%len(c.CPUs)]
		}
		rt.loops[i] = newLoop(i, cpu, cp, probe)
		go rt.loops[i].run(ready)
	}
	var errs []error
	for range rt.loops {
		if err := <-ready; err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		_ = rt.Close()
		return nil, errs[0]
	}
	return rt, nil
}

// Loops returns the loops, indexed by Loop.ID. The slice must not be modified.
func (rt *Runtime) Loops() []*Loop { return rt.loops }

// Next returns the loops in turn (round robin), to spread work such as new
// connections.
func (rt *Runtime) Next() *Loop {
	return rt.loops[(rt.next.Add(1)-1)%uint64(len(rt.loops))]
}

// Stats returns every loop's counters, indexed by Loop.ID.
func (rt *Runtime) Stats() []Stats {
	out := make([]Stats, len(rt.loops))
	for i, l := range rt.loops {
		out[i] = l.Stats()
	}
	return out
}

// Close stops every loop: each runs the tasks already posted, cancels its
// in-flight operations and waits (up to 5s) for their final CQEs, which their
// handlers receive; then it closes what it owns (Own), its eventfd and its
// ring, and its goroutine exits. Close waits for all of that. Pending timers
// are discarded. Calls after the first return nil. Close must not be called
// from a loop thread (a Handler, Task or Setup): there it would wait for its
// own loop, so it returns an error and closes nothing.
//
// An operation the kernel has not completed within 5s of its cancellation
// makes Close return an error; the ring is closed anyway, and the memory such
// operations point to (pinned, or in the loop's buffer group and arena) is
// never released, since the kernel may still write to it.
func (rt *Runtime) Close() error {
	tid := unix.Gettid()
	for _, l := range rt.loops {
		select {
		case <-l.done: // its thread has exited: tid may be reused
		default:
			if l.tid == tid {
				return fmt.Errorf("runtime: Close called on loop %d's thread, which it would wait for", l.id)
			}
		}
	}
	var err error
	rt.closeOnce.Do(func() {
		for _, l := range rt.loops {
			l.requestClose()
		}
		var errs []error
		for _, l := range rt.loops {
			<-l.done
			if l.closeErr != nil {
				errs = append(errs, l.closeErr)
			}
		}
		err = errors.Join(errs...)
	})
	return err
}

// allowedCPUs returns how many CPUs this process may run on.
func allowedCPUs() int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil {
		if n := set.Count(); n > 0 {
			return n
		}
	}
	return 1
}

// gomaxprocsMu serialises the read-modify-write of GOMAXPROCS when several
// runtimes start at once.
var gomaxprocsMu sync.Mutex

// ensureSpareP raises GOMAXPROCS to loops+1 when loops would otherwise hold
// every P (see Config.KeepGOMAXPROCS), so goroutines that loops wake have a P
// to run on at once.
func ensureSpareP(loops int, log *zap.Logger) {
	gomaxprocsMu.Lock()
	defer gomaxprocsMu.Unlock()
	if prev := goruntime.GOMAXPROCS(0); prev <= loops {
		goruntime.GOMAXPROCS(loops + 1)
		log.Info("runtime: raised GOMAXPROCS so woken goroutines need not wait for a loop's P",
			zap.Int("from", prev), zap.Int("to", loops+1), zap.Int("loops", loops))
	}
}
