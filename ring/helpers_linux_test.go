//go:build linux

package ring

import (
	"encoding/binary"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/testenv"
)

// prodFlags are the setup flags ringwire's event loops use.
const prodFlags = SetupSingleIssuer | SetupDeferTaskrun

var (
	probeOnce sync.Once
	probe     *Probe
	probeErr  error
)

func kernelProbe(t testing.TB) *Probe {
	t.Helper()
	probeOnce.Do(func() { probe, probeErr = ProbeKernel() })
	testenv.NeedIOUring(t, probeErr)
	return probe
}

func needOp(t testing.TB, ops ...Op) {
	t.Helper()
	p := kernelProbe(t)
	for _, op := range ops {
		testenv.NeedFeature(t, opName(op), p.Supports(op))
	}
}

// opName is op's kernel name, with the Linux version that brought it where
// networkingOps knows it.
func opName(op Op) string {
	for _, n := range networkingOps {
		if n.op == op {
			return "IORING_OP_" + op.String() + " (" + n.since + ")"
		}
	}
	return "IORING_OP_" + op.String()
}

// newRing creates a ring closed at cleanup. With SetupSingleIssuer in the flags
// it locks the test goroutine to its thread first, as the kernel requires.
func newRing(t testing.TB, cfg *Config) *Ring {
	t.Helper()
	kernelProbe(t)
	if cfg == nil {
		cfg = &Config{Entries: 16, Flags: prodFlags}
	}
	if cfg.Flags&SetupSingleIssuer != 0 {
		runtime.LockOSThread()
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", *cfg, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// getSQE returns an SQE or fails the test.
func getSQE(t testing.TB, r *Ring) *SQE {
	t.Helper()
	s := r.GetSQE()
	if s == nil {
		t.Fatal("submission queue full")
	}
	return s
}

// waitN submits what is prepared and collects completions until it has want of
// them or d passes (then it fails the test).
func waitN(t testing.TB, r *Ring, want int, d time.Duration) []CQE {
	t.Helper()
	deadline := time.Now().Add(d)
	var out []CQE
	var buf [64]CQE
	for {
		n := r.Reap(buf[:])
		out = append(out, buf[:n]...)
		if len(out) >= want {
			return out
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("got %d completions within %v, want %d: %+v", len(out), d, want, out)
		}
		if _, err := r.WaitCQEs(1, left, 0); err != nil && !errors.Is(err, syscall.ETIME) {
			t.Fatalf("WaitCQEs: %v", err)
		}
	}
}

// submitWait submits and returns exactly want completions.
func submitWait(t testing.TB, r *Ring, want int) []CQE {
	t.Helper()
	if _, err := r.Submit(); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	c := waitN(t, r, want, 5*time.Second)
	if len(c) != want {
		t.Fatalf("got %d completions, want %d: %+v", len(c), want, c)
	}
	return c
}

// expectNone asserts that no completion arrives within d.
func expectNone(t testing.TB, r *Ring, d time.Duration) {
	t.Helper()
	if _, err := r.WaitCQEs(1, d, 0); err != nil && !errors.Is(err, syscall.ETIME) {
		t.Fatalf("WaitCQEs: %v", err)
	}
	var buf [8]CQE
	if n := r.Reap(buf[:]); n != 0 {
		t.Fatalf("unexpected completions: %+v", buf[:n])
	}
}

func byUserData(t testing.TB, cqes []CQE, ud uint64) []CQE {
	t.Helper()
	var out []CQE
	for _, c := range cqes {
		if c.UserData == ud {
			out = append(out, c)
		}
	}
	return out
}

func one(t testing.TB, cqes []CQE, ud uint64) CQE {
	t.Helper()
	got := byUserData(t, cqes, ud)
	if len(got) != 1 {
		t.Fatalf("want one completion with user_data %d, got %d in %+v", ud, len(got), cqes)
	}
	return got[0]
}

func wantRes(t testing.TB, c CQE, res int32) {
	t.Helper()
	if c.Res != res {
		t.Fatalf("user_data %d: res %d (%v), want %d", c.UserData, c.Res, c.Err(), res)
	}
}

func wantErrno(t testing.TB, c CQE, e syscall.Errno) {
	t.Helper()
	if c.Errno() != e {
		t.Fatalf("user_data %d: res %d (%v), want %v", c.UserData, c.Res, c.Err(), e)
	}
}

// offHeap returns n bytes of anonymous mmap'd memory, unmapped at cleanup: memory
// the kernel may use while an operation is in flight.
func offHeap(t testing.TB, n int) []byte {
	t.Helper()
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Munmap(b) })
	return b
}

// pin pins the object p points to until cleanup.
func pin[T any](t testing.TB, p *T) *T {
	var pn runtime.Pinner
	pn.Pin(p)
	t.Cleanup(pn.Unpin)
	return p
}

