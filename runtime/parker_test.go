//go:build linux

package runtime

import (
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The alternatives measured for both directions of the hand-off; see
// docs/DESIGN.md. The futex wakeup needs the futex word's address in a raw
// syscall, hence unsafe here, in a test file only: production uses the
// eventfd doorbell.
func init() {
	futexWake = func(addr *uint32) {
		_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)),
			futexWakePrivate, 1, 0, 0, 0)
	}
}

// parker is the goroutine side of a round trip: Arm before handing work over,
// Wait for the loop's Wake.
type parker interface {
	Arm()
	Wait()
	Wake()
}

// chanParker is the production Waiter.
type chanParker struct{ w *Waiter }

func newChanParker() parker { return chanParker{NewWaiter()} }
func (p chanParker) Arm()   {}
func (p chanParker) Wait()  { p.w.Wait() }
func (p chanParker) Wake()  { p.w.Wake() }

// condParker is a mutex, a flag and a sync.Cond.
type condParker struct {
	mu   sync.Mutex
	c    sync.Cond
	done bool
}

func newCondParker() parker {
	p := &condParker{}
	p.c.L = &p.mu
	return p
}
func (p *condParker) Arm() {}
func (p *condParker) Wait() {
	p.mu.Lock()
	for !p.done {
		p.c.Wait()
	}
	p.done = false
	p.mu.Unlock()
}

func (p *condParker) Wake() {
	p.mu.Lock()
	p.done = true
	p.mu.Unlock()
	p.c.Signal()
}

// wgParker uses a WaitGroup as a one-shot semaphore (the runtime's
// semacquire/semrelease, no channel).
type wgParker struct{ wg sync.WaitGroup }

func newWGParker() parker { return &wgParker{} }
func (p *wgParker) Arm()  { p.wg.Add(1) }
func (p *wgParker) Wait() { p.wg.Wait() }
func (p *wgParker) Wake() { p.wg.Done() }

const futexWakePrivate = 1 | 128 // FUTEX_WAKE | FUTEX_PRIVATE_FLAG

// spinParker is the production Waiter with a spin.
func newSpinParker() parker { return chanParker{NewWaiterSpin(50)} }
