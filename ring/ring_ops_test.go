//go:build linux

package ring

// Behaviour tests for the prep helpers, registrations and CQE flags that the
// other test files leave out: each drives the real kernel and checks what it
// did, not only that it answered.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/testenv"
)

// TestReadWrite: PrepWrite then a linked PrepRead at an offset of a file.
func TestReadWrite(t *testing.T) {
	needOp(t, OpRead, OpWrite)
	r := newRing(t, nil)
	f, err := unix.Open(t.TempDir()+"/rw", unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	closeAtCleanup(t, f)
	out, in := offHeap(t, 4096), offHeap(t, 4096)
	for i := range out {
		out[i] = byte(i*13 + 1)
	}
	s := getSQE(t, r)
	s.PrepWrite(f, out[:1500], 700)
	s.Flags |= SQEIOLink
	s.UserData = 1
	s = getSQE(t, r)
	s.PrepRead(f, in[:2000], 700) // the file ends 1500 bytes after the offset
	s.UserData = 2
	c := submitWait(t, r, 2)
	wantRes(t, one(t, c, 1), 1500)
	wantRes(t, one(t, c, 2), 1500)
	if !bytes.Equal(in[:1500], out[:1500]) {
		t.Fatal("read back different bytes")
	}
	var st unix.Stat_t
	if err := unix.Fstat(f, &st); err != nil || st.Size != 2200 {
		t.Fatalf("file size %d (%v), want 700+1500", st.Size, err)
	}
}

// TestReadMultishot: one READ_MULTISHOT on a pipe posts a CQE, in a provided
// buffer, per write to the pipe.
func TestReadMultishot(t *testing.T) {
	needOp(t, OpReadMultishot)
	r := newRing(t, nil)
	br := newTestBufRing(t, r, 21, 4, 64)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	closeAtCleanup(t, p[0])
	closeAtCleanup(t, p[1])
	s := getSQE(t, r)
	s.PrepReadMultishot(p[0], 0, 0, 21)
	s.UserData = 5
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	for i, msg := range []string{"first", "second write"} {
		writeAll(t, p[1], []byte(msg))
		c := waitN(t, r, 1, 5*time.Second)
		if len(c) != 1 || c[0].UserData != 5 || !c[0].HasBuffer() || !c[0].More() || int(c[0].Res) != len(msg) {
			t.Fatalf("write %d: %+v (%v)", i, c, c[0].Err())
		}
		if got := string(br.buf(c[0].BufferID())[:c[0].Res]); got != msg {
			t.Fatalf("write %d: buffer holds %q", i, got)
		}
	}
	s = getSQE(t, r)
	s.PrepCancel64(5, 0)
	s.UserData = 6
	c := submitWait(t, r, 2)
	wantRes(t, one(t, c, 6), 0)
	if last := one(t, c, 5); last.More() {
		t.Fatalf("read multishot still armed after cancel: %+v", last)
	}
}

// TestRecvBufSelect: a single-shot recv picks a provided buffer, honours maxLen,
// leaves the rest queued (F_SOCK_NONEMPTY) and advances the kernel's head.
func TestRecvBufSelect(t *testing.T) {
	r := newRing(t, nil)
	br := newTestBufRing(t, r, 4, 4, 64)
	a, b := tcpPair(t)
	if kernelProbe(t).BufRingStatus {
		if h, err := r.BufRingHead(4); err != nil || h != 0 {
			t.Fatalf("BufRingHead before any recv: %d, %v", h, err)
		}
	}
	writeAll(t, a, []byte("abcdefgh"))
	s := getSQE(t, r)
	s.PrepRecvBufSelect(b, 4, 3, 0) // at most 3 bytes
	s.UserData = 1
	c := submitWait(t, r, 1)[0]
	if c.Res != 3 || !c.HasBuffer() || c.More() {
		t.Fatalf("recv with buffer select: %+v (%v)", c, c.Err())
	}
	if got := string(br.buf(c.BufferID())[:3]); got != "abc" {
		t.Fatalf("buffer %d holds %q", c.BufferID(), got)
	}
	if !c.SockNonempty() {
		t.Fatalf("5 bytes left in the socket but no F_SOCK_NONEMPTY: %v", c.Flags)
	}
	first := c.BufferID()
	s = getSQE(t, r)
	s.PrepRecvBufSelect(b, 4, 0, 0) // the whole buffer
	s.UserData = 2
	c = submitWait(t, r, 1)[0]
	if c.Res != 5 || !c.HasBuffer() || c.BufferID() == first {
		t.Fatalf("second recv: %+v (%v)", c, c.Err())
	}
	if got := string(br.buf(c.BufferID())[:5]); got != "defgh" {
		t.Fatalf("buffer %d holds %q", c.BufferID(), got)
	}
	if c.SockNonempty() {
		t.Fatalf("socket drained but F_SOCK_NONEMPTY set: %v", c.Flags)
	}
	if kernelProbe(t).BufRingStatus {
		if h, err := r.BufRingHead(4); err != nil || h != 2 {
			t.Fatalf("BufRingHead after two recvs: %d, %v; want 2", h, err)
		}
	}
}

// TestRecvBundle: one recv bundle completion spans several provided buffers.
func TestRecvBundle(t *testing.T) {
	testenv.NeedFeature(t, "IORING_FEAT_RECVSEND_BUNDLE (6.10)", kernelProbe(t).Bundles())
	r := newRing(t, nil)
	const size = 16
	br := newTestBufRing(t, r, 13, 8, size)
	a, b := tcpPair(t)
	payload := []byte("0123456789abcdefghijklmnopqrstuvwxyzABCD") // 40 bytes: three buffers
	s := getSQE(t, r)
	s.PrepRecvBundle(b, 13, 0)
	s.UserData = 3
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	expectNone(t, r, 10*time.Millisecond) // armed, no data yet
	writeAll(t, a, payload)
	// The kernel may split the payload over a few CQEs (here 32 bytes, then
	// a retry for the rest); each must cover consecutive buffers, and at
	// least one must span more than a single buffer.
	var last CQE
	got, spanned := 0, false
	deadline := time.Now().Add(5 * time.Second)
	for got < len(payload) {
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d bytes within 5s", got, len(payload))
		}
		for _, c := range waitN(t, r, 1, 5*time.Second) {
			if c.UserData != 3 || !c.HasBuffer() || c.Res <= 0 || got+int(c.Res) > len(payload) {
				t.Fatalf("bundle completion %+v (%v) after %d bytes", c, c.Err(), got)
			}
			spanned = spanned || c.Res > size
			// Buffers were queued in bid order over contiguous memory, so a
			// bundle's consecutive buffers hold its bytes back to back.
			bid := int(c.BufferID())
			if b := br.mem[bid*size : bid*size+int(c.Res)]; !bytes.Equal(b, payload[got:got+int(c.Res)]) {
				t.Fatalf("buffers from %d hold %q, want %q", bid, b, payload[got:got+int(c.Res)])
			}
			got += int(c.Res)
			last = c
		}
	}
	if !spanned {
		t.Fatalf("no completion spanned more than one %d-byte buffer", size)
	}
	if last.More() {
		s = getSQE(t, r)
		s.PrepCancel64(3, 0)
		s.UserData = 4
		cs := submitWait(t, r, 2)
		wantRes(t, one(t, cs, 4), 0)
	}
}