func closeAtCleanup(t testing.TB, fd int) int {
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// rawInet4 is a struct sockaddr_in for 127.0.0.1:port as the kernel reads it.
func rawInet4(port int) []byte {
	b := make([]byte, unix.SizeofSockaddrInet4)
	binary.NativeEndian.PutUint16(b[0:], unix.AF_INET)
	binary.BigEndian.PutUint16(b[2:], uint16(port))
	copy(b[4:], []byte{127, 0, 0, 1})
	return b
}

func sockPort(t testing.TB, fd int) int {
	t.Helper()
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*unix.SockaddrInet4).Port
}

// tcpListener is a plain (non-MPTCP) TCP socket listening on 127.0.0.1:0.
func tcpListener(t testing.TB) (fd, port int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeAtCleanup(t, fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 64); err != nil {
		t.Fatal(err)
	}
	return fd, sockPort(t, fd)
}

func tcpDial(t testing.TB, port int) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeAtCleanup(t, fd)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		t.Fatal(err)
	}
	return fd
}

// tcpPair returns two connected plain TCP sockets over loopback.
func tcpPair(t testing.TB) (a, b int) {
	t.Helper()
	ln, port := tcpListener(t)
	a = tcpDial(t, port)
	b, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	return a, closeAtCleanup(t, b)
}

func udpSocket(t testing.TB) (fd, port int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeAtCleanup(t, fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	return fd, sockPort(t, fd)
}

// readFull reads exactly n bytes from a blocking fd, bounded by a receive timeout.
func readFull(t testing.TB, fd, n int) []byte {
	t.Helper()
	tv := unix.Timeval{Sec: 5}
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	out := make([]byte, 0, n)
	buf := make([]byte, n)
	for len(out) < n {
		m, err := unix.Read(fd, buf[:n-len(out)])
		if err != nil {
			t.Fatalf("read: %v (have %d of %d bytes)", err, len(out), n)
		}
		if m == 0 {
			t.Fatalf("EOF after %d of %d bytes", len(out), n)
		}
		out = append(out, buf[:m]...)
	}
	return out
}

func writeAll(t testing.TB, fd int, b []byte) {
	t.Helper()
	if n, err := unix.Write(fd, b); err != nil || n != len(b) {
		t.Fatalf("write: %d, %v", n, err)
	}
}

func ts(d time.Duration) Timespec {
	return Timespec{Sec: int64(d / time.Second), Nsec: int64(d % time.Second)}
}

// bufRing is a provided buffer ring on mmap'd memory, set up the way bufring
// does it: entries of struct io_uring_buf, tail in entry 0's resv field.
type testBufRing struct {
	ring    []Buf
	mem     []byte
	size    int
	entries uint16
	tail    uint16
}

func newTestBufRing(t testing.TB, r *Ring, bgid uint16, entries uint16, size int) *testBufRing {
	t.Helper()
	p := kernelProbe(t)
	testenv.NeedFeature(t, "IORING_REGISTER_PBUF_RING (5.19)", p.BufRing)
	ringMem := offHeap(t, max(int(entries)*int(unsafe.Sizeof(Buf{})), unix.Getpagesize()))
	br := &testBufRing{
		ring:    unsafe.Slice((*Buf)(unsafe.Pointer(&ringMem[0])), entries),
		mem:     offHeap(t, int(entries)*size),
		size:    size,
		entries: entries,
	}
	if err := r.RegisterBufRing(&BufReg{RingAddr: bufAddr(ringMem), RingEntries: uint32(entries), BGID: bgid}); err != nil {
		t.Fatalf("RegisterBufRing: %v", err)
	}
	t.Cleanup(func() { _ = r.UnregisterBufRing(bgid) })
	for i := uint16(0); i < entries; i++ {
		br.add(i)
	}
	br.publish()
	return br
}

func (br *testBufRing) buf(bid uint16) []byte {
	return br.mem[int(bid)*br.size : (int(bid)+1)*br.size]
}

// add queues buffer bid at the local tail (io_uring_buf_ring_add).
func (br *testBufRing) add(bid uint16) {
	e := &br.ring[br.tail&(br.entries-1)]
	e.Addr = bufAddr(br.buf(bid))
	e.Len = uint32(br.size)
	e.BID = bid
	br.tail++
}

// publish makes the added buffers visible: a release store of the 16-bit tail
// (io_uring_buf_ring_advance). Go has no 16-bit atomic store, so the 32-bit word
// holding entry 0's bid and the tail is stored atomically.
func (br *testBufRing) publish() {
	w := (*uint32)(unsafe.Pointer(&br.ring[0].BID))
	atomic.StoreUint32(w, uint32(br.ring[0].BID)|uint32(br.tail)<<16)
}
