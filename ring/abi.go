package ring

// This file mirrors the kernel's io_uring ABI from include/uapi/linux/io_uring.h
// (Linux 6.18). Sizes and offsets are asserted at compile time below and again in
// abi_test.go, so a field that drifts fails the build rather than corrupting an SQE.

import "unsafe"

// SQE is one submission queue entry, struct io_uring_sqe (64 bytes).
//
// The kernel's struct is a set of unions; the Go fields keep the name of the
// first member of each union and the accessor methods name the others.
type SQE struct {
	Opcode      Op       // opcode
	Flags       SQEFlags // flags (IOSQE_*)
	IOPrio      uint16   // ioprio; for send/recv the IORING_RECVSEND_* flags
	FD          int32    // fd
	Off         uint64   // off / addr2 / cmd_op
	Addr        uint64   // addr / splice_off_in / level+optname
	Len         uint32   // len
	OpFlags     uint32   // rw_flags, msg_flags, poll32_events, timeout_flags, accept_flags, ...
	UserData    uint64   // user_data, returned unchanged in the CQE
	BufIndex    uint16   // buf_index / buf_group
	Personality uint16   // personality
	SpliceFDIn  int32    // splice_fd_in / file_index / optlen / addr_len (low 16 bits)
	Addr3       uint64   // addr3 / optval
	_pad2       uint64   // __pad2[0]
}

// CQE is one completion queue entry, struct io_uring_cqe (16 bytes, no CQE32).
type CQE struct {
	UserData uint64   // user_data copied from the SQE
	Res      int32    // result: a count or -errno
	Flags    CQEFlags // IORING_CQE_F_*
}

// Params is struct io_uring_params, passed to io_uring_setup.
type Params struct {
	SQEntries    uint32     // sq_entries: SQ size the kernel chose
	CQEntries    uint32     // cq_entries: CQ size (in with SetupCQSize, out)
	Flags        SetupFlags // flags: IORING_SETUP_*
	SQThreadCPU  uint32     // sq_thread_cpu (SetupSQAff)
	SQThreadIdle uint32     // sq_thread_idle in milliseconds (SetupSQPoll)
	Features     Features   // features: IORING_FEAT_*, filled by the kernel
	WQFD         uint32     // wq_fd (SetupAttachWQ)
	resv         [3]uint32
	SQOff        SQRingOffsets // sq_off, filled by the kernel
	CQOff        CQRingOffsets // cq_off, filled by the kernel
}

// SQRingOffsets is struct io_sqring_offsets.
type SQRingOffsets struct {
	Head        uint32 // head
	Tail        uint32 // tail
	RingMask    uint32 // ring_mask
	RingEntries uint32 // ring_entries
	Flags       uint32 // flags (IORING_SQ_*)
	Dropped     uint32 // dropped
	Array       uint32 // array
	resv1       uint32
	UserAddr    uint64 // user_addr (SetupNoMmap)
}

// CQRingOffsets is struct io_cqring_offsets.
type CQRingOffsets struct {
	Head        uint32 // head
	Tail        uint32 // tail
	RingMask    uint32 // ring_mask
	RingEntries uint32 // ring_entries
	Overflow    uint32 // overflow
	CQEs        uint32 // cqes
	Flags       uint32 // flags (IORING_CQ_*)
	resv1       uint32
	UserAddr    uint64 // user_addr (SetupNoMmap)
}

// GeteventsArg is struct io_uring_getevents_arg, used with IORING_ENTER_EXT_ARG.
type GeteventsArg struct {
	Sigmask     uint64 // sigmask: pointer to a sigset, 0 for none
	SigmaskSz   uint32 // sigmask_sz
	MinWaitUsec uint32 // min_wait_usec (Linux 6.12, IORING_FEAT_MIN_TIMEOUT); pad before
	TS          uint64 // pointer to a Timespec
}

// Timespec is struct __kernel_timespec.
type Timespec struct {
	Sec  int64 // tv_sec
	Nsec int64 // tv_nsec
}

