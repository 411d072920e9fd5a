package relay

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/ringwire/ringwire/examples/rtprelay/rtpcheck"
)

// Peer is one remote end of a leg: a configured address (possibly none) that
// a latching relay replaces with the source of the first valid packet.
type Peer struct {
	configured netip.AddrPort
	latched    atomic.Pointer[netip.AddrPort]
}

// Addr returns the latched address if there is one, else the configured one
// (the zero AddrPort if none).
func (p *Peer) Addr() netip.AddrPort {
	if a := p.latched.Load(); a != nil {
		return *a
	}
	return p.configured
}

// Latched reports whether the peer has latched.
func (p *Peer) Latched() bool { return p.latched.Load() != nil }

// Latch accepts src if the peer has not latched yet (and latches to it) or
// has latched to src; otherwise it returns WrongSource. Only the first call
// allocates.
func (p *Peer) Latch(src netip.AddrPort) rtpcheck.Reason {
	src = unmap(src)
	if a := p.latched.Load(); a != nil {
		if *a == src {
			return rtpcheck.OK
		}
		return rtpcheck.WrongSource
	}
	a := new(netip.AddrPort) // the only allocation: once per peer
	*a = src
	if p.latched.CompareAndSwap(nil, a) {
		return rtpcheck.OK
	}
	return p.Latch(src) // another goroutine latched first
}

func unmap(a netip.AddrPort) netip.AddrPort {
	if a.Addr().Is4In6() {
		return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	}
	return a
}

// Session is stream i of the relay: one ingress address and, per
// destination, one Dest.
type Session struct {
	// Index is the stream number i.
	Index int
	// Ingress is the local ingress address. The transport sets it to the
	// bound address before it starts receiving.
	Ingress netip.AddrPort
	// Caller is the peer sending to Ingress; it has no configured address and
	// is latched only with Config.Latch.
	Caller Peer
	// Fwd counts the forward direction: accepted at Ingress, sent to the
	// destinations (one send per destination).
	Fwd *rtpcheck.Stream
	// Dests holds one entry per Config.Out, in order.
	Dests []Dest

	latch bool
}

// Dest is one destination of a Session.
type Dest struct {
	// Index is the destination number d.
	Index int
	// Egress is the local address the relay sends to this destination from,
	// and receives the reverse direction on. The transport sets it to the
	// bound address before it starts receiving.
	Egress netip.AddrPort
	// Callee is the destination: Config.EgressAddr(i, d) until it latches.
	Callee Peer
	// Rev counts the reverse direction: accepted at Egress, sent to Caller.
	Rev *rtpcheck.Stream
}

// Plan is the transport-independent state of a relay: one Session per stream
// and the statistics of every leg.
type Plan struct {
	// Config is the validated configuration.
	Config Config
	// Sessions holds one Session per stream, in port order.
	Sessions []Session
	// TransportStats, if set before the relay starts, returns the
	// transport's own counters for Report's Transport field. It is called
	// from the goroutine that asks for the report.
	TransportStats func() map[string]uint64

	start time.Time
}

// NewPlan validates cfg and returns the Plan it describes.
func NewPlan(cfg *Config) (*Plan, error) {
	c, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	p := &Plan{Config: c, Sessions: make([]Session, c.Streams), start: time.Now()}
	sc := &rtpcheck.StreamConfig{ClockRate: c.ClockRate}
	for i := range p.Sessions {
		s := &p.Sessions[i]
		s.Index = i
		s.Ingress = c.IngressAddr(i)
		s.Fwd = rtpcheck.NewStream(sc)
		s.latch = c.Latch
		s.Dests = make([]Dest, len(c.Out))
		for d := range s.Dests {
			s.Dests[d] = Dest{Index: d, Callee: Peer{configured: c.EgressAddr(i, d)}, Rev: rtpcheck.NewStream(sc)}
		}
	}
	return p, nil
}

// Now returns the monotonic time since the Plan was made, the clock the
// Accept methods and latencies use.
func (p *Plan) Now() time.Duration { return time.Since(p.start) }

// AcceptForward validates datagram b from src that arrived on the session's
// ingress at arrival (Plan.Now) and records it: on OK the caller sends b to
// Dests[d].Callee.Addr() for every d and reports each send to Fwd.Sent (or
// Fwd.Drop(SendFailed)); otherwise the drop is already counted. With Latch,
// the first valid packet latches Caller and packets from other sources are
// WrongSource. It does not allocate, except once when Caller latches.
func (s *Session) AcceptForward(b []byte, src netip.AddrPort, arrival time.Duration) rtpcheck.Reason {
	var p rtpcheck.Packet
	r := rtpcheck.Check(b, &p)
	if r == rtpcheck.OK && s.latch {
		r = s.Caller.Latch(src)
	}
	if r != rtpcheck.OK {
		s.Fwd.Drop(r)
		return r
	}
	s.Fwd.Receive(&p, len(b), arrival)
	return rtpcheck.OK
}

// AcceptReverse validates datagram b from src that arrived on destination d's
// egress address and records it. On OK it returns the latched caller, to
// which the transport sends b from the ingress socket and reports the send to
// Dests[d].Rev.Sent. Without Latch every reverse datagram is Unlatched; with
// it, the first valid one latches Dests[d].Callee, later ones from other
// sources are WrongSource, and all are Unlatched until Caller has latched.
func (s *Session) AcceptReverse(d int, b []byte, src netip.AddrPort, arrival time.Duration) (netip.AddrPort, rtpcheck.Reason) {
	dst := &s.Dests[d]
	var p rtpcheck.Packet
	r := rtpcheck.Check(b, &p)
	if r == rtpcheck.OK {
		if !s.latch {
			r = rtpcheck.Unlatched
		} else {
			r = dst.Callee.Latch(src)
		}
	}
	var to netip.AddrPort
	if r == rtpcheck.OK {
		if to = s.Caller.Addr(); !to.IsValid() {
			r = rtpcheck.Unlatched
		}
	}
	if r != rtpcheck.OK {
		dst.Rev.Drop(r)
		return netip.AddrPort{}, r
	}
	dst.Rev.Receive(&p, len(b), arrival)
	return to, rtpcheck.OK
}
