//go:build linux

package ringrelay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/bufring"
	"github.com/ringwire/ringwire/examples/rtprelay/relay"
	"github.com/ringwire/ringwire/examples/rtprelay/rtpcheck"
	"github.com/ringwire/ringwire/netio"
	"github.com/ringwire/ringwire/ring"
	"github.com/ringwire/ringwire/runtime"
)

// closeWait bounds how long Close waits for the sockets to report OnClose
// before it closes the runtimes anyway (which cancels whatever is left).
const closeWait = 5 * time.Second

// Available reports whether this kernel and process can run the relay: nil,
// or the error of ring.Available (io_uring absent, blocked by seccomp, or
// disabled by kernel.io_uring_disabled).
func Available() error { return ring.Available() }

// Relay is the ringwire relay: per stream one ingress socket that forwards
// every valid datagram's own buffer to each destination from that
// destination's egress socket, and one egress socket per destination that
// forwards the reverse direction (or, without latching, counts and drops it).
type Relay struct {
	plan  *relay.Plan
	log   *zap.Logger
	loops []*loopGroup
	sess  []*session

	open      atomic.Int64 // sockets not yet closed
	closing   atomic.Bool  // Close has begun: the last OnClose closes allClosed
	allClosed chan struct{}
	sendFull  atomic.Uint64 // sends refused with ErrWriteQueueFull
	unplanned atomic.Uint64 // sockets closed by netio, not by Close

	inodes map[uint64]bool // of every socket, for KernelDrops

	closeOnce sync.Once
	closeErr  error
}

// loopGroup is one event loop (a single-loop runtime) and its sessions.
type loopGroup struct {
	rt    *runtime.Runtime
	sess  []*session
	conns []*netio.UDPConn // written by New, read by Close
}

// session is stream i's ingress socket handler.
type session struct {
	r     *Relay
	s     *relay.Session
	maxDG int
	eg    []*egress                     // written before the ingress socket opens
	in    atomic.Pointer[netio.UDPConn] // read by the egress handlers
	inAdr netip.AddrPort
}

// egress is the handler of stream i's socket towards destination d.
type egress struct {
	ss   *session
	d    int
	rev  *rtpcheck.Stream
	conn *netio.UDPConn
}

