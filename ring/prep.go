package ring

// Preparation helpers write SQE fields only; they never submit. Pointers they
// store (buffers, sockaddrs, msghdrs, timespecs) are read by the kernel at
// submission or, for async operations, until the final CQE: the caller keeps that
// memory alive and unmoved (off-heap, or pinned with runtime.Pinner) until then.
// Each helper mirrors the liburing function it names; the layout of every helper
// that giouring also has is checked against it in bench/giouringref.

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

func bufAddr(b []byte) uint64 {
	if len(b) == 0 {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(&b[0])))
}

func ptr[T any](p *T) uint64 { return uint64(uintptr(unsafe.Pointer(p))) }

// PrepRW fills the common fields of an SQE and clears the others except
// UserData, which, as in liburing, is left as the caller set it.
// liburing: io_uring_prep_rw.
func (s *SQE) PrepRW(op Op, fd int32, addr uint64, length uint32, off uint64) {
	*s = SQE{Opcode: op, FD: fd, Addr: addr, Len: length, Off: off, UserData: s.UserData}
}

func (s *SQE) setTargetFixedFile(fileIndex uint32) {
	// liburing __io_uring_set_target_fixed_file: 0 means "not direct", so the
	// kernel takes index+1; IORING_FILE_INDEX_ALLOC wraps to ^0 on purpose.
	s.SpliceFDIn = int32(fileIndex + 1)
}

// PrepNop prepares a no-op. liburing: io_uring_prep_nop. Requires Linux 5.1.
func (s *SQE) PrepNop() { s.PrepRW(OpNop, -1, 0, 0, 0) }

// PrepRead reads into buf at offset off. liburing: io_uring_prep_read. Requires Linux 5.6.
func (s *SQE) PrepRead(fd int, buf []byte, off uint64) {
	s.PrepRW(OpRead, int32(fd), bufAddr(buf), uint32(len(buf)), off)
}

// PrepWrite writes buf at offset off. liburing: io_uring_prep_write. Requires Linux 5.6.
func (s *SQE) PrepWrite(fd int, buf []byte, off uint64) {
	s.PrepRW(OpWrite, int32(fd), bufAddr(buf), uint32(len(buf)), off)
}

// PrepReadFixed reads into buf, which lies inside registered buffer bufIndex.
// liburing: io_uring_prep_read_fixed. Requires Linux 5.1.
func (s *SQE) PrepReadFixed(fd int, buf []byte, off uint64, bufIndex uint16) {
	s.PrepRW(OpReadFixed, int32(fd), bufAddr(buf), uint32(len(buf)), off)
	s.BufIndex = bufIndex
}

// PrepWriteFixed writes buf, which lies inside registered buffer bufIndex.
// liburing: io_uring_prep_write_fixed. Requires Linux 5.1.
func (s *SQE) PrepWriteFixed(fd int, buf []byte, off uint64, bufIndex uint16) {
	s.PrepRW(OpWriteFixed, int32(fd), bufAddr(buf), uint32(len(buf)), off)
	s.BufIndex = bufIndex
}

// PrepReadMultishot reads repeatedly into buffers of group, posting a CQE per
// read. liburing: io_uring_prep_read_multishot. Requires Linux 6.7.
func (s *SQE) PrepReadMultishot(fd int, nbytes uint32, off uint64, group uint16) {
	s.PrepRW(OpReadMultishot, int32(fd), 0, nbytes, off)
	s.BufIndex = group
	s.Flags = SQEBufferSelect
}

// PrepAccept accepts a connection on fd. addr (may be nil) receives the peer's
// sockaddr and addrLen its length. liburing: io_uring_prep_accept. Requires Linux 5.5.
func (s *SQE) PrepAccept(fd int, addr *unix.RawSockaddrAny, addrLen *uint32, flags int) {
	s.PrepRW(OpAccept, int32(fd), ptr(addr), 0, ptr(addrLen))
	s.OpFlags = uint32(flags)
}

// PrepAcceptDirect accepts into the registered file table at fileIndex
// (FileIndexAlloc picks a free slot). liburing: io_uring_prep_accept_direct. Requires Linux 5.19.
func (s *SQE) PrepAcceptDirect(fd int, addr *unix.RawSockaddrAny, addrLen *uint32, flags int, fileIndex uint32) {
	s.PrepAccept(fd, addr, addrLen, flags)
	if fileIndex == FileIndexAlloc {
		fileIndex--
	}
	s.setTargetFixedFile(fileIndex)
}

