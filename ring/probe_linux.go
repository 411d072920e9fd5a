//go:build linux

package ring

// unsafe here only passes Go values (the probe buffer, setup params) whose
// addresses the kernel reads and writes during the syscall that receives them;
// the probe timeout's Timespec is pinned until its CQE has been reaped.

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// setupProbes are the optional setup flags ProbeKernel tries one by one,
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
	// The registration is per thread: register and unregister on the same one.
	runtime.LockOSThread()
	p.RingFDs = r.registerRingFD() == nil
	if p.RingFDs {
		_ = r.unregisterRingFD()
	}
	runtime.UnlockOSThread()
	p.probeBufRings(r)
	p.TimeoutMultishot = probeTimeoutFlags(r, TimeoutMultishot)
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

// probeTimeoutFlags submits a one-shot 1µs timeout with flags and reports
// whether the kernel took the flags: a kernel that does not know one fails the
// SQE with EINVAL.
func probeTimeoutFlags(r *Ring, flags uint32) bool {
	ts := &Timespec{Nsec: 1000}
	var pn runtime.Pinner
	pn.Pin(ts)
	defer pn.Unpin()
	s := r.GetSQE()
	if s == nil {
		return false
	}
	s.PrepTimeout(ts, 1, flags)
	s.UserData = 1
	if _, err := r.SubmitAndWait(1); err != nil {
		return false
	}
	var c [1]CQE
	return r.Reap(c[:]) == 1 && c[0].Res != -int32(unix.EINVAL)
}

func (p *Probe) probeBufRings(r *Ring) {
	const entries = 2
	mem, err := unix.Mmap(-1, 0, unix.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return
	}
	defer func() { _ = unix.Munmap(mem) }()
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
