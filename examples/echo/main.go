// Command echo is a TCP echo server on ringwire's io_uring event loops.
//
//	echo -addr 127.0.0.1:7007 -loops 2 -api handler
//
// -api handler (the default) uses netio's completion handler API: each
// received buffer is sent back from the provided buffer it arrived in, with
// its lease, so the echoed bytes are never copied in user space. -api conn
// uses netio's drop-in net.Listener with a goroutine per connection doing
// Read and Write, as a program written for package net would.
//
// Where io_uring cannot be used (a container's seccomp profile,
// kernel.io_uring_disabled, a kernel older than 6.1), -api conn serves on
// package net, as netio's net.Listener does, and logs why; -api handler exits
// with status 1 and the reason, since the handler API has no fallback.
//
// It logs with zap (production configuration, JSON on stderr), starting with
// the bound address. On SIGINT or SIGTERM it closes every connection and its
// event loops, prints its statistics on stdout (connections, bytes, and per
// loop the SQEs, CQEs, io_uring_enter calls, wakeups, ENOBUFS... of the
// runtime) and exits with status 0.
//
// The server itself lives in package echoserver, which bench/cmd/ringbench
// also runs as its ringwire-handler and ringwire-conn modes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	goruntime "runtime"
	"syscall"

	"go.uber.org/zap"

	"github.com/ringwire/ringwire/examples/echo/echoserver"
	"github.com/ringwire/ringwire/ring"
)

// options are the parsed command line.
type options struct {
	server echoserver.Config
	// ready, if set, is called with the bound address once the server listens
	// (tests use it to learn the port chosen for port 0).
	ready func(net.Addr)
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(2)
	}
	log, err := zap.NewProduction() // JSON to stderr
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, opts, os.Stdout, log)
	stop()
	_ = log.Sync()
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

// parseFlags parses the command line.
func parseFlags(args []string, errOut io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&o.server.Addr, "addr", "127.0.0.1:7007", "TCP address to listen on")
	fs.IntVar(&o.server.Loops, "loops", goruntime.NumCPU(), "number of io_uring event loops")
	api := fs.String("api", string(echoserver.APIHandler), "netio API: handler (zero-copy handler API) or conn (net.Listener, goroutine per connection)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() != 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.server.Loops < 1 {
		return o, fmt.Errorf("-loops must be at least 1, not %d", o.server.Loops)
	}
	a, err := echoserver.ParseAPI(*api)
	if err != nil {
		return o, err
	}
	o.server.API = a
	return o, nil
}

// run serves until ctx is done, then closes the server and prints its
// statistics to out.
func run(ctx context.Context, o options, out io.Writer, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	cfg := o.server
	cfg.Logger = log
	srv, err := echoserver.Start(&cfg)
	if err != nil {
		if cfg.API == echoserver.APIHandler && errors.Is(err, ring.ErrUnavailable) {
			return fmt.Errorf("-api handler cannot run without io_uring (-api conn can: it falls back to package net): %w", err)
		}
		return err
	}
	path := "netio"
	if fb := srv.Fallback(); fb != nil {
		path = "package net"
		log.Warn("echo: -api conn serves on package net", zap.Error(fb))
	}
	log.Info("echo: listening",
		zap.Stringer("addr", srv.Addr()),
		zap.String("api", string(cfg.API)),
		zap.String("sockets", path),
		zap.Int("loops", len(srv.Stats().Loops)))
	if o.ready != nil {
		o.ready(srv.Addr())
	}
	<-ctx.Done()
	log.Info("echo: shutting down", zap.NamedError("cause", context.Cause(ctx)))
	err = srv.Close()
	st := srv.Stats()
	if _, werr := st.WriteTo(out); werr != nil && err == nil {
		err = werr
	}
	return err
}
