package bufring

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/ringwire/ringwire/ring"
)

// ErrNoBuffers is returned by Group.Lease for a CQE whose result is -ENOBUFS:
// the group ran dry. It is back-pressure, not a failure: release leases, Flush,
// and re-arm the receive. errors.Is(ErrNoBuffers, syscall.ENOBUFS) is true.
var ErrNoBuffers error = noBuffersError{}

type noBuffersError struct{}

func (noBuffersError) Error() string {
	return "bufring: no provided buffers left (ENOBUFS); re-arm after releasing leases"
}
func (noBuffersError) Unwrap() error { return syscall.ENOBUFS }

// ErrArenaExhausted is returned by Arena.Alloc when no block of a fitting size
// class is free. Like ErrNoBuffers it is back-pressure.
var ErrArenaExhausted = errors.New("bufring: arena exhausted")

// ErrTooLarge is returned by Arena.Alloc for a size larger than the largest class.
var ErrTooLarge = errors.New("bufring: allocation larger than the largest size class")

// ErrCorruptCQE is matched (errors.Is) by every *CQEError.
var ErrCorruptCQE = errors.New("bufring: corrupt buffer CQE")

// ErrClosed is returned by methods of a closed Group or Arena.
var ErrClosed = errors.New("bufring: closed")

// CQEError describes a CQE that names a buffer the group cannot account for:
// an id out of range, a buffer the kernel does not hold, or a byte count beyond
// what the ring holds. Nothing is changed when it is returned.
type CQEError struct {
	Group    uint16
	BufferID uint16
	Res      int32
	Flags    ring.CQEFlags
	Reason   string
}

func (e *CQEError) Error() string {
	return fmt.Sprintf("bufring: group %d: corrupt CQE (buffer %d, res %d, flags %v): %s",
		e.Group, e.BufferID, e.Res, e.Flags, e.Reason)
}

// Is reports whether target is ErrCorruptCQE.
func (e *CQEError) Is(target error) bool { return target == ErrCorruptCQE }
