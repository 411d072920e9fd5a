//go:build !linux

package ring

import (
	"errors"
	"fmt"
	"time"
)

// ErrUnavailable is wrapped by every error that means io_uring cannot be used.
var ErrUnavailable = fmt.Errorf("ring: io_uring unavailable: not Linux: %w", errors.ErrUnsupported)

// Config configures a Ring; see the Linux documentation.
type Config struct {
	Entries          uint32
	CQEntries        uint32
	Flags            SetupFlags
	SQThreadIdle     time.Duration
	SQThreadCPU      uint32
	NoRegisterRingFD bool
}

// Ring is an io_uring instance; on this platform none can be created.
type Ring struct{}

// Probe is what the kernel supports; empty on this platform.
type Probe struct{}

// Supports reports false: no io_uring here.
func (p *Probe) Supports(Op) bool { return false }

// New returns ErrUnavailable on this platform.
func New(*Config) (*Ring, error) { return nil, ErrUnavailable }

// Available returns ErrUnavailable on this platform.
func Available() error { return ErrUnavailable }

// ProbeKernel returns ErrUnavailable on this platform.
func ProbeKernel() (*Probe, error) { return nil, ErrUnavailable }

// Close does nothing.
func (r *Ring) Close() error { return nil }
