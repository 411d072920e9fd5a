package ring

// AllowSQEOp is a Restriction that permits SQE opcode op.
func AllowSQEOp(op Op) Restriction { return Restriction{Opcode: restrictSQEOp, Arg: uint8(op)} }

// AllowRegisterOp is a Restriction that permits io_uring_register opcode op.
func AllowRegisterOp(op uint8) Restriction { return Restriction{Opcode: restrictRegisterOp, Arg: op} }

// AllowSQEFlags is a Restriction that permits the SQE flags f.
func AllowSQEFlags(f SQEFlags) Restriction {
	return Restriction{Opcode: restrictSQEFlagsOK, Arg: uint8(f)}
}

// NetworkingOps are the opcodes a networking ring needs; with
// RegisterRestrictions they confine a ring to them.
var NetworkingOps = []Op{
	OpNop, OpAccept, OpConnect, OpRecv, OpSend, OpRecvmsg, OpSendmsg, OpSendZC, OpSendmsgZC,
	OpClose, OpShutdown, OpAsyncCancel, OpTimeout, OpTimeoutRemove, OpLinkTimeout, OpPollAdd,
	OpPollRemove, OpMsgRing, OpSocket, OpSplice, OpRead, OpWrite, OpReadFixed, OpWriteFixed,
	OpFutexWait, OpFutexWake, OpBind, OpListen,
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
