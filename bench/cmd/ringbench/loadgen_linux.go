//go:build linux

package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// tcpLoad describes one TCP load: Conns connections, each keeping Depth
// messages of Size bytes in flight (Depth 1 is ping-pong).
type tcpLoad struct {
	Addr    string
	Conns   int
	Depth   int
	Size    int
	Workers int   // epoll workers; 0: one per CPU this process may use
	MaxMsgs int64 // stop sending after this many completed messages (a bound, not a target)
}

// tcpWindow is what happened between beginWindow and endWindow.
type tcpWindow struct {
	Msgs    int64
	Elapsed time.Duration
	LoadCPU time.Duration // getrusage of this process over the window
	Hist    hist
}

// tcpLoadGen is a running TCP load: a few epoll workers over non-blocking
// sockets. Workers stop by themselves at their hard deadline or at MaxMsgs.
type tcpLoadGen struct {
	cfg       tcpLoad
	workers   []*tcpWorker
	wg        sync.WaitGroup
	stop      atomic.Bool
	measuring atomic.Bool

	winStart time.Time
	winMsgs  int64
	winCPU   time.Duration
}

type tcpConn struct {
	fd       int
	recvd    int     // bytes of the current partial reply
	pending  int     // bytes still to write
	inflight int     // messages sent or queued, not yet echoed
	stamps   []int64 // send times (ns since worker epoch), a ring of Depth
	head     int
	wantOut  bool
	dead     bool
}

type tcpWorker struct {
	g       *tcpLoadGen
	epfd    int
	conns   []*tcpConn
	done    atomic.Int64 // completed messages, published once per epoll batch
	hist    hist
	err     error
	rbuf    []byte
	wbuf    []byte
	epoch   time.Time
	maxMsgs int64
}

// startTCPLoad connects every socket, then starts the workers. deadline bounds
// the whole run: workers exit at it even if nobody calls Stop.
func startTCPLoad(cfg tcpLoad, deadline time.Time) (*tcpLoadGen, error) {
	ap, err := netip.ParseAddrPort(cfg.Addr)
	if err != nil {
		return nil, err
	}
	if cfg.Depth < 1 {
		cfg.Depth = 1
	}
	if cfg.Workers <= 0 {
		cfg.Workers = allowedCPUs()
	}
	cfg.Workers = max(1, min(cfg.Workers, cfg.Conns))
	if cfg.MaxMsgs <= 0 {
		cfg.MaxMsgs = 1 << 40
	}
	g := &tcpLoadGen{cfg: cfg}
	for i := 0; i < cfg.Workers; i++ {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			g.closeAll()
			return nil, os.NewSyscallError("epoll_create1", err)
		}
		g.workers = append(g.workers, &tcpWorker{
			g: g, epfd: epfd,
			rbuf:    make([]byte, 256<<10),
			wbuf:    make([]byte, 256<<10),
			maxMsgs: (cfg.MaxMsgs + int64(cfg.Workers) - 1) / int64(cfg.Workers),
		})
	}
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	for i := 0; i < cfg.Conns; i++ {
		fd, err := dialTCP(sa)
		if err != nil {
			g.closeAll()
			return nil, fmt.Errorf("ringbench: connection %d of %d: %w", i+1, cfg.Conns, err)
		}
		w := g.workers[i%len(g.workers)]
		c := &tcpConn{fd: fd, stamps: make([]int64, cfg.Depth)}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(len(w.conns))}
		w.conns = append(w.conns, c)
		if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			g.closeAll()
			return nil, os.NewSyscallError("epoll_ctl", err)
		}
	}
	for _, w := range g.workers {
		g.wg.Add(1)
		go w.run(deadline)
	}
	return g, nil
}

func dialTCP(sa *unix.SockaddrInet4) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("connect", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("setsockopt", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("fcntl", err)
	}
	return fd, nil
}

func (g *tcpLoadGen) completed() int64 {
	var n int64
	for _, w := range g.workers {
		n += w.done.Load()
	}
	return n
}

// beginWindow starts counting messages, latencies and CPU.
func (g *tcpLoadGen) beginWindow() {
	g.winMsgs = g.completed()
	g.winCPU = rusageSelf()
	g.winStart = time.Now()
	g.measuring.Store(true)
}

// snapshotEnd ends the window (counts and CPU) without stopping the load; the
// latencies are merged with mergeHist after Stop.
func (g *tcpLoadGen) snapshotEnd() tcpWindow {
	var w tcpWindow
	w.Elapsed = time.Since(g.winStart)
	w.Msgs = g.completed() - g.winMsgs
	w.LoadCPU = rusageSelf() - g.winCPU
	g.measuring.Store(false)
	return w
}