// TestSendBundle: one send bundle sends every queued buffer of a group.
func TestSendBundle(t *testing.T) {
	testenv.NeedFeature(t, "IORING_FEAT_RECVSEND_BUNDLE (6.10)", kernelProbe(t).Bundles())
	r := newRing(t, nil)
	const size, n = 16, 4
	br := newTestBufRing(t, r, 14, n, size)
	for i := range br.mem {
		br.mem[i] = 'A' + byte(i/size)
	}
	a, b := tcpPair(t)
	s := getSQE(t, r)
	s.PrepSendBundle(a, 0, 0)
	s.Flags |= SQEBufferSelect
	s.BufIndex = 14
	s.UserData = 1
	c := submitWait(t, r, 1)[0]
	if c.Res != size*n || !c.HasBuffer() {
		t.Fatalf("send bundle: %+v (%v), want %d bytes from the group", c, c.Err(), size*n)
	}
	if got := readFull(t, b, size*n); !bytes.Equal(got, br.mem[:size*n]) {
		t.Fatalf("peer got %q", got)
	}
}

// TestRecvmsg: a single-shot recvmsg on UDP fills the source address and flags
// a payload truncated to the iovec.
func TestRecvmsg(t *testing.T) {
	needOp(t, OpRecvmsg)
	r := newRing(t, nil)
	fd, port := udpSocket(t)
	data := offHeap(t, 4096)
	name := pin(t, new(unix.RawSockaddrInet4))
	iov := pin(t, &unix.Iovec{Base: &data[0], Len: 4})
	msg := pin(t, &unix.Msghdr{Name: (*byte)(unsafe.Pointer(name)), Namelen: unix.SizeofSockaddrInet4, Iov: iov, Iovlen: 1})
	s := getSQE(t, r)
	s.PrepRecvmsg(fd, msg, 0)
	s.UserData = 1
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	sfd, sport := udpSocket(t)
	if err := unix.Sendto(sfd, []byte("truncated!"), 0, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		t.Fatal(err)
	}
	c := waitN(t, r, 1, 5*time.Second)[0]
	wantRes(t, c, 4)
	if string(data[:4]) != "trun" || msg.Flags&unix.MSG_TRUNC == 0 {
		t.Fatalf("payload %q flags %#x: want \"trun\" with MSG_TRUNC", data[:4], msg.Flags)
	}
	if msg.Namelen != unix.SizeofSockaddrInet4 || name.Family != unix.AF_INET {
		t.Fatalf("source namelen %d family %d", msg.Namelen, name.Family)
	}
	if got := int(binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&name.Port))[:])); got != sport {
		t.Fatalf("source port %d, want %d", got, sport)
	}
}

