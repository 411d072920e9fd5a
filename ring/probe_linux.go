//go:build linux

package ring

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

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
}

// Supports reports whether the kernel implements op.
func (p *Probe) Supports(op Op) bool { return p.ops[op] }

// Bundles reports whether recv/send bundles work (IORING_FEAT_RECVSEND_BUNDLE, 6.10).
func (p *Probe) Bundles() bool { return p.Features&FeatRecvSendBundle != 0 }

// MinTimeout reports support for the minimum-wait io_uring_enter (6.12).
func (p *Probe) MinTimeout() bool { return p.Features&FeatMinTimeout != 0 }

// SetupFlagsToProbe are the optional setup flags ProbeKernel tries one by one,
// each with the companions the kernel requires.
var setupProbes = []struct {
	flag SetupFlags
	with SetupFlags
}{
	{SetupSubmitAll, 0},
	{SetupCoopTaskrun, 0},
	{SetupTaskrunFlag, SetupCoopTaskrun},
	{SetupSingleIssuer, 0},
	{SetupDeferTaskrun, SetupSingleIssuer},
	{SetupNoSQArray, 0},
	{SetupSQPoll, 0},
	{SetupRDisabled, 0},
}

// ProbeKernel creates small throwaway rings to learn what the kernel supports.
// It returns an error wrapping ErrUnavailable when io_uring cannot be used.
func ProbeKernel() (*Probe, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	r, err := New(&Config{Entries: 2, NoRegisterRingFD: true})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	p := &Probe{Features: r.Features()}
	// IORING_REGISTER_PROBE: header plus 256 op entries.
	var buf [int(unsafe.Sizeof(ProbeHdr{})) + 256*int(unsafe.Sizeof(ProbeOp{}))]byte
	if _, err := r.Register(regProbe, unsafe.Pointer(&buf[0]), 256); err == nil {
		hdr := (*ProbeHdr)(unsafe.Pointer(&buf[0]))
		p.LastOp = Op(hdr.LastOp)
		ops := unsafe.Slice((*ProbeOp)(unsafe.Pointer(&buf[unsafe.Sizeof(ProbeHdr{})])), 256)
		for i := 0; i < int(hdr.OpsLen) && i < 256; i++ {
			if ops[i].Flags&OpSupported != 0 {
				p.ops[ops[i].Op] = true
			}
		}
	}
	for _, sp := range setupProbes {
		tr, err := New(&Config{Entries: 2, Flags: sp.flag | sp.with, NoRegisterRingFD: true})
		if err == nil {
			p.Setup |= sp.flag
			if sp.flag == SetupRDisabled {
				p.Restrictions = tr.RegisterRestrictions([]Restriction{AllowSQEOp(OpNop)}) == nil
			}
			tr.Close()
		}
	}
	p.RingFDs = r.registerRingFD() == nil
	if p.RingFDs {
		_ = r.unregisterRingFD()
	}
	p.probeBufRings(r)
	if r.RegisterBuffersSparse(4) == nil {
		p.SparseBuffers = true
		_ = r.UnregisterBuffers()
	}
	if r.RegisterFilesSparse(4) == nil {
		p.SparseFiles = true
		p.FileAllocRange = r.RegisterFileAllocRange(0, 4) == nil
		_ = r.UnregisterFiles()
	}
	if r.RegisterNAPI(0, false) == nil {
		p.NAPI = true
		_ = r.UnregisterNAPI()
	}
	return p, nil
}

func (p *Probe) probeBufRings(r *Ring) {
	const entries = 2
	mem, err := unix.Mmap(-1, 0, unix.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return
	}
	defer unix.Munmap(mem)
	reg := BufReg{RingAddr: bufAddr(mem), RingEntries: entries, BGID: 1}
	if r.RegisterBufRing(&reg) == nil {
		p.BufRing = true
		_, err := r.BufRingHead(1)
		p.BufRingStatus = err == nil
		_ = r.UnregisterBufRing(1)
	}
	reg = BufReg{RingEntries: entries, BGID: 2, Flags: PbufRingMmap}
	if r.RegisterBufRing(&reg) == nil {
		p.BufRingMmap = true
		_ = r.UnregisterBufRing(2)
	}
	reg = BufReg{RingAddr: bufAddr(mem), RingEntries: entries, BGID: 3, Flags: PbufRingInc}
	if r.RegisterBufRing(&reg) == nil {
		p.BufRingInc = true
		_ = r.UnregisterBufRing(3)
	}
}
