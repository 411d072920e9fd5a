//go:build linux

package runtime

import "sync"

// The alternatives measured for the way back from the loop to a waiting
// goroutine; docs/decisions/ records the figures.

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

// spinParker is the production Waiter with a spin.
func newSpinParker() parker { return chanParker{NewWaiterSpin(50)} }
