//go:build linux

package bufring

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var probe = sync.OnceValues(ring.ProbeKernel)

// newRing locks the test goroutine to its thread and creates a
// SINGLE_ISSUER|DEFER_TASKRUN ring driven from it.
func newRing(t *testing.T) *ring.Ring {
	t.Helper()
	p, err := probe()
	testenv.NeedIOUring(t, err)
	testenv.NeedFeature(t, "IORING_REGISTER_PBUF_RING (5.19)", p.BufRing)
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	r, err := ring.New(&ring.Config{Entries: 64, Flags: ring.SetupSingleIssuer | ring.SetupDeferTaskrun})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func newGroup(t *testing.T, r *ring.Ring, c *Config) *Group {
	t.Helper()
	g, err := NewGroup(r, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Error(err)
		}
	})
	return g
}

// tcpPair returns the two ends of a loopback TCP connection made with plain
// unix.Socket calls (no MPTCP, which rejects SEND_ZC).
func tcpPair(t *testing.T) (a, b int) {
	t.Helper()
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		t.Fatal(err)
	}
	a, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(a) })
	if err := unix.Connect(a, sa); err != nil {
		t.Fatal(err)
	}
	b, _, err = unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(b) })
	return a, b
}

// reap waits up to d for completions and returns those ready.
func reap(t *testing.T, r *ring.Ring, dst []ring.CQE, d time.Duration) []ring.CQE {
	t.Helper()
	if _, err := r.WaitCQEs(1, d, 0); err != nil && err != unix.ETIME && err != unix.EINTR {
		if e, ok := err.(unix.Errno); !ok || e != unix.ETIME {
			t.Fatalf("wait: %v", err)
		}
	}
	return dst[:r.Reap(dst)]
}

func pattern(i int) byte { return byte(i % 251) }
