//go:build linux

package bufring

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
	"golang.org/x/sys/unix"
)

func TestMultishotRecvIntoLeases(t *testing.T) {
	for _, huge := range []bool{false, true} {
		t.Run(map[bool]string{false: "pages", true: "hugepages"}[huge], func(t *testing.T) {
			testMultishotRecvIntoLeases(t, huge)
		})
	}
}

func testMultishotRecvIntoLeases(t *testing.T, huge bool) {
	r := newRing(t)
	g := newGroup(t, r, &Config{GroupID: 3, Count: 16, Size: 4096, HugePages: huge})
	t.Logf("slab backing: %q", g.HugePages())
	tx := armedPair(t, r, g)
	cqes := make([]ring.CQE, 32)
	msgs := []string{"hello", "provided", "buffer ring"}
	for _, m := range msgs {
		if _, err := unix.Write(tx, []byte(m)); err != nil {
			t.Fatal(err)
		}
		var got []ring.CQE
		for deadline := time.Now().Add(5 * time.Second); len(got) == 0; {
			if time.Now().After(deadline) {
				t.Fatalf("no CQE for %q", m)
			}
			got = reap(t, r, cqes, 100*time.Millisecond)
		}
		if len(got) != 1 || !got[0].More() || !got[0].HasBuffer() {
			t.Fatalf("%q: CQEs %+v", m, got)
		}
		l, err := g.Lease(&got[0])
		if err != nil {
			t.Fatal(err)
		}
		if string(l.Bytes()) != m || l.Buffers() != 1 {
			t.Fatalf("lease holds %q (%d buffers), want %q", l.Bytes(), l.Buffers(), m)
		}
		base := uintptrOf(g.mem)
		if p := uintptrOf(l.Bytes()); p < base || p >= base+uintptr(len(g.mem)) || (p-base)%4096 != 0 {
			t.Fatalf("view at %#x not at a buffer start of the slab [%#x, +%d)", p, base, len(g.mem))
		}
		if g.InUse() != 1 || g.Available() != 15 {
			t.Fatalf("leased: in use %d available %d", g.InUse(), g.Available())
		}
		l.Release()
		g.Flush()
		if g.InUse() != 0 || g.Available() != 16 {
			t.Fatalf("released: in use %d available %d", g.InUse(), g.Available())
		}
	}
	expectEOF(t, r, g, tx)
}

