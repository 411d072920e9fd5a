// Command rtprelay relays RTP and RTCP (multiplexed on one port, RFC 5761)
// from consecutive ingress ports to the same offsets of one or more
// destinations, validating every datagram and keeping per-stream statistics.
//
//	rtprelay -in 127.0.0.1:40000 -out 127.0.0.1:50000,127.0.0.1:52000 -streams 4 -latch -stats 5s
//
// Stream i is received on port 40000+i and sent to 50000+i and 52000+i.
// With -latch (symmetric RTP) the relay also forwards what the destinations
// send back to its egress sockets to the latched ingress peer. Statistics
// (packets, bytes, loss, reordering, duplicates, jitter, added latency, drops
// by reason) are printed every -stats interval and at exit, as text or, with
// -json, as JSON lines. SIGINT or SIGTERM stops it.
//
// -impl selects the transport: "ringwire" (the default) relays on io_uring
// event loops (-loops of them), forwarding each received buffer without a
// copy; "go" is the Go net package reference relay. Where io_uring is
// unavailable, the default falls back to "go" and says so on stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ringwire/ringwire/examples/rtprelay/gorelay"
	"github.com/ringwire/ringwire/examples/rtprelay/relay"
	"github.com/ringwire/ringwire/examples/rtprelay/ringrelay"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtprelay:", err)
		os.Exit(1)
	}
}

// run parses args, then relays until ctx is done, printing statistics to out.
func run(ctx context.Context, args []string, out, errOut io.Writer) error {
	var cfg relay.Config
	fs := flag.NewFlagSet("rtprelay", flag.ContinueOnError)
	fs.SetOutput(errOut)
	cfg.RegisterFlags(fs)
	impl := fs.String("impl", "ringwire", "transport: ringwire (io_uring event loops) or go (Go net package)")
	loops := fs.Int("loops", 1, "ringwire: number of event loops; stream i runs on loop i mod loops")
	budget := fs.Duration("latency-budget", ringrelay.DefaultLatencyBudget, "ringwire: how long a loop may wait to batch completions before handling them (Linux 6.12; 0: handle each at once)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if _, err := cfg.Validate(); err != nil {
		return err
	}
	implSet := false
	fs.Visit(func(f *flag.Flag) { implSet = implSet || f.Name == "impl" })
	if *impl == "ringwire" && !implSet {
		if err := ringrelay.Available(); err != nil {
			fmt.Fprintf(errOut, "rtprelay: %v; using -impl go\n", err)
			*impl = "go"
		}
	}
	switch *impl {
	case "ringwire":
		b := *budget
		if b <= 0 {
			b = -1 // ringrelay: negative is none, 0 the default
		}
		return ringrelay.Run(ctx, &ringrelay.Config{Config: cfg, Loops: *loops, LatencyBudget: b}, out)
	case "go":
		return gorelay.Run(ctx, &gorelay.Config{Config: cfg}, out)
	default:
		return fmt.Errorf("unknown -impl %q", *impl)
	}
}
