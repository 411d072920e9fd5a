//go:build linux

package bufring

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/ringwire/ringwire/ring"
	"golang.org/x/sys/unix"
)

func newArena(t testing.TB, c *ArenaConfig) *Arena {
	t.Helper()
	a, err := NewArena(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	})
	return a
}

// readFull reads n bytes from the blocking socket fd.
func readFull(t *testing.T, fd, n int) []byte {
	t.Helper()
	out := make([]byte, 0, n)
	buf := make([]byte, 64<<10)
	tv := unix.Timeval{Sec: 5}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	for len(out) < n {
		m, err := unix.Read(fd, buf[:min(len(buf), n-len(out))])
		if err != nil || m == 0 {
			t.Fatalf("read after %d of %d bytes: %d, %v", len(out), n, m, err)
		}
		out = append(out, buf[:m]...)
	}
	return out
}

// zcSend submits a SEND_ZC of buf (inside fixed buffer idx) on fd with user
// data ud, after retain took the kernel's reference and before release drops
// the caller's. It then reaps until SendDone, checking inUse() stays held until
// the notification, and releases the kernel's reference there.
func zcSend(t *testing.T, r *ring.Ring, fd int, buf []byte, idx uint16, retain, release func(), inUse func() int) {
	t.Helper()
	sqe := r.GetSQE()
	sqe.PrepSendZCFixed(fd, buf, 0, ring.SendZCReportUsage, idx)
	sqe.UserData = 42
	retain() // the kernel's reference, until the notification
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	release() // the caller is done; the kernel's reference keeps the buffer
	if inUse() != 1 {
		t.Fatalf("in use %d while the send is in flight, want 1", inUse())
	}
	cqes := make([]ring.CQE, 8)
	sawResult := false
	for deadline := time.Now().Add(5 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatal("no notification CQE")
		}
		for _, c := range reap(t, r, cqes, 100*time.Millisecond) {
			if c.UserData != 42 {
				t.Fatalf("unexpected CQE %+v", c)
			}
			if !c.Notif() {
				if err := c.Err(); err != nil {
					t.Fatalf("SEND_ZC: %v", err)
				}
				if int(c.Res) != len(buf) || !c.More() {
					t.Fatalf("SEND_ZC result %d (more %v), want %d with F_MORE", c.Res, c.More(), len(buf))
				}
				sawResult = true
			}
			if !SendDone(&c) {
				if inUse() != 1 {
					t.Fatalf("in use %d before the notification, want 1", inUse())
				}
				continue
			}
			if !sawResult || !c.Notif() {
				t.Fatalf("send done before result+notification: %+v", c)
			}
			t.Logf("notification: zero-copy fell back to copying: %v", c.ZCCopied())
			release()
			if inUse() != 0 {
				t.Fatalf("in use %d after the notification, want 0", inUse())
			}
			return
		}
	}
}

func TestSendZCFromFixedLease(t *testing.T) {
	r := newRing(t)
	a := newArena(t, &ArenaConfig{Classes: []Class{{4096, 4}, {64 << 10, 2}}})
	g := newGroup(t, r, &Config{GroupID: 5, Count: 8, Size: 4096})
	if err := RegisterFixed(r, a, g); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.UnregisterBuffers() })
	if i, ok := a.FixedIndex(); !ok || i != 0 {
		t.Fatalf("arena index %d %v", i, ok)
	}
	if i, ok := g.FixedIndex(); !ok || i != 1 {
		t.Fatalf("group index %d %v", i, ok)
	}
	tx, rx := tcpPair(t)
	l, err := a.Alloc(50000)
	if err != nil {
		t.Fatal(err)
	}
	if l.Cap() != 64<<10 || len(l.Bytes()) != 50000 {
		t.Fatalf("lease len %d cap %d", len(l.Bytes()), l.Cap())
	}
	for i := range l.Bytes() {
		l.Bytes()[i] = pattern(i)
	}
	want := append([]byte(nil), l.Bytes()...)
	idx, ok := l.FixedIndex()
	if !ok {
		t.Fatal("arena lease has no fixed index")
	}
	zcSend(t, r, tx, l.Bytes(), idx, l.Retain, l.Release, a.InUse)
	if got := readFull(t, rx, len(want)); !bytes.Equal(got, want) {
		t.Fatal("peer received different bytes")
	}
}

