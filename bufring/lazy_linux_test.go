//go:build linux

package bufring

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringwire/ringwire/ring"
	"golang.org/x/sys/unix"
)

// residentPages counts the slab's pages that are in memory (mincore).
func residentPages(t *testing.T, g *Group) int {
	t.Helper()
	page := unix.Getpagesize()
	vec := make([]byte, (len(g.mem)+page-1)/page)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptrOf(g.mem), uintptr(len(g.mem)), uintptrOf(vec))
	if errno != 0 {
		t.Fatal("mincore:", errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// thpMode is the system's transparent huge page setting: "always",
// "madvise", "never", or "" where the kernel has none.
func thpMode() string {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		return ""
	}
	s := string(b)
	i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']')
	if i < 0 || j < i {
		return ""
	}
	return s[i+1 : j]
}

// noHugePage reports whether the mapping holding mem is advised
// MADV_NOHUGEPAGE ("nh" in its VmFlags in /proc/self/smaps).
func noHugePage(t *testing.T, mem []byte) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	addr := uint64(uintptrOf(mem))
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		if lo, rest, ok := strings.Cut(line, "-"); ok && !strings.Contains(lo, " ") {
			hi, _, _ := strings.Cut(rest, " ")
			l, err1 := strconv.ParseUint(lo, 16, 64)
			h, err2 := strconv.ParseUint(hi, 16, 64)
			in = err1 == nil && err2 == nil && l <= addr && addr < h
			continue
		}
		if flags, ok := strings.CutPrefix(line, "VmFlags:"); ok && in {
			return slices.Contains(strings.Fields(flags), "nh")
		}
	}
	t.Fatalf("no mapping holds the slab at %#x in /proc/self/smaps", addr)
	return false
}

// armedPair returns the sending end of a TCP pair whose receiving end has a
// multishot receive from g armed on r.
func armedPair(t *testing.T, r *ring.Ring, g *Group) (tx int) {
	t.Helper()
	rx, tx := tcpPair(t)
	sqe := r.GetSQE()
	sqe.PrepRecvMultishot(rx, g.ID(), 0)
	sqe.UserData = 1
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	return tx
}

// recvOne writes m to tx and leases the one CQE the armed multishot receive
// on the other end posts for it.
func recvOne(t *testing.T, r *ring.Ring, g *Group, tx int, m []byte, cqes []ring.CQE) Lease {
	t.Helper()
	if _, err := unix.Write(tx, m); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		got := reap(t, r, cqes, 100*time.Millisecond)
		if len(got) == 1 {
			if !got[0].More() {
				t.Fatalf("receive ended: %+v (stats %+v)", got[0], g.Stats())
			}
			l, err := g.Lease(&got[0])
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		if len(got) > 1 || time.Now().After(deadline) {
			t.Fatalf("want one CQE, got %+v", got)
		}
	}
}

// A lazy group publishes LowWater+Batch buffers; a load that releases each
// buffer at once keeps cycling through those, so the rest of the slab is
// never touched. An eager group of the same size touches a page of every
// buffer it cycles through.
func TestLazyGroupTouchesOnlyWhatItNeeds(t *testing.T) {
	const count, msgs = 256, 300
	for _, lazy := range []bool{true, false} {
		t.Run(map[bool]string{true: "lazy", false: "eager"}[lazy], func(t *testing.T) {
			r := newRing(t)
			g := newGroup(t, r, &Config{GroupID: 5, Count: count, Size: 16 << 10, Lazy: lazy})
			initial := count
			if lazy {
				initial = count/4 + count/16 // LowWater + Batch defaults
			}
			if g.Available() != initial || g.Stats().Unused != count-initial {
				t.Fatalf("after NewGroup: available %d unused %d, want %d and %d", g.Available(), g.Stats().Unused, initial, count-initial)
			}
			tx := armedPair(t, r, g)
			cqes := make([]ring.CQE, 8)
			m := make([]byte, 64)
			for i := range msgs {
				m[0] = byte(i)
				l := recvOne(t, r, g, tx, m, cqes)
				if l.Len() != len(m) || l.Bytes()[0] != byte(i) {
					t.Fatalf("message %d: got %d bytes starting %d", i, l.Len(), l.Bytes()[0])
				}
				l.Release()
			}
			pages := residentPages(t, g)
			t.Logf("%d messages: %d slab pages resident, %d buffers never published (transparent huge pages: %s)",
				msgs, pages, g.Stats().Unused, thpMode())
			if nh := noHugePage(t, g.mem); nh != lazy {
				t.Fatalf("slab advised MADV_NOHUGEPAGE: %v, want %v", nh, lazy)
			}
			if lazy && (g.Stats().Unused != count-initial || pages > initial) {
				t.Fatalf("lazy group grew or touched more than it published: unused %d, %d pages resident", g.Stats().Unused, pages)
			}
			if !lazy && pages < count {
				t.Fatalf("eager group: only %d pages resident after %d messages through %d buffers", pages, msgs, count)
			}
		})
	}
}

// Leases held past the low-water mark make a lazy group publish buffers it
// never used, before the kernel runs dry: every message arrives, no ENOBUFS.
func TestLazyGroupGrowsBeforeRunningDry(t *testing.T) {
	const count, held = 64, 40
	r := newRing(t)
	g := newGroup(t, r, &Config{GroupID: 6, Count: count, Size: 4096, Lazy: true})
	start := g.Available()
	tx := armedPair(t, r, g)
	cqes := make([]ring.CQE, 8)
	var leases []Lease
	for i := range held {
		leases = append(leases, recvOne(t, r, g, tx, []byte{byte(i)}, cqes))
	}
	st := g.Stats()
	t.Logf("started with %d published; holding %d leases: %d available, %d never published, %d ENOBUFS", start, held, st.Available, st.Unused, st.NoBuffers)
	if st.NoBuffers != 0 || st.DryEnds != 0 {
		t.Fatalf("ran dry: %+v", st)
	}
	if start >= held || st.Unused >= count-start || st.Available < g.lowWater {
		t.Fatalf("did not grow ahead of demand: started %d, now %+v", start, st)
	}
	for i, l := range leases {
		if l.Bytes()[0] != byte(i) {
			t.Fatalf("lease %d holds %d", i, l.Bytes()[0])
		}
		l.Release()
	}
	g.Flush()
	if st := g.Stats(); st.InUse != 0 || st.Available+st.Unused != count {
		t.Fatalf("after releasing: %+v", st)
	}
}
