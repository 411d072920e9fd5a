package ring

import (
	"encoding/binary"
	"errors"
	"syscall"
	"unsafe"
)

// Err returns nil for a non-negative result, or the errno the kernel put in Res,
// boxed without allocation for the common networking errnos.
func (c *CQE) Err() error {
	if c.Res >= 0 {
		return nil
	}
	return Errno(syscall.Errno(-c.Res))
}

// Errno returns the errno in Res, or 0 for a non-negative result.
func (c *CQE) Errno() syscall.Errno {
	if c.Res >= 0 {
		return 0
	}
	return syscall.Errno(-c.Res)
}

// More reports IORING_CQE_F_MORE: a multishot request stays armed and will post again.
func (c *CQE) More() bool { return c.Flags&CQEFMore != 0 }

// HasBuffer reports IORING_CQE_F_BUFFER: the kernel picked a provided buffer.
func (c *CQE) HasBuffer() bool { return c.Flags&CQEFBuffer != 0 }

// BufferID returns the provided buffer id (valid when HasBuffer).
func (c *CQE) BufferID() uint16 { return uint16(c.Flags >> CQEBufferShift) }

// Notif reports IORING_CQE_F_NOTIF: a SEND_ZC notification that the buffer is free.
func (c *CQE) Notif() bool { return c.Flags&CQEFNotif != 0 }

// SockNonempty reports IORING_CQE_F_SOCK_NONEMPTY: more data waits in the socket.
func (c *CQE) SockNonempty() bool { return c.Flags&CQEFSockNonempty != 0 }

// BufMore reports IORING_CQE_F_BUF_MORE: with an incremental buffer ring (6.12)
// the kernel will keep filling the same buffer, so it must not be recycled yet.
func (c *CQE) BufMore() bool { return c.Flags&CQEFBufMore != 0 }

// ZCCopied reports, for a SEND_ZC notification with REPORT_USAGE, that the
// kernel fell back to copying the data (IORING_NOTIF_USAGE_ZC_COPIED).
func (c *CQE) ZCCopied() bool { return c.Notif() && uint32(c.Res)&NotifUsageZCCopied != 0 }

// ErrRecvmsgTruncated is returned by ParseRecvmsgOut for a buffer too short for
// the lengths its header claims.
var ErrRecvmsgTruncated = errors.New("ring: recvmsg_out lengths exceed the buffer")

// RecvmsgOutView is a parsed io_uring_recvmsg_out buffer from a multishot recvmsg:
// views into the buffer, no copies.
type RecvmsgOutView struct {
	Header  RecvmsgOut // the header as the kernel wrote it
	Name    []byte     // the source address, at most the msg_namelen of the request
	Control []byte     // ancillary data, at most msg_controllen
	Payload []byte     // the datagram bytes that fit
	// NameTruncated reports the source address was longer than nameLen.
	NameTruncated bool
	// ControlTruncated reports MSG_CTRUNC or a control length over controlLen.
	ControlTruncated bool
	// PayloadTruncated reports MSG_TRUNC: the datagram was larger than the buffer.
	PayloadTruncated bool
}

const recvmsgOutSize = int(unsafe.Sizeof(RecvmsgOut{}))

// ParseRecvmsgOut parses buf, the bytes a multishot recvmsg completion reported
// (buf[:cqe.Res]), for a request whose msghdr had nameLen and controlLen. Every
// length is checked against buf; nothing is trusted. liburing:
// io_uring_recvmsg_validate, io_uring_recvmsg_name, io_uring_recvmsg_payload.
func ParseRecvmsgOut(buf []byte, nameLen, controlLen uint32) (RecvmsgOutView, error) {
	var v RecvmsgOutView
	if len(buf) < recvmsgOutSize {
		return v, ErrRecvmsgTruncated
	}
	h := RecvmsgOut{
		NameLen:    le32(buf[0:]),
		ControlLen: le32(buf[4:]),
		PayloadLen: le32(buf[8:]),
		Flags:      le32(buf[12:]),
	}
	v.Header = h
	// The kernel lays out header, name area (nameLen bytes, always), control
	// area (controlLen bytes, always), then the payload.
	rest := uint64(len(buf) - recvmsgOutSize)
	if uint64(nameLen)+uint64(controlLen) > rest {
		return v, ErrRecvmsgTruncated
	}
	off := recvmsgOutSize
	nl := h.NameLen
	if nl > nameLen {
		nl = nameLen
		v.NameTruncated = true
	}
	v.Name = buf[off : off+int(nl) : off+int(nl)]
	off += int(nameLen)
	cl := h.ControlLen
	if cl > controlLen {
		cl = controlLen
		v.ControlTruncated = true
	}
	if h.Flags&msgCtrunc != 0 {
		v.ControlTruncated = true
	}
	v.Control = buf[off : off+int(cl) : off+int(cl)]
	off += int(controlLen)
	avail := uint64(len(buf) - off)
	pl := uint64(h.PayloadLen)
	if pl > avail {
		pl = avail
		v.PayloadTruncated = true
	}
	if h.Flags&msgTrunc != 0 {
		v.PayloadTruncated = true
	}
	v.Payload = buf[off : off+int(pl) : off+int(pl)]
	return v, nil
}

const (
	msgTrunc  = 0x20 // MSG_TRUNC
	msgCtrunc = 0x08 // MSG_CTRUNC
)

func le32(b []byte) uint32 { return binary.NativeEndian.Uint32(b) }