func TestSendZCForwardsReceivedBuffer(t *testing.T) {
	r := newRing(t)
	g := newGroup(t, r, &Config{GroupID: 6, Count: 8, Size: 4096})
	if err := RegisterFixed(r, g); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.UnregisterBuffers() })
	inRx, inTx := tcpPair(t)
	outTx, outRx := tcpPair(t)
	msg := []byte(strings.Repeat("forward me without a copy ", 100))
	if _, err := unix.Write(inTx, msg); err != nil {
		t.Fatal(err)
	}
	sqe := r.GetSQE()
	sqe.PrepRecvBufSelect(inRx, g.ID(), 0, 0)
	sqe.UserData = 1
	cqes := make([]ring.CQE, 4)
	var l Lease
	for deadline := time.Now().Add(5 * time.Second); l.IsZero(); {
		if time.Now().After(deadline) {
			t.Fatal("no receive")
		}
		for _, c := range reap(t, r, cqes, 100*time.Millisecond) {
			var err error
			if l, err = g.Lease(&c); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !bytes.Equal(l.Bytes(), msg) {
		t.Fatalf("received %d bytes, want %d", l.Len(), len(msg))
	}
	idx, ok := l.FixedIndex()
	if !ok {
		t.Fatal("registered group lease has no fixed index")
	}
	if g.InUse() != 1 {
		t.Fatalf("in use %d, want 1", g.InUse())
	}
	zcSend(t, r, outTx, l.Bytes(), idx, l.Retain, l.Release, g.InUse)
	g.Flush()
	if g.Available() != 8 {
		t.Fatalf("buffer not back with the kernel: available %d", g.Available())
	}
	if got := readFull(t, outRx, len(msg)); !bytes.Equal(got, msg) {
		t.Fatal("peer received different bytes")
	}
}

// TestArenaRandom drives random Alloc/Retain/Release sequences and checks that
// live leases never overlap, that each block keeps what its owner wrote, and
// that every block comes back.
func TestArenaRandom(t *testing.T) {
	classes := []Class{{64, 16}, {256, 8}, {1024, 4}, {4096, 2}}
	a := newArena(t, &ArenaConfig{Classes: classes})
	total := a.Available()
	rng := rand.New(rand.NewPCG(3, 4))
	type live struct {
		l    FixedLease
		refs int
		fill byte
	}
	var held []live
	var fill byte
	overlap := func() {
		type span struct{ lo, hi uintptr }
		sp := make([]span, len(held))
		for i, h := range held {
			p := uintptrOf(h.l.Bytes()[:1])
			sp[i] = span{p, p + uintptr(h.l.Cap())}
		}
		sort.Slice(sp, func(i, j int) bool { return sp[i].lo < sp[j].lo })
		for i := 1; i < len(sp); i++ {
			if sp[i].lo < sp[i-1].hi {
				t.Fatalf("leases overlap: [%#x,%#x) and [%#x,%#x)", sp[i-1].lo, sp[i-1].hi, sp[i].lo, sp[i].hi)
			}
		}
	}
	for i := 0; i < 20000; i++ {
		switch op := rng.IntN(10); {
		case op < 5:
			n := 1 + rng.IntN(5000)
			l, err := a.Alloc(n)
			if errors.Is(err, ErrTooLarge) {
				if n <= 4096 {
					t.Fatalf("Alloc(%d): %v", n, err)
				}
				continue
			}
			if errors.Is(err, ErrArenaExhausted) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Bytes()) != n || l.Cap() < n {
				t.Fatalf("Alloc(%d): len %d cap %d", n, len(l.Bytes()), l.Cap())
			}
			fill++
			b := l.Bytes()[:l.Cap()]
			for j := range b {
				b[j] = fill
			}
			held = append(held, live{l, 1, fill})
			overlap()
		case op < 6 && len(held) > 0:
			j := rng.IntN(len(held))
			held[j].l.Retain()
			held[j].refs++
		case len(held) > 0:
			j := rng.IntN(len(held))
			h := &held[j]
			for k, v := range h.l.Bytes()[:h.l.Cap()] {
				if v != h.fill {
					t.Fatalf("block %d byte %d = %d, want %d: another lease wrote it", h.l.Block(), k, v, h.fill)
				}
			}
			h.l.Release()
			h.refs--
			if h.refs == 0 {
				held[j] = held[len(held)-1]
				held = held[:len(held)-1]
			}
		}
		if a.InUse()+a.Available() != total || a.InUse() > len(held) {
			t.Fatalf("step %d: in use %d available %d total %d live %d", i, a.InUse(), a.Available(), total, len(held))
		}
	}
	for _, h := range held {
		for ; h.refs > 0; h.refs-- {
			h.l.Release()
		}
	}
	if a.InUse() != 0 || a.Available() != total {
		t.Fatalf("end: in use %d available %d, want 0 and %d", a.InUse(), a.Available(), total)
	}
	st := a.Stats()
	if st.Exhausted == 0 {
		t.Fatal("the random sequence never exhausted the arena")
	}
}

