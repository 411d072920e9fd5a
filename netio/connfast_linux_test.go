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

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/runtime"
)

// BenchmarkConnEchoStats is BenchmarkConnEcho's netio case on a runtime of
// its own, reporting the hand-offs per round trip: tasks posted, producer
// wakeups, io_uring_enter calls and ring sends.
func BenchmarkConnEchoStats(b *testing.B) {
	needRing(b)
	rt, err := runtime.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	lc := ListenConfig{Runtime: rt}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { echoServe(ln); close(done) }()
	d := Dialer{Runtime: rt}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	sum := func() (s runtime.Stats) {
		for _, x := range rt.Stats() {
			s.Posted += x.Posted
			s.Wakeups += x.Wakeups
			s.Enters += x.Enters
		}
		return s
	}
	before, nb := sum(), StatsOf(rt)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	after, na := sum(), StatsOf(rt)
	n := float64(b.N)
	b.ReportMetric(float64(after.Posted-before.Posted)/n, "posts/op")
	b.ReportMetric(float64(after.Wakeups-before.Wakeups)/n, "wakeups/op")
	b.ReportMetric(float64(after.Enters-before.Enters)/n, "enters/op")
	b.ReportMetric(float64(na.PlainSends+na.ZCSends-nb.PlainSends-nb.ZCSends)/n, "ringsends/op")
	c.Close()
	ln.Close()
	<-done
}

// TestConnWriteFastPathZeroAllocs: a small Write that the socket buffer takes
// at once is one send(2) from the caller, with no ring send and 0 allocations.
func TestConnWriteFastPathZeroAllocs(t *testing.T) {
	needRing(t)
	rt, err := runtime.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	lc := ListenConfig{Runtime: rt}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	}()
	d := Dialer{Runtime: rt}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 64)
	before := StatsOf(rt)
	n := testing.AllocsPerRun(1000, func() {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
	})
	after := StatsOf(rt)
	if n != 0 && !raceEnabled {
		t.Errorf("%v allocs per fast-path Write, want 0", n)
	}
	// The reader keeps up, so at most a few writes found the buffer full.
	if ring := after.PlainSends + after.ZCSends - before.PlainSends - before.ZCSends; ring > 100 {
		t.Errorf("%d of 1001 small Writes went through the ring, want almost none", ring)
	}
	c.Close()
	<-done
}

// TestWriteFastPathRacingCloseNeverWritesReusedFD pins the fd lifetime of the
// Write fast path: the loop closes the socket (Close, or a peer reset) while
// a goroutine is writing with send(2) itself, and other goroutines open
// sockets meanwhile, which take the freed fd number at once. No byte may
// reach those sockets, and Write may fail only with the connection's own
// errors (never EBADF or ENOTSOCK from a reused number).
func TestWriteFastPathRacingCloseNeverWritesReusedFD(t *testing.T) {
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

// TestIdleReadersDoNotStarveTheLoop pins tcpLoop's release budget: readers that consumed a
// message and blocked leave their buffers for the loop to release later, but
// never so many that the loop's buffer group runs dry. With a 16-buffer
// group, 24 readers each hold back at most what the budget allows and a
// further connection still gets its data.
func TestIdleReadersDoNotStarveTheLoop(t *testing.T) {
	needRing(t)
	rt, err := runtime.New(&runtime.Config{Loops: 1, Buffers: &bufring.Config{Count: 16, Size: 4096}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	lc := ListenConfig{Runtime: rt}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var peers []net.Conn
	defer func() {
		for _, p := range peers {
			_ = p.Close()
		}
	}()
	readers := make(chan error, 32)
	accepted := 0
	exchange := func() net.Conn {
		p, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, p)
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		accepted++
		if _, err := p.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		return c
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := 0; i < 24; i++ {
		c := exchange()
		conns = append(conns, c)
		buf := make([]byte, 4)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("connection %d: %v (the loop's buffers are held by idle readers)", accepted, err)
		}
		// Block in Read: the consumed buffer is left to the loop, or given
		// back when the budget is spent.
		go func() {
			_, err := c.Read(buf)
			readers <- err
		}()
	}
	time.Sleep(20 * time.Millisecond) // let the readers block
	c := exchange()
	conns = append(conns, c)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("connection %d after 24 idle readers: %v (the loop's buffers are held by idle readers)", accepted, err)
	}
	for _, c := range conns {
		_ = c.Close()
	}
	conns = nil
	for i := 0; i < 24; i++ {
		if err := <-readers; err == nil {
			t.Error("a Read blocked on a closed connection returned no error")
		}
	}
}

// TestRuntimeCloseWithFastPathWriter closes a runtime under connections whose
// goroutines are writing with the fast path: every Write ends with an error,
// and every socket is closed (through its guard) by the time Close returns or
// the last writer leaves send(2).
func TestRuntimeCloseWithFastPathWriter(t *testing.T) {
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
