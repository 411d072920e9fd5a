//go:build linux

package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	goruntime "runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/netio"
	"github.com/ringwire/ringwire/ring"
)

// mirrorEcho is a prototype of the net face's read path, kept to answer one
// question of issue #13: can a goroutine-per-connection Read beat package
// net at 1 000 connections without giving up its semantics (data read into
// the caller's slice, unread data left in the socket)?
//
// Package net spends three system calls per ping-pong message: the read
// that returns data, the write, and a read that returns EAGAIN before the
// goroutine parks. On the 2-core VM a system call costs 1.2 µs and the
// EAGAIN read on a TCP socket 2.1 µs. The EAGAIN read exists because Go's
// poller forgets, at the start of every Read, whether the socket became
// readable since the last one (internal/poll resets pollDesc.rg), so Read
// must look. This mode keeps that knowledge itself: every socket is also in
// an epoll set of the server's own (edge-triggered), whose events a harvester
// goroutine collects in batches, one epoll_wait for many sockets. A Read
// whose previous read drained the socket (returned less than asked) and
// which has seen no edge since parks at once, with no read, and is woken by
// the harvester; a Read with an edge reads. Only while enough readers are
// parked (hot) does a Read park this way; otherwise it reads first and
// waits in Go's poller, as package net does, so one connection costs no
// harvester round trip.
//
// mirror-ring-conn goes one step further: the harvester reads for every
// parked reader whose socket it finds readable, all of them in one
// io_uring_enter (RECV with MSG_DONTWAIT into the reader's own slice,
// pinned, completed inline; a ring with no SINGLE_ISSUER, since the
// harvester is an ordinary goroutine), and hands each reader its result.
// Both leave unread data in the socket.
//
// Prototype limits: no deadlines and no Close from another goroutine (the
// echo server needs neither); reads bypass the fdMutex (the serving
// goroutine alone closes its socket). RINGBENCH_MIRROR_HOT sets how many
// parked readers make the path hot (default 16; 0: always);
// RINGBENCH_MIRROR_COUNTS names a file to which Close appends the
// harvester's counters. Results: docs/decisions/2026-12-03-net-face-reads-through-go-poller.md.
// G now ships in netio (net_mirror_linux.go), with deadlines, Close and
// the rest; ringwire-conn measures it. These two stay as the prototypes
// the decision record measured.
type mirrorEcho struct {
	ln    net.Listener
	epfd  int
	ep    *os.File
	wg    sync.WaitGroup // acceptLoop and serve
	hwg   sync.WaitGroup // harvest
	conns atomic.Int64
	bytes atomic.Int64

	hot     int64
	parked  atomic.Int64 // readers waiting, either way
	waiters atomic.Int64 // readers waiting on the harvester
	kick    chan struct{}
	done    chan struct{}

	mu     sync.Mutex
	table  []*mirrorConn // epoll data → connection
	free   []int
	closed bool

	harvests, harvested                     atomic.Int64
	claims, edgeWakes, selfReads, coldReads atomic.Int64

	// ring, for mirror-ring-conn: the harvester reads for every parked
	// reader it finds readable, all in one io_uring_enter (RECV with
	// MSG_DONTWAIT into the reader's own slice, completed inline).
	ring *ring.Ring

	once     sync.Once
	closeErr error
}

// mirrorConn states.
const (
	mIdle    = iota // no edge seen since the last read began
	mEdge           // readable since the last read began
	mWaiting        // its reader is parked on wake
	mClaimed        // the harvester is reading for its parked reader
)

type mirrorConn struct {
	c        net.Conn
	fd       int
	slot     int
	rc       syscall.RawConn
	state    atomic.Int32
	wake     chan struct{}
	drained  bool // the last read returned less than asked
	n        int
	err      error
	buf      []byte
	readOnce func(uintptr) bool
	got      bool // the harvester read for this reader: n, err are its result
}

