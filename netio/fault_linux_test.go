//go:build linux

package netio

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/testenv"
)

// rssBytes is rssNow, failing t where /proc cannot tell.
func rssBytes(t testing.TB) int64 {
	n := rssNow()
	if n == 0 {
		t.Fatal("no resident set size in /proc/self/statm")
	}
	return n
}

func raiseNofile(t testing.TB, want uint64) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	old := lim
	if lim.Cur >= want {
		return
	}
	if lim.Max < want {
		lim.Max = want // needs CAP_SYS_RESOURCE
	}
	lim.Cur = want
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		testenv.NeedFeature(t, fmt.Sprintf("RLIMIT_NOFILE of %d (%v)", want, err), false)
	}
	t.Cleanup(func() { _ = unix.Setrlimit(unix.RLIMIT_NOFILE, &old) })
}

func dialRaw(t testing.TB, addr string) int {
	ap, err := netipParse(addr)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := dialAndSend(&unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// idleServerEnv, when set, makes TestIdleConnections the server child.
const idleServerEnv = "NETIO_TEST_IDLE_SERVER"

// idleResult is the line the server child of TestIdleConnections prints.
const idleResult = "netio-idle-result"

// TestIdleConnections opens 10,000 idle handler-API connections and reports
// the server's memory per connection: an idle connection holds an armed
// multishot receive but no buffer. The server runs in a fresh child process
// (this test re-executed with idleServerEnv set), so that memory freed by
// earlier tests and reused here cannot hide the cost; the clients run in a
// grandchild, so each side needs only n descriptors.
func TestIdleConnections(t *testing.T) {
	needRing(t)
	const n = 10000
	raiseNofile(t, n+1000) // inherited by the child
	if os.Getenv(idleServerEnv) == "1" {
		idleServer(t, n)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestIdleConnections$", "-test.count=1", "-test.timeout=40s")
	cmd.Env = append(os.Environ(), idleServerEnv+"=1")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("server child: %v\n%s", err, out)
	}
	var rss0, rss1, heap0, heap1 int64
	var elapsed time.Duration
	found := false
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, idleResult+" ") {
			_, err := fmt.Sscanf(line, idleResult+" rss0=%d rss1=%d heap0=%d heap1=%d elapsed=%d",
				&rss0, &rss1, &heap0, &heap1, &elapsed)
			if err != nil {
				t.Fatalf("server child result %q: %v", line, err)
			}
			found = true
		}
	}
	if !found {
		if strings.Contains(string(out), "--- SKIP") {
			testenv.NeedFeature(t, "what the server child needed:\n"+string(out), false)
		}
		t.Fatalf("server child printed no result:\n%s", out)
	}
	perRSS := float64(rss1-rss0) / n
	perHeap := float64(heap1-heap0) / n
	t.Logf("%d idle handler-API connections opened in %v: server child RSS %d -> %d KiB, +%d KiB (%.0f B/conn); Go heap in use %d -> %d KiB, +%d KiB (%.0f B/conn)",
		n, elapsed.Round(time.Millisecond), rss0>>10, rss1>>10, (rss1-rss0)>>10, perRSS, heap0>>10, heap1>>10, (heap1-heap0)>>10, perHeap)
	// The race detector's shadow memory inflates RSS; the heap figure holds
	// either way.
	if perRSS > 2048 && !raceEnabled {
		t.Errorf("%.0f bytes of RSS per idle connection, goal <= 2048", perRSS)
	}
	if perHeap > 2048 {
		t.Errorf("%.0f bytes of Go heap per idle connection, goal <= 2048", perHeap)
	}
}

// idleServer is the server child of TestIdleConnections: it serves n idle
// connections from a dialer grandchild, checks they hold no receive buffer
// and that data still flows beside them, and prints its RSS and Go heap in
// use before and after them on one idleResult line.
func idleServer(t *testing.T, n int) {
	h := newEcho(false)
	s := serveOn(t, newRuntime(t, nil), nil, "tcp4", "127.0.0.1:0", h)
	addr := s.Addr().String()
	warm := dialRaw(t, addr) // the loops' state exists before the baseline
	defer unix.Close(warm)
	waitFor(t, func() bool { return h.opened.Load() == 1 }, "first connection")
	goruntime.GC()
	var ms0, ms1 goruntime.MemStats
	goruntime.ReadMemStats(&ms0)
	rss0 := rssBytes(t)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NETIO_TEST_DIALER="+addr+","+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("dialer child: %q %v", line, err)
	}
	waitFor(t, func() bool { return h.opened.Load() == int64(n)+1 }, "10,000 connections open")
	elapsed := time.Since(start)
	goruntime.GC()
	goruntime.ReadMemStats(&ms1)
	rss1 := rssBytes(t)
	fmt.Printf("%s rss0=%d rss1=%d heap0=%d heap1=%d elapsed=%d\n",
		idleResult, rss0, rss1, ms0.HeapInuse, ms1.HeapInuse, int64(elapsed))
	for _, l := range s.rt.Loops() {
		if ls := loopStateOf(l); ls != nil {
			onLoop(t, l, func() {
				if in := ls.group.InUse(); in != 0 {
					t.Errorf("loop %d: %d receive buffers held by idle connections", l.ID(), in)
				}
			})
		}
	}
	// Data still flows on a connection opened before the 10,000.
	if _, err := unix.Write(warm, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	_ = unix.SetsockoptTimeval(warm, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 5})
	if m, err := unix.Read(warm, buf); err != nil || string(buf[:max(m, 0)]) != "ping" {
		t.Fatalf("echo beside the idle connections: %q %v", buf[:max(m, 0)], err)
	}
	stdin.Close()
	waitFor(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.closes) == n
	}, "10,000 OnClose after the clients exit")
}

