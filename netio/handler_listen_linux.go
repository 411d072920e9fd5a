//go:build linux

package netio

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/ringwire/ringwire/ring"
	"github.com/ringwire/ringwire/runtime"
)

const (
	tagAccept uint64 = iota + 1
	tagAcceptTimer
)

// Accept back-off after EMFILE/ENFILE/ENOMEM: the accept is re-armed after a
// timer instead of at once, so a process out of descriptors does not spin.
const (
	acceptBackoffMin = time.Millisecond
	acceptBackoffMax = 500 * time.Millisecond
)

// Server is a handler-API TCP listener: it accepts connections with
// multishot accept on its loops and calls the Handler for each.
type Server struct {
	rt      *runtime.Runtime
	cfg     Config
	h       Handler
	network string
	addr    netip.AddrPort
	accs    []*acceptor
	boxes   []runtime.OpID // AcceptHandoff: the mailbox on each loop
	handoff handoffSet     // AcceptHandoff: sockets passed and not yet received
	closeMu sync.Mutex
	closed  bool
	wg      sync.WaitGroup
	// acceptErr, if set, is told of accept errors (net.Listener).
	acceptErr func(error)
}

// acceptor is one listening socket and its multishot accept, on one loop.
type acceptor struct {
	s       *Server
	l       *runtime.Loop
	ls      *loopState
	fd      int
	op      runtime.OpID
	timer   runtime.TimerID
	backoff time.Duration
	closing bool
}

// listenServer opens the listening socket(s) and starts accepting.
func listenServer(rt *runtime.Runtime, cfg *Config, network, address string, ap netip.AddrPort, k netKind, h Handler) (*Server, error) {
	loops := rt.Loops()
	if len(loops) > 1 {
		// Every loop gets an acceptor or a mailbox, set up on its thread.
		if err := offLoopThreads(rt, "Serve"); err != nil {
			return nil, opErr("listen", network, nil, tcpAddrOrNil(ap), "", err)
		}
	}
	s := &Server{rt: rt, cfg: *cfg, h: h, network: network}
	backlog := cfg.Backlog
	if backlog == 0 {
		backlog = listenBacklog()
	}
	n := 1
	if cfg.Accept == AcceptReusePort {
		n = len(loops)
	}
	var fds []int
	fail := func(err error) (*Server, error) {
		for _, fd := range fds {
			closeFD(fd)
		}
		return nil, opErr("listen", network, nil, tcpAddrOrNil(ap), "listen", err)
	}
	bind := ap
	for i := 0; i < n; i++ {
		fd, local, err := listenSocket(k, bind, backlog, n > 1)
		if err != nil {
			return fail(err)
		}
		fds = append(fds, fd)
		if i == 0 {
			s.addr = local
			bind = netip.AddrPortFrom(ap.Addr(), local.Port()) // the others share the port
		}
	}
	if cfg.Accept == AcceptHandoff {
		s.boxes = make([]runtime.OpID, len(loops))
		for i, l := range loops {
			err := runOn(l, func(l *runtime.Loop) error {
				if _, err := stateOf(l); err != nil {
					return err
				}
				s.boxes[i] = l.NewMailbox((*handoffBox)(s), 0)
				return nil
			})
			if err != nil {
				s.closeBoxes()
				return fail(err)
			}
		}
	}
	for i, fd := range fds {
		a := &acceptor{s: s, l: loops[i], fd: fd}
		s.accs = append(s.accs, a)
	}
	for i, a := range s.accs {
		s.wg.Add(1)
		err := runOn(a.l, func(l *runtime.Loop) error {
			ls, err := stateOf(l)
			if err != nil {
				return err
			}
			a.ls = ls
			ls.fds[a.fd] = struct{}{}
			a.arm()
			return nil
		})
		if err != nil {
			s.wg.Done()
			for _, b := range s.accs[i+1:] {
				closeFD(b.fd)
			}
			s.accs = s.accs[:i]
			s.close()
			return nil, opErr("listen", network, nil, tcpAddrOrNil(ap), "listen", err)
		}
	}
	return s, nil
}

func tcpAddrOrNil(ap netip.AddrPort) net.Addr {
	if !ap.Addr().IsValid() {
		return &net.TCPAddr{Port: int(ap.Port())}
	}
	return net.TCPAddrFromAddrPort(ap)
}

// runOn runs f on l's thread and returns its error: at once when the caller
// is on that thread, else by posting it and waiting. A caller on another
// loop's thread must not wait (check with waitableFrom).
func runOn(l *runtime.Loop, f func(l *runtime.Loop) error) error {
	if l.OnLoopThread() {
		return f(l)
	}
	res := make(chan error, 1)
	if err := l.Post(runtime.TaskFunc(func(l *runtime.Loop) { res <- f(l) })); err != nil {
		return err
	}
	return <-res
}

