package runtime

import (
	goruntime "runtime"
	"sync/atomic"
)

// Waiter parks one goroutine until a loop wakes it: the way back from a loop
// to the goroutine that handed it work. A goroutine posts a Task, then calls
// Wait; the operation's Handler, on the loop, stores the result and calls
// Wake. A Wake that comes before Wait is kept (one token), so the order of the
// two does not matter; several Wakes before a Wait release one Wait. One
// goroutine at a time may Wait; any goroutine may Wake.
//
// Parking is a buffered channel of one token: of the mechanisms measured in
// docs/decisions/2026-11-26-hand-off-doorbell-and-parking.md (channel,
// sync.Cond, a WaitGroup as a semaphore, spinning) it gave the best
// throughput with many goroutines waiting and never blocks the loop.
// NewWaiterSpin adds a short yielding spin before parking, which nearly
// halves the latency of a lone request-response on an idle machine and costs
// throughput under load. A Waiter allocates nothing after it is made. netio
// does not use it (its connections have their own signal channels); it is
// the runtime API's primitive for the way back.
type Waiter struct {
	state atomic.Uint32 // waiterIdle, waiterWoken, waiterParked
	spins int
	c     chan struct{}
}

const (
	waiterIdle uint32 = iota
	waiterWoken
	waiterParked
)

// NewWaiter returns a Waiter that parks at once.
func NewWaiter() *Waiter { return &Waiter{c: make(chan struct{}, 1)} }

// NewWaiterSpin returns a Waiter that yields its processor (runtime.Gosched)
// up to spins times, looking for the token, before it parks.
func NewWaiterSpin(spins int) *Waiter {
	return &Waiter{c: make(chan struct{}, 1), spins: spins}
}

// Wait blocks until a token is there and takes it.
func (w *Waiter) Wait() {
	for i := 0; i < w.spins; i++ {
		if w.state.CompareAndSwap(waiterWoken, waiterIdle) {
			return
		}
		goruntime.Gosched()
	}
	if w.state.CompareAndSwap(waiterIdle, waiterParked) {
		<-w.c
	}
	w.state.Store(waiterIdle)
}

// Wake leaves a token, waking the goroutine in Wait if there is one. It never
// blocks.
func (w *Waiter) Wake() {
	if w.state.Swap(waiterWoken) == waiterParked {
		w.c <- struct{}{}
	}
}
