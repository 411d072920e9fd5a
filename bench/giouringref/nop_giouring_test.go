//go:build linux && giouring

package giouringref

import (
	"runtime"
	"testing"

	"github.com/pawelgaczynski/giouring"
)

func init() { nopImpls = append(nopImpls, nopImpl{"giouring", benchNopGiouring}) }

func benchNopGiouring(b *testing.B, batch int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r := giouring.NewRing()
	if err := r.QueueInit(128, uint32(benchFlags)); err != nil {
		b.Skip(err)
	}
	defer r.QueueExit()
	cqes := make([]*giouring.CompletionQueueEvent, 128)
	var sum uint64
	b.ReportAllocs()
	cpu0 := threadCPU()
	for b.Loop() {
		for i := 0; i < batch; i++ {
			s := r.GetSQE()
			s.PrepareNop()
			s.UserData = uint64(i)
		}
		if _, err := r.SubmitAndWait(uint32(batch)); err != nil {
			b.Fatal(err)
		}
		n := r.PeekBatchCQE(cqes)
		if int(n) != batch {
			b.Fatalf("reaped %d of %d", n, batch)
		}
		for _, c := range cqes[:n] {
			sum += c.UserData + uint64(c.Res)
		}
		r.CQAdvance(n)
	}
	reportNop(b, batch, cpu0)
	_ = sum
}
