//go:build linux

package netio

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"go.uber.org/goleak"

	"github.com/ringwire/ringwire/ring"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv("NETIO_TEST_DIALER"); spec != "" {
		os.Exit(dialerChild(spec))
	}
	if spec := os.Getenv(listenChildEnv); spec != "" {
		os.Exit(listenChild(spec))
	}
	code := m.Run()
	if err := CloseDefault(); err != nil {
		fmt.Fprintln(os.Stderr, "CloseDefault:", err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// needRing skips (or fails under RINGWIRE_STRICT=1) without io_uring.
func needRing(t testing.TB) {
	t.Helper()
	if err := ring.Available(); err != nil {
		if os.Getenv("RINGWIRE_STRICT") == "1" {
			t.Fatalf("io_uring: %v", err)
		}
		t.Skipf("io_uring: %v", err)
	}
}

// dialerChild is the client side of TestIdleConnections, in its own process
// so that each side stays within RLIMIT_NOFILE: it opens n connections to
// addr, prints "ready", and holds them until its stdin closes.
func dialerChild(spec string) int {
	addr, nstr, _ := strings.Cut(spec, ",")
	n, _ := strconv.Atoi(nstr)
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	fds := make([]int, 0, n)
	for i := 0; i < n; i++ {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			err = unix.Connect(fd, sa)
		}
		if err != nil {
			fmt.Println("dial", i, err)
			return 1
		}
		fds = append(fds, fd)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, fd := range fds {
		unix.Close(fd)
	}
	return 0
}
