//go:build linux

package netio

import "sync/atomic"

// fdGuard lets goroutines other than the loop make system calls on a socket
// the loop owns (the net.Conn Write fast path) without ever touching a closed,
// possibly reused, fd number. It is a reduced internal/poll fdMutex: state
// counts the goroutines inside a system call on fd, and its top bit says the
// loop has finished with the socket.
//
// The loop calls close where it would close(2) the fd; it never blocks or
// spins there: if no goroutine is inside a call the loop closes the fd at
// once, otherwise the last goroutine to leave (release) closes it. Exactly
// one of them does, since acquire fails once the bit is set. done is closed
// after close(2), whoever ran it.
type fdGuard struct {
	state atomic.Uint32
	fd    int
	done  chan struct{}
	owner *tcpLoop // tracks the guard until close; loop thread only
}

const fdClosing = 1 << 31

func newFDGuard(fd int) *fdGuard { return &fdGuard{fd: fd, done: make(chan struct{})} }

// acquire registers a user of the fd; false once close has been called, when
// the fd must not be used. Any goroutine.
func (g *fdGuard) acquire() bool {
	for {
		s := g.state.Load()
		if s&fdClosing != 0 {
			return false
		}
		if g.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

// release ends a use begun by a successful acquire, closing the fd if the
// loop asked for it meanwhile. Any goroutine.
func (g *fdGuard) release() {
	if g.state.Add(^uint32(0)) == fdClosing {
		g.destroy()
	}
}

// close closes the fd now, or lets the last user close it. Loop thread;
// calls after the first do nothing.
func (g *fdGuard) close() {
	if g.owner != nil {
		if _, ok := g.owner.guards[g]; !ok {
			return // closed already
		}
		delete(g.owner.guards, g)
	} else if g.state.Load()&fdClosing != 0 {
		return
	}
	if g.state.Add(fdClosing) == fdClosing {
		g.destroy()
	}
}

// closed reports whether close(2) has run.
func (g *fdGuard) closed() <-chan struct{} { return g.done }

func (g *fdGuard) destroy() {
	closeFD(g.fd)
	close(g.done)
}
