//go:build linux

package runtime

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/ring"
)

// Scratch gives every live operation its own ScratchSize bytes, which keep
// their address while the op table grows, and nothing once the op is done.
func TestScratchPerOp(t *testing.T) {
	rt := newRuntime(t, &Config{Loops: 1})
	l := rt.Loops()[0]
	const n = 3000 // past the table's first 1024 slots: it grows twice
	var first OpID
	var firstAddr *byte
	call(t, l, func(l *Loop) {
		ids := make([]OpID, 0, n)
		for i := range n {
			sqe, id, err := l.NewOp(nil, 0)
			if err != nil {
				t.Error(err)
				return
			}
			sqe.PrepNop()
			b := l.Scratch(id)
			if len(b) != ScratchSize || cap(b) != ScratchSize {
				t.Errorf("op %d: scratch len %d cap %d, want %d", i, len(b), cap(b), ScratchSize)
				return
			}
			for j := range b {
				b[j] = byte(i + j)
			}
			if i == 0 {
				first, firstAddr = id, &b[0]
			}
			ids = append(ids, id)
		}
		for i, id := range ids {
			b := l.Scratch(id)
			for j := range b {
				if b[j] != byte(i+j) {
					t.Errorf("op %d's scratch byte %d = %d, want %d: slots overlap", i, j, b[j], byte(i+j))
					return
				}
			}
		}
		if b := l.Scratch(first); &b[0] != firstAddr {
			t.Error("the first op's scratch moved when the table grew")
		}
		if a := testing.AllocsPerRun(100, func() { _ = l.Scratch(first) }); a != 0 {
			t.Errorf("Scratch allocates %v per call", a)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		var stale bool
		call(t, l, func(l *Loop) { stale = l.Scratch(first) == nil })
		if stale {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first NOP's scratch still there 5s after it completed")
		}
		time.Sleep(time.Millisecond)
	}
}

// The kernel reads a SEND's destination address from scratch memory.
func TestScratchSendAddr(t *testing.T) {
	rt := newRuntime(t, &Config{Loops: 1})
	l := rt.Loops()[0]
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	to := netip.MustParseAddrPort(pc.LocalAddr().String())
	msg := []byte("scratch")
	done := make(chan int32, 1)
	call(t, l, func(l *Loop) {
		sqe, id, err := l.NewOp(HandlerFunc(func(_ *Loop, _ uint64, c *ring.CQE) { done <- c.Res }), 0)
		if err != nil {
			t.Error(err)
			return
		}
		// A struct sockaddr_in, written by hand: family (host order),
		// port (network order), address, 8 bytes of zero.
		b := l.Scratch(id)
		clear(b[:unix.SizeofSockaddrInet4])
		binary.NativeEndian.PutUint16(b[0:], unix.AF_INET)
		binary.BigEndian.PutUint16(b[2:], to.Port())
		a4 := to.Addr().As4()
		copy(b[4:8], a4[:])
		n := unix.SizeofSockaddrInet4
		sqe.PrepSend(fd, msg, 0)
		sqe.SetSendAddr(b[:n])
		l.Pin(id, &msg[0])
	})
	select {
	case res := <-done:
		if res != int32(len(msg)) {
			t.Fatalf("send res %d, want %d", res, len(msg))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no send completion")
	}
	buf := make([]byte, 64)
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	k, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:k]) != string(msg) {
		t.Fatalf("got %q, %v", buf[:k], err)
	}
}