func startMirrorRingEcho(cfg EchoConfig) (Server, error) {
	srv, err := startMirrorEcho(cfg)
	if err != nil {
		return nil, err
	}
	s := srv.(*mirrorEcho)
	if s.ring, err = ring.New(&ring.Config{Entries: 256}); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func startMirrorEcho(cfg EchoConfig) (Server, error) {
	ln, err := netio.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, err
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		ln.Close()
		unix.Close(epfd)
		return nil, err
	}
	hot := int64(16)
	if v, err := strconv.Atoi(os.Getenv("RINGBENCH_MIRROR_HOT")); err == nil {
		hot = int64(v)
	}
	s := &mirrorEcho{
		ln: ln, epfd: epfd, ep: os.NewFile(uintptr(epfd), "epoll"), hot: hot,
		kick: make(chan struct{}, 1), done: make(chan struct{}),
	}
	s.wg.Add(1)
	s.hwg.Add(1)
	go s.acceptLoop()
	go s.harvest()
	return s, nil
}

func (s *mirrorEcho) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		m := &mirrorConn{c: c, wake: make(chan struct{}, 1)}
		rc, _ := c.(syscall.Conn).SyscallConn()
		m.rc = rc
		_ = rc.Control(func(fd uintptr) { m.fd = int(fd) })
		m.readOnce = m.tryRead
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		if n := len(s.free); n > 0 {
			m.slot, s.free = s.free[n-1], s.free[:n-1]
			s.table[m.slot] = m
		} else {
			m.slot = len(s.table)
			s.table = append(s.table, m)
		}
		s.wg.Add(1)
		s.mu.Unlock()
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(m.slot)}
		if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, m.fd, &ev); err != nil {
			c.Close()
			s.wg.Done()
			continue
		}
		s.conns.Add(1)
		go s.serve(m)
	}
}

// tryRead is the RawConn.Read callback of the package-net way: read, and
// on EAGAIN wait in Go's poller.
func (m *mirrorConn) tryRead(fd uintptr) bool {
	m.state.Store(mIdle)
	m.n, m.err = unix.Read(int(fd), m.buf)
	return m.err != unix.EAGAIN
}

// read reads into b as the prototype's net.Conn.Read would.
func (s *mirrorEcho) read(m *mirrorConn, b []byte) (int, error) {
	for {
		if !m.drained || m.state.Load() == mEdge {
			m.state.Store(mIdle) // before the read: a later edge is kept
			s.selfReads.Add(1)
			n, err := unix.Read(m.fd, b)
			if err == unix.EAGAIN {
				m.drained = true
				continue
			}
			if err != nil {
				return 0, err
			}
			if n == 0 {
				return 0, errors.New("EOF")
			}
			m.drained = n < len(b)
			return n, nil
		}
		// Drained, and no edge since: no data.
		if s.parked.Load() >= s.hot {
			s.parked.Add(1)
			m.buf = b // before the CAS publishes it to the harvester
			if m.state.CompareAndSwap(mIdle, mWaiting) {
				if s.waiters.Add(1) == 1 {
					select {
					case s.kick <- struct{}{}:
					default:
					}
				}
				<-m.wake
				s.waiters.Add(-1)
				if m.got {
					s.parked.Add(-1)
					m.got = false
					return m.result(b)
				}
			}
			s.parked.Add(-1)
			continue // an edge: read
		}
		// Cold: read first, then wait in Go's poller.
		m.buf = b
		s.parked.Add(1)
		s.coldReads.Add(1)
		err := m.rc.Read(m.readOnce)
		s.parked.Add(-1)
		if err != nil {
			return 0, err
		}
		return m.result(b)
	}
}

// result is the outcome of a read into b that m.n and m.err hold.
func (m *mirrorConn) result(b []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	if m.n == 0 {
		return 0, errors.New("EOF")
	}
	m.drained = m.n < len(b)
	return m.n, nil
}

