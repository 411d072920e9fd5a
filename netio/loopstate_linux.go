//go:build linux

package netio

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/ring"
	"github.com/ringwire/ringwire/runtime"
)

// groupID is the provided buffer group netio registers on a loop that has
// none of its own (runtime.Config.Buffers unset).
const groupID uint16 = 0x7277

// The group is lazy (bufring.Config.Lazy): it starts with groupLowWater+
// groupBatch buffers published and grows, up to groupCount, only when the
// kernel runs low. groupCount is sized for a net.Conn per connection holding
// a received buffer until its goroutine reads it (1000 connections on a loop
// need about 1000); a smaller group starves the receives, and re-arming them
// cost 8-10% of the server's CPU at 1000 connections. Memory the load never
// needed stays untouched, so the handler API's footprint does not grow.
const (
	groupCount    = 1024
	groupLowWater = 64
	groupBatch    = 16
)

// rearmer is a socket whose multishot receive ended with ENOBUFS.
type rearmer interface{ rearmRecv() }

// recvArmer is a rearmer that reports whether its rearmRecv armed a receive
// (not when the socket closed or paused while it waited). A rearmer without
// it is taken to have armed one.
type recvArmer interface{ recvArmed() bool }

// rearmShare is how many of the available buffers kickStarved leaves, on
// average, to each receive it re-arms: re-arming more receives than there are
// buffers only ends the extra ones with ENOBUFS again.
const rearmShare = 2

// loopState is what netio keeps per event loop: the provided buffer group
// every receive of the loop selects from, the arena sends are copied into,
// the sockets waiting for buffers, and the sockets to close at shutdown.
// Loop thread only.
type loopState struct {
	l        *runtime.Loop
	group    *bufring.Group
	arena    *bufring.Arena
	gid      uint16 // the group's buffer group id
	ownGroup bool   // made here (else the runtime's, closed by it)
	ownArena bool
	starved  []rearmer // FIFO: re-armed from the front, starved again at the back
	kicking  bool
	kicks    kickCounts
	timer    runtime.TimerID
	fds      map[int]struct{} // sockets open on this loop, closed at shutdown
	data     Data             // reused for every OnData call
	closed   bool
	stats    *loopCounters
	// socks are the net face's sockets on this loop (any goroutine; see
	// sockSet), closed first at shutdown.
	socks sockSet
	// lingering counts the goroutines closing sockets whose close(2) may
	// block (closeSocket); Close joins them.
	lingering sync.WaitGroup
}

// loopCounters are netio's per-loop statistics; read with Stats.
type loopCounters struct {
	zcSends     atomic.Uint64
	zcAbandoned atomic.Uint64
	plainSends  atomic.Uint64
	gathered    atomic.Uint64
	rearms      atomic.Uint64
	starved     atomic.Uint64
	accepted    atomic.Uint64
	acceptErrs  atomic.Uint64
	truncated   atomic.Uint64
	spliced     atomic.Uint64
	mirrorReads atomic.Uint64
}

// kickCounts describes kickStarved's work, for tests. Loop thread only.
type kickCounts struct {
	kicks  int // kicks that found starved receives
	rearms int // receives re-armed by them
	max    int // most receives re-armed by one kick
}

// loopStateOf returns l's netio state, or nil before netio first used l (or
// after l shut down). The state lives in the loop's local slot
// (runtime.Loop.SetLocal), set on the loop thread the first time netio uses
// the loop and cleared when the loop shuts down (loopState is handed to
// Loop.Own). Any goroutine.
func loopStateOf(l *runtime.Loop) *loopState {
	ls, _ := l.Local().(*loopState)
	return ls
}

// stateOf returns l's netio state with its buffers: creating the state on
// first use, and the buffers (a buffer group, an arena and their
// fixed-buffer registration) the first time a handler-API socket needs them.
// Loop thread only.
func stateOf(l *runtime.Loop) (*loopState, error) {
	ls := ownerOf(l)
	if ls.group != nil {
		return ls, nil
	}
	return ls, ls.initBuffers()
}

// ownerOf returns l's netio state, creating it without buffers on first
// use: the net face needs only its socket set. Loop thread only.
func ownerOf(l *runtime.Loop) *loopState {
	if ls := loopStateOf(l); ls != nil {
		return ls
	}
	ls := &loopState{l: l, fds: make(map[int]struct{}), stats: &loopCounters{}}
	ls.socks.l, ls.socks.stats = l, ls.stats
	l.SetLocal(ls)
	l.Own(ls)
	return ls
}

// socketSet returns the set the net face's sockets on l join, creating l's
// netio state if needed (a task on l, waited for, the first time). Any
// goroutine but l's own thread.
func socketSet(l *runtime.Loop) (*sockSet, error) {
	if ls := loopStateOf(l); ls != nil {
		return &ls.socks, nil
	}
	var ls *loopState
	if err := runOn(l, func(l *runtime.Loop) error { ls = ownerOf(l); return nil }); err != nil {
		return nil, err
	}
	return &ls.socks, nil
}