// TestCancelAny: IORING_ASYNC_CANCEL_ANY cancels every pending request and
// reports how many.
func TestCancelAny(t *testing.T) {
	r := newRing(t, nil)
	_, b1 := tcpPair(t)
	_, b2 := tcpPair(t)
	buf := offHeap(t, 128)
	s := getSQE(t, r)
	s.PrepRecv(b1, buf[:64], 0)
	s.UserData = 1
	s = getSQE(t, r)
	s.PrepRecv(b2, buf[64:], 0)
	s.UserData = 2
	s = getSQE(t, r)
	s.PrepPollAdd(b2, unix.POLLIN)
	s.UserData = 3
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	expectNone(t, r, 20*time.Millisecond)
	s = getSQE(t, r)
	s.PrepCancelAny()
	s.UserData = 9
	c := submitWait(t, r, 4)
	wantRes(t, one(t, c, 9), 3)
	for ud := uint64(1); ud <= 3; ud++ {
		wantErrno(t, one(t, c, ud), unix.ECANCELED)
	}
}

// TestProvideRemoveBuffers: the legacy provided-buffer opcodes hand buffers to
// a group that a buffer-select recv then uses, and remove the rest.
func TestProvideRemoveBuffers(t *testing.T) {
	needOp(t, OpProvideBuffers, OpRemoveBuffers)
	r := newRing(t, nil)
	const size, n, firstBID = 32, 4, 10
	mem := offHeap(t, size*n)
	s := getSQE(t, r)
	s.PrepProvideBuffers(mem, size, n, 9, firstBID)
	s.UserData = 1
	if c := submitWait(t, r, 1)[0]; c.Res < 0 {
		t.Fatalf("provide buffers: %v", c.Err())
	}
	a, b := tcpPair(t)
	writeAll(t, a, []byte("legacy"))
	s = getSQE(t, r)
	s.PrepRecvBufSelect(b, 9, 0, 0)
	s.UserData = 2
	c := submitWait(t, r, 1)[0]
	if c.Res != 6 || !c.HasBuffer() || c.BufferID() < firstBID || c.BufferID() >= firstBID+n {
		t.Fatalf("recv from legacy group: %+v (%v)", c, c.Err())
	}
	off := int(c.BufferID()-firstBID) * size
	if got := string(mem[off : off+6]); got != "legacy" {
		t.Fatalf("buffer %d holds %q", c.BufferID(), got)
	}
	s = getSQE(t, r)
	s.PrepRemoveBuffers(n, 9) // asks for more than are left
	s.UserData = 3
	wantRes(t, submitWait(t, r, 1)[0], n-1)
	// The group is now empty: a buffer-select recv has nothing to pick.
	writeAll(t, a, []byte("x"))
	s = getSQE(t, r)
	s.PrepRecvBufSelect(b, 9, 0, 0)
	s.UserData = 4
	wantErrno(t, submitWait(t, r, 1)[0], unix.ENOBUFS)
}

