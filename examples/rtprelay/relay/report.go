package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ringwire/ringwire/examples/rtprelay/rtpcheck"
)

// Direction names a leg's direction in a Report.
type Direction string

// Directions.
const (
	// Forward is ingress to destinations.
	Forward Direction = "fwd"
	// Reverse is one destination back to the latched ingress peer.
	Reverse Direction = "rev"
)

// LegReport is the statistics of one direction of one stream.
type LegReport struct {
	// Stream is the session index i.
	Stream int `json:"stream"`
	// Dir is Forward or Reverse.
	Dir Direction `json:"dir"`
	// Dest is the destination index for Reverse legs, -1 for Forward.
	Dest int `json:"dest"`
	// Local is the address the leg receives on.
	Local string `json:"local"`
	// Peer is the address the leg receives from: the latched caller (or
	// empty) for Forward, the callee (latched or configured) for Reverse.
	Peer string `json:"peer"`
	// Stats is the leg's statistics.
	Stats rtpcheck.Snapshot `json:"stats"`
}

// Report is a snapshot of every leg of a Plan.
type Report struct {
	// Time is when the report was taken.
	Time time.Time `json:"time"`
	// Uptime is the time since the Plan was made.
	Uptime time.Duration `json:"uptime_ns"`
	// Legs holds the Forward leg of each stream, then its Reverse legs when
	// the relay latches (without Latch, reverse legs are omitted unless they
	// counted drops).
	Legs []LegReport `json:"legs"`
	// Drops sums the drops of every leg.
	Drops rtpcheck.Drops `json:"drops"`
	// Transport holds the transport's own counters (Plan.TransportStats),
	// such as datagrams the kernel dropped before the relay saw them; nil
	// when the transport reports none.
	Transport map[string]uint64 `json:"transport,omitempty"`
}

// Report snapshots every leg.
func (p *Plan) Report() Report {
	r := Report{Time: time.Now(), Uptime: p.Now()}
	if p.TransportStats != nil {
		r.Transport = p.TransportStats()
	}
	for i := range p.Sessions {
		s := &p.Sessions[i]
		r.add(LegReport{Stream: i, Dir: Forward, Dest: -1, Local: addrString(s.Ingress), Peer: addrString(s.Caller.Addr()), Stats: s.Fwd.Snapshot()})
		for d := range s.Dests {
			ds := &s.Dests[d]
			sn := ds.Rev.Snapshot()
			if !p.Config.Latch && sn.Drops.Total() == 0 {
				continue
			}
			r.add(LegReport{Stream: i, Dir: Reverse, Dest: d, Local: addrString(ds.Egress), Peer: addrString(ds.Callee.Addr()), Stats: sn})
		}
	}
	return r
}

func (r *Report) add(l LegReport) {
	r.Legs = append(r.Legs, l)
	for k, v := range l.Stats.Drops {
		r.Drops[k] += v
	}
}

func addrString(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Leg returns the report of stream i's direction dir (dest is ignored for
// Forward), and whether there is one.
func (r *Report) Leg(i int, dir Direction, dest int) (LegReport, bool) {
	for _, l := range r.Legs {
		if l.Stream == i && l.Dir == dir && (dir == Forward || l.Dest == dest) {
			return l, true
		}
	}
	return LegReport{}, false
}

// WriteText writes one line per leg: "stream 0 fwd 127.0.0.1:40000 <- peer: " and
// the Snapshot's String.
func (r *Report) WriteText(w io.Writer) error {
	for _, l := range r.Legs {
		dir := string(l.Dir)
		if l.Dir == Reverse {
			dir = fmt.Sprintf("rev%d", l.Dest)
		}
		peer := l.Peer
		if peer == "" {
			peer = "-"
		}
		if _, err := fmt.Fprintf(w, "stream %d %s %s <- %s: %v\n", l.Stream, dir, l.Local, peer, l.Stats); err != nil {
			return err
		}
	}
	if len(r.Transport) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(r.Transport))
	var b strings.Builder
	b.WriteString("transport:")
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%d", k, r.Transport[k])
	}
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the report as one line of JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	return json.NewEncoder(w).Encode(r)
}

// Print writes the report as JSON if asJSON, else as text.
func (r *Report) Print(w io.Writer, asJSON bool) error {
	if asJSON {
		return r.WriteJSON(w)
	}
	return r.WriteText(w)
}

// PrintEvery prints a Report to w every Config.StatsInterval (if nonzero)
// until ctx is done, then once more, in the format Config.JSON selects. It
// returns the first write error, or nil.
func (p *Plan) PrintEvery(ctx context.Context, w io.Writer) error {
	if iv := p.Config.StatsInterval; iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case <-t.C:
				r := p.Report()
				if err := r.Print(w, p.Config.JSON); err != nil {
					return err
				}
			}
		}
	} else {
		<-ctx.Done()
	}
	r := p.Report()
	return r.Print(w, p.Config.JSON)
}
