//go:build linux

package ring

import (
	"errors"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/testenv"
)

// TestSQCQWrapAround drives a 4-entry SQ and 8-entry CQ through many laps, so
// every index wraps the ring masks many times, with batches that straddle the
// end of the arrays; completions must come back complete and in order.
func TestSQCQWrapAround(t *testing.T) {
	for _, flags := range []SetupFlags{0, prodFlags, prodFlags | SetupNoSQArray} {
		t.Run(flags.String(), func(t *testing.T) {
			if flags&SetupNoSQArray != 0 {
				testenv.NeedFeature(t, "IORING_SETUP_NO_SQARRAY (6.6)", kernelProbe(t).Setup&SetupNoSQArray != 0)
			}
			r := newRing(t, &Config{Entries: 4, CQEntries: 8, Flags: flags})
			if r.SQEntries() != 4 || r.CQEntries() != 8 {
				t.Fatalf("entries %d/%d", r.SQEntries(), r.CQEntries())
			}
			var next, seen uint64
			var cqes [3]CQE
			for lap := 0; lap < 200; lap++ {
				batch := 1 + lap%3 // 1..3: batches straddle the wrap point
				for i := 0; i < batch; i++ {
					s := getSQE(t, r)
					s.PrepNop()
					s.UserData = next
					next++
				}
				if got := r.SQReady(); got != uint32(batch) {
					t.Fatalf("SQReady %d, want %d", got, batch)
				}
				n, err := r.SubmitAndWait(uint32(batch))
				if err != nil || n != batch {
					t.Fatalf("SubmitAndWait: %d, %v", n, err)
				}
				if r.SQSpace() != 4 {
					t.Fatalf("SQSpace %d after submit", r.SQSpace())
				}
				got := r.Reap(cqes[:])
				if got != batch {
					t.Fatalf("lap %d: reaped %d, want %d", lap, got, batch)
				}
				for _, c := range cqes[:got] {
					if c.UserData != seen || c.Res != 0 {
						t.Fatalf("lap %d: cqe %+v, want user_data %d res 0", lap, c, seen)
					}
					seen++
				}
			}
			// Fill the SQ exactly: the fifth GetSQE must fail until a submit.
			for i := 0; i < 4; i++ {
				getSQE(t, r).PrepNop()
			}
			if r.GetSQE() != nil {
				t.Fatal("GetSQE on a full SQ returned an SQE")
			}
			submitWait(t, r, 4)
		})
	}
}