func TestArenaDoubleReleasePanics(t *testing.T) {
	a := newArena(t, &ArenaConfig{Classes: []Class{{64, 2}}})
	l, err := a.Alloc(10)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	l2, _ := a.Alloc(10) // reuses the block: the stale lease must still be caught
	defer l2.Release()
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, "arena block 0 released twice") {
			t.Fatalf("panic %q, want one naming block 0", msg)
		}
	}()
	l.Release()
}

func TestAllocsZero(t *testing.T) {
	g, k := newSimGroup(t, &Config{Count: 64, Size: 256}, false)
	if n := testing.AllocsPerRun(1000, func() {
		c := k.recv(100, false)
		l, err := g.Lease(&c)
		if err != nil {
			panic(err)
		}
		l.Retain()
		l.Release()
		l.Release()
	}); n != 0 {
		t.Errorf("lease/release: %v allocs, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		c := k.recv(1000, true) // a bundle of 4
		l, _ := g.Lease(&c)
		l.Release()
	}); n != 0 {
		t.Errorf("bundle lease/release: %v allocs, want 0", n)
	}
	gi, ki := newSimGroup(t, &Config{Count: 8, Size: 256}, true)
	if n := testing.AllocsPerRun(1000, func() {
		c := ki.recv(100, false)
		l, _ := gi.Lease(&c)
		l.Release()
	}); n != 0 {
		t.Errorf("incremental lease/release: %v allocs, want 0", n)
	}
	var sink int
	if n := testing.AllocsPerRun(1000, func() {
		c := k.recv(1000, true)
		l, _ := g.Lease(&c)
		sink += len(l.Bytes())
		for s := range l.Segments() {
			sink += len(s)
		}
		l.Release()
	}); n != 0 {
		t.Errorf("bundle lease, Bytes, Segments, release: %v allocs, want 0", n)
	}
	nobufs := ring.CQE{Res: -int32(unix.ENOBUFS)}
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := g.Lease(&nobufs); err != ErrNoBuffers {
			panic(err)
		}
	}); n != 0 {
		t.Errorf("ENOBUFS decode: %v allocs, want 0", n)
	}
	a := newArena(t, nil)
	if n := testing.AllocsPerRun(1000, func() {
		l, err := a.Alloc(5000)
		if err != nil {
			panic(err)
		}
		l.Retain()
		l.Release()
		l.Release()
	}); n != 0 {
		t.Errorf("arena alloc/release: %v allocs, want 0", n)
	}
}

// BenchmarkLeaseRelease leases one receive's CQE and releases it:
// single, a 1500-byte receive into one 4 KiB buffer; bundle, a 16 KiB
// bundle CQE over four 4 KiB buffers (the walk of the bundle's buffers);
// incremental, 1500-byte receives into an incremental (IOU_PBUF_RING_INC)
// group of 64 KiB buffers, each buffer carrying many leases before it goes
// back.
//
// Only Lease and Release are timed. With the timer stopped, the group
// publishes what was released (Flush) and the simulated kernel posts a batch
// of up to leaseBatch CQEs, as many as the published buffers allow; the
// timed iterations then lease and release them in the order they were posted.
func BenchmarkLeaseRelease(b *testing.B) {
	const leaseBatch = 256
	cases := []struct {
		name        string
		cfg         Config
		inc, bundle bool
		n           uint32
	}{
		{name: "single", cfg: Config{Count: 256, Size: 4096}, n: 1500},
		{name: "bundle", cfg: Config{Count: 256, Size: 4096}, bundle: true, n: 16 << 10},
		{name: "incremental", cfg: Config{Count: 64, Size: 64 << 10}, inc: true, n: 1500},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			g, k := newSimGroup(b, &tc.cfg, tc.inc)
			k.noFill = true
			cqes := make([]ring.CQE, 0, leaseBatch)
			next := 0
			b.ReportAllocs()
			for b.Loop() {
				if next == len(cqes) {
					b.StopTimer()
					g.Flush()
					cqes = cqes[:0]
					for len(cqes) < leaseBatch && k.avail() > 0 {
						cqes = append(cqes, k.recv(tc.n, tc.bundle))
					}
					if len(cqes) == 0 {
						b.Fatal("the simulated kernel has no buffer after Flush")
					}
					next = 0
					b.StartTimer()
				}
				l, err := g.Lease(&cqes[next])
				if err != nil {
					b.Fatal(err)
				}
				l.Release()
				next++
			}
		})
	}
}

func BenchmarkFixedAlloc(b *testing.B) {
	a := newArena(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		l, err := a.Alloc(9000)
		if err != nil {
			b.Fatal(err)
		}
		l.Release()
	}
}