// callerLoop returns the loop of rt on whose thread the caller runs, or nil.
func callerLoop(rt *runtime.Runtime) *runtime.Loop {
	for _, l := range rt.Loops() {
		if l.OnLoopThread() {
			return l
		}
	}
	return nil
}

// waitableFrom returns an error wrapping ErrLoopThread if the caller runs on
// a loop thread of rt (or, rt nil, on l's) other than l's: a call that posts
// to l and waits would block that loop, and deadlock if l waited for it. On
// l's own thread runOn runs inline, which is fine.
func waitableFrom(rt *runtime.Runtime, l *runtime.Loop) error {
	if l.OnLoopThread() {
		return nil
	}
	if rt == nil {
		return nil
	}
	if own := callerLoop(rt); own != nil {
		return fmt.Errorf("netio: on loop %d's thread, waiting for loop %d: %w", own.ID(), l.ID(), ErrLoopThread)
	}
	return nil
}

// offLoopThreads returns an error wrapping ErrLoopThread if the caller runs
// on any loop thread of rt: for calls that wait for something a loop does
// later (an accept to end, a connect to complete), which no loop thread may
// wait for, its own least of all.
func offLoopThreads(rt *runtime.Runtime, call string) error {
	if own := callerLoop(rt); own != nil {
		return fmt.Errorf("netio: %s on loop %d's thread: %w", call, own.ID(), ErrLoopThread)
	}
	return nil
}

// Addr returns the listening address (the port chosen for port 0).
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Close stops accepting and closes the listening sockets; connections
// already open stay open. It waits for the accepts to end, so it must not be
// called on one of the runtime's loop threads (a Handler callback or a
// runtime.Task): there it returns an error wrapping ErrLoopThread and closes
// nothing; call it from another goroutine (go s.Close()).
func (s *Server) Close() error {
	if err := offLoopThreads(s.rt, "Server.Close"); err != nil {
		return err
	}
	s.close()
	return nil
}

// close is Close without the loop-thread check: listenServer's failure path
// needs it on the one loop of a one-loop runtime, with no acceptor to wait for.
func (s *Server) close() {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return
	}
	s.closed = true
	s.closeMu.Unlock()
	for _, a := range s.accs {
		if a.l.Post((*acceptorClose)(a)) != nil {
			s.wg.Done() // the loop is gone and closed the socket
		}
	}
	s.wg.Wait()
	s.closeBoxes()
	// A socket whose message reached its loop after the mailbox closed (a
	// stray CQE) is still here: no loop will take it now.
	s.handoff.closeAll(closeFD)
}

func (s *Server) closeBoxes() {
	for i, id := range s.boxes {
		if id != 0 {
			l := s.rt.Loops()[i]
			_ = runOn(l, func(l *runtime.Loop) error { return l.CloseMailbox(id) })
		}
	}
	s.boxes = nil
}

// acceptorClose is an acceptor seen as the runtime.Task that Server.Close
// posts to its loop to stop it (a conversion, (*acceptorClose)(a)).
type acceptorClose acceptor

func (ac *acceptorClose) Run(*runtime.Loop) {
	a := (*acceptor)(ac)
	a.closing = true
	if a.op != 0 {
		_ = a.l.Cancel(a.op)
	}
	if a.timer != 0 {
		a.l.StopTimer(a.timer)
		a.timer = 0
	}
	a.maybeDone()
}

func (a *acceptor) maybeDone() {
	if a.closing && a.op == 0 && a.timer == 0 && a.fd >= 0 {
		delete(a.ls.fds, a.fd)
		closeFD(a.fd)
		a.fd = -1
		a.s.wg.Done()
	}
}

func (a *acceptor) arm() {
	if a.op != 0 || a.closing || a.timer != 0 {
		return
	}
	sqe, id, err := a.l.NewOp(a, tagAccept)
	if err != nil {
		a.backoffArm()
		return
	}
	sqe.PrepMultishotAccept(a.fd, nil, nil, 0x80000|0x800) // SOCK_CLOEXEC|SOCK_NONBLOCK
	a.op = id
}

func (a *acceptor) backoffArm() {
	if a.backoff == 0 {
		a.backoff = acceptBackoffMin
	} else if a.backoff < acceptBackoffMax {
		a.backoff *= 2
	}
	a.timer = a.l.Timer(a, tagAcceptTimer, time.Now().Add(a.backoff))
}

