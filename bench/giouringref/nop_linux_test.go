//go:build linux

package giouringref

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/ring"
)

// nopImpl is one binding under BenchmarkNop; nop_giouring_test.go adds
// giouring's under the giouring build tag.
type nopImpl struct {
	name string
	run  func(b *testing.B, batch int)
}

var nopImpls = []nopImpl{{"ringwire", benchNopRingwire}}

// benchFlags are ringwire's event-loop setup flags, used by every binding
// under comparison.
const benchFlags = ring.SetupSingleIssuer | ring.SetupDeferTaskrun

// BenchmarkNop measures a submit+complete round trip of batch NOPs in each
// binding: GetSQE and prep per NOP, one io_uring_enter that submits and waits
// for the batch, then reaping every CQE. Compare with
// `benchstat -col /impl` (make bench-giouring).
func BenchmarkNop(b *testing.B) {
	for _, batch := range []int{1, 16, 128} {
		for _, impl := range nopImpls {
			b.Run(fmt.Sprintf("impl=%s/batch=%d", impl.name, batch), func(b *testing.B) { impl.run(b, batch) })
		}
	}
}

func benchNopRingwire(b *testing.B, batch int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r, err := ring.New(&ring.Config{Entries: 128, Flags: benchFlags})
	if err != nil {
		b.Skip(err)
	}
	defer r.Close()
	var cqes [128]ring.CQE
	var sum uint64
	b.ReportAllocs()
	cpu0 := threadCPU()
	for b.Loop() {
		for i := 0; i < batch; i++ {
			s := r.GetSQE()
			s.PrepNop()
			s.UserData = uint64(i)
		}
		if _, err := r.SubmitAndWait(uint32(batch)); err != nil {
			b.Fatal(err)
		}
		n := r.Reap(cqes[:])
		if n != batch {
			b.Fatalf("reaped %d of %d", n, batch)
		}
		for i := range cqes[:n] {
			sum += cqes[i].UserData + uint64(cqes[i].Res)
		}
	}
	reportNop(b, batch, cpu0)
	_ = sum
}

// threadCPU is the user+system CPU time of the calling thread, which the
// benchmark goroutine is locked to: unlike wall time it does not count the
// time this shared machine's other work holds the CPU.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportNop adds per-NOP wall and CPU time to the benchmark's results.
func reportNop(b *testing.B, batch int, cpu0 time.Duration) {
	nops := float64(b.N * batch)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/nops, "ns/nop")
	b.ReportMetric(float64((threadCPU()-cpu0).Nanoseconds())/nops, "cpu-ns/nop")
}