// mergeHist adds every worker's latencies to h; call it after Stop.
func (g *tcpLoadGen) mergeHist(h *hist) {
	for _, wk := range g.workers {
		h.merge(&wk.hist)
	}
}

// Stop ends the workers, joins them and closes every socket; it is idempotent.
func (g *tcpLoadGen) Stop() error {
	g.stop.Store(true)
	g.wg.Wait()
	g.closeAll()
	var errs []error
	for _, w := range g.workers {
		errs = append(errs, w.err)
	}
	return errors.Join(errs...)
}

func (g *tcpLoadGen) closeAll() {
	for _, w := range g.workers {
		for _, c := range w.conns {
			if c.fd >= 0 {
				unix.Close(c.fd)
				c.fd = -1
			}
		}
		if w.epfd >= 0 {
			unix.Close(w.epfd)
			w.epfd = -1
		}
	}
}

func (w *tcpWorker) run(deadline time.Time) {
	defer w.g.wg.Done()
	w.epoch = time.Now()
	now := int64(0)
	for i, c := range w.conns {
		w.refill(c, i, now)
	}
	events := make([]unix.EpollEvent, 256)
	var done int64
	for !w.g.stop.Load() {
		n, err := unix.EpollWait(w.epfd, events, 20)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			w.err = os.NewSyscallError("epoll_wait", err)
			return
		}
		measuring := w.g.measuring.Load()
		for _, ev := range events[:n] {
			idx := int(ev.Fd)
			c := w.conns[idx]
			if c.dead {
				continue
			}
			if ev.Events&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
				w.fail(c, errors.New("connection reset or hung up"))
				continue
			}
			tnow := time.Since(w.epoch).Nanoseconds()
			if ev.Events&unix.EPOLLIN != 0 {
				k, err := w.readReplies(c, tnow, measuring)
				if err != nil {
					w.fail(c, err)
					continue
				}
				done += k
			}
			if done < w.maxMsgs {
				w.refill(c, idx, tnow)
			} else if c.pending > 0 || ev.Events&unix.EPOLLOUT != 0 {
				w.flush(c, idx)
			}
		}
		w.done.Store(done)
		if time.Now().After(deadline) {
			return
		}
	}
}

// readReplies reads what is readable and completes whole echoed messages,
// oldest first, recording each one's round trip.
func (w *tcpWorker) readReplies(c *tcpConn, tnow int64, measuring bool) (int64, error) {
	var k int64
	size, depth := w.g.cfg.Size, w.g.cfg.Depth
	for {
		n, err := unix.Read(c.fd, w.rbuf)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				return k, nil
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return k, os.NewSyscallError("read", err)
		}
		if n == 0 {
			return k, errors.New("server closed the connection")
		}
		c.recvd += n
		for c.recvd >= size && c.inflight > 0 {
			c.recvd -= size
			if measuring {
				w.hist.record(time.Duration(tnow - c.stamps[c.head]))
			}
			c.head = (c.head + 1) % depth
			c.inflight--
			k++
		}
		if n < len(w.rbuf) {
			return k, nil
		}
	}
}

// refill queues messages up to Depth in flight and writes them in one go.
func (w *tcpWorker) refill(c *tcpConn, idx int, tnow int64) {
	depth := w.g.cfg.Depth
	for c.inflight < depth {
		c.stamps[(c.head+c.inflight)%depth] = tnow
		c.inflight++
		c.pending += w.g.cfg.Size
	}
	w.flush(c, idx)
}

// flush writes pending bytes until done or EAGAIN, and asks for EPOLLOUT only
// while bytes remain.
func (w *tcpWorker) flush(c *tcpConn, idx int) {
	for c.pending > 0 {
		n, err := unix.Write(c.fd, w.wbuf[:min(c.pending, len(w.wbuf))])
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			w.fail(c, os.NewSyscallError("write", err))
			return
		}
		c.pending -= n
	}
	want := c.pending > 0
	if want != c.wantOut {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(idx)}
		if want {
			ev.Events |= unix.EPOLLOUT
		}
		if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev); err != nil {
			w.fail(c, os.NewSyscallError("epoll_ctl", err))
			return
		}
		c.wantOut = want
	}
}

func (w *tcpWorker) fail(c *tcpConn, err error) {
	if c.dead {
		return
	}
	c.dead = true
	_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	if w.err == nil && !w.g.stop.Load() {
		w.err = fmt.Errorf("ringbench: load connection: %w", err)
	}
}