// PrepMultishotAccept accepts connections until cancelled or a CQE without
// F_MORE. liburing: io_uring_prep_multishot_accept. Requires Linux 5.19.
func (s *SQE) PrepMultishotAccept(fd int, addr *unix.RawSockaddrAny, addrLen *uint32, flags int) {
	s.PrepAccept(fd, addr, addrLen, flags)
	s.IOPrio |= AcceptMultishot
}

// PrepMultishotAcceptDirect is PrepMultishotAccept into allocated fixed-file
// slots. liburing: io_uring_prep_multishot_accept_direct. Requires Linux 5.19.
func (s *SQE) PrepMultishotAcceptDirect(fd int, addr *unix.RawSockaddrAny, addrLen *uint32, flags int) {
	s.PrepMultishotAccept(fd, addr, addrLen, flags)
	s.setTargetFixedFile(FileIndexAlloc - 1)
}

// PrepConnect connects fd to the raw sockaddr sa. liburing: io_uring_prep_connect.
// Requires Linux 5.5.
func (s *SQE) PrepConnect(fd int, sa []byte) {
	s.PrepRW(OpConnect, int32(fd), bufAddr(sa), 0, uint64(len(sa)))
}

// PrepBind binds fd to the raw sockaddr sa. liburing: io_uring_prep_bind. Requires Linux 6.11.
func (s *SQE) PrepBind(fd int, sa []byte) {
	s.PrepRW(OpBind, int32(fd), bufAddr(sa), 0, uint64(len(sa)))
}

// PrepListen marks fd as listening. liburing: io_uring_prep_listen. Requires Linux 6.11.
func (s *SQE) PrepListen(fd int, backlog int) {
	s.PrepRW(OpListen, int32(fd), 0, uint32(backlog), 0)
}

// PrepSocket creates a socket. liburing: io_uring_prep_socket. Requires Linux 5.19.
func (s *SQE) PrepSocket(domain, typ, proto int, flags uint32) {
	s.PrepRW(OpSocket, int32(domain), 0, uint32(proto), uint64(typ))
	s.OpFlags = flags
}

// PrepSocketDirect creates a socket in the fixed-file slot fileIndex
// (FileIndexAlloc picks one). liburing: io_uring_prep_socket_direct. Requires Linux 5.19.
func (s *SQE) PrepSocketDirect(domain, typ, proto int, fileIndex uint32, flags uint32) {
	s.PrepSocket(domain, typ, proto, flags)
	if fileIndex == FileIndexAlloc {
		fileIndex--
	}
	s.setTargetFixedFile(fileIndex)
}

// PrepRecv receives into buf. liburing: io_uring_prep_recv. Requires Linux 5.6.
func (s *SQE) PrepRecv(fd int, buf []byte, flags int) {
	s.PrepRW(OpRecv, int32(fd), bufAddr(buf), uint32(len(buf)), 0)
	s.OpFlags = uint32(flags)
}

// PrepRecvBufSelect receives into a buffer the kernel picks from provided buffer
// group group, at most maxLen bytes (0: the buffer's size). Requires Linux 5.7
// (5.19 for ring-mapped groups).
func (s *SQE) PrepRecvBufSelect(fd int, group uint16, maxLen uint32, flags int) {
	s.PrepRW(OpRecv, int32(fd), 0, maxLen, 0)
	s.OpFlags = uint32(flags)
	s.Flags = SQEBufferSelect
	s.BufIndex = group
}

// PrepRecvMultishot receives repeatedly into buffers of group, one CQE per
// receive, until a CQE without F_MORE. liburing: io_uring_prep_recv_multishot
// with IOSQE_BUFFER_SELECT. Requires Linux 6.0.
func (s *SQE) PrepRecvMultishot(fd int, group uint16, flags int) {
	s.PrepRecvBufSelect(fd, group, 0, flags)
	s.IOPrio |= RecvMultishot
}

