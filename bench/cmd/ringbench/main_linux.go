//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	if err := realMain(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, err)
		}
		os.Exit(1)
	}
}

// realMain dispatches the subcommands: serve, relay, or the benchmark (default).
func realMain(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "serve":
			return runServe(args[1:])
		case "relay":
			return runBench(args[1:], stdout, stderr, true)
		case "run":
			args = args[1:]
		}
	}
	return runBench(args, stdout, stderr, false)
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		mult := 1
		switch {
		case strings.HasSuffix(f, "KiB"), strings.HasSuffix(f, "K"), strings.HasSuffix(f, "k"):
			mult, f = 1024, strings.TrimRight(f, "KiBk")
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("ringbench: bad number %q in %q", f, s)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// runBench parses the flags, runs every row and writes the table (and chart).
func runBench(args []string, stdout, stderr io.Writer, relayOnly bool) error {
	fs := flag.NewFlagSet("ringbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	preset := fs.String("preset", "", "demo (about a minute: the most telling rows) or full (every combination); other flags given explicitly override it")
	modes := fs.String("modes", "", "echo modes, comma-separated (default: all registered)")
	relayModes := fs.String("relay-modes", "", "relay modes, comma-separated (default: all registered)")
	list := fs.Bool("list", false, "list the registered modes and exit")
	conns := fs.String("conns", "64", "connection counts, comma-separated")
	depth := fs.String("depth", "1", "messages in flight per connection, comma-separated (1: ping-pong; 16: pipelined)")
	size := fs.String("size", "64", "message sizes in bytes, comma-separated (64, 1K, 16K)")
	streams := fs.String("streams", "100", "relay: RTP stream counts, comma-separated")
	pps := fs.String("pps", "50", "relay: packets/s per stream, comma-separated; a 0 entry adds an as-fast-as-possible row")
	relay := fs.Bool("relay", false, "also run the UDP relay rows")
	noTCP := fs.Bool("no-tcp", false, "skip the TCP echo rows")
	duration := fs.Duration("duration", 2*time.Second, "measured window per cell")
	warmup := fs.Duration("warmup", 300*time.Millisecond, "unmeasured load before each window")
	rounds := fs.Int("rounds", 3, "rounds; modes run interleaved within each row")
	serverCPUs := fs.String("server-cpus", "", "pin servers to these CPUs (\"0\", \"0-1\")")
	clientCPUs := fs.String("client-cpus", "", "pin the load generator to these CPUs")
	pin := fs.Bool("pin", false, "pin servers to the first half of the online CPUs and the load generator to the rest (ignored with fewer than 2 CPUs, or with -server-cpus/-client-cpus)")
	workers := fs.Int("workers", 0, "load generator epoll workers (0: one per client CPU)")
	perf := fs.String("perf", "auto", "count server syscalls with perf stat: auto, on or off")
	baseline := fs.String("baseline", "gonet,gnet", "modes to give ratios against, comma-separated")
	maxMsgs := fs.Int64("max-msgs", 50_000_000, "bound on messages per cell")
	out := fs.String("out", "", "write the full Markdown table to this file, and print only the compact table (and the files' paths) on stdout")
	png := fs.String("png", "", "write a PNG bar chart to this file")
	jsonOut := fs.String("json", "", "write the rows as JSON to this file")
	quiet := fs.Bool("q", false, "no per-cell progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("ringbench: unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	reg := newRegistry()
	if *list {
		fmt.Fprintf(stdout, "echo modes:  %s\nrelay modes: %s\n",
			strings.Join(sortedModes(reg.echo, defaultEchoOrder), ", "),
			strings.Join(sortedModes(reg.relay, defaultRelayOrder), ", "))
		return nil
	}

	cfg := &benchConfig{
		Preset: *preset, Duration: *duration, Warmup: *warmup, Rounds: *rounds,
		Workers: *workers, MaxMsgs: *maxMsgs, Baselines: splitList(*baseline),
	}
	if !*quiet {
		cfg.Log = stderr
	}
	var err error
	switch *preset {
	case "":
		cs, err1 := parseInts(*conns)
		ds, err2 := parseInts(*depth)
		ss, err3 := parseInts(*size)
		if err := errors.Join(err1, err2, err3); err != nil {
			return err
		}
		for _, d := range ds {
			for _, c := range cs {
				for _, s := range ss {
					cfg.Scenarios = append(cfg.Scenarios, scenario{Conns: c, Depth: d, Size: s})
				}
			}
		}
		if *relay || relayOnly {
			st, err1 := parseInts(*streams)
			var ps []int
			for _, f := range splitList(*pps) {
				n, err := strconv.Atoi(f)
				if err != nil || n < 0 {
					return fmt.Errorf("ringbench: bad -pps %q", *pps)
				}
				ps = append(ps, n)
			}
			if err1 != nil {
				return err1
			}
			for _, s := range st {
				for _, p := range ps {
					cfg.Relays = append(cfg.Relays, relayScenario{Streams: s, PPS: p})
				}
			}
		}
	case "demo":
		cfg.Scenarios = []scenario{{1000, 1, 64}, {64, 16, 64}, {1, 1, 64}}
		cfg.Relays = []relayScenario{{100, 50}, {100, 0}}
		if !set["rounds"] {
			cfg.Rounds = 2
		}
		if !set["duration"] {
			cfg.Duration = 1500 * time.Millisecond
		}
	case "full":
		for _, d := range []int{1, 16} {
			for _, c := range []int{1, 64, 1000} {
				for _, s := range []int{64, 1024, 16384} {
					cfg.Scenarios = append(cfg.Scenarios, scenario{Conns: c, Depth: d, Size: s})
				}
			}
		}
		cfg.Relays = []relayScenario{{100, 50}, {1000, 50}, {100, 0}}
	default:
		return fmt.Errorf("ringbench: unknown preset %q (demo, full)", *preset)
	}
	if relayOnly {
		cfg.Scenarios = nil
	}
	if *noTCP {
		cfg.Scenarios = nil
	}
	if cfg.Rounds < 1 || cfg.Duration <= 0 || cfg.Warmup < 0 {
		return errors.New("ringbench: need -rounds >= 1, -duration > 0, -warmup >= 0")
	}
	if cfg.Duration > time.Minute {
		return errors.New("ringbench: -duration is capped at 1m per cell")
	}
	if cfg.EchoModes, err = pickModes(*modes, sortedModes(reg.echo, defaultEchoOrder)); err != nil {
		return err
	}
	if cfg.RelayModes, err = pickModes(*relayModes, sortedModes(reg.relay, defaultRelayOrder)); err != nil {
		return err
	}
	if online := onlineCPUList(); *pin && len(online) >= 2 && *serverCPUs == "" && *clientCPUs == "" {
		half := len(online) / 2
		*serverCPUs, *clientCPUs = joinInts(online[:half]), joinInts(online[half:])
	}
	if *serverCPUs != "" {
		if cfg.ServerCPUs, err = parseCPUList(*serverCPUs); err != nil {
			return err
		}
	}
	if *clientCPUs != "" {
		if cfg.ClientCPUs, err = parseCPUList(*clientCPUs); err != nil {
			return err
		}
		if err := pinProcess(cfg.ClientCPUs); err != nil {
			return err
		}
	}
	switch *perf {
	case "off":
		cfg.PerfWhy = "-perf off"
	case "auto", "on":
		ok, why, _ := perfAvailable()
		if !ok && *perf == "on" {
			return errors.New("ringbench: -perf on: " + why)
		}
		cfg.Perf, cfg.PerfWhy = ok, why
	default:
		return fmt.Errorf("ringbench: -perf %q: want auto, on or off", *perf)
	}

	cells := runAll(cfg)
	rows := aggregate(cells)
	var files []string
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		writeMarkdown(f, cfg, rows)
		if err := f.Close(); err != nil {
			return err
		}
		files = append(files, "full table: "+absPath(*out))
	}
	if *jsonOut != "" {
		if err := writeJSON(*jsonOut, cfg, rows); err != nil {
			return err
		}
		files = append(files, "JSON: "+absPath(*jsonOut))
	}
	if *png != "" {
		if err := writeChart(*png, cfg, rows); err != nil {
			return err
		}
		files = append(files, "chart: "+absPath(*png))
	}
	if *out != "" {
		writeCompact(stdout, cfg, rows, files)
	} else {
		writeMarkdown(stdout, cfg, rows)
		for _, f := range files {
			fmt.Fprintln(stdout, f)
		}
	}
	var errs []error
	for _, c := range cells {
		if c.Err != nil {
			errs = append(errs, fmt.Errorf("%s %s round %d: %w", c.Row, c.Mode, c.Round+1, c.Err))
		}
	}
	return errors.Join(errs...)
}

// absPath is path made absolute, for printing where a file went.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

func pickModes(flagVal string, all []string) ([]string, error) {
	if flagVal == "" {
		var def []string
		for _, m := range all {
			if !optionalModes[m] {
				def = append(def, m)
			}
		}
		return def, nil
	}
	want := splitList(flagVal)
	for _, m := range want {
		found := false
		for _, a := range all {
			found = found || a == m
		}
		if !found {
			return nil, fmt.Errorf("ringbench: unknown mode %q (have %s)", m, strings.Join(all, ", "))
		}
	}
	return want, nil
}