// TestCQOverflow posts twice as many completions as the CQ holds: the kernel
// keeps the excess (FeatNoDrop), flags IORING_SQ_CQ_OVERFLOW, and FlushOverflow
// brings the held completions in, in order, once the CQ has room.
func TestCQOverflow(t *testing.T) {
	r := newRing(t, &Config{Entries: 4, CQEntries: 8, Flags: prodFlags})
	testenv.NeedFeature(t, "IORING_FEAT_NODROP (5.5)", r.Features()&FeatNoDrop != 0)
	for round := 0; round < 4; round++ {
		for i := 0; i < 4; i++ {
			s := getSQE(t, r)
			s.PrepNop()
			s.UserData = uint64(round*4 + i)
		}
		if _, err := r.SubmitAndGetEvents(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	if got := r.CQReady(); got != 8 {
		t.Fatalf("CQReady %d, want 8 (a full CQ)", got)
	}
	if !r.CQOverflowed() {
		t.Fatal("CQOverflowed false with 8 completions held back")
	}
	if r.Overflow() != 0 {
		t.Fatalf("Overflow %d: with NODROP nothing may be dropped", r.Overflow())
	}
	var cqes [16]CQE
	n := r.Reap(cqes[:])
	if n != 8 {
		t.Fatalf("reaped %d", n)
	}
	if err := r.FlushOverflow(); err != nil {
		t.Fatal(err)
	}
	if r.CQOverflowed() {
		t.Fatal("still overflowed after FlushOverflow with an empty CQ")
	}
	n += r.Reap(cqes[n:])
	if n != 16 {
		t.Fatalf("have %d completions after the flush, want 16", n)
	}
	for i, c := range cqes[:n] {
		if c.UserData != uint64(i) {
			t.Fatalf("completion %d has user_data %d: order lost across the overflow", i, c.UserData)
		}
	}
}

func TestWaitCQEsTimeout(t *testing.T) {
	r := newRing(t, nil)
	start := time.Now()
	_, err := r.WaitCQEs(1, 30*time.Millisecond, 0)
	if !errors.Is(err, syscall.ETIME) {
		t.Fatalf("WaitCQEs on an idle ring: %v, want ETIME", err)
	}
	if el := time.Since(start); el < 25*time.Millisecond {
		t.Fatalf("returned after %v, before the 30ms timeout", el)
	}
	// With a completion already there, the wait returns at once.
	getSQE(t, r).PrepNop()
	start = time.Now()
	if _, err := r.WaitCQEs(1, 5*time.Second, 0); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("waited %v for a nop", el)
	}
	if r.CQReady() != 1 {
		t.Fatalf("CQReady %d", r.CQReady())
	}
}

// TestWaitCQEsMinWait: asked for 2 completions with 1 ready, a plain wait sits
// out its whole timeout, while a min-wait returns once minWait has passed.
func TestWaitCQEsMinWait(t *testing.T) {
	r := newRing(t, nil)
	testenv.NeedFeature(t, "IORING_FEAT_MIN_TIMEOUT (6.12)", r.Features()&FeatMinTimeout != 0)
	getSQE(t, r).PrepNop()
	start := time.Now()
	if _, err := r.WaitCQEs(2, 200*time.Millisecond, 0); err != nil {
		t.Fatalf("timeout with one completion ready: %v, want nil", err)
	}
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Fatalf("plain wait returned after %v, before its 200ms timeout", el)
	}
	start = time.Now()
	if _, err := r.WaitCQEs(2, 10*time.Second, 20*time.Millisecond); err != nil {
		t.Fatalf("min-wait: %v", err)
	}
	if el := time.Since(start); el > 3*time.Second || el < 10*time.Millisecond {
		t.Fatalf("min-wait returned after %v; want about 20ms", el)
	}
	if r.CQReady() != 1 {
		t.Fatalf("CQReady %d", r.CQReady())
	}
	// minWait alone bounds the wait: an empty CQ gives ETIME after it.
	var c [1]CQE
	r.Reap(c[:])
	start = time.Now()
	if _, err := r.WaitCQEs(1, 0, 20*time.Millisecond); !errors.Is(err, syscall.ETIME) {
		t.Fatalf("min-wait alone on an empty CQ: %v, want ETIME", err)
	}
	if el := time.Since(start); el < 15*time.Millisecond || el > 3*time.Second {
		t.Fatalf("min-wait alone returned after %v; want about 20ms", el)
	}
}

func TestSubmitAndGetEventsDeferTaskrun(t *testing.T) {
	r := newRing(t, nil)
	a, b := tcpPair(t)
	buf := pin(t, new([8]byte))
	s := getSQE(t, r)
	s.PrepRecv(b, buf[:], 0)
	s.UserData = 1
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	writeAll(t, a, []byte("deferred"))
	// DEFER_TASKRUN: the completion is task work that runs only when this
	// thread enters with GETEVENTS; poll for it without blocking.
	deadline := time.Now().Add(5 * time.Second)
	for r.CQReady() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no completion after 5s of SubmitAndGetEvents")
		}
		if _, err := r.SubmitAndGetEvents(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	var c [1]CQE
	r.Reap(c[:])
	wantRes(t, c[0], 8)
	if string(buf[:]) != "deferred" {
		t.Fatalf("got %q", buf[:])
	}
}

func TestSetupRejectsBigEntries(t *testing.T) {
	for _, f := range []SetupFlags{SetupSQE128, SetupCQE32} {
		_, err := New(&Config{Flags: f})
		if !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("New with %v: %v, want ErrUnsupported", f, err)
		}
	}
	if _, err := New(&Config{Entries: 8, CQEntries: 8}); err == nil {
		t.Error("New accepted CQEntries == Entries")
	}
}

