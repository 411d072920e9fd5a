//go:build linux

package ring

// Registration arguments are Go values whose addresses are passed to
// io_uring_register, which reads (and for some opcodes writes) them before it
// returns: no memory here outlives the call except the buffers and buffer rings
// themselves, which callers keep mapped until they unregister them.

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Register calls io_uring_register(2) with a raw opcode. The typed methods below
// cover what ringwire uses; this is the escape hatch.
func (r *Ring) Register(opcode uint32, arg unsafe.Pointer, nr uint32) (int, error) {
	if r.closed {
		return 0, ErrClosed
	}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), uintptr(opcode), uintptr(arg), uintptr(nr), 0, 0)
		if errno == 0 {
			return int(n), nil
		}
		if errno == unix.EINTR {
			continue
		}
		return 0, errnoErr("io_uring_register", errno)
	}
}

func (r *Ring) registerRingFD() error {
	up := struct {
		Offset uint32
		resv   uint32
		Data   uint64
	}{Offset: ^uint32(0), Data: uint64(r.fd)}
	n, err := r.Register(regRingFDs, unsafe.Pointer(&up), 1)
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("ring: register ring fd: kernel registered %d", n)
	}
	r.enterFD = uintptr(up.Offset)
	r.enterFlag = enterRegisteredRing
	return nil
}

func (r *Ring) unregisterRingFD() error {
	up := struct {
		Offset uint32
		resv   uint32
		Data   uint64
	}{Offset: uint32(r.enterFD)}
	_, err := r.Register(unregRingFDs, unsafe.Pointer(&up), 1)
	r.enterFD = uintptr(r.fd)
	r.enterFlag = 0
	return err
}

// RingFDRegistered reports whether io_uring_enter uses the registered ring index.
func (r *Ring) RingFDRegistered() bool { return r.enterFlag != 0 }

func memlockHint(err error, bytes uint64) error {
	if err == nil {
		return nil
	}
	var lim unix.Rlimit
	_ = unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim)
	return fmt.Errorf("ring: registering %d bytes needs RLIMIT_MEMLOCK of at least that (now %d; raise it with ulimit -l or LimitMEMLOCK=, or run with CAP_IPC_LOCK): %w",
		bytes, lim.Cur, err)
}

// RegisterBuffers registers bufs as fixed buffers 0..len(bufs)-1. The memory must
// stay mapped until UnregisterBuffers. liburing: io_uring_register_buffers.
// Requires Linux 5.1.
func (r *Ring) RegisterBuffers(bufs [][]byte) error {
	iov := make([]Iovec, len(bufs))
	var total uint64
	for i, b := range bufs {
		iov[i] = Iovec{Base: bufAddr(b), Len: uint64(len(b))}
		total += uint64(len(b))
	}
	var p unsafe.Pointer
	if len(iov) > 0 {
		p = unsafe.Pointer(&iov[0])
	}
	_, err := r.Register(regBuffers, p, uint32(len(iov)))
	runtime.KeepAlive(iov)
	if err != nil && isErrno(err, unix.ENOMEM) {
		return memlockHint(err, total)
	}
	return err
}

// RegisterBuffersSparse registers a table of n empty fixed-buffer slots, to be
// filled by UpdateBuffers. liburing: io_uring_register_buffers_sparse. Requires Linux 5.19.
func (r *Ring) RegisterBuffersSparse(n uint32) error {
	rr := RsrcRegister{Nr: n, Flags: RsrcRegisterSparse}
	_, err := r.Register(regBuffers2, unsafe.Pointer(&rr), uint32(unsafe.Sizeof(rr)))
	return err
}

// UpdateBuffers replaces fixed buffers from slot off with bufs (nil clears one).
// liburing: io_uring_register_buffers_update_tag. Requires Linux 5.13.
func (r *Ring) UpdateBuffers(off uint32, bufs [][]byte) error {
	iov := make([]Iovec, len(bufs))
	var total uint64
	for i, b := range bufs {
		iov[i] = Iovec{Base: bufAddr(b), Len: uint64(len(b))}
		total += uint64(len(b))
	}
	up := RsrcUpdate2{Offset: off, Nr: uint32(len(iov))}
	if len(iov) > 0 {
		up.Data = uint64(uintptr(unsafe.Pointer(&iov[0])))
	}
	_, err := r.Register(regBuffersUpdate, unsafe.Pointer(&up), uint32(unsafe.Sizeof(up)))
	runtime.KeepAlive(iov)
	if err != nil && isErrno(err, unix.ENOMEM) {
		return memlockHint(err, total)
	}
	return err
}

// UnregisterBuffers drops every fixed buffer. liburing: io_uring_unregister_buffers.
func (r *Ring) UnregisterBuffers() error {
	_, err := r.Register(unregBuffers, nil, 0)
	return err
}

// RegisterFiles registers fds as fixed files (-1 leaves a slot empty). liburing:
// io_uring_register_files. Requires Linux 5.1.
func (r *Ring) RegisterFiles(fds []int32) error {
	var p unsafe.Pointer
	if len(fds) > 0 {
		p = unsafe.Pointer(&fds[0])
	}
	_, err := r.Register(regFiles, p, uint32(len(fds)))
	runtime.KeepAlive(fds)
	return err
}

// RegisterFilesSparse registers n empty fixed-file slots. liburing:
// io_uring_register_files_sparse. Requires Linux 5.19.
func (r *Ring) RegisterFilesSparse(n uint32) error {
	rr := RsrcRegister{Nr: n, Flags: RsrcRegisterSparse}
	_, err := r.Register(regFiles2, unsafe.Pointer(&rr), uint32(unsafe.Sizeof(rr)))
	return err
}

