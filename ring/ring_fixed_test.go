//go:build linux

package ring

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/testenv"
)

func TestReadWriteFixed(t *testing.T) {
	r := newRing(t, nil)
	bufs := [][]byte{offHeap(t, 4096), offHeap(t, 8192)}
	if err := r.RegisterBuffers(bufs); err != nil {
		t.Fatal(err)
	}
	f, err := unix.Open(t.TempDir()+"/fixed", unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	closeAtCleanup(t, f)
	for i := range bufs[0] {
		bufs[0][i] = byte(i % 251)
	}
	s := getSQE(t, r)
	s.PrepWriteFixed(f, bufs[0][100:3000], 512, 0)
	s.Flags |= SQEIOLink
	s.UserData = 1
	s = getSQE(t, r)
	s.PrepReadFixed(f, bufs[1][1000:3900], 512, 1) // a slice inside buffer 1
	s.UserData = 2
	c := submitWait(t, r, 2)
	wantRes(t, one(t, c, 1), 2900)
	wantRes(t, one(t, c, 2), 2900)
	if !bytes.Equal(bufs[1][1000:3900], bufs[0][100:3000]) {
		t.Fatal("read back different bytes")
	}
	// A buffer outside the registered one is refused.
	s = getSQE(t, r)
	s.PrepReadFixed(f, offHeap(t, 4096), 0, 1)
	wantErrno(t, submitWait(t, r, 1)[0], unix.EFAULT)
	if err := r.UnregisterBuffers(); err != nil {
		t.Fatal(err)
	}
}

func TestSparseBuffersUpdate(t *testing.T) {
	p := kernelProbe(t)
	testenv.NeedFeature(t, "sparse registered buffers (5.19)", p.SparseBuffers)
	r := newRing(t, nil)
	if err := r.RegisterBuffersSparse(4); err != nil {
		t.Fatal(err)
	}
	b := offHeap(t, 4096)
	if err := r.UpdateBuffers(2, [][]byte{b}); err != nil {
		t.Fatal(err)
	}
	a, c := tcpPair(t)
	copy(b, "fixed send")
	s := getSQE(t, r)
	s.PrepSendZCFixed(a, b[:10], 0, 0, 2)
	s.UserData = 1
	cq := submitWait(t, r, 2)
	wantRes(t, cq[0], 10)
	if !cq[1].Notif() {
		t.Fatalf("no notification: %+v", cq)
	}
	if got := readFull(t, c, 10); string(got) != "fixed send" {
		t.Fatalf("got %q", got)
	}
}

// TestFilesUpdate fills registered file slots both with the FILES_UPDATE
// opcode and with the register call, then uses them.
func TestFilesUpdate(t *testing.T) {
	needOp(t, OpFilesUpdate)
	r := newRing(t, nil)
	if err := r.RegisterFiles([]int32{-1, -1, -1, -1}); err != nil {
		t.Fatal(err)
	}
	a, b := tcpPair(t)
	fds := pin(t, &[1]int32{int32(a)})
	s := getSQE(t, r)
	s.PrepFilesUpdate(fds[:], 2)
	s.UserData = 1
	wantRes(t, submitWait(t, r, 1)[0], 1) // one slot updated
	if n, err := r.UpdateFiles(3, []int32{int32(b)}); err != nil || n != 1 {
		t.Fatalf("UpdateFiles: %d, %v", n, err)
	}
	msg := offHeap(t, 4)
	copy(msg, "slot")
	in := offHeap(t, 4)
	s = getSQE(t, r)
	s.PrepSend(2, msg, 0)
	s.Flags |= SQEFixedFile
	s.UserData = 2
	s = getSQE(t, r)
	s.PrepRecv(3, in, unix.MSG_WAITALL)
	s.Flags |= SQEFixedFile
	s.UserData = 3
	c := submitWait(t, r, 2)
	wantRes(t, one(t, c, 2), 4)
	wantRes(t, one(t, c, 3), 4)
	if string(in) != "slot" {
		t.Fatalf("got %q", in)
	}
	// An empty slot is EBADF.
	s = getSQE(t, r)
	s.PrepSend(0, msg, 0)
	s.Flags |= SQEFixedFile
	wantErrno(t, submitWait(t, r, 1)[0], unix.EBADF)
	if err := r.UnregisterFiles(); err != nil {
		t.Fatal(err)
	}
}
