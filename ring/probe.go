package ring

// Probe is what this kernel's io_uring supports, found by asking it (never by
// reading the kernel version).
type Probe struct {
	// LastOp is the highest opcode the kernel knows.
	LastOp Op
	ops    [256]bool
	// Features are the IORING_FEAT_* bits of a plain ring.
	Features Features
	// Setup holds each optional setup flag a test ring accepted.
	Setup SetupFlags
	// Registration capabilities.
	BufRing        bool // IORING_REGISTER_PBUF_RING (5.19)
	BufRingMmap    bool // IOU_PBUF_RING_MMAP (6.4)
	BufRingInc     bool // IOU_PBUF_RING_INC, incremental consumption (6.12)
	BufRingStatus  bool // IORING_REGISTER_PBUF_STATUS (6.8)
	SparseBuffers  bool // IORING_REGISTER_BUFFERS2 with SPARSE (5.19)
	SparseFiles    bool // IORING_REGISTER_FILES2 with SPARSE (5.19)
	FileAllocRange bool // IORING_REGISTER_FILE_ALLOC_RANGE (6.0)
	RingFDs        bool // IORING_REGISTER_RING_FDS (5.18)
	NAPI           bool // IORING_REGISTER_NAPI (6.9)
	Restrictions   bool // IORING_REGISTER_RESTRICTIONS (5.10)
	// TimeoutMultishot: a timeout SQE accepts TimeoutMultishot (6.4).
	TimeoutMultishot bool
}

// Supports reports whether the kernel implements op.
func (p *Probe) Supports(op Op) bool { return p.ops[op] }

// Bundles reports whether recv/send bundles work (IORING_FEAT_RECVSEND_BUNDLE, 6.10).
func (p *Probe) Bundles() bool { return p.Features&FeatRecvSendBundle != 0 }

// MinTimeout reports support for the minimum-wait io_uring_enter (6.12).
func (p *Probe) MinTimeout() bool { return p.Features&FeatMinTimeout != 0 }
