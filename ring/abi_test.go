package ring

import (
	"reflect"
	"testing"
	"unsafe"
)

// TestABILayout checks every struct in abi.go, field by field, against the
// kernel's include/uapi/linux/io_uring.h (Linux 6.18) for 64-bit Linux. The
// expected offsets are the C offsetof values of the header's fields (for a union,
// its first member), written out here by hand so a drifting Go field fails.
func TestABILayout(t *testing.T) {
	type field struct {
		goName string
		cName  string
		off    uintptr
		size   uintptr
	}
	tests := []struct {
		name   string // struct name in io_uring.h
		typ    reflect.Type
		size   uintptr
		fields []field
	}{
		{"struct io_uring_sqe", reflect.TypeFor[SQE](), 64, []field{
			{"Opcode", "opcode", 0, 1},
			{"Flags", "flags", 1, 1},
			{"IOPrio", "ioprio", 2, 2},
			{"FD", "fd", 4, 4},
			{"Off", "off / addr2 / cmd_op", 8, 8},
			{"Addr", "addr / splice_off_in / level,optname", 16, 8},
			{"Len", "len", 24, 4},
			{"OpFlags", "rw_flags / msg_flags / timeout_flags / ...", 28, 4},
			{"UserData", "user_data", 32, 8},
			{"BufIndex", "buf_index / buf_group (packed)", 40, 2},
			{"Personality", "personality", 42, 2},
			{"SpliceFDIn", "splice_fd_in / file_index / optlen / addr_len / write_stream", 44, 4},
			{"Addr3", "addr3 / attr_ptr / optval / cmd[]", 48, 8},
			{"_pad2", "__pad2[0] / attr_type_mask", 56, 8},
		}},
		{"struct io_uring_cqe", reflect.TypeFor[CQE](), 16, []field{
			{"UserData", "user_data", 0, 8},
			{"Res", "res", 8, 4},
			{"Flags", "flags", 12, 4},
		}},
		{"struct io_uring_params", reflect.TypeFor[Params](), 120, []field{
			{"SQEntries", "sq_entries", 0, 4},
			{"CQEntries", "cq_entries", 4, 4},
			{"Flags", "flags", 8, 4},
			{"SQThreadCPU", "sq_thread_cpu", 12, 4},
			{"SQThreadIdle", "sq_thread_idle", 16, 4},
			{"Features", "features", 20, 4},
			{"WQFD", "wq_fd", 24, 4},
			{"resv", "resv[3]", 28, 12},
			{"SQOff", "sq_off", 40, 40},
			{"CQOff", "cq_off", 80, 40},
		}},
		{"struct io_sqring_offsets", reflect.TypeFor[SQRingOffsets](), 40, []field{
			{"Head", "head", 0, 4},
			{"Tail", "tail", 4, 4},
			{"RingMask", "ring_mask", 8, 4},
			{"RingEntries", "ring_entries", 12, 4},
			{"Flags", "flags", 16, 4},
			{"Dropped", "dropped", 20, 4},
			{"Array", "array", 24, 4},
			{"resv1", "resv1", 28, 4},
			{"UserAddr", "user_addr", 32, 8},
		}},
		{"struct io_cqring_offsets", reflect.TypeFor[CQRingOffsets](), 40, []field{
			{"Head", "head", 0, 4},
			{"Tail", "tail", 4, 4},
			{"RingMask", "ring_mask", 8, 4},
			{"RingEntries", "ring_entries", 12, 4},
			{"Overflow", "overflow", 16, 4},
			{"CQEs", "cqes", 20, 4},
			{"Flags", "flags", 24, 4},
			{"resv1", "resv1", 28, 4},
			{"UserAddr", "user_addr", 32, 8},
		}},
		{"struct io_uring_getevents_arg", reflect.TypeFor[GeteventsArg](), 24, []field{
			{"Sigmask", "sigmask", 0, 8},
			{"SigmaskSz", "sigmask_sz", 8, 4},
			{"MinWaitUsec", "min_wait_usec", 12, 4},
			{"TS", "ts", 16, 8},
		}},
		{"struct __kernel_timespec", reflect.TypeFor[Timespec](), 16, []field{
			{"Sec", "tv_sec", 0, 8},
			{"Nsec", "tv_nsec", 8, 8},
		}},
		{"struct io_uring_buf_reg", reflect.TypeFor[BufReg](), 40, []field{
			{"RingAddr", "ring_addr", 0, 8},
			{"RingEntries", "ring_entries", 8, 4},
			{"BGID", "bgid", 12, 2},
			{"Flags", "flags", 14, 2},
			{"resv", "resv[3]", 16, 24},
		}},
		{"struct io_uring_buf", reflect.TypeFor[Buf](), 16, []field{
			{"Addr", "addr", 0, 8},
			{"Len", "len", 8, 4},
			{"BID", "bid", 12, 2},
			{"Resv", "resv (io_uring_buf_ring.tail in entry 0)", 14, 2},
		}},
		{"struct io_uring_buf_status", reflect.TypeFor[BufStatus](), 40, []field{
			{"BufGroup", "buf_group", 0, 4},
			{"Head", "head", 4, 4},
			{"resv", "resv[8]", 8, 32},
		}},
		{"struct io_uring_recvmsg_out", reflect.TypeFor[RecvmsgOut](), 16, []field{
			{"NameLen", "namelen", 0, 4},
			{"ControlLen", "controllen", 4, 4},
			{"PayloadLen", "payloadlen", 8, 4},
			{"Flags", "flags", 12, 4},
		}},
		{"struct io_uring_rsrc_register", reflect.TypeFor[RsrcRegister](), 32, []field{
			{"Nr", "nr", 0, 4},
			{"Flags", "flags", 4, 4},
			{"resv2", "resv2", 8, 8},
			{"Data", "data", 16, 8},
			{"Tags", "tags", 24, 8},
		}},
		{"struct io_uring_rsrc_update2", reflect.TypeFor[RsrcUpdate2](), 32, []field{
			{"Offset", "offset", 0, 4},
			{"resv", "resv", 4, 4},
			{"Data", "data", 8, 8},
			{"Tags", "tags", 16, 8},
			{"Nr", "nr", 24, 4},
			{"resv2", "resv2", 28, 4},
		}},
		{"struct io_uring_file_index_range", reflect.TypeFor[FileIndexRange](), 16, []field{
			{"Off", "off", 0, 4},
			{"Len", "len", 4, 4},
			{"resv", "resv", 8, 8},
		}},
		{"struct io_uring_probe (header)", reflect.TypeFor[ProbeHdr](), 16, []field{
			{"LastOp", "last_op", 0, 1},
			{"OpsLen", "ops_len", 1, 1},
			{"resv", "resv", 2, 2},
			{"resv2", "resv2[3]", 4, 12},
		}},
		{"struct io_uring_probe_op", reflect.TypeFor[ProbeOp](), 8, []field{
			{"Op", "op", 0, 1},
			{"resv", "resv", 1, 1},
			{"Flags", "flags", 2, 2},
			{"resv2", "resv2", 4, 4},
		}},
		{"struct io_uring_napi", reflect.TypeFor[NAPIReg](), 16, []field{
			{"BusyPollTo", "busy_poll_to", 0, 4},
			{"PreferBusyPoll", "prefer_busy_poll", 4, 1},
			{"Opcode", "opcode", 5, 1},
			{"pad", "pad[2]", 6, 2},
			{"OpParam", "op_param", 8, 4},
			{"resv", "resv", 12, 4},
		}},
		{"struct io_uring_restriction", reflect.TypeFor[Restriction](), 16, []field{
			{"Opcode", "opcode", 0, 2},
			{"Arg", "register_op / sqe_op / sqe_flags", 2, 1},
			{"resv", "resv", 3, 1},
			{"resv2", "resv2[3]", 4, 12},
		}},
		{"struct iovec (64-bit)", reflect.TypeFor[Iovec](), 16, []field{
			{"Base", "iov_base", 0, 8},
			{"Len", "iov_len", 8, 8},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.typ.Name(), func(t *testing.T) {
			if tt.typ.Size() != tt.size {
				t.Errorf("%s: Go size %d, header size %d", tt.name, tt.typ.Size(), tt.size)
			}
			if tt.typ.NumField() != len(tt.fields) {
				t.Errorf("%s: Go struct has %d fields, table lists %d", tt.name, tt.typ.NumField(), len(tt.fields))
			}
			for i, f := range tt.fields {
				if i >= tt.typ.NumField() {
					break
				}
				sf := tt.typ.Field(i)
				if sf.Name != f.goName {
					t.Errorf("%s: field %d is %s, want %s", tt.name, i, sf.Name, f.goName)
					continue
				}
				if sf.Offset != f.off || sf.Type.Size() != f.size {
					t.Errorf("%s.%s (%s.%s): offset %d size %d, header has offset %d size %d",
						tt.typ.Name(), sf.Name, tt.name, f.cName, sf.Offset, sf.Type.Size(), f.off, f.size)
				}
			}
		})
	}
	// The tail of a provided buffer ring aliases entry 0's resv field:
	// offsetof(struct io_uring_buf_ring, tail) == 14.
	if off := unsafe.Offsetof(Buf{}.Resv); off != 14 {
		t.Errorf("io_uring_buf_ring.tail at %d, want 14", off)
	}
}

// TestABIConstants spot-checks constants against io_uring.h.
func TestABIConstants(t *testing.T) {
	tests := []struct {
		name string
		got  uint64
		want uint64
	}{
		{"IORING_OFF_CQ_RING", offCQRing, 0x8000000},
		{"IORING_OFF_SQES", offSQEs, 0x10000000},
		{"IORING_OFF_PBUF_RING", offPbufRing, 0x80000000},
		{"IORING_OFF_PBUF_SHIFT", offPbufShift, 16},
		{"IORING_OP_SEND_ZC", uint64(OpSendZC), 47},
		{"IORING_OP_FUTEX_WAIT", uint64(OpFutexWait), 51},
		{"IORING_OP_BIND", uint64(OpBind), 56},
		{"IORING_OP_LISTEN", uint64(OpListen), 57},
		{"IORING_OP_RECV_ZC", uint64(OpRecvZC), 58},
		{"IORING_OP_PIPE", uint64(OpPipe), 62},
		{"IORING_SETUP_DEFER_TASKRUN", uint64(SetupDeferTaskrun), 1 << 13},
		{"IORING_SETUP_NO_SQARRAY", uint64(SetupNoSQArray), 1 << 16},
		{"IORING_FEAT_MIN_TIMEOUT", uint64(FeatMinTimeout), 1 << 15},
		{"IORING_CQE_F_NOTIF", uint64(CQEFNotif), 1 << 3},
		{"IORING_RECVSEND_BUNDLE", RecvSendBundle, 1 << 4},
		{"IORING_TIMEOUT_MULTISHOT", TimeoutMultishot, 1 << 6},
		{"IORING_ASYNC_CANCEL_OP", CancelOp, 1 << 5},
		{"IORING_REGISTER_PBUF_RING", regPbufRing, 22},
		{"IORING_REGISTER_NAPI", regNAPI, 27},
		{"IORING_FILE_INDEX_ALLOC", uint64(FileIndexAlloc), 0xffffffff},
		{"IORING_ENTER_EXT_ARG", enterExtArg, 1 << 3},
		{"IORING_ENTER_REGISTERED_RING", enterRegisteredRing, 1 << 4},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
}
