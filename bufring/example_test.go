package bufring_test

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/ring"
)

// A loop decodes every CQE of its multishot receive with Group.Lease, hands
// the bytes on, releases the lease, and re-arms the receive when it ended for
// lack of buffers.
func ExampleGroup_Lease() {
	// A SINGLE_ISSUER ring is created, registered on and driven from one
	// thread: the kernel answers EEXIST to any other.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r, err := ring.New(&ring.Config{Flags: ring.SetupSingleIssuer | ring.SetupDeferTaskrun})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	g, err := bufring.NewGroup(r, &bufring.Config{GroupID: 1, Count: 64, Size: 4096})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()

	// handle is called for each CQE of the receive (armed elsewhere with
	// sqe.PrepRecvMultishot(fd, g.ID(), 0)); it returns whether to re-arm.
	handle := func(c *ring.CQE, consume func([]byte)) (rearm bool) {
		l, err := g.Lease(c)
		switch {
		case errors.Is(err, bufring.ErrNoBuffers):
			// Back-pressure: re-arm once buffers are back (after Flush).
		case err != nil:
			return false
		default:
			for seg := range l.Segments() {
				consume(seg)
			}
			l.Release()
		}
		g.Flush() // once per loop iteration in a real loop
		return !c.More() && g.Available() > 0
	}
	_ = handle
}

// A zero-copy send holds its arena lease until SendDone says the kernel is
// finished with the memory.
func ExampleSendDone() {
	a, err := bufring.NewArena(nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	l, err := a.Alloc(1500)
	if err != nil {
		fmt.Println(err)
		return
	}
	l.Retain()  // the kernel's reference, taken when the SEND_ZC is submitted
	l.Release() // the caller's reference
	// ... for each CQE of the send:
	onCQE := func(c *ring.CQE) {
		if bufring.SendDone(c) {
			l.Release() // the kernel's reference: the block is free again
		}
	}
	onCQE(&ring.CQE{Flags: ring.CQEFNotif})
	fmt.Println(a.InUse()) // 0
}
