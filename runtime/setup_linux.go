//go:build linux

package runtime

import (
	"errors"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/ring"
)

// A loop's start, on its own locked thread: CPU pinning, the ring with the
// best tier the kernel accepts, the op table, the timer wheel, the eventfd
// doorbell, the buffer group and arena, then Config.Setup.

func (l *Loop) setup() error {
	l.tid = unix.Gettid()
	if l.cpu >= 0 {
		var set unix.CPUSet
		set.Set(l.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("runtime: loop %d: pin to CPU %d: %w", l.id, l.cpu, os.NewSyscallError("sched_setaffinity", err))
		}
	}
	p := l.probe
	// The tier comes from what the probe saw the kernel accept, never from its version.
	if p.Setup&ring.SetupDeferTaskrun != 0 && p.Setup&ring.SetupSingleIssuer != 0 && !l.cfg.ForceCoopTaskrun {
		l.tier = TierDeferTaskrun
		l.flags = ring.SetupSingleIssuer | ring.SetupDeferTaskrun | ring.SetupTaskrunFlag
	} else if p.Setup&ring.SetupCoopTaskrun != 0 && p.Setup&ring.SetupTaskrunFlag != 0 {
		l.tier = TierCoopTaskrun
		l.flags = ring.SetupCoopTaskrun | ring.SetupTaskrunFlag | p.Setup&ring.SetupSingleIssuer
	} else {
		return fmt.Errorf("runtime: kernel lacks COOP_TASKRUN and DEFER_TASKRUN (setup flags seen: %v); ringwire needs Linux 6.1 or later: %w",
			p.Setup, errors.ErrUnsupported)
	}
	l.flags |= p.Setup & (ring.SetupSubmitAll | ring.SetupNoSQArray)
	rc := &ring.Config{Entries: l.cfg.Entries, CQEntries: l.cfg.CQEntries, Flags: l.flags}
	r, err := ring.New(rc)
	if err != nil && l.flags&ring.SetupTaskrunFlag != 0 && l.tier == TierDeferTaskrun {
		// TASKRUN_FLAG beside DEFER_TASKRUN only saves syscalls; drop it if refused.
		l.flags &^= ring.SetupTaskrunFlag
		rc.Flags = l.flags
		r, err = ring.New(rc)
	}
	if err != nil {
		return fmt.Errorf("runtime: loop %d: %w", l.id, err)
	}
	l.r = r
	l.ringFD = r.FD()
	l.cqes = make([]ring.CQE, l.cfg.BatchLimit)
	l.ops.init(1024)
	l.wheel.init(l.cfg.TimerTick, time.Now())
	if l.cfg.LatencyBudget > 0 && r.Features()&ring.FeatMinTimeout != 0 {
		l.minWait = l.cfg.LatencyBudget
	}
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("runtime: loop %d: %w", l.id, os.NewSyscallError("eventfd", err))
	}
	l.efd = fd
	l.bellBuf = new([8]byte)
	l.pinner.Pin(l.bellBuf)
	l.msgAck = l.ops.alloc(msgAckHandler{}, 0, opMailbox|opInternal)
	if err := l.setupBuffers(); err != nil {
		return err
	}
	if l.cfg.Setup != nil {
		if err := l.callSetup(); err != nil {
			return err
		}
	}
	l.log.Info("runtime: loop started",
		zap.Int("cpu", l.cpu),
		zap.Stringer("tier", l.tier),
		zap.Stringer("setup", l.flags),
		zap.Stringer("features", r.Features()),
		zap.String("wakeup", "eventfd"),
		zap.Bool("min_wait", l.minWait > 0))
	return nil
}

// setupBuffers creates the loop's buffer group and arena (Config.Buffers,
// Config.Arena) on the loop thread, and registers them as fixed buffers.
func (l *Loop) setupBuffers() error {
	var slabs []bufring.Slab
	if l.cfg.Buffers != nil {
		bc := *l.cfg.Buffers
		if bc.Logger == nil {
			bc.Logger = l.log
		}
		g, err := bufring.NewGroup(l.r, &bc)
		if err != nil {
			return fmt.Errorf("runtime: loop %d: %w", l.id, err)
		}
		l.group = g
		slabs = append(slabs, g)
	}
	if l.cfg.Arena != nil {
		ac := *l.cfg.Arena
		if ac.Logger == nil {
			ac.Logger = l.log
		}
		a, err := bufring.NewArena(&ac)
		if err != nil {
			return fmt.Errorf("runtime: loop %d: %w", l.id, err)
		}
		l.arena = a
		slabs = append(slabs, a)
	}
	if len(slabs) > 0 {
		if err := bufring.RegisterFixedOnDemand(l.r, slabs...); err != nil {
			l.log.Warn("runtime: buffers not registered as fixed buffers; SEND_ZC falls back to plain addresses", zap.Error(err))
		}
	}
	return nil
}

func (l *Loop) callSetup() (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("runtime: loop %d: Config.Setup panicked: %v", l.id, v)
		}
	}()
	if err := l.cfg.Setup(l); err != nil {
		return fmt.Errorf("runtime: loop %d: Config.Setup: %w", l.id, err)
	}
	return nil
}

// Group returns the loop's provided buffer group (Config.Buffers), or nil.
// Loop thread only, like everything in bufring.
func (l *Loop) Group() *bufring.Group { return l.group }

// Arena returns the loop's fixed-buffer arena (Config.Arena), or nil. Loop
// thread only.
func (l *Loop) Arena() *bufring.Arena { return l.arena }