// initBuffers makes the loop's buffer group and arena. Loop thread only.
func (ls *loopState) initBuffers() error {
	l := ls.l
	// Use the loop's own group and arena (runtime.Config.Buffers/Arena) when
	// it has them; otherwise make them here.
	ls.group, ls.arena = l.Group(), l.Arena()
	if ls.group == nil {
		g, err := bufring.NewGroup(l.Ring(), &bufring.Config{GroupID: groupID, Count: groupCount, LowWater: groupLowWater, Batch: groupBatch, Lazy: true, Logger: l.Logger()})
		if err != nil {
			ls.group, ls.arena = nil, nil
			return err
		}
		ls.group, ls.ownGroup = g, true
	}
	if ls.arena == nil {
		a, err := bufring.NewArena(nil)
		if err != nil {
			if ls.ownGroup {
				_ = ls.group.Close()
			}
			ls.group, ls.arena, ls.ownGroup = nil, nil, false
			return err
		}
		ls.arena, ls.ownArena = a, true
	}
	ls.gid = ls.group.ID()
	if ls.ownGroup || ls.ownArena {
		if err := bufring.RegisterFixedOnDemand(l.Ring(), ls.group, ls.arena); err != nil {
			// The ring's fixed buffers are registered already: sends use
			// SEND_ZC from plain addresses, which works, a little slower.
			l.Logger().Info("netio: fixed buffers not registered", zap.Error(err))
		}
	}
	return nil
}

// Close runs when the loop shuts down, after every operation finished (or
// the runtime gave up waiting for them): it closes the sockets still open on
// the loop, waits for the lingering closes (closeSocket) to end, and unmaps
// the buffers, unless operations are still in flight: the kernel may still
// write to the group's buffers and read the arena's blocks until the ring's
// asynchronous teardown has cancelled them, so then, as the runtime does with
// its own buffers, they stay mapped for the life of the process.
func (ls *loopState) Close() error {
	ls.l.SetLocal((*loopState)(nil))
	ls.closed = true
	ls.socks.closeAll()
	for fd := range ls.fds {
		ls.closeSocket(fd)
	}
	clear(ls.fds)
	ls.lingering.Wait()
	if n := ls.l.InFlight(); n > 0 {
		ls.l.Logger().Error("netio: buffers left mapped: operations still in flight at shutdown", zap.Int("ops", n))
		return nil
	}
	var errs []error
	if ls.ownGroup {
		errs = append(errs, ls.group.Close())
	}
	if ls.ownArena {
		errs = append(errs, ls.arena.Close())
	}
	return errors.Join(errs...)
}

// closeSocket closes fd, a socket of this loop, without blocking the loop
// thread. close(2) of a TCP socket whose SO_LINGER has a positive timeout
// waits until the peer has acknowledged the unsent data or the timeout has
// passed, and every other socket of the loop would wait with it; such a
// socket is closed by a goroutine of its own instead, joined by Close.
// (IORING_OP_CLOSE is no way around it: issued inline, its final fput runs as
// task work on the loop thread, which then lingers just the same; with
// IOSQE_ASYNC it lingers in an io-wq worker.) The descriptor number stays
// taken until that goroutine's close(2). Loop thread.
func (ls *loopState) closeSocket(fd int) {
	if !lingers(fd) {
		closeFD(fd)
		return
	}
	ls.lingering.Add(1)
	go func() {
		defer ls.lingering.Done()
		closeFD(fd)
	}()
}

// lingers reports whether close(2) of fd may block: SO_LINGER on, with a
// positive timeout. (A zero timeout resets the connection at once.)
func lingers(fd int) bool {
	lg, err := unix.GetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER)
	return err == nil && lg.Onoff != 0 && lg.Linger > 0
}

// starve queues r to re-arm its receive once buffers are back.
func (ls *loopState) starve(r rearmer) {
	ls.starved = append(ls.starved, r)
	ls.stats.starved.Add(1)
	if ls.timer == 0 {
		ls.timer = ls.l.Timer(ls, 0, time.Now().Add(time.Millisecond))
	}
}

// HandleCompletion is the starvation timer: publish released buffers and
// re-arm as many starved receives as there are buffers for.
func (ls *loopState) HandleCompletion(_ *runtime.Loop, _ uint64, _ *ring.CQE) {
	ls.timer = 0
	ls.kickStarved()
}

// kickStarved re-arms starved receives, oldest first, while the group has
// buffers for them: at most Available()/rearmShare (at least one while any
// buffer is available) per call, since arming a receive does not lower
// Available() and re-arming every starved socket at once would end all but a
// few with ENOBUFS again, every tick. The rest stay queued in order, and a
// re-armed receive that starves again queues behind them, so every socket gets
// its turn. Each re-arm counts in Stats.Rearms.
func (ls *loopState) kickStarved() {
	if len(ls.starved) == 0 || ls.kicking {
		return
	}
	ls.kicking = true
	ls.group.Flush()
	avail := ls.group.Available()
	budget := avail / rearmShare
	if budget == 0 && avail > 0 {
		budget = 1
	}
	n, armed := 0, 0
	for n < len(ls.starved) && armed < budget {
		r := ls.starved[n]
		ls.starved[n] = nil
		n++
		r.rearmRecv()
		if ra, ok := r.(recvArmer); !ok || ra.recvArmed() {
			armed++
		}
	}
	rest := copy(ls.starved, ls.starved[n:])
	clear(ls.starved[rest:])
	ls.starved = ls.starved[:rest]
	ls.kicking = false
	ls.kicks.kicks++
	ls.kicks.rearms += armed
	ls.kicks.max = max(ls.kicks.max, armed)
	if armed > 0 {
		ls.stats.rearms.Add(uint64(armed))
		for range armed {
			ls.l.CountRearm()
		}
	}
	if n > 0 {
		ls.group.Rearmed()
	}
	if rest > 0 && ls.timer == 0 && !ls.closed {
		ls.timer = ls.l.Timer(ls, 0, time.Now().Add(time.Millisecond))
	}
}