// BufReg is struct io_uring_buf_reg, for IORING_REGISTER_PBUF_RING.
type BufReg struct {
	RingAddr    uint64 // ring_addr: page-aligned ring memory (0 with PbufRingMmap)
	RingEntries uint32 // ring_entries: a power of two
	BGID        uint16 // bgid: the buffer group id
	Flags       uint16 // IOU_PBUF_RING_*
	resv        [3]uint64
}

// Buf is struct io_uring_buf, one entry of a provided buffer ring. The ring's
// tail lives in the Resv field of entry 0 (struct io_uring_buf_ring's union).
type Buf struct {
	Addr uint64 // addr: buffer address
	Len  uint32 // len: buffer length
	BID  uint16 // bid: buffer id, reported in CQE flags
	Resv uint16 // resv; in entry 0 the ring tail
}

// BufStatus is struct io_uring_buf_status, for IORING_REGISTER_PBUF_STATUS (6.8).
type BufStatus struct {
	BufGroup uint32 // buf_group (in)
	Head     uint32 // head (out)
	resv     [8]uint32
}

// RecvmsgOut is struct io_uring_recvmsg_out, the header a multishot recvmsg
// writes at the start of each provided buffer.
type RecvmsgOut struct {
	NameLen    uint32 // namelen: the source address length before truncation
	ControlLen uint32 // controllen: control bytes written
	PayloadLen uint32 // payloadlen: payload bytes (the full length with MSG_TRUNC in the request)
	Flags      uint32 // flags: msg_flags (MSG_TRUNC, MSG_CTRUNC)
}

// RsrcRegister is struct io_uring_rsrc_register (IORING_REGISTER_BUFFERS2/FILES2).
type RsrcRegister struct {
	Nr    uint32 // nr: number of slots
	Flags uint32 // IORING_RSRC_REGISTER_SPARSE
	resv2 uint64
	Data  uint64 // data: pointer to the iovec or fd array
	Tags  uint64 // tags: pointer to a tag array, or 0
}

// RsrcUpdate2 is struct io_uring_rsrc_update2 (IORING_REGISTER_*_UPDATE2).
type RsrcUpdate2 struct {
	Offset uint32 // offset: first slot
	resv   uint32
	Data   uint64 // data: pointer to the iovec or fd array
	Tags   uint64 // tags: pointer to a tag array, or 0
	Nr     uint32 // nr: number of slots
	resv2  uint32
}

// FileIndexRange is struct io_uring_file_index_range (IORING_REGISTER_FILE_ALLOC_RANGE).
type FileIndexRange struct {
	Off  uint32 // off: first slot
	Len  uint32 // len: number of slots
	resv uint64
}

// ProbeHdr is the fixed header of struct io_uring_probe.
type ProbeHdr struct {
	LastOp uint8 // last_op
	OpsLen uint8 // ops_len
	resv   uint16
	resv2  [3]uint32
}

// ProbeOp is struct io_uring_probe_op.
type ProbeOp struct {
	Op    uint8 // op
	resv  uint8
	Flags uint16 // IO_URING_OP_SUPPORTED
	resv2 uint32
}

// NAPIReg is struct io_uring_napi (IORING_REGISTER_NAPI, 6.9).
type NAPIReg struct {
	BusyPollTo     uint32 // busy_poll_to in microseconds
	PreferBusyPoll uint8  // prefer_busy_poll
	Opcode         uint8  // opcode (IO_URING_NAPI_*, 6.12)
	pad            [2]uint8
	OpParam        uint32 // op_param
	resv           uint32
}

// Restriction is struct io_uring_restriction (IORING_REGISTER_RESTRICTIONS, 5.10).
type Restriction struct {
	Opcode uint16 // IORING_RESTRICTION_*
	Arg    uint8  // register_op, sqe_op or sqe_flags
	resv   uint8
	resv2  [3]uint32
}

