//go:build linux

package netio

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"go.uber.org/goleak"

	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv("NETIO_TEST_DIALER"); spec != "" {
		os.Exit(dialerChild(spec))
	}
	if spec := os.Getenv(listenChildEnv); spec != "" {
		os.Exit(listenChild(spec))
	}
	if spec := os.Getenv(manyConnsEnv); spec != "" {
		os.Exit(manyConnsServer(spec))
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

// needRing skips (or fails under RINGWIRE_STRICT=1) without io_uring, with
// the reason ring.Available gives.
func needRing(t testing.TB) {
	t.Helper()
	testenv.NeedIOUring(t, ring.Available())
}

// dialerChild is the client side of TestIdleConnections and
// BenchmarkManyConns, in its own process so that each side stays within
// RLIMIT_NOFILE: it opens n connections to addr (spec "addr,n[,bytes]"),
// sends bytes zero bytes on each, prints "ready", and holds them until its
// stdin closes.
func dialerChild(spec string) int {
	f := strings.Split(spec, ",")
	n, _ := strconv.Atoi(f[1])
	bytes := 0
	if len(f) > 2 {
		bytes, _ = strconv.Atoi(f[2])
	}
	ap, err := netip.ParseAddrPort(f[0])
	if err != nil {
		fmt.Println(err)
		return 1
	}
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	in := bufio.NewReader(os.Stdin)
	if len(f) > 3 && f[3] == "wait" {
		// The parent measures its baseline after this process exists and
		// before any connection: starting a process costs the parent
		// memory of its own, which is no connection's.
		fmt.Println("started")
		if _, err := in.ReadString('\n'); err != nil {
			return 1
		}
	}
	fds := make([]int, 0, n)
	for i := 0; i < n; i++ {
		fd, err := dialAndSend(sa, bytes)
		if err != nil {
			fmt.Println("dial", i, err)
			return 1
		}
		fds = append(fds, fd)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, in)
	for _, fd := range fds {
		unix.Close(fd)
	}
	return 0
}