// UpdateFiles replaces fixed files from slot off with fds and returns how many
// were updated. liburing: io_uring_register_files_update. Requires Linux 5.5.
func (r *Ring) UpdateFiles(off uint32, fds []int32) (int, error) {
	up := RsrcUpdate2{Offset: off, Nr: uint32(len(fds))}
	if len(fds) > 0 {
		up.Data = uint64(uintptr(unsafe.Pointer(&fds[0])))
	}
	n, err := r.Register(regFilesUpdate2, unsafe.Pointer(&up), uint32(unsafe.Sizeof(up)))
	runtime.KeepAlive(fds)
	return n, err
}

// RegisterFileAllocRange limits the slots direct accept/socket may allocate to
// [off, off+n). liburing: io_uring_register_file_alloc_range. Requires Linux 6.0.
func (r *Ring) RegisterFileAllocRange(off, n uint32) error {
	fr := FileIndexRange{Off: off, Len: n}
	_, err := r.Register(regFileAllocRange, unsafe.Pointer(&fr), 0)
	return err
}

// UnregisterFiles drops every fixed file. liburing: io_uring_unregister_files.
func (r *Ring) UnregisterFiles() error {
	_, err := r.Register(unregFiles, nil, 0)
	return err
}

// RegisterBufRing registers a provided buffer ring. With PbufRingMmap in
// reg.Flags the kernel allocates the ring and MmapBufRing maps it; otherwise
// reg.RingAddr points at page-aligned memory of RingEntries*16 bytes that stays
// mapped until UnregisterBufRing. liburing: io_uring_register_buf_ring.
// Requires Linux 5.19 (PbufRingMmap 6.4, PbufRingInc 6.12).
func (r *Ring) RegisterBufRing(reg *BufReg) error {
	_, err := r.Register(regPbufRing, unsafe.Pointer(reg), 1)
	return err
}

// UnregisterBufRing unregisters buffer group bgid. liburing:
// io_uring_unregister_buf_ring.
func (r *Ring) UnregisterBufRing(bgid uint16) error {
	reg := BufReg{BGID: bgid}
	_, err := r.Register(unregPbufRing, unsafe.Pointer(&reg), 1)
	return err
}

// MmapBufRing maps the kernel-allocated ring of group bgid (registered with
// PbufRingMmap); size is entries*16 bytes. Unmap it with unix.Munmap after
// UnregisterBufRing. Requires Linux 6.4.
func (r *Ring) MmapBufRing(bgid uint16, size int) ([]byte, error) {
	return mmapRegion(r.fd, int64(offPbufRing|uint64(bgid)<<offPbufShift), size)
}

// BufRingHead returns the kernel's head of buffer group bgid.
// liburing: io_uring_buf_ring_head. Requires Linux 6.8.
func (r *Ring) BufRingHead(bgid uint16) (uint16, error) {
	st := BufStatus{BufGroup: uint32(bgid)}
	_, err := r.Register(regPbufStatus, unsafe.Pointer(&st), 1)
	return uint16(st.Head), err
}

// RegisterEventFD makes the kernel signal fd on every posted CQE. liburing:
// io_uring_register_eventfd. Requires Linux 5.2.
func (r *Ring) RegisterEventFD(fd int) error {
	v := int32(fd)
	_, err := r.Register(regEventFD, unsafe.Pointer(&v), 1)
	return err
}

// RegisterEventFDAsync signals fd only for completions posted asynchronously.
// liburing: io_uring_register_eventfd_async. Requires Linux 5.6.
func (r *Ring) RegisterEventFDAsync(fd int) error {
	v := int32(fd)
	_, err := r.Register(regEventFDAsync, unsafe.Pointer(&v), 1)
	return err
}

// UnregisterEventFD removes the registered eventfd. liburing: io_uring_unregister_eventfd.
func (r *Ring) UnregisterEventFD() error {
	_, err := r.Register(unregEventFD, nil, 0)
	return err
}

// RegisterNAPI enables NAPI busy polling for the ring's sockets (busyPoll in
// microseconds). liburing: io_uring_register_napi. Requires Linux 6.9.
func (r *Ring) RegisterNAPI(busyPollUsec uint32, prefer bool) error {
	n := NAPIReg{BusyPollTo: busyPollUsec}
	if prefer {
		n.PreferBusyPoll = 1
	}
	_, err := r.Register(regNAPI, unsafe.Pointer(&n), 1)
	return err
}

// UnregisterNAPI disables NAPI busy polling. liburing: io_uring_unregister_napi.
func (r *Ring) UnregisterNAPI() error {
	var n NAPIReg
	_, err := r.Register(unregNAPI, unsafe.Pointer(&n), 1)
	return err
}

// RegisterRestrictions limits what a ring created with SetupRDisabled may do:
// only the listed SQE opcodes, register opcodes and SQE flags. Call EnableRings
// afterwards. liburing: io_uring_register_restrictions. Requires Linux 5.10.
func (r *Ring) RegisterRestrictions(res []Restriction) error {
	if len(res) == 0 {
		return fmt.Errorf("ring: no restrictions given")
	}
	_, err := r.Register(regRestrictions, unsafe.Pointer(&res[0]), uint32(len(res)))
	runtime.KeepAlive(res)
	return err
}

// EnableRings enables a ring created with SetupRDisabled. With SetupSingleIssuer,
// the calling thread becomes the submitter. liburing: io_uring_enable_rings.
func (r *Ring) EnableRings() error {
	_, err := r.Register(regEnableRings, nil, 0)
	return err
}