// Iovec mirrors struct iovec on 64-bit Linux.
type Iovec struct {
	Base uint64 // iov_base
	Len  uint64 // iov_len
}

// Compile-time size checks: each line fails to compile if the size is wrong.
var (
	_ [64 - unsafe.Sizeof(SQE{})]struct{}
	_ [unsafe.Sizeof(SQE{}) - 64]struct{}
	_ [16 - unsafe.Sizeof(CQE{})]struct{}
	_ [unsafe.Sizeof(CQE{}) - 16]struct{}
	_ [120 - unsafe.Sizeof(Params{})]struct{}
	_ [unsafe.Sizeof(Params{}) - 120]struct{}
	_ [24 - unsafe.Sizeof(GeteventsArg{})]struct{}
	_ [unsafe.Sizeof(GeteventsArg{}) - 24]struct{}
	_ [40 - unsafe.Sizeof(BufReg{})]struct{}
	_ [unsafe.Sizeof(BufReg{}) - 40]struct{}
	_ [16 - unsafe.Sizeof(Buf{})]struct{}
	_ [unsafe.Sizeof(Buf{}) - 16]struct{}
	_ [16 - unsafe.Sizeof(RecvmsgOut{})]struct{}
	_ [unsafe.Sizeof(RecvmsgOut{}) - 16]struct{}
	_ [32 - unsafe.Sizeof(RsrcRegister{})]struct{}
	_ [unsafe.Sizeof(RsrcRegister{}) - 32]struct{}
	_ [32 - unsafe.Sizeof(RsrcUpdate2{})]struct{}
	_ [unsafe.Sizeof(RsrcUpdate2{}) - 32]struct{}
	_ [16 - unsafe.Sizeof(ProbeHdr{})]struct{}
	_ [unsafe.Sizeof(ProbeHdr{}) - 16]struct{}
	_ [8 - unsafe.Sizeof(ProbeOp{})]struct{}
	_ [unsafe.Sizeof(ProbeOp{}) - 8]struct{}
	_ [16 - unsafe.Sizeof(NAPIReg{})]struct{}
	_ [unsafe.Sizeof(NAPIReg{}) - 16]struct{}
	_ [16 - unsafe.Sizeof(Restriction{})]struct{}
	_ [unsafe.Sizeof(Restriction{}) - 16]struct{}
	_ [40 - unsafe.Sizeof(BufStatus{})]struct{}
	_ [unsafe.Sizeof(BufStatus{}) - 40]struct{}
	_ [unsafe.Offsetof(SQE{}.UserData) - 32]struct{}
	_ [32 - unsafe.Offsetof(SQE{}.UserData)]struct{}
	_ [unsafe.Offsetof(SQE{}.SpliceFDIn) - 44]struct{}
	_ [44 - unsafe.Offsetof(SQE{}.SpliceFDIn)]struct{}
)

// mmap offsets (IORING_OFF_*).
const (
	offSQRing    = 0
	offCQRing    = 0x8000000
	offSQEs      = 0x10000000
	offPbufRing  = 0x80000000
	offPbufShift = 16
)

// Register opcodes (enum io_uring_register_op).
const (
	regBuffers           = 0
	unregBuffers         = 1
	regFiles             = 2
	unregFiles           = 3
	regEventFD           = 4
	unregEventFD         = 5
	regFilesUpdate       = 6
	regEventFDAsync      = 7
	regProbe             = 8
	regRestrictions      = 11
	regEnableRings       = 12
	regFiles2            = 13
	regFilesUpdate2      = 14
	regBuffers2          = 15
	regBuffersUpdate     = 16
	regRingFDs           = 20
	unregRingFDs         = 21
	regPbufRing          = 22
	unregPbufRing        = 23
	regFileAllocRange    = 25
	regPbufStatus        = 26
	regNAPI              = 27
	unregNAPI            = 28
	regUseRegisteredRing = 1 << 31
)

