//go:build !linux

package ringrelay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/ringwire/ringwire/examples/rtprelay/relay"
)

// errUnsupported is returned everywhere but on Linux.
var errUnsupported = fmt.Errorf("ringrelay: io_uring needs Linux: %w", errors.ErrUnsupported)

// Available reports why the relay cannot run here: it needs Linux.
func Available() error { return errUnsupported }

// Relay is the ringwire relay; on this platform New always fails.
type Relay struct{ plan *relay.Plan }

// New returns an error wrapping errors.ErrUnsupported.
func New(cfg *Config) (*Relay, error) {
	if cfg != nil {
		for _, c := range cfg.Ingress {
			c.Close()
		}
	}
	return nil, errUnsupported
}

// Plan returns the relay's plan.
func (r *Relay) Plan() *relay.Plan { return r.plan }

// Report returns a snapshot of every leg's statistics.
func (r *Relay) Report() relay.Report { return relay.Report{} }

// IngressAddrs returns the bound ingress address of each stream.
func (r *Relay) IngressAddrs() []netip.AddrPort { return nil }

// Stats returns the transport's counters.
func (r *Relay) Stats() Stats { return Stats{} }

// Close does nothing.
func (r *Relay) Close() error { return nil }

// Run returns an error wrapping errors.ErrUnsupported.
func Run(context.Context, *Config, io.Writer) error { return errUnsupported }