// harvest collects the epoll set's edges while readers wait on it.
func (s *mirrorEcho) harvest() {
	defer s.hwg.Done()
	rc, _ := s.ep.SyscallConn()
	evs := make([]unix.EpollEvent, 256)
	cqes := make([]ring.CQE, 256)
	var claimed []*mirrorConn
	var pin goruntime.Pinner
	var got int
	poll := func(fd uintptr) bool {
		n, err := unix.EpollWait(int(fd), evs, 0)
		if err != nil || n <= 0 {
			got = 0
			return false
		}
		got = n
		return true
	}
	for {
		for s.waiters.Load() == 0 {
			select {
			case <-s.kick:
			case <-s.done:
				return
			}
		}
		if err := rc.Read(poll); err != nil {
			return
		}
		s.harvests.Add(1)
		s.harvested.Add(int64(got))
		claimed = claimed[:0]
		s.mu.Lock()
		for _, ev := range evs[:got] {
			m := s.table[ev.Fd]
			if m == nil {
				continue
			}
			if s.ring != nil && m.state.CompareAndSwap(mWaiting, mClaimed) {
				sqe := s.ring.GetSQE()
				pin.Pin(&m.buf[0]) // the kernel writes it until the CQE
				sqe.PrepRecv(m.fd, m.buf, unix.MSG_DONTWAIT)
				sqe.UserData = uint64(len(claimed))
				claimed = append(claimed, m)
				s.claims.Add(1)
				continue
			}
			if m.state.Swap(mEdge) == mWaiting {
				s.edgeWakes.Add(1)
				m.wake <- struct{}{}
			}
		}
		s.mu.Unlock()
		if len(claimed) == 0 {
			continue
		}
		if _, err := s.ring.SubmitAndWait(uint32(len(claimed))); err != nil {
			panic(err)
		}
		for done := 0; done < len(claimed); {
			k := s.ring.Reap(cqes)
			if k == 0 {
				if _, err := s.ring.SubmitAndWait(1); err != nil {
					panic(err)
				}
				continue
			}
			for _, c := range cqes[:k] {
				m := claimed[c.UserData]
				if c.Res == -int32(unix.EAGAIN) {
					m.state.Store(mWaiting) // a stale edge: still waiting
					continue
				}
				m.n, m.err = 0, nil
				if c.Res < 0 {
					m.err = syscall.Errno(-c.Res)
				} else {
					m.n = int(c.Res)
				}
				m.got = true
				m.state.Store(mIdle)
				m.wake <- struct{}{}
			}
			done += k
		}
		pin.Unpin()
	}
}

func (s *mirrorEcho) serve(m *mirrorConn) {
	defer s.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := s.read(m, buf)
		if n > 0 {
			if _, werr := m.c.Write(buf[:n]); werr != nil {
				break
			}
			s.bytes.Add(int64(n))
		}
		if err != nil {
			break
		}
	}
	s.mu.Lock()
	s.table[m.slot] = nil
	s.free = append(s.free, m.slot)
	s.mu.Unlock()
	_ = unix.EpollCtl(s.epfd, unix.EPOLL_CTL_DEL, m.fd, nil)
	_ = m.c.Close()
}

func (s *mirrorEcho) Addr() net.Addr { return s.ln.Addr() }

func (s *mirrorEcho) Stats() ServerStats {
	return ServerStats{Conns: s.conns.Load(), Bytes: s.bytes.Load()}
}

func (s *mirrorEcho) Close() error {
	s.once.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *mirrorEcho) close() error {
	err := s.ln.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	s.mu.Lock()
	s.closed = true
	for _, m := range s.table {
		if m != nil {
			_ = m.c.(interface{ CloseRead() error }).CloseRead()
		}
	}
	s.mu.Unlock()
	s.wg.Wait() // the harvester delivers the EOF edges
	close(s.done)
	_ = s.ep.Close()
	s.hwg.Wait()
	if s.ring != nil {
		s.ring.Close()
	}
	if os.Getenv("RINGBENCH_MIRROR_COUNTS") != "" {
		f, _ := os.OpenFile(os.Getenv("RINGBENCH_MIRROR_COUNTS"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		defer f.Close()
		fmt.Fprintf(f, "mirror: harvests %d events %d claims %d edge-wakes %d self-reads %d cold-reads %d\n",
			s.harvests.Load(), s.harvested.Load(), s.claims.Load(), s.edgeWakes.Load(), s.selfReads.Load(), s.coldReads.Load())
	}
	return err
}