// TestSingleIssuerOtherThread pins down why SINGLE_ISSUER rings need
// runtime.LockOSThread: a submission from another thread is refused.
func TestSingleIssuerOtherThread(t *testing.T) {
	for _, noReg := range []bool{true, false} {
		r := newRing(t, &Config{Entries: 4, Flags: prodFlags, NoRegisterRingFD: noReg}) // locks this thread
		getSQE(t, r).PrepNop()
		errc := make(chan error)
		go func() {
			runtime.LockOSThread() // a different thread from the test's
			defer runtime.UnlockOSThread()
			_, err := r.Submit()
			errc <- err
		}()
		err := <-errc
		switch {
		case noReg && !errors.Is(err, unix.EEXIST):
			t.Fatalf("submit from another thread: %v, want EEXIST from the submitter check", err)
		case !noReg && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EBADF):
			// The registered ring index lives in the registering thread's
			// io_uring context; elsewhere it is unknown.
			t.Fatalf("submit with the registered index from another thread: %v, want EINVAL or EBADF", err)
		}
		submitWait(t, r, 1) // the owning thread still can
	}
}

// TestRestrictions confines a ring to the networking opcodes this kernel
// has: a NOP passes, a forbidden opcode completes with EACCES.
func TestRestrictions(t *testing.T) {
	p := kernelProbe(t)
	testenv.NeedFeature(t, "IORING_REGISTER_RESTRICTIONS (5.10)", p.Restrictions)
	// An opcode the kernel does not know is refused as a whole: why
	// NetworkingOps is probed (6.1 has no FUTEX_WAIT, BIND or LISTEN).
	unknown := newRing(t, &Config{Entries: 8, Flags: SetupRDisabled})
	if err := unknown.RegisterRestrictions([]Restriction{AllowSQEOp(OpNop), AllowSQEOp(p.LastOp + 1)}); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("restriction to opcode %d, past the kernel's last: %v, want EINVAL", p.LastOp+1, err)
	}
	r := newRing(t, &Config{Entries: 8, Flags: prodFlags | SetupRDisabled})
	var res []Restriction
	for _, op := range p.NetworkingOps() {
		res = append(res, AllowSQEOp(op))
	}
	res = append(res, AllowSQEFlags(SQEIOLink|SQEFixedFile|SQEBufferSelect))
	if err := r.RegisterRestrictions(res); err != nil {
		t.Fatal(err)
	}
	if err := r.EnableRings(); err != nil {
		t.Fatal(err)
	}
	s := getSQE(t, r)
	s.PrepNop()
	s.UserData = 1
	s = getSQE(t, r)
	s.PrepRW(OpFsync, 0, 0, 0, 0) // not a networking op
	s.UserData = 2
	s = getSQE(t, r)
	s.PrepNop()
	s.Flags = SQEIODrain // flag not allowed
	s.UserData = 3
	c := submitWait(t, r, 3)
	wantRes(t, one(t, c, 1), 0)
	wantErrno(t, one(t, c, 2), unix.EACCES)
	wantErrno(t, one(t, c, 3), unix.EACCES)
	// A register opcode not allowed is refused too.
	if err := r.RegisterFilesSparse(4); !errors.Is(err, unix.EACCES) {
		t.Fatalf("RegisterFilesSparse on a restricted ring: %v, want EACCES", err)
	}
}

