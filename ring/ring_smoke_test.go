//go:build linux

package ring

import (
	"runtime"
	"testing"

	"github.com/ringwire/ringwire/internal/testenv"
)

func TestNopRoundTrip(t *testing.T) {
	// SINGLE_ISSUER: every enter must come from the thread that created the
	// ring, or the kernel answers EEXIST. Without the lock the goroutine
	// could move between threads (seen once under -shuffle and -race).
	p := kernelProbe(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	// The loops' flags: NO_SQARRAY where the kernel has it (6.6).
	r, err := New(&Config{Entries: 8, Flags: SetupSingleIssuer | SetupDeferTaskrun | p.Setup&SetupNoSQArray})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var cqes [16]CQE
	for round := 0; round < 10; round++ { // wraps the 8-entry SQ several times
		for i := 0; i < 8; i++ {
			s := r.GetSQE()
			if s == nil {
				t.Fatalf("round %d: SQ full at %d", round, i)
			}
			s.PrepNop()
			s.UserData = uint64(round*100 + i)
		}
		if r.GetSQE() != nil {
			t.Fatal("GetSQE past capacity returned an SQE")
		}
		if _, err := r.SubmitAndWait(8); err != nil {
			t.Fatal(err)
		}
		n := r.Reap(cqes[:])
		if n != 8 {
			t.Fatalf("reaped %d, want 8", n)
		}
		for i := 0; i < n; i++ {
			if cqes[i].UserData != uint64(round*100+i) || cqes[i].Res != 0 {
				t.Fatalf("cqe %d = %+v", i, cqes[i])
			}
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

func TestProbeKernel(t *testing.T) {
	p, err := ProbeKernel()
	testenv.NeedIOUring(t, err)
	t.Logf("last op %v features %v setup %v", p.LastOp, p.Features, p.Setup)
	if !p.Supports(OpNop) || !p.Supports(OpSendZC) {
		t.Fatal("NOP/SEND_ZC not reported")
	}
}
