//go:build !linux

package ring

import (
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// ErrUnavailable is wrapped by every error that means io_uring cannot be used.
var ErrUnavailable = fmt.Errorf("ring: io_uring unavailable: not Linux: %w", errors.ErrUnsupported)

// Ring is an io_uring instance; on this platform none can be created, so every
// method below is unreachable in practice and only keeps callers compiling.
type Ring struct{}

// New returns ErrUnavailable on this platform.
func New(*Config) (*Ring, error) { return nil, ErrUnavailable }

// Available returns ErrUnavailable on this platform.
func Available() error { return ErrUnavailable }

// ProbeKernel returns ErrUnavailable on this platform.
func ProbeKernel() (*Probe, error) { return nil, ErrUnavailable }

// Close does nothing.
func (r *Ring) Close() error { return nil }

// FD returns -1.
func (r *Ring) FD() int { return -1 }

// Params returns zero Params.
func (r *Ring) Params() Params { return Params{} }

// Features returns 0.
func (r *Ring) Features() Features { return 0 }

// SQEntries returns 0.
func (r *Ring) SQEntries() uint32 { return 0 }

// CQEntries returns 0.
func (r *Ring) CQEntries() uint32 { return 0 }

// GetSQE returns nil.
func (r *Ring) GetSQE() *SQE { return nil }

// SQSpace returns 0.
func (r *Ring) SQSpace() uint32 { return 0 }

// SQReady returns 0.
func (r *Ring) SQReady() uint32 { return 0 }

// Submit returns ErrUnavailable.
func (r *Ring) Submit() (int, error) { return 0, ErrUnavailable }

// SubmitAndWait returns ErrUnavailable.
func (r *Ring) SubmitAndWait(uint32) (int, error) { return 0, ErrUnavailable }

// SubmitAndGetEvents returns ErrUnavailable.
func (r *Ring) SubmitAndGetEvents() (int, error) { return 0, ErrUnavailable }

// WaitCQEs returns ErrUnavailable.
func (r *Ring) WaitCQEs(uint32, time.Duration, time.Duration) (int, error) {
	return 0, ErrUnavailable
}

// CQReady returns 0.
func (r *Ring) CQReady() uint32 { return 0 }

// PeekBatch returns 0.
func (r *Ring) PeekBatch([]CQE) int { return 0 }

// CQAdvance does nothing.
func (r *Ring) CQAdvance(uint32) {}

// Reap returns 0.
func (r *Ring) Reap([]CQE) int { return 0 }

// CQNeedsEnter returns false.
func (r *Ring) CQNeedsEnter() bool { return false }

// CQOverflowed returns false.
func (r *Ring) CQOverflowed() bool { return false }

// Overflow returns 0.
func (r *Ring) Overflow() uint32 { return 0 }

// Dropped returns 0.
func (r *Ring) Dropped() uint32 { return 0 }

// FlushOverflow returns ErrUnavailable.
func (r *Ring) FlushOverflow() error { return ErrUnavailable }

// GetEvents returns ErrUnavailable.
func (r *Ring) GetEvents() error { return ErrUnavailable }

// Register returns ErrUnavailable.
func (r *Ring) Register(uint32, unsafe.Pointer, uint32) (int, error) { return 0, ErrUnavailable }

// RingFDRegistered returns false.
func (r *Ring) RingFDRegistered() bool { return false }

// RegisterBuffers returns ErrUnavailable.
func (r *Ring) RegisterBuffers([][]byte) error { return ErrUnavailable }

// RegisterBuffersSparse returns ErrUnavailable.
func (r *Ring) RegisterBuffersSparse(uint32) error { return ErrUnavailable }

// UpdateBuffers returns ErrUnavailable.
func (r *Ring) UpdateBuffers(uint32, [][]byte) error { return ErrUnavailable }

// UnregisterBuffers returns ErrUnavailable.
func (r *Ring) UnregisterBuffers() error { return ErrUnavailable }

// RegisterFiles returns ErrUnavailable.
func (r *Ring) RegisterFiles([]int32) error { return ErrUnavailable }

// RegisterFilesSparse returns ErrUnavailable.
func (r *Ring) RegisterFilesSparse(uint32) error { return ErrUnavailable }

// UpdateFiles returns ErrUnavailable.
func (r *Ring) UpdateFiles(uint32, []int32) (int, error) { return 0, ErrUnavailable }

// RegisterFileAllocRange returns ErrUnavailable.
func (r *Ring) RegisterFileAllocRange(uint32, uint32) error { return ErrUnavailable }

// UnregisterFiles returns ErrUnavailable.
func (r *Ring) UnregisterFiles() error { return ErrUnavailable }

// RegisterBufRing returns ErrUnavailable.
func (r *Ring) RegisterBufRing(*BufReg) error { return ErrUnavailable }

// UnregisterBufRing returns ErrUnavailable.
func (r *Ring) UnregisterBufRing(uint16) error { return ErrUnavailable }

// MmapBufRing returns ErrUnavailable.
func (r *Ring) MmapBufRing(uint16, int) ([]byte, error) { return nil, ErrUnavailable }

// BufRingHead returns ErrUnavailable.
func (r *Ring) BufRingHead(uint16) (uint16, error) { return 0, ErrUnavailable }

// RegisterEventFD returns ErrUnavailable.
func (r *Ring) RegisterEventFD(int) error { return ErrUnavailable }

// RegisterEventFDAsync returns ErrUnavailable.
func (r *Ring) RegisterEventFDAsync(int) error { return ErrUnavailable }

// UnregisterEventFD returns ErrUnavailable.
func (r *Ring) UnregisterEventFD() error { return ErrUnavailable }

// RegisterNAPI returns ErrUnavailable.
func (r *Ring) RegisterNAPI(uint32, bool) error { return ErrUnavailable }

// UnregisterNAPI returns ErrUnavailable.
func (r *Ring) UnregisterNAPI() error { return ErrUnavailable }

// RegisterRestrictions returns ErrUnavailable.
func (r *Ring) RegisterRestrictions([]Restriction) error { return ErrUnavailable }

// EnableRings returns ErrUnavailable.
func (r *Ring) EnableRings() error { return ErrUnavailable }