// TestRegisterEventFD: a registered eventfd counts posted completions, and
// stops once unregistered.
func TestRegisterEventFD(t *testing.T) {
	r := newRing(t, &Config{Entries: 4}) // a plain ring: no deferred task work
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	closeAtCleanup(t, efd)
	readEv := func() (uint64, error) {
		var v [8]byte
		_, err := unix.Read(efd, v[:])
		return binary.NativeEndian.Uint64(v[:]), err
	}
	if err := r.RegisterEventFD(efd); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterEventFD(efd); !errors.Is(err, unix.EBUSY) {
		t.Fatalf("second RegisterEventFD: %v, want EBUSY", err)
	}
	getSQE(t, r).PrepNop()
	submitWait(t, r, 1)
	if v, err := readEv(); err != nil || v == 0 {
		t.Fatalf("eventfd after a completion: %d, %v", v, err)
	}
	if err := r.UnregisterEventFD(); err != nil {
		t.Fatal(err)
	}
	getSQE(t, r).PrepNop()
	submitWait(t, r, 1)
	if v, err := readEv(); !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("eventfd signalled (%d, %v) after UnregisterEventFD", v, err)
	}
	// The async variant registers (and is exclusive) the same way.
	if err := r.RegisterEventFDAsync(efd); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterEventFD(efd); !errors.Is(err, unix.EBUSY) {
		t.Fatalf("RegisterEventFD over an async one: %v, want EBUSY", err)
	}
	if err := r.UnregisterEventFD(); err != nil {
		t.Fatal(err)
	}
	if err := r.UnregisterEventFD(); !errors.Is(err, unix.ENXIO) {
		t.Fatalf("UnregisterEventFD with none registered: %v, want ENXIO", err)
	}
}

// TestRegisterNAPI: NAPI busy polling registers, the ring keeps working with
// it, and it unregisters.
func TestRegisterNAPI(t *testing.T) {
	testenv.NeedFeature(t, "IORING_REGISTER_NAPI (6.9)", kernelProbe(t).NAPI)
	r := newRing(t, nil)
	if err := r.RegisterNAPI(50, true); err != nil {
		t.Fatal(err)
	}
	a, b := tcpPair(t)
	out, in := offHeap(t, 8), offHeap(t, 8)
	copy(out, "napi ok!")
	s := getSQE(t, r)
	s.PrepRecv(b, in, unix.MSG_WAITALL)
	s.UserData = 1
	s = getSQE(t, r)
	s.PrepSend(a, out, 0)
	s.UserData = 2
	c := submitWait(t, r, 2)
	wantRes(t, one(t, c, 1), 8)
	wantRes(t, one(t, c, 2), 8)
	if string(in) != "napi ok!" {
		t.Fatalf("got %q", in)
	}
	if err := r.UnregisterNAPI(); err != nil {
		t.Fatal(err)
	}
}

// TestFileAllocRange: direct descriptors with FileIndexAlloc come only from
// the registered range; when it is used up the kernel says ENFILE.
func TestFileAllocRange(t *testing.T) {
	p := kernelProbe(t)
	testenv.NeedFeature(t, "IORING_REGISTER_FILE_ALLOC_RANGE (6.0)", p.FileAllocRange)
	needOp(t, OpSocket)
	r := newRing(t, nil)
	if err := r.RegisterFilesSparse(8); err != nil {
		t.Fatal(err)
	}
	if err := r.RegisterFileAllocRange(4, 2); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		s := getSQE(t, r)
		s.PrepSocketDirect(unix.AF_INET, unix.SOCK_DGRAM, 0, FileIndexAlloc, 0)
		s.UserData = uint64(i)
	}
	c := submitWait(t, r, 3)
	got := map[int32]bool{}
	for i := uint64(0); i < 2; i++ {
		cq := one(t, c, i)
		slot := cq.Res
		if slot != 4 && slot != 5 {
			t.Fatalf("allocated slot %d (%v), want 4 or 5", slot, cq.Err())
		}
		got[slot] = true
	}
	if len(got) != 2 {
		t.Fatalf("slots %v: the same slot twice", got)
	}
	wantErrno(t, one(t, c, 2), unix.ENFILE)
}

