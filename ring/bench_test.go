//go:build linux

package ring

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// benchFlags are ringwire's event-loop setup flags.
const benchFlags = SetupSingleIssuer | SetupDeferTaskrun

// BenchmarkNop measures a submit+complete round trip of batch NOPs: GetSQE and
// prep per NOP, one io_uring_enter that submits and waits for the batch, then
// reaping every CQE. bench/giouringref runs the same benchmark beside
// giouring's (make bench-giouring); the names match.
func BenchmarkNop(b *testing.B) {
	for _, batch := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("impl=ringwire/batch=%d", batch), func(b *testing.B) { benchNopRingwire(b, batch) })
	}
}

func benchNopRingwire(b *testing.B, batch int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r, err := New(&Config{Entries: 128, Flags: benchFlags})
	if err != nil {
		b.Skip(err)
	}
	defer r.Close()
	var cqes [128]CQE
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