// New binds the sockets cfg describes and starts relaying. On error it
// closes whatever it bound (including cfg.Ingress).
func New(cfg *Config) (r *Relay, err error) {
	if cfg == nil {
		return nil, errors.New("ringrelay: nil config: In and Out are required")
	}
	c := *cfg
	ingressAddrs := make([]netip.AddrPort, len(c.Ingress))
	for i, conn := range c.Ingress {
		ingressAddrs[i] = conn.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	closeIngress := func() {
		for _, conn := range c.Ingress {
			conn.Close()
		}
	}
	if len(c.Ingress) > 0 {
		if c.Streams == 0 {
			c.Streams = len(c.Ingress)
		}
		if c.Streams != len(c.Ingress) {
			closeIngress()
			return nil, fmt.Errorf("ringrelay: %d ingress sockets for %d streams", len(c.Ingress), c.Streams)
		}
		c.In = ingressAddrs[0]
	}
	if len(c.Out) > MaxDests {
		closeIngress()
		return nil, fmt.Errorf("ringrelay: %d destinations, at most %d", len(c.Out), MaxDests)
	}
	if c.Loops < 0 {
		closeIngress()
		return nil, fmt.Errorf("ringrelay: negative Loops %d", c.Loops)
	}
	budget := c.LatencyBudget
	switch {
	case budget == 0:
		budget = DefaultLatencyBudget
	case budget < 0:
		budget = 0
	}
	plan, err := relay.NewPlan(&c.Config)
	if err != nil {
		closeIngress()
		return nil, err
	}
	if err := Available(); err != nil {
		closeIngress()
		return nil, fmt.Errorf("ringrelay: %w", err)
	}
	r = &Relay{plan: plan, log: c.Logger, allClosed: make(chan struct{}), inodes: map[uint64]bool{}}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	defer func() {
		if err != nil {
			closeIngress()
			_ = r.Close()
			r = nil
		}
	}()
	nbuf := c.RecvBuffers
	if nbuf == 0 {
		nbuf = DefaultRecvBuffers
	}
	if nbuf < 1 || nbuf > bufring.MaxCount || nbuf&(nbuf-1) != 0 {
		return r, fmt.Errorf("ringrelay: RecvBuffers %d is not a power of two in [1, %d]", nbuf, bufring.MaxCount)
	}
	nloops := min(max(c.Loops, 1), len(plan.Sessions))
	for k := range nloops {
		rc := &runtime.Config{
			Loops: 1, Logger: r.log, LatencyBudget: budget,
			// Room for a receive completion per buffer and as many send
			// completions, so that a burst does not overflow the CQ (which
			// ends multishot receives early).
			CQEntries: uint32(max(4096, 2*nbuf)),
			Buffers:   &bufring.Config{Count: uint32(nbuf), Size: recvBufferSize(plan.Config.MaxDatagram), Lazy: true, Logger: r.log},
		}
		if len(c.CPUs) > 0 {
			rc.CPUs = []int{c.CPUs[k%len(c.CPUs)]}
		}
		rt, err := runtime.New(rc)
		if err != nil {
			return r, fmt.Errorf("ringrelay: event loop %d: %w", k, err)
		}
		r.loops = append(r.loops, &loopGroup{rt: rt})
	}
	rbuf := c.ReadBuffer
	if rbuf == 0 {
		rbuf = DefaultReadBuffer
	}
	maxDG := plan.Config.MaxDatagram
	for i := range plan.Sessions {
		s := &plan.Sessions[i]
		lg := r.loops[i%len(r.loops)]
		ss := &session{r: r, s: s, maxDG: maxDG}
		// Egress sockets first: the ingress handler sends from them as soon
		// as its socket receives.
		for d := range s.Dests {
			e := &egress{ss: ss, d: d, rev: s.Dests[d].Rev}
			bind := egressBind(s.Ingress.Addr(), s.Dests[d].Callee.Addr().Addr())
			if len(c.Ingress) > 0 {
				bind = egressBind(ingressAddrs[i].Addr(), s.Dests[d].Callee.Addr().Addr())
			}
			u, err := r.listen(lg, bind, e, rbuf)
			if err != nil {
				return r, err
			}
			e.conn = u
			s.Dests[d].Egress = u.LocalAddr()
			ss.eg = append(ss.eg, e)
		}
		addr := s.Ingress
		if len(c.Ingress) > 0 {
			addr = ingressAddrs[i]
			if err := c.Ingress[i].Close(); err != nil {
				return r, fmt.Errorf("ringrelay: close pre-bound ingress %v: %w", addr, err)
			}
		}
		u, err := r.listen(lg, addr, ss, rbuf)
		if err != nil {
			return r, err
		}
		ss.in.Store(u)
		ss.inAdr = u.LocalAddr()
		s.Ingress = ss.inAdr
		lg.sess = append(lg.sess, ss)
		r.sess = append(r.sess, ss)
	}
	c.Ingress = nil // all closed and rebound
	plan.TransportStats = r.transportStats
	return r, nil
}

// listen opens one handler-API UDP socket on lc's loop and sets its receive
// buffer.
func (r *Relay) listen(lg *loopGroup, addr netip.AddrPort, h netio.PacketHandler, rbuf int) (*netio.UDPConn, error) {
	r.open.Add(1)
	lc := netio.ListenConfig{Runtime: lg.rt}
	u, err := lc.ListenUDP(context.Background(), "udp", addr.String(), h)
	if err != nil {
		r.open.Add(-1)
		return nil, fmt.Errorf("ringrelay: %w", err)
	}
	if rbuf > 0 {
		// Best effort: capped by net.core.rmem_max.
		_ = unix.SetsockoptInt(u.FD(), unix.SOL_SOCKET, unix.SO_RCVBUF, rbuf)
	}
	var st unix.Stat_t
	if unix.Fstat(u.FD(), &st) == nil {
		r.inodes[st.Ino] = true
	}
	lg.conns = append(lg.conns, u)
	return u, nil
}

// recvBufferSize is the provided buffer size for datagrams of up to maxDG
// bytes: the recvmsg multishot header (struct io_uring_recvmsg_out, 16
// bytes), room for a sockaddr_in6 (28), maxDG+1 bytes so that a longer
// datagram shows as such, rounded up to 128 bytes.
func recvBufferSize(maxDG int) uint32 {
	const header = 16 + 28
	return uint32((header + maxDG + 1 + 127) &^ 127)
}

// egressBind returns the local address for an egress socket towards dst: the
// ingress IP when it is of dst's family, else the unspecified address of
// dst's family; the port is ephemeral.
func egressBind(ingress, dst netip.Addr) netip.AddrPort {
	switch {
	case ingress.Is4() == dst.Unmap().Is4():
		return netip.AddrPortFrom(ingress, 0)
	case dst.Unmap().Is4():
		return netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	default:
		return netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	}
}

// A send's tag carries what its completion needs: the arrival time (40 bits
// of nanoseconds since the plan started, compared modulo 2^40, about 18
// minutes), the datagram's size (16 bits) and, for the reverse direction,
// the destination index (8 bits).
const (
	tagTimeBits = 40
	tagTimeMask = 1<<tagTimeBits - 1
	tagSizeMask = 1<<16 - 1
)

func packTag(arrival time.Duration, size, dest int) uint64 {
	return uint64(dest)<<56 | uint64(size&tagSizeMask)<<tagTimeBits | uint64(arrival)&tagTimeMask
}

func unpackTag(tag uint64, now time.Duration) (latency time.Duration, size, dest int) {
	return time.Duration((uint64(now) - tag) & tagTimeMask), int(tag >> tagTimeBits & tagSizeMask), int(tag >> 56)
}

// OnPacket forwards a datagram arriving at the ingress socket to every
// destination, sending the received buffer itself.
func (ss *session) OnPacket(_ *netio.UDPConn, d *netio.Data) {
	r := ss.r
	arrival := r.plan.Now()
	s := ss.s
	b := d.Bytes()
	if d.Truncated() || len(b) > ss.maxDG {
		s.Fwd.Drop(rtpcheck.Truncated)
		return
	}
	if s.AcceptForward(b, d.From(), arrival) != rtpcheck.OK {
		return // counted; netio returns the buffer when OnPacket returns
	}
	lease := d.Keep()
	for range len(ss.eg) - 1 {
		lease.Retain() // one reference per destination
	}
	tag := packTag(arrival, len(b), 0)
	for k, e := range ss.eg {
		if err := e.conn.SendLeaseTo(lease, b, s.Dests[k].Callee.Addr(), tag); err != nil {
			r.sendFailed(s.Fwd, err, lease)
		}
	}
}

// sendFailed counts a send that could not be queued and drops the
// reference it held.
func (r *Relay) sendFailed(st *rtpcheck.Stream, err error, lease bufring.Lease) {
	st.Drop(rtpcheck.SendFailed)
	if err == netio.ErrWriteQueueFull {
		r.sendFull.Add(1)
	}
	// SendLeaseTo owns the lease whatever it returns: on an error it has
	// already released it.
}

// OnSent completes a reverse-direction send from the ingress socket.
func (ss *session) OnSent(_ *netio.UDPConn, tag uint64, err error) {
	lat, size, d := unpackTag(tag, ss.r.plan.Now())
	rev := ss.eg[d].rev
	if err != nil {
		rev.Drop(rtpcheck.SendFailed)
		return
	}
	rev.Sent(size, lat)
}

// OnError: unconnected sockets see no ICMP errors; receiving goes on anyway.
func (ss *session) OnError(*netio.UDPConn, error) {}

// OnClose counts the socket closed.
func (ss *session) OnClose(_ *netio.UDPConn, err error) { ss.r.closed(err) }

// OnPacket forwards a datagram arriving at an egress socket back to the
// stream's latched caller, from the ingress socket.
func (e *egress) OnPacket(_ *netio.UDPConn, d *netio.Data) {
	ss := e.ss
	r := ss.r
	arrival := r.plan.Now()
	b := d.Bytes()
	if d.Truncated() || len(b) > ss.maxDG {
		e.rev.Drop(rtpcheck.Truncated)
		return
	}
	to, reason := ss.s.AcceptReverse(e.d, b, d.From(), arrival)
	if reason != rtpcheck.OK {
		return
	}
	in := ss.in.Load()
	if in == nil { // still starting
		e.rev.Drop(rtpcheck.SendFailed)
		return
	}
	lease := d.Keep()
	if err := in.SendLeaseTo(lease, b, to, packTag(arrival, len(b), e.d)); err != nil {
		r.sendFailed(e.rev, err, lease)
	}
}

// OnSent completes a forward send to destination e.d.
func (e *egress) OnSent(_ *netio.UDPConn, tag uint64, err error) {
	fwd := e.ss.s.Fwd
	if err != nil {
		fwd.Drop(rtpcheck.SendFailed)
		return
	}
	lat, size, _ := unpackTag(tag, e.ss.r.plan.Now())
	fwd.Sent(size, lat)
}

// OnError: see session.OnError.
func (e *egress) OnError(*netio.UDPConn, error) {}

// OnClose counts the socket closed.
func (e *egress) OnClose(_ *netio.UDPConn, err error) { e.ss.r.closed(err) }

// closed runs on a loop thread when a socket is gone.
func (r *Relay) closed(err error) {
	if err != nil && !r.closing.Load() {
		r.unplanned.Add(1)
		r.log.Warn("ringrelay: socket closed", zap.Error(err))
	}
	if r.open.Add(-1) == 0 && r.closing.Load() {
		close(r.allClosed)
	}
}

// Plan returns the relay's plan: its sessions, peers and statistics.
func (r *Relay) Plan() *relay.Plan { return r.plan }

// Report returns a snapshot of every leg's statistics, with the transport's
// counters (Stats) in its Transport field.
func (r *Relay) Report() relay.Report { return r.plan.Report() }

// IngressAddrs returns the bound ingress address of each stream.
func (r *Relay) IngressAddrs() []netip.AddrPort {
	a := make([]netip.AddrPort, len(r.sess))
	for i, ss := range r.sess {
		a[i] = ss.inAdr
	}
	return a
}

// Stats returns the transport's counters.
func (r *Relay) Stats() Stats {
	st := Stats{Loops: len(r.loops), SendQueueFull: r.sendFull.Load(), Unplanned: r.unplanned.Load()}
	for _, lg := range r.loops {
		for _, ls := range lg.rt.Stats() {
			st.Enters += ls.Enters
			st.ENOBUFS += ls.ENOBUFS
		}
		ns := netio.StatsOf(lg.rt)
		st.Starved += ns.Starved
		st.Rearms += ns.Rearms
		st.Sends += ns.PlainSends + ns.ZCSends
	}
	st.KernelDrops = kernelDrops(r.inodes)
	return st
}

func (r *Relay) transportStats() map[string]uint64 {
	st := r.Stats()
	return map[string]uint64{
		"loops":           uint64(st.Loops),
		"io_uring_enter":  st.Enters,
		"enobufs":         st.ENOBUFS,
		"starved":         st.Starved,
		"rearms":          st.Rearms,
		"sends":           st.Sends,
		"send_queue_full": st.SendQueueFull,
		"kernel_drops":    st.KernelDrops,
		"unplanned_close": st.Unplanned,
	}
}

// closeTask closes a loop's sockets on that loop's thread.
type closeTask struct{ lg *loopGroup }

func (t *closeTask) Run(*runtime.Loop) {
	for _, u := range t.lg.conns {
		u.Close(nil)
	}
}

// Close closes every socket, waits for their sends to complete, and closes
// the event loops. It is idempotent; every call returns the first call's
// result.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		r.closing.Store(true)
		posted := true
		for _, lg := range r.loops {
			if len(lg.conns) > 0 {
				if err := lg.rt.Loops()[0].Post(&closeTask{lg}); err != nil {
					posted = false
				}
			}
		}
		if r.open.Load() > 0 && posted {
			t := time.NewTimer(closeWait)
			select {
			case <-r.allClosed:
			case <-t.C:
				r.log.Warn("ringrelay: sockets did not close in time", zap.Int64("open", r.open.Load()))
			}
			t.Stop()
		}
		var errs []error
		for _, lg := range r.loops {
			errs = append(errs, lg.rt.Close())
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

// Run starts a Relay for cfg, prints its statistics to w as cfg.StatsInterval
// and cfg.JSON say until ctx is done, prints a final report and closes the
// relay. It returns the first error of New, printing or Close.
func Run(ctx context.Context, cfg *Config, w io.Writer) error {
	r, err := New(cfg)
	if err != nil {
		return err
	}
	perr := r.plan.PrintEvery(ctx, w)
	return errors.Join(perr, r.Close())
}
