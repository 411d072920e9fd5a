//go:build linux && giouring

package giouringref

// Differential tests of ring's SQE encoding against
// github.com/pawelgaczynski/giouring, a Go port of liburing. Built only with
// `-tags giouring -ldflags=-checklinkname=0` (giouring linknames
// syscall.munmap): make test-giouring.

import (
	"encoding/binary"
	"reflect"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/ring"
)

type gSQE = giouring.SubmissionQueueEntry

// sqeFieldDiff lists the SQE fields whose values differ.
func sqeFieldDiff(a, b *ring.SQE) []string {
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	var out []string
	for i := 0; i < va.NumField(); i++ {
		fa, fb := va.Field(i), vb.Field(i)
		var eq bool
		switch fa.Kind() {
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			eq = fa.Uint() == fb.Uint()
		default:
			eq = fa.Int() == fb.Int()
		}
		if !eq {
			out = append(out, va.Type().Field(i).Name)
		}
	}
	return out
}

// TestGiouringSQEEncoding prepares every operation both bindings have, each
// side starting from a zeroed SQE, and requires the same 64 bytes. Where
// giouring has a known bug the test names it, checks that only the buggy field
// differs and that ours holds the value liburing writes, and names ring's own
// test that runs our SQE on the kernel (part of make test).
func TestGiouringSQEEncoding(t *testing.T) {
	var pn runtime.Pinner
	defer pn.Unpin()
	buf := make([]byte, 256)
	pn.Pin(&buf[0])
	sa := rawInet4(8080)
	pn.Pin(&sa[0])
	rsa := new(unix.RawSockaddrAny)
	salen := new(uint32)
	msg := new(unix.Msghdr)
	tspec := new(ring.Timespec)
	gtspec := (*syscall.Timespec)(unsafe.Pointer(tspec))
	fds := []int32{3, 4}
	const fd, fd2 = 7, 9
	const ud = 0xdeadbeefcafe

	tests := []struct {
		name   string
		ours   func(*ring.SQE)
		theirs func(*gSQE)
		// bug names a known giouring bug; then only bugFields may differ,
		// want checks our value of them, and kernel names the test in
		// package ring that checks the kernel's behaviour with our SQE.
		bug       string
		bugFields []string
		want      func(t *testing.T, s *ring.SQE)
		kernel    string
	}{
		{name: "nop", ours: func(s *ring.SQE) { s.PrepNop() }, theirs: func(g *gSQE) { g.PrepareNop() }},
		{
			name: "read", ours: func(s *ring.SQE) { s.PrepRead(fd, buf[:100], 4096) },
			theirs: func(g *gSQE) { g.PrepareRead(fd, uintptr(unsafe.Pointer(&buf[0])), 100, 4096) },
		},
		{
			name: "write", ours: func(s *ring.SQE) { s.PrepWrite(fd, buf[:100], 1<<40) },
			theirs: func(g *gSQE) { g.PrepareWrite(fd, uintptr(unsafe.Pointer(&buf[0])), 100, 1<<40) },
		},
		{
			name: "read_fixed", ours: func(s *ring.SQE) { s.PrepReadFixed(fd, buf[8:72], 12, 3) },
			theirs: func(g *gSQE) { g.PrepareReadFixed(fd, uintptr(unsafe.Pointer(&buf[8])), 64, 12, 3) },
		},
		{
			name: "write_fixed", ours: func(s *ring.SQE) { s.PrepWriteFixed(fd, buf[8:72], 12, 5) },
			theirs: func(g *gSQE) { g.PrepareWriteFixed(fd, uintptr(unsafe.Pointer(&buf[8])), 64, 12, 5) },
		},
		{
			name: "accept", ours: func(s *ring.SQE) { s.PrepAccept(fd, rsa, salen, unix.SOCK_CLOEXEC) },
			theirs: func(g *gSQE) {
				g.PrepareAccept(fd, uintptr(unsafe.Pointer(rsa)), uint64(uintptr(unsafe.Pointer(salen))), unix.SOCK_CLOEXEC)
			},
		},
		{
			name: "accept_direct", ours: func(s *ring.SQE) { s.PrepAcceptDirect(fd, nil, nil, 0, 6) },
			theirs: func(g *gSQE) { g.PrepareAcceptDirect(fd, 0, 0, 0, 6) },
		},
		{
			name: "accept_direct_alloc", ours: func(s *ring.SQE) { s.PrepAcceptDirect(fd, nil, nil, 0, ring.FileIndexAlloc) },
			theirs: func(g *gSQE) { g.PrepareAcceptDirect(fd, 0, 0, 0, giouring.FileIndexAlloc) },
		},
		{
			name: "multishot_accept", ours: func(s *ring.SQE) { s.PrepMultishotAccept(fd, rsa, salen, unix.SOCK_NONBLOCK) },
			theirs: func(g *gSQE) {
				g.PrepareMultishotAccept(fd, uintptr(unsafe.Pointer(rsa)), uint64(uintptr(unsafe.Pointer(salen))), unix.SOCK_NONBLOCK)
			},
		},
		{
			name: "multishot_accept_direct", ours: func(s *ring.SQE) { s.PrepMultishotAcceptDirect(fd, nil, nil, 0) },
			theirs: func(g *gSQE) { g.PrepareMultishotAcceptDirect(fd, 0, 0, 0) },
		},
		// giouring types the sockaddr as *syscall.Sockaddr (a pointer to a Go
		// interface); passing the raw sockaddr's address through it gives the
		// kernel the same bytes.
		{
			name: "connect", ours: func(s *ring.SQE) { s.PrepConnect(fd, sa) },
			theirs: func(g *gSQE) { g.PrepareConnect(fd, (*syscall.Sockaddr)(unsafe.Pointer(&sa[0])), uint64(len(sa))) },
		},
		{
			name: "socket", ours: func(s *ring.SQE) { s.PrepSocket(unix.AF_INET6, unix.SOCK_DGRAM, 17, 0) },
			theirs: func(g *gSQE) { g.PrepareSocket(unix.AF_INET6, unix.SOCK_DGRAM, 17, 0) },
		},
		{
			name: "socket_direct", ours: func(s *ring.SQE) { s.PrepSocketDirect(unix.AF_INET, unix.SOCK_STREAM, 0, 2, 0) },
			theirs: func(g *gSQE) { g.PrepareSocketDirect(unix.AF_INET, unix.SOCK_STREAM, 0, 2, 0) },
		},
		{
			name: "socket_direct_alloc", ours: func(s *ring.SQE) { s.PrepSocketDirect(unix.AF_INET, unix.SOCK_STREAM, 0, ring.FileIndexAlloc, 0) },
			theirs: func(g *gSQE) { g.PrepareSocketDirectAlloc(unix.AF_INET, unix.SOCK_STREAM, 0, 0) },
		},
		{
			name: "recv", ours: func(s *ring.SQE) { s.PrepRecv(fd, buf, unix.MSG_WAITALL) },
			theirs: func(g *gSQE) { g.PrepareRecv(fd, uintptr(unsafe.Pointer(&buf[0])), uint32(len(buf)), unix.MSG_WAITALL) },
		},
		// liburing's (and giouring's) recv_multishot leaves buffer selection to
		// the caller; ours takes the group. Add the same two fields to theirs.
		{
			name: "recv_multishot", ours: func(s *ring.SQE) { s.PrepRecvMultishot(fd, 11, 0) },
			theirs: func(g *gSQE) {
				g.PrepareRecvMultishot(fd, 0, 0, 0)
				g.Flags = uint8(ring.SQEBufferSelect)
				g.BufIG = 11
			},
		},
		{
			name: "recvmsg", ours: func(s *ring.SQE) { s.PrepRecvmsg(fd, msg, unix.MSG_TRUNC) },
			theirs: func(g *gSQE) { g.PrepareRecvMsg(fd, (*syscall.Msghdr)(unsafe.Pointer(msg)), unix.MSG_TRUNC) },
		},
		{
			name: "recvmsg_multishot", ours: func(s *ring.SQE) { s.PrepRecvmsgMultishot(fd, msg, 4, 0) },
			theirs: func(g *gSQE) {
				g.PrepareRecvMsgMultishot(fd, (*syscall.Msghdr)(unsafe.Pointer(msg)), 0)
				g.Flags = uint8(ring.SQEBufferSelect)
				g.BufIG = 4
			},
		},
		{
			name: "send", ours: func(s *ring.SQE) { s.PrepSend(fd, buf[:10], unix.MSG_NOSIGNAL) },
			theirs: func(g *gSQE) { g.PrepareSend(fd, uintptr(unsafe.Pointer(&buf[0])), 10, unix.MSG_NOSIGNAL) },
		},
		{
			name: "send_set_addr", ours: func(s *ring.SQE) { s.PrepSend(fd, buf[:10], 0); s.SetSendAddr(sa) },
			theirs: func(g *gSQE) {
				g.PrepareSend(fd, uintptr(unsafe.Pointer(&buf[0])), 10, 0)
				g.PrepareSendSetAddr((*syscall.Sockaddr)(unsafe.Pointer(&sa[0])), uint16(len(sa)))
			},
		},
		{
			name: "sendto", ours: func(s *ring.SQE) { s.PrepSendto(fd, buf[:10], 0, sa) },
			theirs: func(g *gSQE) {
				g.PrepareSendto(fd, buf[:10], 0, (*syscall.Sockaddr)(unsafe.Pointer(&sa[0])), uint32(len(sa)))
			},
			bug:       "giouring PrepareSendto stores &buf (the slice header's address) in SQE.addr instead of &buf[0]",
			bugFields: []string{"Addr"},
			want:      func(t *testing.T, s *ring.SQE) { wantAddr(t, s.Addr, &buf[0]) },
			kernel:    "TestSendto",
		},
		{
			name: "send_zc", ours: func(s *ring.SQE) { s.PrepSendZC(fd, buf[:64], 0, ring.SendZCReportUsage) },
			theirs:    func(g *gSQE) { g.PrepareSendZC(fd, buf[:64], 0, uint32(ring.SendZCReportUsage)) },
			bug:       "giouring PrepareSendZC stores &buf (the slice header's address) in SQE.addr instead of &buf[0]",
			bugFields: []string{"Addr"},
			want:      func(t *testing.T, s *ring.SQE) { wantAddr(t, s.Addr, &buf[0]) },
			kernel:    "TestSendZC",
		},
		{
			name: "send_zc_fixed", ours: func(s *ring.SQE) { s.PrepSendZCFixed(fd, buf[:64], 0, 0, 2) },
			theirs:    func(g *gSQE) { g.PrepareSendZCFixed(fd, buf[:64], 0, 0, 2) },
			bug:       "giouring PrepareSendZCFixed (through PrepareSendZC) stores &buf (the slice header's address) in SQE.addr instead of &buf[0]",
			bugFields: []string{"Addr"},
			want:      func(t *testing.T, s *ring.SQE) { wantAddr(t, s.Addr, &buf[0]) },
			kernel:    "TestSparseBuffersUpdate",
		},
		{
			name: "sendmsg", ours: func(s *ring.SQE) { s.PrepSendmsg(fd, msg, unix.MSG_DONTWAIT) },
			theirs: func(g *gSQE) { g.PrepareSendMsg(fd, (*syscall.Msghdr)(unsafe.Pointer(msg)), unix.MSG_DONTWAIT) },
		},
		{
			name: "sendmsg_zc", ours: func(s *ring.SQE) { s.PrepSendmsgZC(fd, msg, 0) },
			theirs: func(g *gSQE) { g.PrepareSendmsgZC(fd, (*syscall.Msghdr)(unsafe.Pointer(msg)), 0) },
		},
		{
			name: "splice", ours: func(s *ring.SQE) { s.PrepSplice(fd, 100, fd2, -1, 4096, unix.SPLICE_F_MOVE) },
			theirs: func(g *gSQE) { g.PrepareSplice(fd, 100, fd2, -1, 4096, unix.SPLICE_F_MOVE) },
		},
		{name: "close", ours: func(s *ring.SQE) { s.PrepClose(fd) }, theirs: func(g *gSQE) { g.PrepareClose(fd) }},
		{name: "close_direct", ours: func(s *ring.SQE) { s.PrepCloseDirect(3) }, theirs: func(g *gSQE) { g.PrepareCloseDirect(3) }},
		{
			name: "shutdown", ours: func(s *ring.SQE) { s.PrepShutdown(fd, unix.SHUT_RDWR) },
			theirs: func(g *gSQE) { g.PrepareShutdown(fd, unix.SHUT_RDWR) },
		},
		{
			name: "cancel64", ours: func(s *ring.SQE) { s.PrepCancel64(0x1234567890, ring.CancelAll) },
			theirs: func(g *gSQE) { g.PrepareCancel64(0x1234567890, ring.CancelAll) },
		},
		{
			name: "cancel_fd", ours: func(s *ring.SQE) { s.PrepCancelFD(fd, ring.CancelAll) },
			theirs: func(g *gSQE) { g.PrepareCancelFd(fd, ring.CancelAll) },
		},
		{
			name: "timeout", ours: func(s *ring.SQE) { s.PrepTimeout(tspec, 3, ring.TimeoutMultishot) },
			theirs:    func(g *gSQE) { g.PrepareTimeout(gtspec, 3, ring.TimeoutMultishot) },
			bug:       "giouring PrepareTimeout stores &spec (the address of its *Timespec parameter) in SQE.addr instead of the timespec's address",
			bugFields: []string{"Addr"},
			want:      func(t *testing.T, s *ring.SQE) { wantAddr(t, s.Addr, tspec) },
			kernel:    "TestTimeoutFires",
		},
		{
			name: "timeout_remove", ours: func(s *ring.SQE) { s.PrepTimeoutRemove(0x77, 0) },
			theirs: func(g *gSQE) { g.PrepareTimeoutRemove(time.Second, 0x77, 0) },
			bug: "giouring PrepareTimeoutRemove takes a duration and stores a timespec address in SQE.addr, len 1 and the target " +
				"in SQE.off; the kernel (and liburing's io_uring_prep_timeout_remove) takes the target user_data in SQE.addr",
			bugFields: []string{"Off", "Addr", "Len"},
			want: func(t *testing.T, s *ring.SQE) {
				if s.Addr != 0x77 || s.Off != 0 || s.Len != 0 {
					t.Errorf("addr %#x off %d len %d, want addr 0x77 off 0 len 0", s.Addr, s.Off, s.Len)
				}
			},
			kernel: "TestTimeoutRemoveAndUpdate",
		},
		{
			name: "timeout_update", ours: func(s *ring.SQE) { s.PrepTimeoutUpdate(tspec, 0x77, 0) },
			theirs: func(g *gSQE) { g.PrepareTimeoutUpdate(time.Second, 0x77, 0) },
			bug: "giouring PrepareTimeoutUpdate stores its own timespec in SQE.addr, len 1 and the target in SQE.off; the kernel " +
				"takes the target user_data in SQE.addr and the new timespec in SQE.addr2 (liburing io_uring_prep_timeout_update)",
			bugFields: []string{"Off", "Addr", "Len"},
			want: func(t *testing.T, s *ring.SQE) {
				wantAddr(t, s.Off, tspec)
				if s.Addr != 0x77 || s.Len != 0 {
					t.Errorf("addr %#x len %d, want 0x77 and 0", s.Addr, s.Len)
				}
			},
			kernel: "TestTimeoutRemoveAndUpdate",
		},
		{
			name: "link_timeout", ours: func(s *ring.SQE) { s.PrepLinkTimeout(tspec, 0) },
			theirs: func(g *gSQE) { g.PrepareLinkTimeout(time.Second, 0) },
			bug: "giouring PrepareLinkTimeout takes a duration and stores the address of a timespec it allocated and " +
				"keeps no reference to; nothing holds it until submission, so the garbage collector may free it",
			bugFields: []string{"Addr"},
			want:      func(t *testing.T, s *ring.SQE) { wantAddr(t, s.Addr, tspec) },
			kernel:    "TestLinkTimeout",
		},
		{
			name: "poll_add", ours: func(s *ring.SQE) { s.PrepPollAdd(fd, unix.POLLIN|unix.POLLRDHUP) },
			theirs: func(g *gSQE) { g.PreparePollAdd(fd, unix.POLLIN|unix.POLLRDHUP) },
		},
		{
			name: "poll_multishot", ours: func(s *ring.SQE) { s.PrepPollMultishot(fd, unix.POLLOUT) },
			theirs: func(g *gSQE) { g.PreparePollMultishot(fd, unix.POLLOUT) },
		},
		{name: "poll_remove", ours: func(s *ring.SQE) { s.PrepPollRemove(0x55) }, theirs: func(g *gSQE) { g.PreparePollRemove(0x55) }},
		{
			name: "msg_ring", ours: func(s *ring.SQE) { s.PrepMsgRing(fd, 99, 0xabcdef, 0) },
			theirs: func(g *gSQE) { g.PrepareMsgRing(fd, 99, 0xabcdef, 0) },
		},
		{
			name: "msg_ring_fd", ours: func(s *ring.SQE) { s.PrepMsgRingFD(fd, 1, 3, 0xbeef, 0) },
			theirs: func(g *gSQE) { g.PrepareMsgRingFd(fd, 1, 3, 0xbeef, 0) },
			bug: "giouring PrepareMsgRingFd stores &msgDataVar (the address of a variable holding IORING_MSG_DATA) in " +
				"SQE.addr; the kernel reads SQE.addr as the command, which must be IORING_MSG_SEND_FD (1)",
			bugFields: []string{"Addr"},
			want: func(t *testing.T, s *ring.SQE) {
				if s.Addr != ring.MsgSendFD {
					t.Errorf("addr %d, want IORING_MSG_SEND_FD", s.Addr)
				}
			},
			kernel: "TestMsgRing",
		},
		{
			name: "msg_ring_fd_alloc", ours: func(s *ring.SQE) { s.PrepMsgRingFD(fd, 1, ring.FileIndexAlloc, 0xbeef, 0) },
			theirs:    func(g *gSQE) { g.PrepareMsgRingFdAlloc(fd, 1, 0xbeef, 0) },
			bug:       "giouring PrepareMsgRingFdAlloc inherits PrepareMsgRingFd's SQE.addr bug (a pointer, not IORING_MSG_SEND_FD)",
			bugFields: []string{"Addr"},
			want: func(t *testing.T, s *ring.SQE) {
				if s.Addr != ring.MsgSendFD || s.SpliceFDIn != -1 {
					t.Errorf("addr %d file_index %d, want IORING_MSG_SEND_FD and IORING_FILE_INDEX_ALLOC", s.Addr, s.SpliceFDIn)
				}
			},
			kernel: "TestMsgRing",
		},
		{
			name: "files_update", ours: func(s *ring.SQE) { s.PrepFilesUpdate(fds, 2) },
			theirs: func(g *gSQE) { g.PrepareFilesUpdate([]int{3, 4}, 2) },
			bug: "giouring PrepareFilesUpdate takes []int (8-byte elements, where the kernel reads __s32) and stores " +
				"&fds (the slice header's address) in SQE.addr",
			bugFields: []string{"Addr"},
			want:      func(t *testing.T, s *ring.SQE) { wantAddr(t, s.Addr, &fds[0]) },
			kernel:    "TestFilesUpdate",
		},
		{
			name: "provide_buffers", ours: func(s *ring.SQE) { s.PrepProvideBuffers(buf, 32, 8, 3, 100) },
			theirs: func(g *gSQE) { g.PrepareProvideBuffers(uintptr(unsafe.Pointer(&buf[0])), 32, 8, 3, 100) },
		},
		{
			name: "remove_buffers", ours: func(s *ring.SQE) { s.PrepRemoveBuffers(8, 3) },
			theirs: func(g *gSQE) { g.PrepareRemoveBuffers(8, 3) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ours ring.SQE
			var theirs gSQE
			if unsafe.Sizeof(theirs) != unsafe.Sizeof(ours) {
				t.Fatalf("giouring SQE is %d bytes", unsafe.Sizeof(theirs))
			}
			tt.ours(&ours)
			tt.theirs(&theirs)
			// Both set user_data after preparing: giouring's prepareRW clears it,
			// liburing's (and ours) leaves it alone.
			ours.UserData = ud
			theirs.UserData = ud
			got := (*ring.SQE)(unsafe.Pointer(&theirs))
			diff := sqeFieldDiff(&ours, got)
			if tt.bug == "" {
				if *(*[64]byte)(unsafe.Pointer(&ours)) != *(*[64]byte)(unsafe.Pointer(&theirs)) {
					t.Fatalf("SQEs differ in %v:\nours     %+v\ngiouring %+v", diff, ours, *got)
				}
				return
			}
			t.Logf("known giouring bug: %s", tt.bug)
			if !reflect.DeepEqual(diff, tt.bugFields) {
				t.Fatalf("SQEs differ in %v, want only the buggy %v:\nours     %+v\ngiouring %+v", diff, tt.bugFields, ours, *got)
			}
			tt.want(t, &ours)
			t.Logf("the kernel's behaviour with our SQE: ring's %s", tt.kernel)
		})
	}
}

func wantAddr[T any](t *testing.T, got uint64, p *T) {
	t.Helper()
	if want := uint64(uintptr(unsafe.Pointer(p))); got != want {
		t.Errorf("address %#x, want %#x", got, want)
	}
}

// rawInet4 is a struct sockaddr_in for 127.0.0.1:port.
func rawInet4(port int) []byte {
	b := make([]byte, unix.SizeofSockaddrInet4)
	binary.NativeEndian.PutUint16(b[0:], unix.AF_INET)
	binary.BigEndian.PutUint16(b[2:], uint16(port))
	copy(b[4:], []byte{127, 0, 0, 1})
	return b
}