// expectEOF shuts down tx for writing and checks the armed receive ends with
// a zero-byte CQE that leaves no buffer leased or lost.
func expectEOF(t *testing.T, r *ring.Ring, g *Group, tx int) {
	t.Helper()
	if err := unix.Shutdown(tx, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	cqes := make([]ring.CQE, 8)
	for deadline := time.Now().Add(5 * time.Second); ; {
		if time.Now().After(deadline) {
			t.Fatal("no EOF CQE")
		}
		for _, c := range reap(t, r, cqes, 100*time.Millisecond) {
			l, err := g.Lease(&c)
			if err != nil || !l.IsZero() || c.Res != 0 || c.More() {
				t.Fatalf("EOF CQE %+v: lease %+v, %v", c, l, err)
			}
			g.Flush()
			if g.InUse() != 0 || g.Available() != g.Count() {
				t.Fatalf("after EOF (buffer flag %v): in use %d available %d", c.HasBuffer(), g.InUse(), g.Available())
			}
			return
		}
	}
}

type streamResult struct {
	rearms, bufMore, maxBuffers int
	// starvedEnds counts re-arms after which Group.Starved had reported the
	// end.
	starvedEnds int
}

// receiveStream receives total bytes of pattern on fd through g with a
// multishot receive (a bundle with bundle set), holding every lease until the
// batch of CQEs is handled so the ring runs dry, and re-arming the receive
// whenever it ends for lack of buffers.
func receiveStream(t *testing.T, r *ring.Ring, g *Group, fd, total int, bundle bool) streamResult {
	t.Helper()
	var res streamResult
	arm := func() {
		sqe := r.GetSQE()
		if bundle {
			sqe.PrepRecvBundle(fd, g.ID(), 0)
		} else {
			sqe.PrepRecvMultishot(fd, g.ID(), 0)
		}
		sqe.UserData = 7
	}
	arm()
	cqes := make([]ring.CQE, 64)
	held := make([]Lease, 0, 64)
	got := 0
	deadline := time.Now().Add(30 * time.Second)
	for got < total {
		if time.Now().After(deadline) {
			t.Fatalf("timed out with %d of %d bytes (stats %+v)", got, total, g.Stats())
		}
		ended := false
		for _, c := range reap(t, r, cqes, 200*time.Millisecond) {
			if c.UserData != 7 {
				t.Fatalf("unexpected CQE %+v", c)
			}
			l, err := g.Lease(&c)
			switch {
			case errors.Is(err, ErrNoBuffers):
			case err != nil:
				t.Fatalf("after %d bytes: %v", got, err)
			case c.Res == 0:
				t.Fatalf("EOF after %d of %d bytes", got, total)
			default:
				if c.BufMore() {
					res.bufMore++
				}
				res.maxBuffers = max(res.maxBuffers, l.Buffers())
				n := 0
				for s := range l.Segments() {
					for i, b := range s {
						if b != pattern(got+n+i) {
							t.Fatalf("byte %d = %d, want %d", got+n+i, b, pattern(got+n+i))
						}
					}
					n += len(s)
				}
				if n != l.Len() {
					t.Fatalf("segments %d bytes, lease %d", n, l.Len())
				}
				got += n
				held = append(held, l)
			}
			if !c.More() {
				ended = true
			}
		}
		for _, l := range held {
			l.Release()
		}
		held = held[:0]
		g.Flush()
		if ended {
			if g.Available() == 0 {
				t.Fatal("multishot ended but no buffers came back")
			}
			if g.Starved() {
				res.starvedEnds++
			}
			arm()
			g.Rearmed()
			res.rearms++
		}
	}
	if g.InUse() != 0 {
		t.Fatalf("in use %d after releasing everything", g.InUse())
	}
	return res
}

// sendPattern writes total bytes of pattern to fd through a plain Go net.Conn
// in a goroutine; the returned function waits for it and reports its error.
func sendPattern(t *testing.T, fd, total, chunk int, pause time.Duration) func() error {
	t.Helper()
	dup, err := unix.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(dup), "tx")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		defer c.Close()
		buf := make([]byte, chunk)
		for off := 0; off < total; {
			n := min(chunk, total-off)
			for i := range buf[:n] {
				buf[i] = pattern(off + i)
			}
			if _, err := c.Write(buf[:n]); err != nil {
				done <- err
				return
			}
			off += n
			if pause > 0 {
				time.Sleep(pause)
			}
		}
		done <- nil
	}()
	var waited bool
	var werr error
	wait := func() error {
		if !waited {
			waited = true
			select {
			case werr = <-done:
			case <-time.After(30 * time.Second):
				werr = io.ErrNoProgress
			}
		}
		return werr
	}
	t.Cleanup(func() { _ = wait() })
	return wait
}

func TestRecv10MiBThroughEightBuffers(t *testing.T) {
	r := newRing(t)
	g := newGroup(t, r, &Config{GroupID: 1, Count: 8, Size: 4096})
	rx, tx := tcpPair(t)
	const total = 10 << 20
	wait := sendPattern(t, tx, total, 256<<10, 0)
	res := receiveStream(t, r, g, rx, total, false)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	st := g.Stats()
	t.Logf("10 MiB through 8x4 KiB: %d ENOBUFS, %d dry ends, %d re-arms, %d leases, %d flushes", st.NoBuffers, st.DryEnds, res.rearms, st.Leases, st.Flushes)
	if st.NoBuffers < 2 || res.rearms < 2 {
		t.Fatalf("expected the ring to run dry repeatedly: %d ENOBUFS, %d re-arms", st.NoBuffers, res.rearms)
	}
	// Every end of the receive was reported as starvation and counted.
	if res.starvedEnds != res.rearms || st.NoBuffers+st.DryEnds != uint64(res.rearms) {
		t.Fatalf("%d re-arms, %d reported by Starved, %d ENOBUFS + %d dry ends counted", res.rearms, res.starvedEnds, st.NoBuffers, st.DryEnds)
	}
	if g.Starved() {
		t.Fatal("Starved still set after Rearmed")
	}
	if g.Available() != 8 {
		t.Fatalf("available %d at the end, want 8", g.Available())
	}
}