// HandleCompletion handles accept CQEs and the back-off timer.
func (a *acceptor) HandleCompletion(l *runtime.Loop, tag uint64, cqe *ring.CQE) {
	if tag == tagAcceptTimer {
		a.timer = 0
		if a.closing {
			a.maybeDone()
			return
		}
		a.arm()
		return
	}
	final := !cqe.More()
	if final {
		a.op = 0
	}
	if cqe.Res >= 0 {
		a.backoff = 0
		a.ls.stats.accepted.Add(1)
		a.s.dispatch(a, int(cqe.Res))
	} else {
		errno := cqe.Errno()
		switch errno {
		case syscall.ECANCELED:
			if l.Closing() {
				// The runtime is shutting down: sockets handed off and not
				// yet received may never be (their loop's ring may close
				// first); close them now.
				a.s.handoff.closeAll(a.ls.closeSocket)
			}
		case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM:
			a.ls.stats.acceptErrs.Add(1)
			if a.backoff == 0 {
				a.l.Logger().Warn("netio: accept failing, backing off", zap.Error(errno))
			}
			if !final {
				_ = l.Cancel(a.op)
			}
			if a.timer == 0 && !a.closing {
				a.backoffArm()
			}
			if f := a.s.acceptErr; f != nil {
				f(os.NewSyscallError("accept4", errno))
			}
		default:
			a.ls.stats.acceptErrs.Add(1) // ECONNABORTED and such: try again
		}
	}
	if final {
		if a.closing {
			a.maybeDone()
			return
		}
		if a.timer == 0 {
			l.CountRearm()
			a.arm()
		}
	}
}

// dispatch places an accepted socket on a loop.
func (s *Server) dispatch(a *acceptor, fd int) {
	if s.cfg.Accept == AcceptHandoff {
		if target := s.rt.Next(); target != a.l {
			s.handOff(a, target, fd)
			return
		}
	}
	s.open(a.ls, fd)
}

// handOff passes fd to target's mailbox with IORING_OP_MSG_RING (the CQE's
// Res is the fd). The socket is tracked in s.handoff until a loop takes it:
// the target's mailbox when the message arrives (handoffBox), this loop when
// the kernel refuses the message (handoffSent), or, when the message reaches
// a mailbox that has closed or a loop that shut down before reading it,
// Server.Close or the acceptor's shutdown (handoffSet.closeAll).
func (s *Server) handOff(a *acceptor, target *runtime.Loop, fd int) {
	if !s.handoff.add(fd) {
		a.ls.closeSocket(fd)
		return
	}
	sqe, _, err := a.l.NewOp((*handoffSent)(s), uint64(fd))
	if err != nil {
		if s.handoff.take(fd) {
			a.ls.closeSocket(fd)
		}
		return
	}
	sqe.PrepMsgRing(target.RingFD(), uint32(fd), uint64(s.boxes[target.ID()]), 0)
}

// handoffSent is a Server seen as the runtime.Handler of its MSG_RING
// requests, whose tag is the socket passed: it closes a socket whose message
// the kernel refused (the target's ring gone, its CQ overflowing).
type handoffSent Server

func (h *handoffSent) HandleCompletion(l *runtime.Loop, tag uint64, cqe *ring.CQE) {
	if cqe.Res >= 0 {
		return
	}
	s := (*Server)(h)
	if fd := int(tag); s.handoff.take(fd) {
		if ls := loopStateOf(l); ls != nil {
			ls.stats.acceptErrs.Add(1) // an accepted connection lost
			ls.closeSocket(fd)
		} else {
			closeFD(fd)
		}
	}
}

// handoffBox is a Server seen as the runtime.Handler of its mailboxes: it
// receives the sockets passed with MSG_RING.
type handoffBox Server

func (b *handoffBox) HandleCompletion(l *runtime.Loop, _ uint64, cqe *ring.CQE) {
	s := (*Server)(b)
	fd := int(cqe.Res)
	if cqe.Res < 0 || !s.handoff.take(fd) {
		return // closed already (Server.Close, shutdown): the number may be reused
	}
	ls, err := stateOf(l)
	if err != nil {
		closeFD(fd)
		return
	}
	s.open(ls, fd)
}

// handoffSet holds the sockets a Server has passed to other loops and no
// loop has taken yet. Each is taken once, by whoever removes it from the
// set, which then opens or closes it; a socket never in it (or taken
// already) is left alone, since its number may belong to a new socket by
// then. Any goroutine.
type handoffSet struct {
	mu     sync.Mutex
	fds    map[int]struct{}
	closed bool // after closeAll: nothing more is added
}

// add records fd; false once closeAll has run (the caller closes fd).
func (h *handoffSet) add(fd int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	if h.fds == nil {
		h.fds = make(map[int]struct{})
	}
	h.fds[fd] = struct{}{}
	return true
}

// take removes fd and reports whether it was there.
func (h *handoffSet) take(fd int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.fds[fd]
	delete(h.fds, fd)
	return ok
}

// closeAll closes every socket still in the set with closeFn, and every
// later add fails.
func (h *handoffSet) closeAll(closeFn func(fd int)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for fd := range h.fds {
		closeFn(fd)
	}
	clear(h.fds)
}

// open makes a Conn of an accepted socket on ls's loop and starts it.
func (s *Server) open(ls *loopState, fd int) {
	c := newConn(ls, &s.cfg, fd, s.h)
	c.local, _ = localAddr(fd)
	c.remote, _ = peerAddr(fd)
	c.start()
}
