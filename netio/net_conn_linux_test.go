//go:build linux

package netio

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/runtime"
)

// TestWriteRacingCloseNeverWritesReusedFD pins the fd lifetime of Write:
// the socket is closed (Close, or a peer reset) while a goroutine is
// writing, and other goroutines open sockets meanwhile, which take the freed
// fd number at once. No byte may reach those sockets, and Write may fail
// only with the connection's own errors (never EBADF or ENOTSOCK from a
// reused number).
func TestWriteRacingCloseNeverWritesReusedFD(t *testing.T) {
	needRing(t)
	rt, err := runtime.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := Dialer{Runtime: rt}
	iters := 300
	if raceEnabled {
		iters = 100
	}
	deadline := time.Now().Add(10 * time.Second)
	msg := make([]byte, 64)
	var pairs [][2]int
	defer func() {
		for _, p := range pairs {
			unix.Close(p[0])
			unix.Close(p[1])
		}
	}()
	hits := 0
	for i := 0; i < iters && time.Now().Before(deadline); i++ {
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		drained := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, s); close(drained) }()

		werr := make(chan error, 1)
		go func() {
			for {
				if _, err := c.Write(msg); err != nil {
					werr <- err
					return
				}
			}
		}()
		stop := make(chan struct{})
		churned := make(chan [][2]int, 1)
		go func() {
			var got [][2]int
			for len(got) < 32 {
				select {
				case <-stop:
					churned <- got
					return
				default:
				}
				p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					t.Error(err)
					break
				}
				got = append(got, p)
			}
			<-stop
			churned <- got
		}()
		time.Sleep(time.Duration(i%5) * 50 * time.Microsecond)
		if i%2 == 0 {
			_ = c.Close()
		} else {
			_ = s.(*net.TCPConn).SetLinger(0) // the peer resets
			_ = s.Close()
		}
		err = <-werr
		_ = c.Close()
		_ = s.Close()
		<-drained
		close(stop)
		pairs = append(pairs, <-churned...)

		var errno syscall.Errno
		switch {
		case errors.Is(err, net.ErrClosed):
		case errors.As(err, &errno) && (errno == syscall.EPIPE || errno == syscall.ECONNRESET):
			hits++
		default:
			t.Fatalf("iteration %d: Write failed with %v, want net.ErrClosed, EPIPE or ECONNRESET", i, err)
		}
		// No byte may have reached a socket that took a freed fd number.
		var b [64]byte
		for _, p := range pairs {
			for _, fd := range p {
				if n, _, err := unix.Recvfrom(fd, b[:], unix.MSG_DONTWAIT); n > 0 || err != unix.EAGAIN {
					t.Fatalf("iteration %d: fd %d received %d bytes (err %v): a Write hit a reused fd", i, fd, n, err)
				}
			}
		}
		for _, p := range pairs {
			unix.Close(p[0])
			unix.Close(p[1])
		}
		pairs = pairs[:0]
	}
	t.Logf("writes ended by a peer reset: %d", hits)
}

// TestRuntimeCloseWithWriters closes a runtime under connections whose
// goroutines are writing: every Write ends with net.ErrClosed, and every
// socket is closed by the time Close returns or the last writer leaves
// write(2).
func TestRuntimeCloseWithWriters(t *testing.T) {
	needRing(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	fdCount := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	for round := 0; round < 5; round++ {
		rt, err := runtime.New(&runtime.Config{Loops: 1})
		if err != nil {
			t.Fatal(err)
		}
		d := Dialer{Runtime: rt}
		var peers []net.Conn
		var drained []chan struct{}
		before := fdCount()
		werrs := make(chan error, 4)
		for i := 0; i < 4; i++ {
			c, err := d.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			peers = append(peers, s)
			ch := make(chan struct{})
			drained = append(drained, ch)
			go func() { _, _ = io.Copy(io.Discard, s); close(ch) }()
			go func() {
				msg := make([]byte, 64)
				for {
					if _, err := c.Write(msg); err != nil {
						werrs <- err
						return
					}
				}
			}()
		}
		time.Sleep(time.Millisecond)
		if err := rt.Close(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			if err := <-werrs; !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Write after runtime Close: %v, want net.ErrClosed", err)
			}
		}
		// The netio sockets are closed: the peers read EOF.
		for i, s := range peers {
			select {
			case <-drained[i]:
			case <-time.After(5 * time.Second):
				t.Fatal("peer still connected after runtime Close: socket not closed")
			}
			_ = s.Close()
		}
		if n := fdCount(); n > before {
			t.Fatalf("round %d: %d fds open after runtime Close, %d before", round, n, before)
		}
	}
}

// TestUnreadConnectionsHoldNoLoopBuffers: 300 accepted connections whose
// application never reads, each sent 4 KiB, leave that data in their own
// sockets: the loop makes no buffer group for them, and a 301st connection
// is served (a package net peer's round trip through an echo). With the
// receive done into provided buffers, these connections once took all of a
// loop's 1 024 buffers and the next connection got nothing for seconds.
func TestUnreadConnectionsHoldNoLoopBuffers(t *testing.T) {
	needRing(t)
	rt := newRuntime(t, &runtime.Config{Loops: 1})
	lc := ListenConfig{Runtime: rt}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const idle = 300
	var held []net.Conn
	defer func() {
		for _, c := range held {
			_ = c.Close()
		}
	}()
	data := make([]byte, 4<<10)
	for range idle {
		p, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, p)
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c) // accepted, never read
		if _, err := p.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	p, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	held = append(held, p)
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	held = append(held, c)
	go func() { _, _ = io.Copy(c, c) }()
	echoOnce(t, p)
	ls := loopStateOf(rt.Loops()[0])
	if ls == nil {
		t.Fatal("the loop has no netio state: the connections are not owned")
	}
	if n := ls.socks.len(); n != idle+2 {
		t.Errorf("the loop owns %d sockets, want %d", n, idle+2)
	}
	got := make(chan bool, 1)
	onLoop(t, rt.Loops()[0], func() { got <- ls.group != nil })
	if <-got {
		t.Error("the loop made a buffer group for net-face connections")
	}
}

// TestAcceptAllocatesNoMoreThanNet: accepting a connection leaves no more
// garbage than package net's Accept does. Garbage per accept grows a busy
// server's heap, which stays resident: before accept4 and getsockname read
// into buffers of their own, the net face allocated 15 objects per accept
// against net's 10, and 10 000 idle connections cost it more RSS than net's.
func TestAcceptAllocatesNoMoreThanNet(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	perAccept := func(t *testing.T, ln net.Listener) float64 {
		ap := ln.Addr().(*net.TCPAddr).AddrPort()
		sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
		var conns []net.Conn
		var fds []int
		defer func() {
			for _, c := range conns {
				c.Close()
			}
			for _, fd := range fds {
				unix.Close(fd)
			}
		}()
		conns, fds = make([]net.Conn, 0, 128), make([]int, 0, 128)
		return testing.AllocsPerRun(100, func() {
			fd, err := dialAndSend(sa, 0)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			conns, fds = append(conns, c), append(fds, fd)
		})
	}
	plain, err := plainTCPListen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	want := perAccept(t, plain)
	for _, m := range packetModes(t) {
		t.Run(m.name, func(t *testing.T) {
			ln := listenTCP(t, m.cfg)
			got := perAccept(t, ln)
			t.Logf("allocations per accept: %v (package net: %v)", got, want)
			if got > want {
				t.Errorf("%v allocations per accept, package net's Accept %v", got, want)
			}
		})
	}
}