// TestHotPathAllocs guards the per-operation path: GetSQE, Prep, Submit, wait,
// Reap and CQE decoding allocate nothing.
func TestHotPathAllocs(t *testing.T) {
	r := newRing(t, nil)
	var cqes [4]CQE
	allocs := testing.AllocsPerRun(200, func() {
		s := r.GetSQE()
		s.PrepNop()
		s.UserData = 9
		if _, err := r.Submit(); err != nil {
			panic(err)
		}
		if _, err := r.SubmitAndWait(1); err != nil {
			panic(err)
		}
		if r.Reap(cqes[:]) != 1 {
			panic("no completion")
		}
	})
	if allocs != 0 {
		t.Fatalf("nop round trip: %v allocs/op, want 0", allocs)
	}
	// Timed wait: both the timeout error and the timespec must not allocate.
	allocs = testing.AllocsPerRun(20, func() {
		_, err := r.WaitCQEs(1, time.Microsecond, 0)
		if err != nil && !errors.Is(err, syscall.ETIME) {
			panic(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("WaitCQEs timeout: %v allocs/op, want 0", allocs)
	}
	cs := []CQE{
		{Res: 5, Flags: CQEFBuffer | CQEFMore | 7<<CQEBufferShift},
		{Res: -int32(unix.ENOBUFS)},
		{Res: -int32(unix.ECANCELED)},
		{Res: -int32(unix.ETIME)},
		{Res: -int32(unix.ECONNRESET)},
		{Res: -int32(unix.EHWPOISON)}, // not boxed: still no allocation
	}
	var sink int
	allocs = testing.AllocsPerRun(100, func() {
		for i := range cs {
			if cs[i].Err() != nil {
				sink++
			}
			if cs[i].HasBuffer() && cs[i].More() {
				sink += int(cs[i].BufferID())
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("CQE decode: %v allocs/op, want 0", allocs)
	}
	if cs[0].BufferID() != 7 || sink == 0 {
		t.Fatalf("BufferID %d", cs[0].BufferID())
	}
}

func TestRegisteredRingFDOnlyForSingleIssuer(t *testing.T) {
	r := newRing(t, nil)
	if kernelProbe(t).RingFDs && !r.RingFDRegistered() {
		t.Fatal("SINGLE_ISSUER ring did not register its fd")
	}
	plain := newRing(t, &Config{Entries: 4})
	if plain.RingFDRegistered() {
		t.Fatal("a ring not bound to a thread registered its fd (per-thread registration)")
	}
	// A plain ring works from whichever thread the goroutine lands on.
	done := make(chan error)
	go func() {
		getSQE(t, plain).PrepNop()
		_, err := plain.SubmitAndWait(1)
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var c [1]CQE
	if plain.Reap(c[:]) != 1 {
		t.Fatal("no completion")
	}
}

func TestUseAfterClose(t *testing.T) {
	r := newRing(t, &Config{Entries: 4})
	getSQE(t, r).PrepNop()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if r.GetSQE() != nil {
		t.Fatal("GetSQE after Close returned an SQE")
	}
	var c [4]CQE
	if r.Reap(c[:]) != 0 || r.CQReady() != 0 || r.CQOverflowed() {
		t.Fatal("closed ring reports completions")
	}
	for name, err := range map[string]error{
		"Submit":        func() error { _, err := r.Submit(); return err }(),
		"SubmitAndWait": func() error { _, err := r.SubmitAndWait(1); return err }(),
		"WaitCQEs":      func() error { _, err := r.WaitCQEs(1, time.Millisecond, 0); return err }(),
		"FlushOverflow": r.FlushOverflow(),
		"RegisterFiles": r.RegisterFiles([]int32{0}),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// TestSQPollWakeup: with SQPOLL the kernel thread picks SQEs up by itself; once
// it has gone idle (IORING_SQ_NEED_WAKEUP), Submit must wake it.
func TestSQPollWakeup(t *testing.T) {
	testenv.NeedFeature(t, "IORING_SETUP_SQPOLL", kernelProbe(t).Setup&SetupSQPoll != 0)
	r := newRing(t, &Config{Entries: 4, Flags: SetupSQPoll, SQThreadIdle: 5 * time.Millisecond})
	for round := 0; round < 3; round++ {
		for i := 0; i < 2; i++ {
			s := getSQE(t, r)
			s.PrepNop()
			s.UserData = uint64(round*2 + i)
		}
		n, err := r.Submit()
		if err != nil || n != 2 {
			t.Fatalf("round %d: Submit = %d, %v; want 2", round, n, err)
		}
		// Watch the CQ without entering the kernel: only the wakeup Submit
		// sent can have started the poller.
		deadline := time.Now().Add(5 * time.Second)
		for r.CQReady() < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the SQPOLL thread did not pick the SQEs up", round)
			}
			time.Sleep(time.Millisecond)
		}
		var c [2]CQE
		if r.Reap(c[:]) != 2 || c[0].UserData != uint64(round*2) {
			t.Fatalf("round %d: %+v", round, c)
		}
		time.Sleep(30 * time.Millisecond) // let the poller go to sleep (NEED_WAKEUP)
	}
}

// TestCQNeedsEnterFlagsDeferredTaskWork: a MSG_RING CQE sent to a
// DEFER_TASKRUN ring reaches it in one of two ways, depending on the kernel,
// and either way a loop that looks at CQReady and CQNeedsEnter before it
// sleeps (as runtime's does) sees it:
//
//   - Linux 6.1 posts the CQE into the target's CQ at once, from the sender's
//     io_uring_enter (io_msg_ring_data calls io_post_aux_cqe): CQReady says 1
//     and CQNeedsEnter stays false.
//   - Later kernels (6.12 and 6.18 here) queue it as task work on the target,
//     run when the target's owner enters: with TASKRUN_FLAG the ring says so
//     (CQNeedsEnter) while its CQ is still empty, and GetEvents brings it in.
func TestCQNeedsEnterFlagsDeferredTaskWork(t *testing.T) {
	needOp(t, OpMsgRing)
	dst := newRing(t, &Config{Entries: 4, Flags: prodFlags | SetupTaskrunFlag})
	src := newRing(t, &Config{Entries: 4})
	if dst.CQNeedsEnter() {
		t.Fatal("CQNeedsEnter on an idle ring")
	}
	s := getSQE(t, src)
	s.PrepMsgRing(dst.FD(), 7, 0xfeed, 0)
	s.UserData = 1
	submitWait(t, src, 1)
	deadline := time.Now().Add(5 * time.Second)
	for dst.CQReady() == 0 && !dst.CQNeedsEnter() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	switch {
	case dst.CQReady() > 0:
		if dst.CQNeedsEnter() {
			t.Fatal("CQNeedsEnter with the MSG_RING CQE already in the CQ")
		}
		t.Log("the MSG_RING CQE was posted into the CQ at once (Linux 6.1)")
	case dst.CQNeedsEnter():
		if n := dst.CQReady(); n != 0 {
			t.Fatalf("CQReady %d before GetEvents with the CQE held as task work", n)
		}
		if err := dst.GetEvents(); err != nil {
			t.Fatal(err)
		}
		t.Log("the MSG_RING CQE waited as task work until GetEvents (later kernels)")
	default:
		t.Fatal("after 5s the MSG_RING CQE is neither in the CQ nor announced by CQNeedsEnter")
	}
	var c [2]CQE
	if n := dst.Reap(c[:]); n != 1 || c[0].UserData != 0xfeed || c[0].Res != 7 {
		t.Fatalf("reaped %d: %+v", n, c[0])
	}
	if dst.CQNeedsEnter() {
		t.Fatal("CQNeedsEnter still true after the CQE was reaped")
	}
}

// Close used to skip IORING_UNREGISTER_RING_FDS: it marked the ring closed
// first, so the unregister call returned ErrClosed without entering the
// kernel. The thread's registered-ring table kept a reference to the ring,
// which therefore outlived Close (its memory, its fixed files and its
// in-flight operations) until the thread exited.
func TestCloseLeftRingFDRegistered(t *testing.T) {
	testenv.NeedFeature(t, "IORING_REGISTER_RING_FDS (5.18)", kernelProbe(t).RingFDs)
	runtime.LockOSThread() // never unlocked: the thread exits with the test
	r, err := New(&Config{Entries: 4, Flags: prodFlags})
	if err != nil {
		t.Fatal(err)
	}
	if !r.RingFDRegistered() {
		t.Fatal("ring fd not registered on a SINGLE_ISSUER ring")
	}
	idx := r.enterFD
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, idx, 0, 0, enterRegisteredRing, 0, 0)
	if errno == 0 {
		t.Fatalf("registered ring index %d still enters a ring after Close", idx)
	}
}
