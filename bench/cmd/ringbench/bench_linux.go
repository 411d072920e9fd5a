//go:build linux

package main

import (
	"fmt"
	"io"
	"time"
)

// scenario is one TCP row: Conns connections, Depth messages in flight each
// (1: ping-pong), Size bytes per message.
type scenario struct {
	Conns int
	Depth int
	Size  int
}

// Name is the row label, e.g. "1000c pp 64B" or "64c pipe16 1KiB".
func (s scenario) Name() string {
	pat := "pp"
	if s.Depth > 1 {
		pat = fmt.Sprintf("pipe%d", s.Depth)
	}
	return fmt.Sprintf("%dc %s %s", s.Conns, pat, sizeName(s.Size))
}

func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// benchConfig is a whole run.
type benchConfig struct {
	Preset     string
	EchoModes  []string
	RelayModes []string
	Scenarios  []scenario
	Relays     []relayScenario
	Duration   time.Duration // measured window per row
	Warmup     time.Duration // unmeasured load before the window
	Rounds     int
	ServerCPUs []int // nil: not pinned
	ClientCPUs []int // nil: not pinned
	Workers    int   // load generator epoll workers; 0: one per client CPU
	Perf       bool
	PerfWhy    string // why perf is off
	Baselines  []string
	MaxMsgs    int64
	Log        io.Writer // progress lines; nil: none
}

// cellResult is one (row, mode, round) measurement.
type cellResult struct {
	Row     string
	Mode    string
	Round   int
	Msgs    int64
	Elapsed time.Duration // the time messages were counted over (relay: sending)
	Window  time.Duration // the time CPU was measured over (relay: sending and drain)
	Hist    hist

	SrvCPU      time.Duration
	SrvRSSKiB   int64 // VmRSS at the end of the window
	SrvPeakKiB  int64 // highest VmRSS sampled in the window (or VmHWM)
	SrvSyscalls int64 // perf's count in the window; -1: n/a
	SrvUring    int64 // perf's io_uring_enter count in the window; -1: n/a
	SelfSys     int64 // self-reported syscalls in the window; -1: n/a
	SelfSysName string
	SrvCores    int // CPUs the server may use

	LoadCPU   time.Duration
	LoadCores int // CPUs the load generator may use
	Shared    bool

	// How busy the server's and the load generator's CPUs were in the window,
	// by anyone (/proc/stat): high values with low own use mean contention.
	SrvCPUBusy float64
	LgCPUBusy  float64

	// relay rows only
	Sent     int64
	Lost     int64
	RelayFwd int64 // packets the relay says it forwarded in the window; -1: n/a

	Err error
}

func (c *cellResult) perSec() float64 {
	if c.Elapsed <= 0 {
		return 0
	}
	return float64(c.Msgs) / c.Elapsed.Seconds()
}

// runEchoCell measures one mode on one scenario in a fresh server subprocess.
func runEchoCell(cfg *benchConfig, sc scenario, mode string, round int) cellResult {
	res := cellResult{Row: sc.Name(), Mode: mode, Round: round, SrvSyscalls: -1, SrvUring: -1, SelfSys: -1, RelayFwd: -1}
	srv, err := startServer(serverSpec{
		Args: []string{"-kind", "echo", "-mode", mode, "-addr", "127.0.0.1:0"},
		CPUs: cfg.ServerCPUs,
		Perf: cfg.Perf,
	})
	if err != nil {
		res.Err = err
		return res
	}
	// On an early return; the normal path checks Stop's error below.
	defer func() { _, _ = srv.Stop() }()
	deadline := time.Now().Add(cfg.Warmup + cfg.Duration + 10*time.Second)
	g, err := startTCPLoad(tcpLoad{
		Addr: srv.Addr, Conns: sc.Conns, Depth: sc.Depth, Size: sc.Size,
		Workers: cfg.Workers, MaxMsgs: cfg.MaxMsgs,
	}, deadline)
	if err != nil {
		res.Err = err
		return res
	}
	// On an early return; the normal path checks Stop's error below.
	defer func() { _ = g.Stop() }()
	time.Sleep(cfg.Warmup)

	m := beginMeasure(srv)
	g.beginWindow()
	time.Sleep(cfg.Duration)
	win := g.snapshotEnd()
	m.end(cfg, srv, &res)
	if err := g.Stop(); err != nil && res.Err == nil {
		res.Err = err
	}
	g.mergeHist(&win.Hist)
	res.Msgs, res.Elapsed, res.Window, res.Hist, res.LoadCPU = win.Msgs, win.Elapsed, win.Elapsed, win.Hist, win.LoadCPU
	fillCores(cfg, &res)
	if _, err := srv.Stop(); err != nil && res.Err == nil {
		res.Err = err
	}
	if n, ok := srv.SyscallCount(); ok {
		res.SrvSyscalls = n
	}
	if n, ok := srv.UringEnterCount(); ok {
		res.SrvUring = n
	}
	if res.Msgs == 0 && res.Err == nil {
		res.Err = fmt.Errorf("no message completed in %v", cfg.Duration)
	}
	return res
}

