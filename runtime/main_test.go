//go:build linux

package runtime

import (
	"errors"
	"os"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
)

func TestMain(m *testing.M) {
	testenv.LeaveOutExamples(ring.Available())
	goleak.VerifyTestMain(m)
}

func newRuntime(t testing.TB, cfg *Config) *Runtime {
	t.Helper()
	rt, err := New(cfg)
	if errors.Is(err, ring.ErrUnavailable) {
		testenv.NeedIOUring(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return rt
}

func fdCount(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// call runs f on l and waits for it.
func call(t testing.TB, l *Loop, f func(l *Loop)) {
	t.Helper()
	w := NewWaiter()
	if err := l.Post(TaskFunc(func(l *Loop) { f(l); w.Wake() })); err != nil {
		t.Fatal(err)
	}
	w.Wait()
}

// nopRT is one reusable cross-goroutine round trip: Post, a NOP on the loop,
// its completion wakes the poster. Zero-alloc after construction.
type nopRT struct {
	w    parker
	errs atomic.Int64
}

func (n *nopRT) Run(l *Loop) {
	sqe, _, err := l.NewOp(n, 0)
	if err != nil {
		n.errs.Add(1)
		n.w.Wake()
		return
	}
	sqe.PrepNop()
}

func (n *nopRT) HandleCompletion(l *Loop, tag uint64, c *ring.CQE) { n.w.Wake() }

func (n *nopRT) roundTrip(l *Loop) error {
	n.w.Arm()
	if err := l.Post(n); err != nil {
		return err
	}
	n.w.Wait()
	return nil
}

func socketpair(t testing.TB) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fds[0], fds[1]
}
