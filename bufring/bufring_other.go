//go:build !linux

package bufring

import (
	"errors"
	"fmt"

	"github.com/ringwire/ringwire/ring"
)

// errUnsupported is returned by every constructor on platforms without io_uring.
var errUnsupported = fmt.Errorf("bufring: io_uring buffer rings need Linux: %w", errors.ErrUnsupported)

// NewGroup returns an error wrapping errors.ErrUnsupported on this platform.
func NewGroup(*ring.Ring, *Config) (*Group, error) { return nil, errUnsupported }

// Close does nothing on this platform.
func (g *Group) Close() error { return nil }

// NewArena returns an error wrapping errors.ErrUnsupported on this platform.
func NewArena(*ArenaConfig) (*Arena, error) { return nil, errUnsupported }

// Close does nothing on this platform.
func (a *Arena) Close() error { return nil }

// RegisterFixed returns an error wrapping errors.ErrUnsupported on this platform.
func RegisterFixed(*ring.Ring, ...Slab) error { return errUnsupported }

// RegisterFixedOnDemand returns an error wrapping errors.ErrUnsupported.
func RegisterFixedOnDemand(*ring.Ring, ...Slab) error { return errUnsupported }
