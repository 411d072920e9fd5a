package ring

import (
	"strconv"
	"strings"
)

// SetupFlags are the IORING_SETUP_* flags of io_uring_setup.
type SetupFlags uint32

// Setup flags. Each names the kernel that introduced it.
const (
	SetupIOPoll           SetupFlags = 1 << 0  // IORING_SETUP_IOPOLL (5.1)
	SetupSQPoll           SetupFlags = 1 << 1  // IORING_SETUP_SQPOLL (5.1)
	SetupSQAff            SetupFlags = 1 << 2  // IORING_SETUP_SQ_AFF (5.1)
	SetupCQSize           SetupFlags = 1 << 3  // IORING_SETUP_CQSIZE (5.5)
	SetupClamp            SetupFlags = 1 << 4  // IORING_SETUP_CLAMP (5.6)
	SetupAttachWQ         SetupFlags = 1 << 5  // IORING_SETUP_ATTACH_WQ (5.6)
	SetupRDisabled        SetupFlags = 1 << 6  // IORING_SETUP_R_DISABLED (5.10)
	SetupSubmitAll        SetupFlags = 1 << 7  // IORING_SETUP_SUBMIT_ALL (5.18)
	SetupCoopTaskrun      SetupFlags = 1 << 8  // IORING_SETUP_COOP_TASKRUN (5.19)
	SetupTaskrunFlag      SetupFlags = 1 << 9  // IORING_SETUP_TASKRUN_FLAG (5.19)
	SetupSQE128           SetupFlags = 1 << 10 // IORING_SETUP_SQE128 (5.19)
	SetupCQE32            SetupFlags = 1 << 11 // IORING_SETUP_CQE32 (5.19)
	SetupSingleIssuer     SetupFlags = 1 << 12 // IORING_SETUP_SINGLE_ISSUER (6.0)
	SetupDeferTaskrun     SetupFlags = 1 << 13 // IORING_SETUP_DEFER_TASKRUN (6.1)
	SetupNoMmap           SetupFlags = 1 << 14 // IORING_SETUP_NO_MMAP (6.5)
	SetupRegisteredFDOnly SetupFlags = 1 << 15 // IORING_SETUP_REGISTERED_FD_ONLY (6.5)
	SetupNoSQArray        SetupFlags = 1 << 16 // IORING_SETUP_NO_SQARRAY (6.6)
)

var setupNames = []string{
	"IOPOLL", "SQPOLL", "SQ_AFF", "CQSIZE", "CLAMP", "ATTACH_WQ", "R_DISABLED", "SUBMIT_ALL",
	"COOP_TASKRUN", "TASKRUN_FLAG", "SQE128", "CQE32", "SINGLE_ISSUER", "DEFER_TASKRUN",
	"NO_MMAP", "REGISTERED_FD_ONLY", "NO_SQARRAY",
}

// String returns the flags as "SINGLE_ISSUER|DEFER_TASKRUN".
func (f SetupFlags) String() string { return bitString(uint64(f), setupNames) }

// SQEFlags are the IOSQE_* flags of an SQE.
type SQEFlags uint8

// SQE flags.
const (
	SQEFixedFile      SQEFlags = 1 << 0 // IOSQE_FIXED_FILE: FD is an index into the registered files
	SQEIODrain        SQEFlags = 1 << 1 // IOSQE_IO_DRAIN
	SQEIOLink         SQEFlags = 1 << 2 // IOSQE_IO_LINK
	SQEIOHardlink     SQEFlags = 1 << 3 // IOSQE_IO_HARDLINK
	SQEAsync          SQEFlags = 1 << 4 // IOSQE_ASYNC
	SQEBufferSelect   SQEFlags = 1 << 5 // IOSQE_BUFFER_SELECT: pick a buffer from group BufIndex
	SQECQESkipSuccess SQEFlags = 1 << 6 // IOSQE_CQE_SKIP_SUCCESS (5.17)
)

var sqeNames = []string{"FIXED_FILE", "IO_DRAIN", "IO_LINK", "IO_HARDLINK", "ASYNC", "BUFFER_SELECT", "CQE_SKIP_SUCCESS"}

// String returns the flags as "IO_LINK|BUFFER_SELECT".
func (f SQEFlags) String() string { return bitString(uint64(f), sqeNames) }

// CQEFlags are the IORING_CQE_F_* flags of a CQE.
type CQEFlags uint32

// CQE flags.
const (
	CQEFBuffer       CQEFlags = 1 << 0 // IORING_CQE_F_BUFFER: upper 16 bits hold the buffer id
	CQEFMore         CQEFlags = 1 << 1 // IORING_CQE_F_MORE: the request stays armed
	CQEFSockNonempty CQEFlags = 1 << 2 // IORING_CQE_F_SOCK_NONEMPTY: more data is queued
	CQEFNotif        CQEFlags = 1 << 3 // IORING_CQE_F_NOTIF: a SEND_ZC buffer-release notification
	CQEFBufMore      CQEFlags = 1 << 4 // IORING_CQE_F_BUF_MORE: incremental buffer not yet consumed (6.12)
)

var cqeNames = []string{"BUFFER", "MORE", "SOCK_NONEMPTY", "NOTIF", "BUF_MORE"}

// String returns the flags as "BUFFER|MORE"; the buffer id bits are not shown.
func (f CQEFlags) String() string { return bitString(uint64(f&0xffff), cqeNames) }

// Features are the IORING_FEAT_* bits the kernel reports from io_uring_setup.
type Features uint32

// Feature bits.
const (
	FeatSingleMmap     Features = 1 << 0
	FeatNoDrop         Features = 1 << 1
	FeatSubmitStable   Features = 1 << 2
	FeatRWCurPos       Features = 1 << 3
	FeatCurPersonality Features = 1 << 4
	FeatFastPoll       Features = 1 << 5
	FeatPoll32Bits     Features = 1 << 6
	FeatSQPollNonfixed Features = 1 << 7
	FeatExtArg         Features = 1 << 8
	FeatNativeWorkers  Features = 1 << 9
	FeatRsrcTags       Features = 1 << 10
	FeatCQESkip        Features = 1 << 11
	FeatLinkedFile     Features = 1 << 12
	FeatRegRegRing     Features = 1 << 13
	FeatRecvSendBundle Features = 1 << 14 // 6.10
	FeatMinTimeout     Features = 1 << 15 // 6.12
	FeatRWAttr         Features = 1 << 16
	FeatNoIOWait       Features = 1 << 17
)

var featNames = []string{
	"SINGLE_MMAP", "NODROP", "SUBMIT_STABLE", "RW_CUR_POS", "CUR_PERSONALITY", "FAST_POLL",
	"POLL_32BITS", "SQPOLL_NONFIXED", "EXT_ARG", "NATIVE_WORKERS", "RSRC_TAGS", "CQE_SKIP",
	"LINKED_FILE", "REG_REG_RING", "RECVSEND_BUNDLE", "MIN_TIMEOUT", "RW_ATTR", "NO_IOWAIT",
}

// String returns the features as "SINGLE_MMAP|NODROP|...".
func (f Features) String() string { return bitString(uint64(f), featNames) }

func bitString(v uint64, names []string) string {
	if v == 0 {
		return "0"
	}
	var b strings.Builder
	for i := 0; v != 0; i++ {
		if v&1 != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			if i < len(names) {
				b.WriteString(names[i])
			} else {
				b.WriteString("0x")
				b.WriteString(strconv.FormatUint(1<<uint(i), 16))
			}
		}
		v >>= 1
	}
	return b.String()
}