// PrepRecvBundle is PrepRecvMultishot that may fill several consecutive buffers
// in one CQE (IORING_RECVSEND_BUNDLE). Requires Linux 6.10 (FeatRecvSendBundle).
func (s *SQE) PrepRecvBundle(fd int, group uint16, flags int) {
	s.PrepRecvMultishot(fd, group, flags)
	s.IOPrio |= RecvSendBundle
}

// PrepRecvmsg receives a message described by msg. liburing: io_uring_prep_recvmsg.
// Requires Linux 5.3.
func (s *SQE) PrepRecvmsg(fd int, msg *unix.Msghdr, flags uint32) {
	s.PrepRW(OpRecvmsg, int32(fd), ptr(msg), 1, 0)
	s.OpFlags = flags
}

// PrepRecvmsgMultishot receives datagrams repeatedly into buffers of group; each
// buffer starts with an io_uring_recvmsg_out header (see ParseRecvmsgOut). msg
// gives only the name and control lengths. liburing: io_uring_prep_recvmsg_multishot.
// Requires Linux 6.0.
func (s *SQE) PrepRecvmsgMultishot(fd int, msg *unix.Msghdr, group uint16, flags uint32) {
	s.PrepRecvmsg(fd, msg, flags)
	s.IOPrio |= RecvMultishot
	s.Flags = SQEBufferSelect
	s.BufIndex = group
}

// PrepSend sends buf. liburing: io_uring_prep_send. Requires Linux 5.6.
func (s *SQE) PrepSend(fd int, buf []byte, flags int) {
	s.PrepRW(OpSend, int32(fd), bufAddr(buf), uint32(len(buf)), 0)
	s.OpFlags = uint32(flags)
}

// SetSendAddr adds a destination to a SEND or SEND_ZC: sa is a raw sockaddr.
// liburing: io_uring_prep_send_set_addr. Requires Linux 6.0.
func (s *SQE) SetSendAddr(sa []byte) {
	s.Off = bufAddr(sa)
	s.SpliceFDIn = int32(uint16(len(sa))) // addr_len, the low 16 bits of the union
}

// PrepSendto sends buf to the raw sockaddr sa. liburing: io_uring_prep_sendto.
// Requires Linux 6.0.
func (s *SQE) PrepSendto(fd int, buf []byte, flags int, sa []byte) {
	s.PrepSend(fd, buf, flags)
	s.SetSendAddr(sa)
}

// PrepSendBundle sends as many buffers of group as are queued, up to length
// bytes (0: all), in one operation. The caller sets SQEBufferSelect and the group
// in BufIndex. liburing: io_uring_prep_send_bundle. Requires Linux 6.10.
func (s *SQE) PrepSendBundle(fd int, length uint32, flags int) {
	s.PrepRW(OpSend, int32(fd), 0, length, 0)
	s.OpFlags = uint32(flags)
	s.IOPrio |= RecvSendBundle
}

// PrepSendZC sends buf without copying. Two CQEs follow: the send's result (with
// F_MORE) and a notification (F_NOTIF) after which buf may be reused. zcFlags
// takes SendZCReportUsage. liburing: io_uring_prep_send_zc. Requires Linux 6.0.
func (s *SQE) PrepSendZC(fd int, buf []byte, flags int, zcFlags uint16) {
	s.PrepRW(OpSendZC, int32(fd), bufAddr(buf), uint32(len(buf)), 0)
	s.OpFlags = uint32(flags)
	s.IOPrio = zcFlags
}

// PrepSendZCFixed is PrepSendZC from registered buffer bufIndex; buf must lie
// inside it. liburing: io_uring_prep_send_zc_fixed. Requires Linux 6.0.
func (s *SQE) PrepSendZCFixed(fd int, buf []byte, flags int, zcFlags uint16, bufIndex uint16) {
	s.PrepSendZC(fd, buf, flags, zcFlags)
	s.IOPrio |= RecvSendFixedBuf
	s.BufIndex = bufIndex
}

// PrepSendmsg sends msg. liburing: io_uring_prep_sendmsg. Requires Linux 5.3.
func (s *SQE) PrepSendmsg(fd int, msg *unix.Msghdr, flags uint32) {
	s.PrepRW(OpSendmsg, int32(fd), ptr(msg), 1, 0)
	s.OpFlags = flags
}

