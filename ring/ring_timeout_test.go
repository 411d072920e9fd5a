//go:build linux

package ring

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/testenv"
)

func TestTimeoutFires(t *testing.T) {
	r := newRing(t, nil)
	d := pin(t, new(Timespec))
	*d = ts(30 * time.Millisecond)
	s := getSQE(t, r)
	s.PrepTimeout(d, 0, 0)
	s.UserData = 1
	start := time.Now()
	c := submitWait(t, r, 1)
	wantErrno(t, c[0], unix.ETIME)
	if el := time.Since(start); el < 25*time.Millisecond {
		t.Fatalf("timeout fired after %v, before 30ms", el)
	}
}

// TestTimeoutCount: a timeout with count 1 completes (res 0) as soon as one
// other request completes, long before its deadline.
func TestTimeoutCount(t *testing.T) {
	r := newRing(t, nil)
	d := pin(t, new(Timespec))
	*d = ts(10 * time.Second)
	s := getSQE(t, r)
	s.PrepTimeout(d, 1, 0)
	s.UserData = 1
	s = getSQE(t, r)
	s.PrepNop()
	s.UserData = 2
	c := submitWait(t, r, 2)
	wantRes(t, one(t, c, 1), 0)
	wantRes(t, one(t, c, 2), 0)
}

func TestTimeoutMultishot(t *testing.T) {
	p := kernelProbe(t)
	r := newRing(t, nil)
	d := pin(t, new(Timespec))
	*d = ts(5 * time.Millisecond)
	s := getSQE(t, r)
	s.PrepTimeout(d, 3, TimeoutMultishot)
	s.UserData = 7
	if !p.TimeoutMultishot {
		// The probe said no, and the kernel does refuse the flag.
		wantErrno(t, submitWait(t, r, 1)[0], unix.EINVAL)
		testenv.NeedFeature(t, "IORING_TIMEOUT_MULTISHOT (6.4)", false)
	}
	c := submitWait(t, r, 3)
	for i, cq := range c {
		if cq.UserData != 7 || cq.Errno() != unix.ETIME {
			t.Fatalf("shot %d: %+v (%v)", i, cq, cq.Err())
		}
		if more := i < 2; cq.More() != more {
			t.Fatalf("shot %d: More %v, want %v", i, cq.More(), more)
		}
	}
	expectNone(t, r, 20*time.Millisecond)
}

func TestTimeoutRemoveAndUpdate(t *testing.T) {
	r := newRing(t, nil)
	long := pin(t, new(Timespec))
	*long = ts(10 * time.Second)
	short := pin(t, new(Timespec))
	*short = ts(10 * time.Millisecond)
	s := getSQE(t, r)
	s.PrepTimeout(long, 0, 0)
	s.UserData = 1
	s = getSQE(t, r)
	s.PrepTimeoutRemove(1, 0)
	s.UserData = 2
	c := submitWait(t, r, 2)
	wantErrno(t, one(t, c, 1), unix.ECANCELED)
	wantRes(t, one(t, c, 2), 0)

	s = getSQE(t, r)
	s.PrepTimeout(long, 0, 0)
	s.UserData = 3
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	s = getSQE(t, r)
	s.PrepTimeoutUpdate(short, 3, 0)
	s.UserData = 4
	start := time.Now()
	c = submitWait(t, r, 2)
	wantRes(t, one(t, c, 4), 0)
	wantErrno(t, one(t, c, 3), unix.ETIME)
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("updated timeout fired after %v", el)
	}
}

// TestLinkTimeout bounds a recv that never completes: the recv is cancelled
// and the link timeout reports ETIME.
func TestLinkTimeout(t *testing.T) {
	r := newRing(t, nil)
	_, b := tcpPair(t)
	buf := offHeap(t, 16)
	d := pin(t, new(Timespec))
	*d = ts(20 * time.Millisecond)
	s := getSQE(t, r)
	s.PrepRecv(b, buf, 0)
	s.Flags |= SQEIOLink
	s.UserData = 1
	s = getSQE(t, r)
	s.PrepLinkTimeout(d, 0)
	s.UserData = 2
	start := time.Now()
	c := submitWait(t, r, 2)
	wantErrno(t, one(t, c, 1), unix.ECANCELED)
	wantErrno(t, one(t, c, 2), unix.ETIME)
	if el := time.Since(start); el < 15*time.Millisecond {
		t.Fatalf("link timeout fired after %v", el)
	}
}
