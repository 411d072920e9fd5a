package relay

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
)

// Config is the relay's configuration, the same for every transport. The
// command-line flags of RegisterFlags set it.
type Config struct {
	// In is the first ingress address (-in): stream i is received on
	// In.Addr() at port In.Port()+i.
	In netip.AddrPort
	// Out holds the first egress address of each destination (-out, comma
	// separated): stream i is sent to port Out[d].Port()+i of every
	// destination d. More than one destination means fan-out.
	Out []netip.AddrPort
	// Streams is the number of consecutive ports relayed (-streams); 0 means 1.
	Streams int
	// Latch enables symmetric RTP (-latch): a stream's ingress latches to the
	// source of its first valid packet and accepts only that source; each
	// destination latches to the source of the first valid packet it sends
	// back to the relay's egress socket, and is sent to there from then on;
	// the reverse direction (destination to relay egress) is forwarded to
	// the latched ingress peer. Without Latch the relay forwards ingress to
	// the destinations only and from any source.
	Latch bool
	// StatsInterval is how often statistics are printed (-stats); 0 means
	// only once, at exit.
	StatsInterval time.Duration
	// JSON prints statistics as one JSON object per line (-json) instead of
	// one line per leg.
	JSON bool
	// ClockRate is the RTP clock rate for jitter (-clock-rate); 0 means the
	// static payload type's (8000 Hz for PCMU and PCMA).
	ClockRate uint32
	// MaxDatagram is the largest datagram relayed (-max-datagram), the size
	// of a receive buffer; larger ones are dropped as Truncated. 0 means
	// DefaultMaxDatagram.
	MaxDatagram int
}

// DefaultMaxDatagram is the default Config.MaxDatagram: an Ethernet MTU's
// worth of RTP with room to spare.
const DefaultMaxDatagram = 2048

// Validate returns a copy of c with defaults applied, or an error naming the
// first invalid field. A nil c is invalid: In and Out have no defaults.
func (c *Config) Validate() (Config, error) {
	if c == nil {
		return Config{}, errors.New("relay: nil config: -in and -out are required")
	}
	v := *c
	v.Out = append([]netip.AddrPort(nil), c.Out...)
	if v.Streams == 0 {
		v.Streams = 1
	}
	if v.Streams < 0 {
		return Config{}, fmt.Errorf("relay: streams %d < 0", v.Streams)
	}
	if !v.In.IsValid() {
		return Config{}, errors.New("relay: no ingress address (-in)")
	}
	if v.In.Port() == 0 && v.Streams > 1 {
		return Config{}, fmt.Errorf("relay: %d consecutive ingress ports need a nonzero first port", v.Streams)
	}
	if int(v.In.Port())+v.Streams-1 > 65535 {
		return Config{}, fmt.Errorf("relay: ingress ports %d+%d exceed 65535", v.In.Port(), v.Streams)
	}
	if len(v.Out) == 0 {
		return Config{}, errors.New("relay: no egress address (-out)")
	}
	for _, o := range v.Out {
		if !o.IsValid() || o.Port() == 0 {
			return Config{}, fmt.Errorf("relay: invalid egress address %v", o)
		}
		if int(o.Port())+v.Streams-1 > 65535 {
			return Config{}, fmt.Errorf("relay: egress ports %d+%d exceed 65535", o.Port(), v.Streams)
		}
	}
	if v.MaxDatagram == 0 {
		v.MaxDatagram = DefaultMaxDatagram
	}
	if v.MaxDatagram < 12 || v.MaxDatagram > 65535 {
		return Config{}, fmt.Errorf("relay: max datagram %d outside 12..65535", v.MaxDatagram)
	}
	if v.StatsInterval < 0 {
		return Config{}, fmt.Errorf("relay: negative stats interval %v", v.StatsInterval)
	}
	return v, nil
}

// IngressAddr returns stream i's ingress address, In with port In.Port()+i.
func (c *Config) IngressAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(c.In.Addr(), c.In.Port()+uint16(i))
}

// EgressAddr returns the configured address of destination d for stream i,
// Out[d] with port Out[d].Port()+i.
func (c *Config) EgressAddr(i, d int) netip.AddrPort {
	return netip.AddrPortFrom(c.Out[d].Addr(), c.Out[d].Port()+uint16(i))
}

// RegisterFlags defines -in, -out, -streams, -latch, -stats, -json,
// -clock-rate and -max-datagram on fs, storing into c; c's current values are the defaults.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var((*addrFlag)(&c.In), "in", "first ingress `ip:port`; stream i listens on port+i")
	fs.Var((*addrListFlag)(&c.Out), "out", "first egress `ip:port` of each destination, comma separated; stream i goes to port+i of every one")
	fs.IntVar(&c.Streams, "streams", max(c.Streams, 1), "number of consecutive ports to relay")
	fs.BoolVar(&c.Latch, "latch", c.Latch, "symmetric RTP: latch to each peer's first valid packet and relay the reverse direction")
	fs.DurationVar(&c.StatsInterval, "stats", c.StatsInterval, "print statistics every `interval` (0: only at exit)")
	fs.BoolVar(&c.JSON, "json", c.JSON, "print statistics as JSON lines")
	fs.IntVar(&c.MaxDatagram, "max-datagram", cmp.Or(c.MaxDatagram, DefaultMaxDatagram), "largest datagram relayed, in `bytes`; larger ones are dropped")
	fs.Func("clock-rate", "RTP clock rate in `Hz` for jitter (default: from the payload type)", func(s string) error {
		var hz uint32
		if _, err := fmt.Sscan(s, &hz); err != nil {
			return fmt.Errorf("bad clock rate %q", s)
		}
		c.ClockRate = hz
		return nil
	})
}

// ParseFlags parses args (without the program name) with a new FlagSet named
// name that has RegisterFlags' flags, and returns the validated Config. Usage
// and parse errors are printed to usage (nil discards them); -h returns
// flag.ErrHelp.
func ParseFlags(name string, args []string, usage io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	if usage == nil {
		usage = io.Discard
	}
	fs.SetOutput(usage)
	c.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() != 0 {
		return Config{}, fmt.Errorf("relay: unexpected arguments %q", fs.Args())
	}
	return c.Validate()
}

type addrFlag netip.AddrPort

func (a *addrFlag) String() string {
	if a == nil || !netip.AddrPort(*a).IsValid() {
		return ""
	}
	return netip.AddrPort(*a).String()
}

func (a *addrFlag) Set(s string) error {
	ap, err := netip.ParseAddrPort(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	*a = addrFlag(ap)
	return nil
}

type addrListFlag []netip.AddrPort

func (l *addrListFlag) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, a := range *l {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

func (l *addrListFlag) Set(s string) error {
	*l = (*l)[:0]
	for _, part := range strings.Split(s, ",") {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(part))
		if err != nil {
			return err
		}
		*l = append(*l, ap)
	}
	return nil
}
