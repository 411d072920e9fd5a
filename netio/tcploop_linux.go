//go:build linux

package netio

import (
	"sync"
	"sync/atomic"

	"github.com/ringwire/ringwire/runtime"
)

// tcpLoop is what the net.Conn face keeps per event loop: the budget of
// deferred buffer releases, and the fd guards of its connections.
//
// Deferred releases. A Read about to block used to post a release task for
// the leases it had consumed, which wakes a sleeping loop: one extra thread
// wakeup per message in a request/response exchange. Instead the reader may
// leave them in its tcpConn's rel list; the loop releases them at that
// connection's next OnData (it takes the connection's lock there anyway), or
// with the next posted task. Leases left so are counted in n, and once a
// loop's count would pass max (an eighth of its buffer group) readers post
// the release as before: idle connections can then never hold enough buffers
// to starve the loop's receives.
//
// Guards. The sockets of net.Conns are closed through their fdGuard (a
// goroutine may be inside send(2) on one), never by loopState.Close: attach
// takes the fd out of loopState.fds and puts its guard in guards, and Close,
// at loop shutdown, closes through the guards the sockets still open.
type tcpLoop struct {
	l      *runtime.Loop
	n      atomic.Int64
	max    int64
	guards map[*fdGuard]struct{} // loop thread only
}

// tcpLoops maps a *runtime.Loop to its *tcpLoop; an entry is removed when its
// loop shuts down (the tcpLoop is handed to Loop.Own).
var tcpLoops sync.Map

// tcpLoopOf returns ls's tcpLoop, creating it on first use. Loop thread.
func tcpLoopOf(ls *loopState) *tcpLoop {
	if v, ok := tcpLoops.Load(ls.l); ok {
		return v.(*tcpLoop)
	}
	b := &tcpLoop{l: ls.l, max: int64(ls.group.Count() / 8), guards: make(map[*fdGuard]struct{})}
	tcpLoops.Store(ls.l, b)
	ls.l.Own(b)
	return b
}

// track makes g's socket this loop's to close at shutdown instead of ls's.
// Loop thread.
func (b *tcpLoop) track(ls *loopState, g *fdGuard) {
	delete(ls.fds, g.fd)
	b.guards[g] = struct{}{}
	g.owner = b
}

// Close runs at loop shutdown, after the loop's operations ended (or the
// shutdown stopped waiting for them): it closes the sockets still open
// through their guards, and forgets the loop.
func (b *tcpLoop) Close() error {
	for g := range b.guards {
		g.close()
	}
	tcpLoops.Delete(b.l)
	return nil
}

// take counts k more deferred leases; false (and nothing counted) if that
// would pass the bound. Any goroutine.
func (b *tcpLoop) take(k int) bool {
	if b.n.Add(int64(k)) <= b.max {
		return true
	}
	b.n.Add(-int64(k))
	return false
}

// give uncounts k deferred leases once they are released. Any goroutine.
func (b *tcpLoop) give(k int) {
	if k != 0 {
		b.n.Add(-int64(k))
	}
}
