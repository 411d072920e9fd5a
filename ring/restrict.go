package ring

// AllowSQEOp is a Restriction that permits SQE opcode op.
func AllowSQEOp(op Op) Restriction { return Restriction{Opcode: restrictSQEOp, Arg: uint8(op)} }

// AllowRegisterOp is a Restriction that permits io_uring_register opcode op.
func AllowRegisterOp(op uint8) Restriction { return Restriction{Opcode: restrictRegisterOp, Arg: op} }

// AllowSQEFlags is a Restriction that permits the SQE flags f.
func AllowSQEFlags(f SQEFlags) Restriction {
	return Restriction{Opcode: restrictSQEFlagsOK, Arg: uint8(f)}
}

// networkingOps are the opcodes a networking ring may use, each with the
// Linux version that brought it.
var networkingOps = [...]struct {
	op    Op
	since string
}{
	{OpNop, "5.1"},
	{OpReadFixed, "5.1"},
	{OpWriteFixed, "5.1"},
	{OpPollAdd, "5.1"},
	{OpPollRemove, "5.1"},
	{OpSendmsg, "5.3"},
	{OpRecvmsg, "5.3"},
	{OpTimeout, "5.4"},
	{OpTimeoutRemove, "5.5"},
	{OpAccept, "5.5"},
	{OpAsyncCancel, "5.5"},
	{OpLinkTimeout, "5.5"},
	{OpConnect, "5.5"},
	{OpClose, "5.6"},
	{OpRead, "5.6"},
	{OpWrite, "5.6"},
	{OpSend, "5.6"},
	{OpRecv, "5.6"},
	{OpSplice, "5.7"},
	{OpShutdown, "5.11"},
	{OpMsgRing, "5.18"},
	{OpSocket, "5.19"},
	{OpSendZC, "6.0"},
	{OpSendmsgZC, "6.1"},
	{OpFutexWait, "6.7"},
	{OpFutexWake, "6.7"},
	{OpBind, "6.11"},
	{OpListen, "6.11"},
}

// NetworkingOps returns the opcodes a networking ring needs that this kernel
// supports, for RegisterRestrictions to confine a ring to them (with
// AllowSQEOp). It leaves out what the kernel lacks: FUTEX_WAIT and FUTEX_WAKE
// before Linux 6.7, BIND and LISTEN before 6.11. A restriction that names an
// opcode the kernel does not know makes RegisterRestrictions fail with EINVAL,
// so a fixed list would work only on the newest kernels.
func (p *Probe) NetworkingOps() []Op {
	ops := make([]Op, 0, len(networkingOps))
	for _, n := range networkingOps {
		if p.Supports(n.op) {
			ops = append(ops, n.op)
		}
	}
	return ops
}

// Register opcodes a networking ring may need after restrictions are applied.
const (
	RegisterOpBuffers       = regBuffers
	RegisterOpFilesUpdate2  = regFilesUpdate2
	RegisterOpBuffersUpdate = regBuffersUpdate
	RegisterOpPbufRing      = regPbufRing
	RegisterOpUnregPbufRing = unregPbufRing
	RegisterOpEventFD       = regEventFD
)
