package ring

import (
	"errors"
	"fmt"
	"time"
)

// Config configures a Ring. The zero value (or nil) gives a 256-entry SQ with a
// 1024-entry CQ and no setup flags.
type Config struct {
	// Entries is the submission queue size, rounded up to a power of two by the kernel.
	// Default 256.
	Entries uint32
	// CQEntries is the completion queue size. It must be larger than Entries;
	// default 4*Entries, since multishot operations post many CQEs per SQE.
	CQEntries uint32
	// Flags are extra IORING_SETUP_* flags. CQSIZE is always set; SQE128 and
	// CQE32 are refused with an error wrapping errors.ErrUnsupported.
	Flags SetupFlags
	// SQThreadIdle is the SQPOLL thread's idle time before it sleeps (SQPOLL only).
	SQThreadIdle time.Duration
	// SQThreadCPU pins the SQPOLL thread when SQAff is set in Flags.
	SQThreadCPU uint32
	// NoRegisterRingFD disables registering the ring fd (IORING_REGISTER_RING_FDS,
	// 5.18), which saves an fdget/fdput per io_uring_enter. The registration is
	// per OS thread, so it is only made for SetupSingleIssuer rings, which must be
	// created, driven and closed on one locked thread (runtime.LockOSThread).
	NoRegisterRingFD bool
}

func (c *Config) withDefaults() (Config, error) {
	var out Config
	if c != nil {
		out = *c
	}
	if out.Entries == 0 {
		out.Entries = 256
	}
	if out.CQEntries == 0 {
		out.CQEntries = 4 * out.Entries
	}
	if out.CQEntries <= out.Entries {
		return out, fmt.Errorf("ring: CQEntries (%d) must be larger than Entries (%d)", out.CQEntries, out.Entries)
	}
	if out.Flags&(SetupSQE128|SetupCQE32) != 0 {
		return out, fmt.Errorf("ring: setup flags %v not supported: this binding uses 64-byte SQEs and 16-byte CQEs: %w",
			out.Flags&(SetupSQE128|SetupCQE32), errors.ErrUnsupported)
	}
	if out.Flags&SetupSQPoll == 0 && out.SQThreadIdle != 0 {
		return out, errors.New("ring: SQThreadIdle set without SetupSQPoll")
	}
	return out, nil
}
