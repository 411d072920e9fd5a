package echoserver

import (
	"fmt"
	"io"
	"text/tabwriter"

	"go.uber.org/zap"

	"github.com/ringwire/ringwire/netio"
	"github.com/ringwire/ringwire/runtime"
)

// API selects which netio API the server uses.
type API string

// The two APIs.
const (
	// APIHandler uses netio's completion handler API (ListenConfig.Serve):
	// received views are sent back with their leases (Data.Keep,
	// Conn.SendLease), without a copy.
	APIHandler API = "handler"
	// APIConn uses netio's net.Listener (ListenConfig.Listen) and one
	// goroutine per connection doing Read then Write.
	APIConn API = "conn"
)

// ParseAPI returns the API named s ("handler" or "conn").
func ParseAPI(s string) (API, error) {
	switch API(s) {
	case APIHandler, APIConn:
		return API(s), nil
	}
	return "", fmt.Errorf("echoserver: unknown API %q (handler, conn)", s)
}

// Config configures a Server. A nil *Config means all defaults; Start works
// on a copy.
type Config struct {
	// Addr is the TCP address to listen on. Default "127.0.0.1:0".
	Addr string
	// Loops is the number of event loops. Default: one per CPU this process
	// may run on.
	Loops int
	// CPUs, if set, pins loop i to CPUs[i%len(CPUs)] (runtime.Config.CPUs).
	CPUs []int
	// API selects the netio API. Default APIHandler.
	API API
	// PauseAt is, in APIHandler mode, the number of bytes queued for sending
	// on one connection at which the server stops receiving from it (the
	// peer is not reading its echo); receiving resumes below half of it.
	// Default 64 KiB: each queued byte holds a buffer of the loop's shared
	// provided buffer ring.
	PauseAt int
	// PauseLeases is, in APIHandler mode, the number of received buffers
	// waiting in one connection's send queue at which the server stops
	// receiving from it; receiving resumes below half of it. It bounds what
	// one peer that does not read can take of the loop's buffer ring (256
	// buffers shared by every connection of the loop) when its messages are
	// small: PauseAt alone would let 64-byte messages hold 1024 buffers.
	// Default 16.
	PauseLeases int
	// Logger receives start and stop messages and per-connection errors
	// other than resets; never anything per message. Default zap.NewNop().
	Logger *zap.Logger

	// onOpen, if set, is called in APIHandler mode for each new connection
	// (tests set socket options with it).
	onOpen func(c *netio.Conn) //nolint:unused // read only by server_linux.go; unused where the stub builds
}

// Defaults of Config.PauseAt and Config.PauseLeases.
const (
	DefaultPauseAt     = 64 << 10
	DefaultPauseLeases = 16
)

func (c *Config) withDefaults() (Config, error) {
	var out Config
	if c != nil {
		out = *c
	}
	if out.Addr == "" {
		out.Addr = "127.0.0.1:0"
	}
	if out.API == "" {
		out.API = APIHandler
	}
	if _, err := ParseAPI(string(out.API)); err != nil {
		return out, err
	}
	if out.Loops < 0 || out.PauseAt < 0 || out.PauseLeases < 0 {
		return out, fmt.Errorf("echoserver: negative Config field")
	}
	if out.PauseAt == 0 {
		out.PauseAt = DefaultPauseAt
	}
	if out.PauseLeases == 0 {
		out.PauseLeases = DefaultPauseLeases
	}
	if out.Logger == nil {
		out.Logger = zap.NewNop()
	}
	return out, nil
}

// Stats are a Server's counters, cumulative since Start.
type Stats struct {
	// API is the API the server runs.
	API API
	// Conns counts accepted connections; Open those not yet closed.
	Conns int64
	Open  int64
	// Bytes counts bytes echoed (received and queued for sending back).
	Bytes int64
	// Loops are the event loops' counters, indexed by loop (none for an
	// APIConn server).
	Loops []runtime.Stats
	// Net are netio's counters summed over the loops.
	Net netio.Stats
	// Fallback is empty when the server runs on io_uring, and otherwise why
	// it serves on package net (then it has no loops).
	Fallback string
}

// Total sums the loops' counters (Loop and CPU are -1).
func (s *Stats) Total() runtime.Stats {
	t := runtime.Stats{Loop: -1, CPU: -1}
	for _, l := range s.Loops {
		t.SQEs += l.SQEs
		t.CQEs += l.CQEs
		t.Enters += l.Enters
		t.Wakeups += l.Wakeups
		t.Posted += l.Posted
		t.Tasks += l.Tasks
		t.Overflowed += l.Overflowed
		t.ENOBUFS += l.ENOBUFS
		t.Rearms += l.Rearms
		t.CQOverflows += l.CQOverflows
		t.ZCNotifs += l.ZCNotifs
		t.ZCCopied += l.ZCCopied
		t.Panics += l.Panics
		t.Cancels += l.Cancels
		t.TimersFired += l.TimersFired
		t.MsgRingErrors += l.MsgRingErrors
		t.Strays += l.Strays
		t.LiveOps += l.LiveOps
		t.LiveTimers += l.LiveTimers
	}
	return t
}

// WriteTo prints the statistics as an aligned table: the server's counters,
// then one row per loop and a total row of the runtime's counters, then
// netio's; on package net, the server's counters and why.
func (s *Stats) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	fmt.Fprintf(cw, "echo stats (api=%s): connections %d (open %d), bytes echoed %d\n", s.API, s.Conns, s.Open, s.Bytes)
	if s.Fallback != "" {
		fmt.Fprintf(cw, "served by package net: %s\n", s.Fallback)
		return cw.n, cw.err
	}
	if len(s.Loops) == 0 {
		// APIConn: netio's own sockets, waiting in Go's poller; no loops.
		fmt.Fprintf(cw, "netio: accepted %d, accept errors %d, spliced %d bytes\n", s.Net.Accepted, s.Net.AcceptErrors, s.Net.Spliced)
		return cw.n, cw.err
	}
	tw := tabwriter.NewWriter(cw, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "loop\tcpu\tsqes\tcqes\tenters\twakeups\tposted\ttasks\tenobufs\trearms\tcq_overflows\tzc_notifs\tzc_copied\tpanics\tstrays\t")
	row := func(name string, l runtime.Stats) {
		cpu := "-"
		if l.CPU >= 0 {
			cpu = fmt.Sprint(l.CPU)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", name, cpu,
			l.SQEs, l.CQEs, l.Enters, l.Wakeups, l.Posted, l.Tasks, l.ENOBUFS, l.Rearms,
			l.CQOverflows, l.ZCNotifs, l.ZCCopied, l.Panics, l.Strays)
	}
	for _, l := range s.Loops {
		row(fmt.Sprint(l.Loop), l)
	}
	row("total", s.Total())
	_ = tw.Flush()
	n := s.Net
	fmt.Fprintf(cw, "netio: accepted %d, accept errors %d, plain sends %d, zc sends %d, zc abandoned %d, rearms %d, starved %d\n",
		n.Accepted, n.AcceptErrors, n.PlainSends, n.ZCSends, n.ZCAbandoned, n.Rearms, n.Starved)
	return cw.n, cw.err
}

// countWriter counts bytes and keeps the first error, for WriteTo.
type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}
