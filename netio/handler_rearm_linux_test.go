//go:build linux

package netio

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/testenv"
	"github.com/ringwire/ringwire/ring"
	"github.com/ringwire/ringwire/runtime"
)

// needKernelFeature skips a test whose kernel lacks feature (or fails it
// under RINGWIRE_STRICT=1).
func needKernelFeature(t *testing.T, ok bool, feature string) {
	t.Helper()
	testenv.NeedFeature(t, feature, ok)
}

// datagramCounter counts non-empty and empty datagrams.
type datagramCounter struct{ valid, empty atomic.Int64 }

func (h *datagramCounter) OnPacket(_ *UDPConn, d *Data) {
	if d.Len() == 0 {
		h.empty.Add(1)
		return
	}
	h.valid.Add(1)
}
func (h *datagramCounter) OnError(*UDPConn, error) {}
func (h *datagramCounter) OnClose(*UDPConn, error) {}

// TestEmptyDatagramRearmWaitedForLatencyBudget: the kernel ends a multishot
// recvmsg on every zero-length datagram, and the loop's next wait, batching
// completions for runtime.Config.LatencyBudget, held the re-arm's completion
// (the next queued empty datagram ends the receive again at once) for the
// whole budget: each empty datagram in the socket's queue cost a budget, so a
// flood of them at more than one per budget grew the queue until the kernel
// dropped the port's valid datagrams too (rtprelay lost 40-50% of a stream
// at 20 000 empty datagrams/s with its 50µs budget). A re-arm now makes the
// next wait skip the budget. Here pairs of a valid and an empty datagram,
// queued back to back, must all be read in well under one budget per pair.
func TestEmptyDatagramRearmWaitedForLatencyBudget(t *testing.T) {
	needRing(t)
	const (
		budget = 25 * time.Millisecond
		pairs  = 64
	)
	rt := newRuntime(t, &runtime.Config{Loops: 1, LatencyBudget: budget})
	l := rt.Loops()[0]
	var minTimeout bool
	onLoop(t, l, func() { minTimeout = l.Ring().Features()&ring.FeatMinTimeout != 0 })
	needKernelFeature(t, minTimeout, "IORING_FEAT_MIN_TIMEOUT (Linux 6.12), which LatencyBudget needs")

	h := &datagramCounter{}
	u, err := (&ListenConfig{Runtime: rt}).ListenUDP(context.Background(), "udp4", "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { onLoop(t, l, func() { u.Close(nil) }) })
	// Room for every datagram of the test, so that no kernel drop excuses a loss.
	_ = unix.SetsockoptInt(u.FD(), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	src, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(u.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	start := time.Now()
	for range pairs {
		if _, err := src.Write([]byte("v")); err != nil {
			t.Fatal(err)
		}
		if _, err := src.Write(nil); err != nil {
			t.Fatal(err)
		}
	}
	deadline := start.Add(4 * pairs * budget)
	for h.valid.Load() < pairs || h.empty.Load() < pairs {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d of %d valid and %d of %d empty datagrams read", time.Since(start), h.valid.Load(), pairs, h.empty.Load(), pairs)
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("%d valid and %d empty datagrams read in %v (budget %v)", pairs, pairs, took, budget)
	if took > pairs*budget/2 {
		t.Fatalf("reading %d empty datagrams took %v: each cost about a latency budget (%v)", pairs, took, budget)
	}
}
