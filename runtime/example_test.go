package runtime_test

import (
	"fmt"

	"github.com/ringwire/ringwire/ring"
	"github.com/ringwire/ringwire/runtime"
)

// nop is a request a goroutine hands to a loop: Run starts a NOP on the loop
// thread; its completion stores the result and wakes the goroutine.
type nop struct {
	w   *runtime.Waiter
	res int32
	err error
}

func (n *nop) Run(l *runtime.Loop) {
	sqe, _, err := l.NewOp(n, 0)
	if err != nil {
		n.err = err
		n.w.Wake()
		return
	}
	sqe.PrepNop()
}

func (n *nop) HandleCompletion(l *runtime.Loop, tag uint64, cqe *ring.CQE) {
	n.res = cqe.Res
	n.w.Wake()
}

// ExampleNew starts the loops, hands one operation to a loop from this
// goroutine and waits for its completion.
func ExampleNew() {
	rt, err := runtime.New(&runtime.Config{Loops: 1})
	if err != nil {
		fmt.Println(err) // e.g. io_uring unavailable, and why
		return
	}
	defer rt.Close()
	n := &nop{w: runtime.NewWaiter()}
	if err := rt.Next().Post(n); err != nil {
		fmt.Println(err)
		return
	}
	n.w.Wait()
	fmt.Println(n.res, n.err)
	// Output: 0 <nil>
}
