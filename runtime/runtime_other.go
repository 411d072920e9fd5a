//go:build !linux

package runtime

import (
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/ring"
)

var errUnsupported = fmt.Errorf("runtime: io_uring event loops need Linux: %w", errors.ErrUnsupported)

// Runtime is a set of event loops; on this platform none can be started.
type Runtime struct{}

// Loop is one event loop; on this platform none exists.
type Loop struct{}

// New returns an error wrapping errors.ErrUnsupported on this platform.
func New(cfg *Config) (*Runtime, error) { return nil, errUnsupported }

// Loops returns nil.
func (rt *Runtime) Loops() []*Loop { return nil }

// Next returns nil.
func (rt *Runtime) Next() *Loop { return nil }

// Stats returns nil.
func (rt *Runtime) Stats() []Stats { return nil }

// Close does nothing.
func (rt *Runtime) Close() error { return nil }

// NewOp fails on this platform.
func (l *Loop) NewOp(h Handler, tag uint64) (*ring.SQE, OpID, error) { return nil, 0, errUnsupported }

// Cancel fails on this platform.
func (l *Loop) Cancel(id OpID) error { return errUnsupported }

// SetLocal does nothing on this platform.
func (l *Loop) SetLocal(v any) {}

// Local returns nil on this platform.
func (l *Loop) Local() any { return nil }

// Scratch returns nil on this platform.
func (l *Loop) Scratch(id OpID) []byte { return nil }

// Pin does nothing.
func (l *Loop) Pin(id OpID, ptr any) {}

// NewMailbox returns 0.
func (l *Loop) NewMailbox(h Handler, tag uint64) OpID { return 0 }

// CloseMailbox fails on this platform.
func (l *Loop) CloseMailbox(id OpID) error { return errUnsupported }

// MsgRing fails on this platform.
func (l *Loop) MsgRing(target *Loop, to OpID, res int32) error { return errUnsupported }

// Timer returns 0.
func (l *Loop) Timer(h Handler, tag uint64, at time.Time) TimerID { return 0 }

// StopTimer reports false.
func (l *Loop) StopTimer(id TimerID) bool { return false }

// Own closes c at once: there is no loop to hand it to.
func (l *Loop) Own(c io.Closer) { _ = c.Close() }

// Group returns nil.
func (l *Loop) Group() *bufring.Group { return nil }

// Arena returns nil.
func (l *Loop) Arena() *bufring.Arena { return nil }

// Ring returns nil.
func (l *Loop) Ring() *ring.Ring { return nil }

// Probe returns nil.
func (l *Loop) Probe() *ring.Probe { return nil }

// Tier returns 0.
func (l *Loop) Tier() Tier { return 0 }

// CountRearm does nothing.
func (l *Loop) CountRearm() {}

// ReportPanic does nothing.
func (l *Loop) ReportPanic(v any) {}

// InFlight returns 0.
func (l *Loop) InFlight() int { return 0 }

// OnLoopThread reports false.
func (l *Loop) OnLoopThread() bool { return false }

// Post fails on this platform.
func (l *Loop) Post(t Task) error { return errUnsupported }

// ID returns 0.
func (l *Loop) ID() int { return 0 }

// CPU returns -1.
func (l *Loop) CPU() int { return -1 }

// RingFD returns -1.
func (l *Loop) RingFD() int { return -1 }

// Logger returns a no-op logger.
func (l *Loop) Logger() *zap.Logger { return zap.NewNop() }

// Closing reports true.
func (l *Loop) Closing() bool { return true }

// Stats returns zero counters.
func (l *Loop) Stats() Stats { return Stats{CPU: -1} }

func allowedCPUs() int { return 1 }