// PrepSendmsgZC is the zero-copy PrepSendmsg, with a notification CQE like
// PrepSendZC. liburing: io_uring_prep_sendmsg_zc. Requires Linux 6.1.
func (s *SQE) PrepSendmsgZC(fd int, msg *unix.Msghdr, flags uint32) {
	s.PrepSendmsg(fd, msg, flags)
	s.Opcode = OpSendmsgZC
}

// PrepSplice moves nbytes from fdIn to fdOut; one of them must be a pipe. An
// offset of -1 means "use and update the file position". liburing:
// io_uring_prep_splice. Requires Linux 5.7.
func (s *SQE) PrepSplice(fdIn int, offIn int64, fdOut int, offOut int64, nbytes uint32, spliceFlags uint32) {
	s.PrepRW(OpSplice, int32(fdOut), uint64(offIn), nbytes, uint64(offOut))
	s.SpliceFDIn = int32(fdIn)
	s.OpFlags = spliceFlags
}

// PrepClose closes fd. liburing: io_uring_prep_close. Requires Linux 5.6.
func (s *SQE) PrepClose(fd int) { s.PrepRW(OpClose, int32(fd), 0, 0, 0) }

// PrepCloseDirect closes fixed-file slot fileIndex. liburing:
// io_uring_prep_close_direct. Requires Linux 5.15.
func (s *SQE) PrepCloseDirect(fileIndex uint32) {
	s.PrepClose(0)
	s.setTargetFixedFile(fileIndex)
}

// PrepShutdown shuts down part of a full-duplex connection (unix.SHUT_*).
// liburing: io_uring_prep_shutdown. Requires Linux 5.11.
func (s *SQE) PrepShutdown(fd int, how int) { s.PrepRW(OpShutdown, int32(fd), 0, uint32(how), 0) }

// PrepCancel64 cancels the request whose user_data is userData (with CancelAll:
// every such request). liburing: io_uring_prep_cancel64. Requires Linux 5.5.
func (s *SQE) PrepCancel64(userData uint64, flags uint32) {
	s.PrepRW(OpAsyncCancel, -1, 0, 0, 0)
	s.Addr = userData
	s.OpFlags = flags
}

// PrepCancelFD cancels requests on fd (with CancelAll: every one). liburing:
// io_uring_prep_cancel_fd. Requires Linux 5.19.
func (s *SQE) PrepCancelFD(fd int, flags uint32) {
	s.PrepRW(OpAsyncCancel, int32(fd), 0, 0, 0)
	s.OpFlags = flags | CancelFD
}

// PrepCancelAny cancels every pending request on the ring (CancelAny|CancelAll).
// Requires Linux 5.19.
func (s *SQE) PrepCancelAny() {
	s.PrepRW(OpAsyncCancel, -1, 0, 0, 0)
	s.OpFlags = CancelAny | CancelAll
}

// PrepTimeout completes after ts or after count other completions, whichever is
// first (-ETIME on expiry). With TimeoutMultishot it fires every ts, count times
// (0: until cancelled; Linux 6.4). liburing: io_uring_prep_timeout. Requires Linux 5.4.
func (s *SQE) PrepTimeout(ts *Timespec, count uint32, flags uint32) {
	s.PrepRW(OpTimeout, -1, ptr(ts), 1, uint64(count))
	s.OpFlags = flags
}

// PrepTimeoutRemove removes the timeout whose user_data is userData. liburing:
// io_uring_prep_timeout_remove. Requires Linux 5.5.
func (s *SQE) PrepTimeoutRemove(userData uint64, flags uint32) {
	s.PrepRW(OpTimeoutRemove, -1, 0, 0, 0)
	s.Addr = userData
	s.OpFlags = flags
}

// PrepTimeoutUpdate rearms the timeout userData to ts. liburing:
// io_uring_prep_timeout_update. Requires Linux 5.11.
func (s *SQE) PrepTimeoutUpdate(ts *Timespec, userData uint64, flags uint32) {
	s.PrepRW(OpTimeoutRemove, -1, 0, 0, ptr(ts))
	s.Addr = userData
	s.OpFlags = flags | TimeoutUpdate
}

// PrepLinkTimeout bounds the previous SQE, which must carry SQEIOLink: if it is
// not done after ts it is cancelled. liburing: io_uring_prep_link_timeout.
// Requires Linux 5.5.
func (s *SQE) PrepLinkTimeout(ts *Timespec, flags uint32) {
	s.PrepRW(OpLinkTimeout, -1, ptr(ts), 1, 0)
	s.OpFlags = flags
}

