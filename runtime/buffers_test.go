//go:build linux

package runtime

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
)

// recvSink receives with a multishot RECV from the loop's group, copying each
// lease out and releasing it.
type recvSink struct {
	mu     sync.Mutex
	got    []byte
	finals int
	errs   []error
}

func (r *recvSink) HandleCompletion(l *Loop, tag uint64, c *ring.CQE) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !c.More() {
		r.finals++
	}
	if c.Res <= 0 {
		return
	}
	lease, err := l.Group().Lease(c)
	if err != nil {
		r.errs = append(r.errs, err)
		return
	}
	r.got = lease.AppendTo(r.got)
	lease.Release()
}

func TestLoopBuffers(t *testing.T) {
	probe, err := ring.ProbeKernel()
	testenv.NeedIOUring(t, err)
	testenv.NeedFeature(t, "IORING_REGISTER_PBUF_RING (5.19)", probe.BufRing)
	fdsBefore := fdCount(t)
	rt, err := New(&Config{
		Loops:   1,
		Buffers: &bufring.Config{GroupID: 3, Count: 16, Size: 4096},
		Arena:   &bufring.ArenaConfig{Classes: []bufring.Class{{Size: 4096, Count: 4}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	l := rt.Loops()[0]
	a, b := socketpair(t)
	sink := &recvSink{}
	call(t, l, func(l *Loop) {
		if l.Group() == nil || l.Arena() == nil || l.Group().ID() != 3 {
			t.Fatal("loop has no group or arena")
		}
		l.Own(fdCloser(a))
		sqe, _, err := l.NewOp(sink, 0)
		if err != nil {
			t.Fatal(err)
		}
		sqe.PrepRecvMultishot(a, l.Group().ID(), 0)
	})
	want := bytes.Repeat([]byte("ringwire"), 100)
	for i := 0; i < len(want); i += 100 {
		if _, err := unix.Write(b, want[i:i+100]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		sink.mu.Lock()
		n := len(sink.got)
		sink.mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	call(t, l, func(l *Loop) {
		if n := l.Group().InUse(); n != 0 {
			t.Errorf("%d buffers still leased", n)
		}
	})
	// Close with the multishot receive still armed.
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	unix.Close(b)
	if !bytes.Equal(sink.got, want) || sink.finals != 1 || len(sink.errs) != 0 {
		t.Fatalf("got %d bytes (want %d), %d finals, errors %v", len(sink.got), len(want), sink.finals, sink.errs)
	}
	if got := fdCount(t); got != fdsBefore {
		t.Fatalf("fd count %d after Close, was %d", got, fdsBefore)
	}
}