func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// floodHandler writes to its connection as fast as the write queue allows.
type floodHandler struct {
	chunk   []byte
	full    int
	written int
	conn    chan *Conn
}

func (f *floodHandler) OnOpen(c *Conn) {
	f.conn <- c
	f.fill(c)
}

func (f *floodHandler) fill(c *Conn) {
	for i := 0; i < 1024; i++ {
		err := c.Write(f.chunk)
		if errors.Is(err, ErrWriteQueueFull) {
			f.full++
			return
		}
		if err != nil {
			return
		}
		f.written += len(f.chunk)
	}
}
func (f *floodHandler) OnWritable(c *Conn)   { f.fill(c) }
func (f *floodHandler) OnData(*Conn, *Data)  {}
func (f *floodHandler) OnClose(*Conn, error) {}

// TestClientNeverReads: a peer that never reads slows the writer; the
// server's queue stays under the high-water mark and its memory bounded.
func TestClientNeverReads(t *testing.T) {
	needRing(t)
	const hw = 1 << 20
	f := &floodHandler{chunk: make([]byte, 64<<10), conn: make(chan *Conn, 1)}
	s := serve(t, &Config{WriteHighWater: hw}, "tcp4", "127.0.0.1:0", f)
	fd := dialRaw(t, s.Addr().String())
	defer unix.Close(fd)
	c := <-f.conn
	rss0 := rssBytes(t)
	time.Sleep(500 * time.Millisecond)
	var queued, written, full, arena int
	onLoop(t, c.Loop(), func() {
		queued, written, full, arena = c.Queued(), f.written, f.full, c.ls.arena.InUse()
	})
	rss1 := rssBytes(t)
	t.Logf("never-reading peer: written %d KiB in 500ms, queued %d KiB, queue-full %d times, arena blocks in use %d, RSS +%d KiB",
		written>>10, queued>>10, full, arena, (rss1-rss0)>>10)
	if full == 0 {
		t.Fatal("the writer was never told the queue is full")
	}
	if queued > hw+len(f.chunk) {
		t.Fatalf("queued %d bytes, above the %d high-water mark", queued, hw)
	}
	if written > 64<<20 {
		t.Fatalf("server accepted %d MiB for a peer that reads nothing", written>>20)
	}
}

// TestAcceptEMFILE: with the descriptor limit reached, pending connections
// make accept fail with EMFILE; the listener backs off instead of spinning a
// core, and accepts them once descriptors are available again.
func TestAcceptEMFILE(t *testing.T) {
	needRing(t)
	// The kernel reads RLIMIT_NOFILE when it prepares an accept (io_accept_prep
	// keeps it in the request), so the limit is lowered before the listener
	// arms its multishot accept. Start the runtime and the loops' state first.
	warm := serve(t, nil, "tcp4", "127.0.0.1:0", newEcho(false))
	warm.Close()
	nloops := len(warm.rt.Loops())
	const n = 20
	fds := make([]int, n)
	for i := range fds {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds[i] = fd
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	// RLIMIT_NOFILE bounds descriptor numbers: fill every hole below the
	// highest open descriptor, set the limit just above it, then free two
	// holders so that exactly two accepts can succeed.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	top := 0
	for _, e := range ents {
		if v, err := strconv.Atoi(e.Name()); err == nil && v > top {
			top = v
		}
	}
	var fillers []int
	defer func() {
		for _, fd := range fillers {
			unix.Close(fd)
		}
	}()
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fillers = append(fillers, fd)
		// Enough fillers above the old top that the ones freed below are
		// ours: with few holes the first open can already be above it.
		if fd >= top && len(fillers) >= nloops+2 {
			break
		}
	}
	lim := old
	lim.Cur = uint64(fillers[len(fillers)-1] + 1)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
		}
	}
	defer restore()
	for i := 0; i < nloops+2; i++ { // listening sockets, then two accepts
		unix.Close(fillers[len(fillers)-1])
		fillers = fillers[:len(fillers)-1]
	}
	h := newEcho(false)
	s := serve(t, nil, "tcp4", "127.0.0.1:0", h)
	ap, _ := netipParse(s.Addr().String())
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	for _, fd := range fds {
		if err := unix.Connect(fd, sa); err != nil {
			restore()
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	var r0, r1 unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &r0)
	const window = 500 * time.Millisecond
	time.Sleep(window)
	_ = unix.Getrusage(unix.RUSAGE_SELF, &r1)
	opened := h.opened.Load()
	restore()
	cpu := time.Duration(r1.Utime.Nano()+r1.Stime.Nano()-r0.Utime.Nano()-r0.Stime.Nano()) * time.Nanosecond
	st := StatsOf(s.rt)
	t.Logf("EMFILE: %d of %d accepted under the limit; CPU %v over a %v window (%.1f%% of a core); accept errors %d",
		opened, n, cpu, window, 100*float64(cpu)/float64(window), st.AcceptErrors)
	if opened >= n {
		t.Fatal("every connection was accepted: the limit did not bite")
	}
	if st.AcceptErrors == 0 {
		t.Fatal("no accept error counted")
	}
	if cpu > window/4 {
		t.Fatalf("process used %v of CPU in %v while accept failed with EMFILE: spinning", cpu, window)
	}
	waitFor(t, func() bool { return h.opened.Load() == n }, "accepts to resume after the limit is lifted")
}