func TestRecvBundle(t *testing.T) {
	r := newRing(t)
	p, _ := probe()
	testenv.NeedFeature(t, "IORING_RECVSEND_BUNDLE (IORING_FEAT_RECVSEND_BUNDLE, Linux 6.10)", p.Bundles())
	g := newGroup(t, r, &Config{GroupID: 2, Count: 32, Size: 1024})
	rx, tx := tcpPair(t)
	const total = 4 << 20
	wait := sendPattern(t, tx, total, 64<<10, 0)
	res := receiveStream(t, r, g, rx, total, true)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	st := g.Stats()
	t.Logf("bundles: %d of %d leases, up to %d buffers, %d ENOBUFS, %d dry ends, %d re-arms", st.Bundles, st.Leases, res.maxBuffers, st.NoBuffers, st.DryEnds, res.rearms)
	if st.NoBuffers+st.DryEnds < uint64(res.rearms) {
		t.Fatalf("%d re-arms but only %d starvations counted", res.rearms, st.NoBuffers+st.DryEnds)
	}
	if st.Bundles == 0 || res.maxBuffers < 2 {
		t.Fatalf("no completion spanned several buffers (%d bundles)", st.Bundles)
	}
}

func TestRecvIncremental(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bundle bool
		count  uint32
		size   uint32
		chunk  int
		pause  time.Duration
		dry    bool // the ring must run dry
	}{
		{name: "multishot", count: 4, size: 64 << 10, chunk: 3000, pause: 20 * time.Microsecond},
		{name: "bundle", bundle: true, count: 4, size: 64 << 10, chunk: 3000, pause: 20 * time.Microsecond},
		{name: "dry", count: 2, size: 4096, chunk: 64 << 10, dry: true},
		{name: "dry-bundle", bundle: true, count: 2, size: 4096, chunk: 64 << 10, dry: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRing(t)
			p, _ := probe()
			testenv.NeedFeature(t, "IOU_PBUF_RING_INC (Linux 6.12)", p.BufRingInc)
			if tc.bundle {
				testenv.NeedFeature(t, "IORING_RECVSEND_BUNDLE (Linux 6.10)", p.Bundles())
			}
			g := newGroup(t, r, &Config{GroupID: 4, Count: tc.count, Size: tc.size, Incremental: true})
			if !g.Incremental() {
				t.Fatal("probe reports IOU_PBUF_RING_INC but the group is not incremental")
			}
			rx, tx := tcpPair(t)
			const total = 2 << 20
			// Small writes with pauses: many receives share one buffer.
			wait := sendPattern(t, tx, total, tc.chunk, tc.pause)
			res := receiveStream(t, r, g, rx, total, tc.bundle)
			if err := wait(); err != nil {
				t.Fatal(err)
			}
			st := g.Stats()
			t.Logf("incremental: %d leases, %d with F_BUF_MORE, %d published, %d ENOBUFS, %d dry ends, %d re-arms, up to %d buffers",
				st.Leases, res.bufMore, st.Published, st.NoBuffers, st.DryEnds, res.rearms, res.maxBuffers)
			if tc.dry {
				if st.NoBuffers+st.DryEnds == 0 || res.rearms == 0 {
					t.Fatalf("expected the ring to run dry: %d ENOBUFS, %d dry ends, %d re-arms", st.NoBuffers, st.DryEnds, res.rearms)
				}
			} else {
				if res.bufMore == 0 {
					t.Fatal("no CQE carried F_BUF_MORE")
				}
				if st.Published >= st.Leases+uint64(tc.count) {
					t.Fatalf("buffers went back once per lease (%d published, %d leases)", st.Published, st.Leases)
				}
			}
			expectEOF(t, r, g, tx)
		})
	}
}
