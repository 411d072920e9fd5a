package gorelay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"

	"go.uber.org/zap"

	"github.com/ringwire/ringwire/examples/rtprelay/relay"
	"github.com/ringwire/ringwire/examples/rtprelay/rtpcheck"
)

// DefaultReadBuffer is the default Config.ReadBuffer: 1 MiB of SO_RCVBUF.
const DefaultReadBuffer = 1 << 20

// Config configures a Relay: the transport-independent relay.Config plus what
// only Go's net package needs.
type Config struct {
	relay.Config

	// Ingress optionally holds pre-bound ingress sockets, one per stream in
	// stream order, so that tests need no fixed ports. The Relay takes
	// ownership and closes them. When set, In is ignored and Streams, if
	// zero, is len(Ingress).
	Ingress []*net.UDPConn
	// ReadBuffer is SO_RCVBUF for every socket (capped by the kernel's
	// net.core.rmem_max); 0 means DefaultReadBuffer, negative leaves the
	// system default.
	ReadBuffer int
	// Logger receives errors of the receive loops; nil means zap.NewNop().
	Logger *zap.Logger
}

// Relay is the Go-net reference relay: one goroutine per ingress socket
// forwards to every destination, and one per egress socket forwards the
// reverse direction (or, without latching, counts and drops it).
type Relay struct {
	plan    *relay.Plan
	log     *zap.Logger
	ingress []*net.UDPConn
	egress  [][]*net.UDPConn // [stream][dest]

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// New binds the sockets cfg describes and starts relaying. On error, it
// closes whatever it bound (including cfg.Ingress).
func New(cfg *Config) (r *Relay, err error) {
	if cfg == nil {
		return nil, errors.New("gorelay: nil config: In and Out are required")
	}
	c := *cfg
	owned := append([]*net.UDPConn(nil), c.Ingress...)
	defer func() {
		if err != nil {
			for _, conn := range owned {
				conn.Close()
			}
		}
	}()
	if len(c.Ingress) > 0 {
		if c.Streams == 0 {
			c.Streams = len(c.Ingress)
		}
		if c.Streams != len(c.Ingress) {
			return nil, fmt.Errorf("gorelay: %d ingress sockets for %d streams", len(c.Ingress), c.Streams)
		}
		c.In = udpAddr(c.Ingress[0])
	}
	plan, err := relay.NewPlan(&c.Config)
	if err != nil {
		return nil, err
	}
	r = &Relay{plan: plan, log: c.Logger}
	if r.log == nil {
		r.log = zap.NewNop()
	}
	rbuf := c.ReadBuffer
	if rbuf == 0 {
		rbuf = DefaultReadBuffer
	}
	listen := func(a netip.AddrPort) (*net.UDPConn, error) {
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(a))
		if err != nil {
			return nil, err
		}
		owned = append(owned, conn)
		if rbuf > 0 {
			_ = conn.SetReadBuffer(rbuf) // best effort: capped by rmem_max
		}
		return conn, nil
	}
	for i := range plan.Sessions {
		s := &plan.Sessions[i]
		var in *net.UDPConn
		if len(c.Ingress) > 0 {
			in = c.Ingress[i]
			if rbuf > 0 {
				_ = in.SetReadBuffer(rbuf)
			}
		} else if in, err = listen(s.Ingress); err != nil {
			return nil, err
		}
		s.Ingress = udpAddr(in)
		r.ingress = append(r.ingress, in)
		eg := make([]*net.UDPConn, len(s.Dests))
		for d := range s.Dests {
			if eg[d], err = listen(egressBind(s.Ingress.Addr(), s.Dests[d].Callee.Addr().Addr())); err != nil {
				return nil, err
			}
			s.Dests[d].Egress = udpAddr(eg[d])
		}
		r.egress = append(r.egress, eg)
	}
	for i := range plan.Sessions {
		r.wg.Add(1)
		go r.forward(i)
		for d := range plan.Sessions[i].Dests {
			r.wg.Add(1)
			go r.reverse(i, d)
		}
	}
	return r, nil
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

func udpAddr(c *net.UDPConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Plan returns the relay's plan: its sessions, peers and statistics.
func (r *Relay) Plan() *relay.Plan { return r.plan }

// Report returns a snapshot of every leg's statistics.
func (r *Relay) Report() relay.Report { return r.plan.Report() }

// IngressAddrs returns the bound ingress address of each stream.
func (r *Relay) IngressAddrs() []netip.AddrPort {
	a := make([]netip.AddrPort, len(r.ingress))
	for i, c := range r.ingress {
		a[i] = udpAddr(c)
	}
	return a
}

// Close closes every socket and waits for the relay's goroutines. It is
// idempotent; every call returns the first call's result.
func (r *Relay) Close() error {
	r.closeOnce.Do(func() {
		var errs []error
		for i, in := range r.ingress {
			errs = append(errs, in.Close())
			for _, e := range r.egress[i] {
				errs = append(errs, e.Close())
			}
		}
		r.wg.Wait()
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

// read reads one datagram into buf, which is one byte longer than the
// largest datagram relayed, so that n == len(buf) means too long (the kernel
// truncated it or it fit exactly); it returns ok false when the socket is
// closed.
func (r *Relay) read(c *net.UDPConn, buf []byte) (n int, src netip.AddrPort, ok bool) {
	for {
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err == nil {
			return n, src, true
		}
		if errors.Is(err, net.ErrClosed) {
			return 0, netip.AddrPort{}, false
		}
		// Unconnected UDP sockets see no ICMP errors; anything else is
		// unexpected but not fatal to the relay.
		r.log.Warn("gorelay: read", zap.Stringer("local", c.LocalAddr()), zap.Error(err))
	}
}

func (r *Relay) forward(i int) {
	defer r.wg.Done()
	s := &r.plan.Sessions[i]
	in, eg := r.ingress[i], r.egress[i]
	buf := make([]byte, r.plan.Config.MaxDatagram+1)
	for {
		n, src, ok := r.read(in, buf)
		if !ok {
			return
		}
		arrival := r.plan.Now()
		if n > r.plan.Config.MaxDatagram {
			s.Fwd.Drop(rtpcheck.Truncated)
			continue
		}
		b := buf[:n]
		if s.AcceptForward(b, src, arrival) != rtpcheck.OK {
			continue
		}
		for d := range s.Dests {
			if _, err := eg[d].WriteToUDPAddrPort(b, s.Dests[d].Callee.Addr()); err != nil {
				s.Fwd.Drop(rtpcheck.SendFailed)
				continue
			}
			s.Fwd.Sent(n, r.plan.Now()-arrival)
		}
	}
}

func (r *Relay) reverse(i, d int) {
	defer r.wg.Done()
	s := &r.plan.Sessions[i]
	in, eg := r.ingress[i], r.egress[i][d]
	rev := s.Dests[d].Rev
	buf := make([]byte, r.plan.Config.MaxDatagram+1)
	for {
		n, src, ok := r.read(eg, buf)
		if !ok {
			return
		}
		arrival := r.plan.Now()
		if n > r.plan.Config.MaxDatagram {
			rev.Drop(rtpcheck.Truncated)
			continue
		}
		b := buf[:n]
		to, reason := s.AcceptReverse(d, b, src, arrival)
		if reason != rtpcheck.OK {
			continue
		}
		if _, err := in.WriteToUDPAddrPort(b, to); err != nil {
			rev.Drop(rtpcheck.SendFailed)
			continue
		}
		rev.Sent(n, r.plan.Now()-arrival)
	}
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
