//go:build !linux

package ring_test

import (
	"fmt"

	"github.com/ringwire/ringwire/ring"
)

// A no-op round trip: get an SQE, prepare it, submit, wait, reap. Off Linux,
// New reports that io_uring is unavailable; the example only compiles there.
func ExampleRing_nop() {
	r, err := ring.New(nil)
	if err != nil {
		fmt.Println("no io_uring:", err) // errors.Is(err, ring.ErrUnavailable)
		return
	}
	defer r.Close()

	sqe := r.GetSQE()
	sqe.PrepNop()
	sqe.UserData = 42
	if _, err := r.SubmitAndWait(1); err != nil {
		fmt.Println(err)
		return
	}
	var cqes [8]ring.CQE
	n := r.Reap(cqes[:])
	fmt.Println(n, cqes[0].UserData, cqes[0].Err())
}