// io_uring_enter flags (IORING_ENTER_*).
const (
	enterGetEvents      = 1 << 0
	enterSQWakeup       = 1 << 1
	enterSQWait         = 1 << 2
	enterExtArg         = 1 << 3
	enterRegisteredRing = 1 << 4
)

// SQ ring flags word (IORING_SQ_*).
const (
	sqNeedWakeup = 1 << 0
	sqCQOverflow = 1 << 1
	sqTaskrun    = 1 << 2
)

// Recv/send flags carried in SQE.IOPrio (IORING_RECVSEND_*, IORING_SEND_ZC_*).
const (
	RecvSendPollFirst   = 1 << 0 // IORING_RECVSEND_POLL_FIRST
	RecvMultishot       = 1 << 1 // IORING_RECV_MULTISHOT
	RecvSendFixedBuf    = 1 << 2 // IORING_RECVSEND_FIXED_BUF
	SendZCReportUsage   = 1 << 3 // IORING_SEND_ZC_REPORT_USAGE
	RecvSendBundle      = 1 << 4 // IORING_RECVSEND_BUNDLE (6.10)
	NotifUsageZCCopied  = 1 << 31
	AcceptMultishot     = 1 << 0 // IORING_ACCEPT_MULTISHOT (in ioprio)
	AcceptDontWait      = 1 << 1 // IORING_ACCEPT_DONTWAIT
	AcceptPollFirst     = 1 << 2 // IORING_ACCEPT_POLL_FIRST
	FileIndexAlloc      = ^uint32(0)
	CQEBufferShift      = 16
	RsrcRegisterSparse  = 1 << 0
	PbufRingMmap        = 1 << 0 // IOU_PBUF_RING_MMAP
	PbufRingInc         = 1 << 1 // IOU_PBUF_RING_INC (6.12)
	OpSupported         = 1 << 0 // IO_URING_OP_SUPPORTED
	MsgData             = 0      // IORING_MSG_DATA
	MsgSendFD           = 1      // IORING_MSG_SEND_FD
	MsgRingCQESkip      = 1 << 0 // IORING_MSG_RING_CQE_SKIP
	MsgRingFlagsPass    = 1 << 1 // IORING_MSG_RING_FLAGS_PASS
	restrictRegisterOp  = 0
	restrictSQEOp       = 1
	restrictSQEFlagsOK  = 2
	restrictSQEFlagsReq = 3
)

// Poll flags carried in SQE.Len for POLL_ADD/POLL_REMOVE (IORING_POLL_*).
const (
	PollAddMulti       = 1 << 0
	PollUpdateEvents   = 1 << 1
	PollUpdateUserData = 1 << 2
	PollAddLevel       = 1 << 3
)

// Timeout flags (IORING_TIMEOUT_*), SQE.OpFlags of TIMEOUT and LINK_TIMEOUT.
const (
	TimeoutAbs          = 1 << 0
	TimeoutUpdate       = 1 << 1
	TimeoutBoottime     = 1 << 2
	TimeoutRealtime     = 1 << 3
	TimeoutLinkUpdate   = 1 << 4
	TimeoutETimeSuccess = 1 << 5
	TimeoutMultishot    = 1 << 6 // 6.4
)

// Cancel flags (IORING_ASYNC_CANCEL_*), SQE.OpFlags of ASYNC_CANCEL.
const (
	CancelAll      = 1 << 0 // 5.19
	CancelFD       = 1 << 1 // 5.19
	CancelAny      = 1 << 2 // 5.19
	CancelFDFixed  = 1 << 3 // 6.0
	CancelUserData = 1 << 4 // 6.6
	CancelOp       = 1 << 5 // 6.6
)

// Futex flags (FUTEX2_*), for FUTEX_WAIT/FUTEX_WAKE (6.7).
const (
	Futex2SizeU32       = 0x02
	Futex2Private       = 128
	FutexBitsetMatchAny = 0xffffffff
)