// resident counts the pages of b that are in memory (mincore).
func resident(t *testing.T, b []byte) (in, total int) {
	t.Helper()
	ps := unix.Getpagesize()
	vec := make([]byte, (len(b)+ps-1)/ps)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		t.Fatal(os.NewSyscallError("mincore", errno))
	}
	for _, v := range vec {
		if v&1 != 0 {
			in++
		}
	}
	return in, len(vec)
}

// RegisterFixedOnDemand leaves slabs unpinned, and so not resident, until
// their FixedIndex is asked for; then SEND_ZC from them works as after
// RegisterFixed.
func TestSendZCOnDemandRegistration(t *testing.T) {
	r := newRing(t)
	a := newArena(t, &ArenaConfig{Classes: []Class{{4096, 4}, {64 << 10, 2}}})
	g := newGroup(t, r, &Config{GroupID: 6, Count: 8, Size: 4096})
	if err := RegisterFixedOnDemand(r, a, g); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.UnregisterBuffers() })
	am, _ := a.slab()
	gm, _ := g.slab()
	if in, n := resident(t, am); in != 0 {
		t.Fatalf("%d of the arena's %d pages resident before anything used it", in, n)
	}
	if in, n := resident(t, gm); in != 0 {
		t.Fatalf("%d of the group's %d pages resident before anything used it", in, n)
	}
	if i, ok := a.FixedIndex(); !ok || i != 0 {
		t.Fatalf("arena index %d %v after on-demand registration", i, ok)
	}
	if in, n := resident(t, am); in != n {
		t.Fatalf("registered arena: %d of %d pages resident, want all (pinned)", in, n)
	}
	if in, n := resident(t, gm); in != 0 {
		t.Fatalf("registering the arena made %d of the group's %d pages resident", in, n)
	}
	if i, ok := g.FixedIndex(); !ok || i != 1 {
		t.Fatalf("group index %d %v after on-demand registration", i, ok)
	}
	tx, rx := tcpPair(t)
	l, err := a.Alloc(50000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range l.Bytes() {
		l.Bytes()[i] = pattern(i)
	}
	want := append([]byte(nil), l.Bytes()...)
	idx, ok := l.FixedIndex()
	if !ok || idx != 0 {
		t.Fatalf("lease fixed index %d %v", idx, ok)
	}
	zcSend(t, r, tx, l.Bytes(), idx, l.Retain, l.Release, a.InUse)
	if got := readFull(t, rx, len(want)); !bytes.Equal(got, want) {
		t.Fatal("peer received different bytes")
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = g.FixedIndex() }); a != 0 {
		t.Fatalf("FixedIndex allocates %v once registered", a)
	}
}

// TestWriteFixedFromArenaLease writes a FixedLease to a file with WRITE_FIXED
// and checks the block stays leased until the write's one CQE (SendDone) and
// the file holds the lease's bytes.
func TestWriteFixedFromArenaLease(t *testing.T) {
	r := newRing(t)
	a := newArena(t, &ArenaConfig{Classes: []Class{{4096, 2}, {16 << 10, 2}}})
	if err := RegisterFixed(r, a); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.UnregisterBuffers() })
	f, err := unix.Open(t.TempDir()+"/wf", unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(f) })
	l, err := a.Alloc(10000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range l.Bytes() {
		l.Bytes()[i] = pattern(i)
	}
	want := append([]byte(nil), l.Bytes()...)
	idx, ok := l.FixedIndex()
	if !ok {
		t.Fatal("arena lease has no fixed index")
	}
	sqe := r.GetSQE()
	sqe.PrepWriteFixed(f, l.Bytes(), 0, idx)
	sqe.UserData = 9
	l.Retain() // the kernel's reference, until the write's CQE
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	l.Release() // the caller's
	if a.InUse() != 1 {
		t.Fatalf("in use %d while the write is in flight, want 1", a.InUse())
	}
	cqes := make([]ring.CQE, 4)
	for deadline := time.Now().Add(5 * time.Second); a.InUse() != 0; {
		if time.Now().After(deadline) {
			t.Fatal("no WRITE_FIXED CQE")
		}
		for _, c := range reap(t, r, cqes, 100*time.Millisecond) {
			if c.UserData != 9 || !SendDone(&c) {
				t.Fatalf("unexpected CQE %+v", c)
			}
			if err := c.Err(); err != nil || int(c.Res) != len(want) {
				t.Fatalf("WRITE_FIXED: res %d, %v; want %d", c.Res, err, len(want))
			}
			l.Release()
		}
	}
	got := make([]byte, len(want))
	if n, err := unix.Pread(f, got, 0); err != nil || n != len(want) || !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes (%v), different from the lease's", n, err)
	}
}