// TestBufRingMmapIncremental: a kernel-allocated (PbufRingMmap), incrementally
// consumed (PbufRingInc) buffer ring: successive receives fill the same buffer
// back to back, each CQE saying F_BUF_MORE while the buffer has room, and the
// kernel's head stays on that buffer.
func TestBufRingMmapIncremental(t *testing.T) {
	p := kernelProbe(t)
	testenv.NeedFeature(t, "IOU_PBUF_RING_MMAP (6.4)", p.BufRingMmap)
	testenv.NeedFeature(t, "IOU_PBUF_RING_INC (6.12)", p.BufRingInc)
	r := newRing(t, nil)
	const bgid, entries, size = 12, 4, 256
	if err := r.RegisterBufRing(&BufReg{RingEntries: entries, BGID: bgid, Flags: PbufRingMmap | PbufRingInc}); err != nil {
		t.Fatal(err)
	}
	mapped, err := r.MmapBufRing(bgid, entries*int(unsafe.Sizeof(Buf{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Munmap(mapped) })
	t.Cleanup(func() { _ = r.UnregisterBufRing(bgid) }) // runs first
	br := &testBufRing{
		ring:    unsafe.Slice((*Buf)(unsafe.Pointer(&mapped[0])), entries),
		mem:     offHeap(t, entries*size),
		size:    size,
		entries: entries,
	}
	for i := uint16(0); i < entries; i++ {
		br.add(i)
	}
	br.publish()
	a, b := tcpPair(t)
	s := getSQE(t, r)
	s.PrepRecvMultishot(b, bgid, 0)
	s.UserData = 7
	if _, err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	var bid uint16
	off := 0
	for i, msg := range []string{"first chunk", "and the second"} {
		writeAll(t, a, []byte(msg))
		c := waitN(t, r, 1, 5*time.Second)[0]
		if int(c.Res) != len(msg) || !c.HasBuffer() || !c.More() || !c.BufMore() {
			t.Fatalf("recv %d: %+v (%v), want %d bytes with F_BUF_MORE", i, c, c.Err(), len(msg))
		}
		if i == 0 {
			bid = c.BufferID()
		} else if c.BufferID() != bid {
			t.Fatalf("recv %d went to buffer %d, want the partly used buffer %d", i, c.BufferID(), bid)
		}
		if got := string(br.buf(bid)[off : off+len(msg)]); got != msg {
			t.Fatalf("recv %d: buffer %d at %d holds %q", i, bid, off, got)
		}
		off += len(msg)
	}
	if p.BufRingStatus {
		if h, err := r.BufRingHead(bgid); err != nil || h != 0 {
			t.Fatalf("BufRingHead %d, %v: want 0 while the first buffer is still being filled", h, err)
		}
	}
	s = getSQE(t, r)
	s.PrepCancel64(7, 0)
	s.UserData = 8
	wantRes(t, one(t, submitWait(t, r, 2), 8), 0)
}

// TestPeekBatchCQAdvance: PeekBatch does not consume, CQAdvance consumes
// exactly n, and the next peek starts after them.
func TestPeekBatchCQAdvance(t *testing.T) {
	r := newRing(t, &Config{Entries: 8})
	for i := uint64(0); i < 5; i++ {
		s := getSQE(t, r)
		s.PrepNop()
		s.UserData = i
	}
	if n, err := r.SubmitAndWait(5); err != nil || n != 5 {
		t.Fatalf("SubmitAndWait: %d, %v", n, err)
	}
	var c [8]CQE
	if n := r.PeekBatch(c[:3]); n != 3 || c[0].UserData != 0 || c[2].UserData != 2 {
		t.Fatalf("PeekBatch: %d %+v", n, c[:n])
	}
	if r.CQReady() != 5 {
		t.Fatalf("CQReady %d after a peek, want 5", r.CQReady())
	}
	r.CQAdvance(2)
	if r.CQReady() != 3 {
		t.Fatalf("CQReady %d after CQAdvance(2), want 3", r.CQReady())
	}
	if n := r.PeekBatch(c[:]); n != 3 || c[0].UserData != 2 || c[2].UserData != 4 {
		t.Fatalf("PeekBatch after advance: %d %+v", n, c[:n])
	}
	r.CQAdvance(3)
	if r.CQReady() != 0 || r.PeekBatch(c[:]) != 0 {
		t.Fatal("completions left after advancing past all of them")
	}
	if r.Dropped() != 0 || r.Overflow() != 0 {
		t.Fatalf("dropped %d overflow %d", r.Dropped(), r.Overflow())
	}
}

// TestSetupFlagCombinations: every opt-in setup flag the issue names (beside
// SQPOLL, which has its own test) gives a ring that the kernel accepted with
// those flags and that completes a batch.
func TestSetupFlagCombinations(t *testing.T) {
	p := kernelProbe(t)
	for _, flags := range []SetupFlags{
		SetupSubmitAll,
		SetupCoopTaskrun,
		SetupCoopTaskrun | SetupTaskrunFlag,
		SetupSingleIssuer,
		prodFlags | SetupTaskrunFlag | SetupSubmitAll | SetupNoSQArray,
	} {
		t.Run(flags.String(), func(t *testing.T) {
			testenv.NeedFeature(t, "setup flags "+(flags&^p.Setup).String(), p.Setup&flags == flags)
			r := newRing(t, &Config{Entries: 4, Flags: flags})
			if got := r.Params().Flags; got&flags != flags || got&SetupCQSize == 0 {
				t.Fatalf("Params().Flags %v, want %v|CQSIZE", got, flags)
			}
			for i := 0; i < 4; i++ {
				s := getSQE(t, r)
				s.PrepNop()
				s.UserData = uint64(i)
			}
			c := submitWait(t, r, 4)
			for i, cq := range c {
				if cq.UserData != uint64(i) || cq.Res != 0 {
					t.Fatalf("completion %d: %+v", i, cq)
				}
			}
		})
	}
}

// ringMappings counts this process's mappings of io_uring ring fds.
func ringMappings(t *testing.T) int {
	t.Helper()
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		testenv.NeedFeature(t, fmt.Sprintf("/proc/self/maps (%v)", err), false)
	}
	return bytes.Count(maps, []byte("[io_uring]"))
}

// TestCloseUnmapsAndIsIdempotent: Close unmaps every ring region and closes
// the fd; a second Close is a no-op returning nil.
func TestCloseUnmapsAndIsIdempotent(t *testing.T) {
	kernelProbe(t)
	before := ringMappings(t)
	r, err := New(&Config{Entries: 4})
	if err != nil {
		t.Fatal(err)
	}
	fd := r.FD()
	if n := ringMappings(t) - before; n < 2 {
		t.Fatalf("%d new io_uring mappings after New, want the rings and the SQEs", n)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := ringMappings(t) - before; n != 0 {
		t.Fatalf("%d io_uring mappings left after Close", n)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Fatalf("ring fd %d still open after Close: %v", fd, err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if r.FD() != -1 {
		t.Fatalf("FD %d after Close", r.FD())
	}
}

// TestProbeAgreesWithKernel: what the probe says about opcodes matches what
// the kernel does with them.
func TestProbeAgreesWithKernel(t *testing.T) {
	p := kernelProbe(t)
	if p.LastOp < OpSendZC {
		t.Fatalf("LastOp %v: below SEND_ZC on a kernel that passed the probe", p.LastOp)
	}
	beyond := p.LastOp + 1
	if p.Supports(beyond) {
		t.Fatalf("probe claims opcode %d beyond LastOp %v", beyond, p.LastOp)
	}
	r := newRing(t, nil)
	s := getSQE(t, r)
	s.PrepRW(beyond, -1, 0, 0, 0)
	s.UserData = 1
	wantErrno(t, submitWait(t, r, 1)[0], unix.EINVAL)
	if p.Features&(FeatNoDrop|FeatExtArg) != FeatNoDrop|FeatExtArg {
		t.Fatalf("features %v lack NODROP or EXT_ARG (Linux 5.11)", p.Features)
	}
	// NetworkingOps is the probed subset of networkingOps, in order.
	var want []Op
	for _, n := range networkingOps {
		if p.Supports(n.op) {
			want = append(want, n.op)
		}
	}
	if got := p.NetworkingOps(); !slices.Equal(got, want) {
		t.Fatalf("NetworkingOps() = %v, want the supported %v", got, want)
	}
	// Every networking opcode of Linux 6.1, ringwire's minimum, is there.
	for _, n := range networkingOps {
		if !sinceAfter61(n.since) {
			testenv.NeedFeature(t, "IORING_OP_"+n.op.String()+" (Linux "+n.since+")", p.Supports(n.op))
		}
	}
}

// sinceAfter61 reports whether a Linux version "MAJOR.MINOR" is after 6.1.
func sinceAfter61(v string) bool {
	var major, minor int
	if _, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil {
		panic("bad version " + v)
	}
	return major > 6 || major == 6 && minor > 1
}