// measure holds the server-side readings at the start of a window.
type measure struct {
	cpu   cpuTimes
	proc  procSample
	stats ServerStats
	rss   *rssSampler
}

func beginMeasure(srv *serverProc) *measure {
	m := &measure{}
	m.stats, _ = srv.Stats()
	_ = srv.perfControl("enable")
	m.proc, _ = readProc(srv.PID)
	m.rss = sampleRSS(srv.PID, 50*time.Millisecond)
	m.cpu = readCPUTimes()
	return m
}

func (m *measure) end(cfg *benchConfig, srv *serverProc, res *cellResult) {
	cpu := readCPUTimes()
	res.SrvCPUBusy = busyFraction(m.cpu, cpu, cfg.ServerCPUs)
	res.LgCPUBusy = busyFraction(m.cpu, cpu, cfg.ClientCPUs)
	after, err := readProc(srv.PID)
	if err != nil && res.Err == nil {
		res.Err = err
	}
	_ = srv.perfControl("disable")
	peak := m.rss.Stop()
	st, err := srv.Stats()
	if err == nil && st.Packets > 0 {
		res.RelayFwd = st.Packets - m.stats.Packets
	}
	if err == nil && st.Syscalls > 0 {
		res.SelfSys = st.Syscalls - m.stats.Syscalls
		res.SelfSysName = st.SyscallName
	}
	res.SrvCPU = after.CPU - m.proc.CPU
	res.SrvRSSKiB = after.RSSKiB
	res.SrvPeakKiB = max(peak, after.RSSKiB)
}

func fillCores(cfg *benchConfig, res *cellResult) {
	ncpu := onlineCPUs()
	res.SrvCores, res.LoadCores = ncpu, ncpu
	if len(cfg.ServerCPUs) > 0 {
		res.SrvCores = len(cfg.ServerCPUs)
	}
	if len(cfg.ClientCPUs) > 0 {
		res.LoadCores = len(cfg.ClientCPUs)
	}
	res.Shared = !disjoint(cfg.ServerCPUs, cfg.ClientCPUs)
}

func disjoint(a, b []int) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return false
			}
		}
	}
	return true
}

// runAll runs every row: for each row, rounds of modes interleaved
// (A B C A B C ...), so slow drift of the machine hits every mode alike.
func runAll(cfg *benchConfig) []cellResult {
	var out []cellResult
	logf := func(format string, a ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, format, a...)
		}
	}
	for _, sc := range cfg.Scenarios {
		for r := 0; r < cfg.Rounds; r++ {
			for _, mode := range cfg.EchoModes {
				res := runEchoCell(cfg, sc, mode, r)
				logf("# %-18s %-18s round %d: %10.0f msgs/s p99 %-9v srv %6.2f µs/msg%s\n",
					res.Row, res.Mode, r+1, res.perSec(), res.Hist.quantile(0.99),
					usPer(res.SrvCPU, res.Msgs), errSuffix(res.Err))
				out = append(out, res)
			}
		}
	}
	for _, rs := range cfg.Relays {
		for r := 0; r < cfg.Rounds; r++ {
			for _, mode := range cfg.RelayModes {
				res := runRelayCell(cfg, rs, mode, r)
				logf("# %-18s %-18s round %d: %10.0f pkt/s fwd, loss %.2f%%, relay %6.2f µs/pkt%s\n",
					res.Row, res.Mode, r+1, res.perSec(), lossPct(&res), usPer(res.SrvCPU, res.Msgs), errSuffix(res.Err))
				out = append(out, res)
			}
		}
	}
	return out
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " ERROR: " + err.Error()
}

func usPer(d time.Duration, n int64) float64 {
	if n <= 0 {
		return 0
	}
	return float64(d.Nanoseconds()) / 1e3 / float64(n)
}

func lossPct(c *cellResult) float64 {
	if c.Sent <= 0 {
		return 0
	}
	return 100 * float64(c.Lost) / float64(c.Sent)
}