// PrepPollAdd completes when fd has any of the events in mask (unix.POLLIN...).
// liburing: io_uring_prep_poll_add. Requires Linux 5.1.
func (s *SQE) PrepPollAdd(fd int, mask uint32) {
	s.PrepRW(OpPollAdd, int32(fd), 0, 0, 0)
	s.OpFlags = mask
}

// PrepPollMultishot posts a CQE each time fd becomes ready, until cancelled.
// liburing: io_uring_prep_poll_multishot. Requires Linux 5.13.
func (s *SQE) PrepPollMultishot(fd int, mask uint32) {
	s.PrepPollAdd(fd, mask)
	s.Len = PollAddMulti
}

// PrepPollRemove removes the poll request userData. liburing:
// io_uring_prep_poll_remove. Requires Linux 5.1.
func (s *SQE) PrepPollRemove(userData uint64) {
	s.PrepRW(OpPollRemove, -1, 0, 0, 0)
	s.Addr = userData
}

// PrepMsgRing posts a CQE with user_data data and res length on the ring ringFD.
// liburing: io_uring_prep_msg_ring. Requires Linux 5.18.
func (s *SQE) PrepMsgRing(ringFD int, length uint32, data uint64, flags uint32) {
	s.PrepRW(OpMsgRing, int32(ringFD), 0, length, data)
	s.OpFlags = flags
}

// PrepMsgRingFD passes the fixed file sourceFD of this ring into slot targetFD
// of ring ringFD (FileIndexAlloc picks one) and posts a CQE there with data.
// liburing: io_uring_prep_msg_ring_fd. Requires Linux 6.0.
func (s *SQE) PrepMsgRingFD(ringFD int, sourceFD int, targetFD uint32, data uint64, flags uint32) {
	s.PrepRW(OpMsgRing, int32(ringFD), MsgSendFD, 0, data)
	s.Addr3 = uint64(sourceFD)
	if targetFD == FileIndexAlloc {
		targetFD--
	}
	s.setTargetFixedFile(targetFD)
	s.OpFlags = flags
}

// PrepFutexWait waits while *addr == val (32-bit futex, Futex2SizeU32|Futex2Private
// in futexFlags). liburing: io_uring_prep_futex_wait. Requires Linux 6.7.
func (s *SQE) PrepFutexWait(addr *uint32, val uint64, mask uint64, futexFlags uint32) {
	s.PrepRW(OpFutexWait, int32(futexFlags), ptr(addr), 0, val)
	s.Addr3 = mask
}

// PrepFutexWake wakes up to n waiters on addr. liburing: io_uring_prep_futex_wake.
// Requires Linux 6.7.
func (s *SQE) PrepFutexWake(addr *uint32, n uint64, mask uint64, futexFlags uint32) {
	s.PrepRW(OpFutexWake, int32(futexFlags), ptr(addr), 0, n)
	s.Addr3 = mask
}

// PrepFilesUpdate replaces registered files from offset with fds (-1 clears a
// slot). liburing: io_uring_prep_files_update. Requires Linux 5.6.
func (s *SQE) PrepFilesUpdate(fds []int32, offset int) {
	var p uint64
	if len(fds) > 0 {
		p = ptr(&fds[0])
	}
	s.PrepRW(OpFilesUpdate, -1, p, uint32(len(fds)), uint64(offset))
}

// PrepProvideBuffers hands nr buffers of size each, starting at addr, to group
// (the legacy, pre-ring interface). liburing: io_uring_prep_provide_buffers.
// Requires Linux 5.7.
func (s *SQE) PrepProvideBuffers(addr []byte, size uint32, nr int, group uint16, bid uint16) {
	s.PrepRW(OpProvideBuffers, int32(nr), bufAddr(addr), size, uint64(bid))
	s.BufIndex = group
}

// PrepRemoveBuffers removes nr legacy provided buffers from group. liburing:
// io_uring_prep_remove_buffers. Requires Linux 5.7.
func (s *SQE) PrepRemoveBuffers(nr int, group uint16) {
	s.PrepRW(OpRemoveBuffers, int32(nr), 0, 0, 0)
	s.BufIndex = group
}
