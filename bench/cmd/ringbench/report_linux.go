//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// aggRow is one (row, mode) over all rounds: medians, merged latency histogram.
type aggRow struct {
	Row, Mode string
	Relay     bool
	Rounds    int
	Errs      []string

	PerSec float64 // msgs/s (TCP) or forwarded packets/s (relay)
	Spread float64 // (max-min)/median of PerSec over rounds
	Lat    hist    `json:"-"`
	P50    time.Duration
	P99    time.Duration
	P999   time.Duration

	Bottleneck string
	Saturated  bool // the load generator used over 90% of its CPUs

	SrvUsPer    float64
	SysPer      float64 // perf; -1: n/a
	UringPer    float64 // perf's io_uring_enter per message; -1: n/a
	SelfSysPer  float64 // self-reported; -1: n/a
	SelfSysName string
	RSSMiB      float64 // steady: VmRSS at the end of the window (median)
	PeakMiB     float64 // peak VmRSS (max over rounds)

	LgUsPer  float64
	LgUsed   float64 // cores the load generator used
	LgCores  int
	SrvUsed  float64 // cores the server used
	SrvCores int
	Shared   bool

	SrvBusy float64 // how busy the server's CPUs were, by anyone
	LgBusy  float64 // how busy the load generator's CPUs were, by anyone

	SentPerSec float64
	LossPct    float64 // sent but not received by the sink
	LossInPct  float64 // sent but not forwarded, by the relay's count; -1: n/a
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// aggregate groups cells by (row, mode) in first-seen order.
func aggregate(cells []cellResult) []*aggRow {
	var order []*aggRow
	idx := map[string]*aggRow{}
	type acc struct {
		per, srv, sys, uring, self, rss, lg, lgUsed, srvUsed, sent, loss, lossIn, srvBusy, lgBusy []float64
	}
	accs := map[*aggRow]*acc{}
	for i := range cells {
		c := &cells[i]
		key := c.Row + "\x00" + c.Mode
		a, ok := idx[key]
		if !ok {
			a = &aggRow{Row: c.Row, Mode: c.Mode, Relay: strings.HasPrefix(c.Row, "udp "), SysPer: -1, UringPer: -1, SelfSysPer: -1}
			idx[key] = a
			order = append(order, a)
			accs[a] = &acc{}
		}
		if c.Err != nil {
			a.Errs = append(a.Errs, c.Err.Error())
			if c.Msgs == 0 {
				continue
			}
		}
		x := accs[a]
		a.Rounds++
		secs := c.Window.Seconds()
		x.per = append(x.per, c.perSec())
		a.Lat.merge(&c.Hist)
		x.srv = append(x.srv, usPer(c.SrvCPU, c.Msgs))
		if c.SrvSyscalls >= 0 {
			x.sys = append(x.sys, float64(c.SrvSyscalls)/float64(c.Msgs))
		}
		if c.SrvUring >= 0 {
			x.uring = append(x.uring, float64(c.SrvUring)/float64(c.Msgs))
		}
		if c.SelfSys >= 0 {
			x.self = append(x.self, float64(c.SelfSys)/float64(c.Msgs))
			a.SelfSysName = c.SelfSysName
		}
		x.rss = append(x.rss, float64(c.SrvRSSKiB)/1024)
		a.PeakMiB = max(a.PeakMiB, float64(c.SrvPeakKiB)/1024)
		x.lg = append(x.lg, usPer(c.LoadCPU, c.Msgs))
		x.lgUsed = append(x.lgUsed, c.LoadCPU.Seconds()/secs)
		x.srvUsed = append(x.srvUsed, c.SrvCPU.Seconds()/secs)
		x.srvBusy = append(x.srvBusy, c.SrvCPUBusy)
		x.lgBusy = append(x.lgBusy, c.LgCPUBusy)
		if c.Sent > 0 {
			x.sent = append(x.sent, float64(c.Sent)/c.Elapsed.Seconds())
			x.loss = append(x.loss, lossPct(c))
			if c.RelayFwd >= 0 {
				x.lossIn = append(x.lossIn, 100*float64(max(0, c.Sent-c.RelayFwd))/float64(c.Sent))
			}
		}
		a.LgCores, a.SrvCores, a.Shared = c.LoadCores, c.SrvCores, c.Shared
	}
	for _, a := range order {
		x := accs[a]
		a.PerSec = median(x.per)
		if a.PerSec > 0 && len(x.per) > 1 {
			s := append([]float64(nil), x.per...)
			sort.Float64s(s)
			a.Spread = (s[len(s)-1] - s[0]) / a.PerSec
		}
		a.SrvUsPer = median(x.srv)
		if len(x.sys) > 0 {
			a.SysPer = median(x.sys)
		}
		if len(x.self) > 0 {
			a.SelfSysPer = median(x.self)
		}
		if len(x.uring) > 0 {
			a.UringPer = median(x.uring)
		}
		a.RSSMiB = median(x.rss)
		a.LgUsPer = median(x.lg)
		a.LgUsed = median(x.lgUsed)
		a.SrvUsed = median(x.srvUsed)
		a.SrvBusy = median(x.srvBusy)
		a.LgBusy = median(x.lgBusy)
		a.SentPerSec = median(x.sent)
		a.LossPct = median(x.loss)
		a.LossInPct = -1
		if len(x.lossIn) > 0 {
			a.LossInPct = median(x.lossIn)
		}
		a.P50, a.P99, a.P999 = a.Lat.quantile(0.5), a.Lat.quantile(0.99), a.Lat.quantile(0.999)
		a.Bottleneck, a.Saturated = a.bottleneck(), a.LoadSaturated()
	}
	return order
}

// LoadSaturated reports whether the load generator used more than 90% of its CPUs.
func (a *aggRow) LoadSaturated() bool { return a.LgCores > 0 && a.LgUsed > 0.9*float64(a.LgCores) }

// bottleneck names the resource that limited the row.
func (a *aggRow) bottleneck() string {
	srvSat := a.SrvCores > 0 && a.SrvUsed > 0.9*float64(a.SrvCores)
	lgSat := a.LoadSaturated()
	if a.Shared {
		n := max(a.LgCores, a.SrvCores)
		if n > 0 && a.LgUsed+a.SrvUsed > 0.9*float64(n) {
			who := "loadgen"
			if a.SrvUsed > a.LgUsed {
				who = "server"
			}
			return "shared CPUs (" + who + " larger)"
		}
	}
	switch {
	case lgSat && srvSat:
		return "both CPUs"
	case lgSat:
		return "loadgen (saturated)"
	case srvSat:
		return "server CPU"
	case a.SrvBusy > 0.9 || a.LgBusy > 0.9:
		return "CPU contention (other processes)"
	}
	if a.Relay {
		return "offered rate"
	}
	return "latency (neither CPU saturated)"
}

// machineHeader describes where and how the numbers were taken.
func machineHeader(cfg *benchConfig) string {
	var b strings.Builder
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := "unknown kernel"
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		kernel = fmt.Sprintf("%s %s %s", cstr(u.Sysname[:]), cstr(u.Release[:]), cstr(u.Machine[:]))
	}
	pin := func(c []int) string {
		if len(c) == 0 {
			return "not pinned"
		}
		return "CPUs " + joinInts(c)
	}
	sys := "perf stat -e " + perfSyscallEvent + " around the server, enabled only in the window"
	if _, _, uring := perfAvailable(); uring && cfg.Perf {
		sys += " (and " + perfUringEvent + ")"
	}
	if !cfg.Perf {
		sys = "n/a (" + cfg.PerfWhy + ")"
	}
	preset := cfg.Preset
	if preset == "" {
		preset = "custom"
	}
	fmt.Fprintf(&b, "# ringbench (%s)\n\n", preset)
	fmt.Fprintf(&b, "- Machine: %s, %d CPUs online; %s\n", model, onlineCPUs(), kernel)
	fmt.Fprintf(&b, "- Go: %s %s/%s; date: %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Run: %d round(s), modes interleaved per row, %v measured per cell after %v warm-up; fresh server process per cell\n",
		cfg.Rounds, cfg.Duration, cfg.Warmup)
	fmt.Fprintf(&b, "- Pinning: servers %s, load generator %s (%d epoll worker(s))\n", pin(cfg.ServerCPUs), pin(cfg.ClientCPUs), loadWorkers(cfg))
	fmt.Fprintf(&b, "- Server syscalls: %s\n", sys)
	return b.String()
}

func loadWorkers(cfg *benchConfig) int {
	if cfg.Workers > 0 {
		return cfg.Workers
	}
	return allowedCPUs()
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func onlineCPUs() int { return len(onlineCPUList()) }

func fnum(v float64) string {
	switch {
	case v < 0:
		return "n/a"
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	case v >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func fus(d time.Duration) string { return fnum(float64(d.Nanoseconds()) / 1e3) }

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// writeMarkdown prints the header, the TCP table, the relay table and notes.
func writeMarkdown(w io.Writer, cfg *benchConfig, rows []*aggRow) {
	fmt.Fprintln(w, machineHeader(cfg))
	var tcp, udp []*aggRow
	for _, r := range rows {
		if r.Relay {
			udp = append(udp, r)
		} else {
			tcp = append(tcp, r)
		}
	}
	base := func(set []*aggRow, row, mode string) *aggRow {
		for _, r := range set {
			if r.Row == row && r.Mode == mode {
				return r
			}
		}
		return nil
	}
	var bases []string
	for _, b := range cfg.Baselines {
		for _, m := range cfg.EchoModes {
			if m == b && len(cfg.EchoModes) > 1 {
				bases = append(bases, b)
			}
		}
	}
	anySelf, anyUring := false, false
	for _, r := range rows {
		anySelf = anySelf || r.SelfSysPer >= 0
		anyUring = anyUring || r.UringPer > 0
	}
	if len(tcp) > 0 {
		fmt.Fprintln(w, "## TCP echo")
		fmt.Fprintln(w)
		hdr := []string{"row", "mode", "msgs/s", "spread", "p50 µs", "p99 µs", "p99.9 µs", "srv µs/msg", "srv sys/msg"}
		if anyUring {
			hdr = append(hdr, "srv io_uring_enter/msg")
		}
		if anySelf {
			hdr = append(hdr, "self-rep sys/msg")
		}
		hdr = append(hdr, "srv RSS MiB", "srv peak MiB", "lg µs/msg", "lg cores", "srv cores", "CPU busy srv/lg", "bottleneck")
		for _, b := range bases {
			hdr = append(hdr, "msgs/s ×"+b, "srv µs/msg ×"+b)
		}
		writeRow(w, hdr)
		writeRow(w, sep(len(hdr)))
		for _, r := range tcp {
			cells := []string{
				r.Row, r.Mode, fnum(r.PerSec), fmt.Sprintf("%.0f%%", 100*r.Spread),
				fus(r.P50), fus(r.P99), fus(r.P999),
				fnum(r.SrvUsPer), fnum(r.SysPer),
			}
			if anyUring {
				cells = append(cells, fnum(r.UringPer))
			}
			if anySelf {
				s := fnum(r.SelfSysPer)
				if r.SelfSysName != "" && r.SelfSysPer >= 0 {
					s += " " + r.SelfSysName
				}
				cells = append(cells, s)
			}
			cells = append(cells, fnum(r.RSSMiB), fnum(r.PeakMiB), fnum(r.LgUsPer),
				fmt.Sprintf("%.2f/%d", r.LgUsed, r.LgCores), fmt.Sprintf("%.2f/%d", r.SrvUsed, r.SrvCores), busyPct(r), r.Bottleneck)
			for _, b := range bases {
				if br := base(tcp, r.Row, b); br != nil {
					cells = append(cells, ratio(r.PerSec, br.PerSec), ratio(r.SrvUsPer, br.SrvUsPer))
				} else {
					cells = append(cells, "n/a", "n/a")
				}
			}
			if len(r.Errs) > 0 {
				cells[len(cells)-1-2*len(bases)] += " ERR: " + strings.ReplaceAll(r.Errs[0], "|", "/")
			}
			writeRow(w, cells)
		}
		fmt.Fprintln(w)
	}
	if len(udp) > 0 {
		fmt.Fprintln(w, "## UDP RTP relay (172-byte packets)")
		fmt.Fprintln(w)
		hdr := []string{"row", "mode", "sent pkt/s", "fwd pkt/s", "loss %", "lost before relay %", "relay µs/pkt", "relay sys/pkt"}
		if anyUring {
			hdr = append(hdr, "relay io_uring_enter/pkt")
		}
		hdr = append(hdr, "relay RSS MiB", "lg µs/pkt", "lg cores", "relay cores", "CPU busy relay/lg", "bottleneck")
		writeRow(w, hdr)
		writeRow(w, sep(len(hdr)))
		for _, r := range udp {
			cells := []string{
				r.Row, r.Mode, fnum(r.SentPerSec), fnum(r.PerSec), fmt.Sprintf("%.2f", r.LossPct), lossIn(r),
				fnum(r.SrvUsPer), fnum(r.SysPer),
			}
			if anyUring {
				cells = append(cells, fnum(r.UringPer))
			}
			cells = append(cells, fnum(r.RSSMiB), fnum(r.LgUsPer),
				fmt.Sprintf("%.2f/%d", r.LgUsed, r.LgCores), fmt.Sprintf("%.2f/%d", r.SrvUsed, r.SrvCores), busyPct(r), r.Bottleneck)
			if len(r.Errs) > 0 {
				cells[len(cells)-1] += " ERR: " + strings.ReplaceAll(r.Errs[0], "|", "/")
			}
			writeRow(w, cells)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Columns: figures are medians over rounds (latency percentiles from the rounds' merged histogram);")
	fmt.Fprintln(w, "spread = (max-min)/median of msgs/s; srv µs/msg = server utime+stime (all threads, /proc/PID/stat, 10 ms ticks) per message;")
	fmt.Fprintln(w, "srv sys/msg = server syscalls per message (perf; io_uring_enter/msg, when shown, is its io_uring_enter share); RSS = VmRSS at the window's end, peak = highest VmRSS sampled every 50 ms;")
	fmt.Fprintln(w, "lg = load generator (getrusage of ringbench, epoll workers plus the sink); cores = CPU seconds per second / CPUs allowed;")
	fmt.Fprintln(w, "CPU busy = how busy the server's / load generator's CPUs were in the window by anyone (/proc/stat), so other processes show up there;")
	if len(udp) > 0 {
		fmt.Fprintln(w, "Relay: fwd pkt/s = packets the sink received per second of sending; loss = not received by the sink; lost before relay = not forwarded")
		fmt.Fprintln(w, "by the relay's own count (its receive queue overflowed), the rest of the loss is at the sink (the load generator's CPU);")
	}
	fmt.Fprintln(w, "latency is per message, from queueing the write to reading the last echoed byte (one clock read per ready socket).")
	sat := 0
	for _, r := range rows {
		if r.LoadSaturated() {
			sat++
		}
	}
	if sat > 0 {
		fmt.Fprintf(w, "\n**Load generator saturated in %d of %d rows** (it used over 90%% of its CPUs): those rows measure the load generator as much as the server; compare their server µs/msg, not their msgs/s.\n", sat, len(rows))
	}
}

func sep(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = "---"
	}
	return s
}

func writeRow(w io.Writer, cells []string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}

func busyPct(r *aggRow) string {
	return fmt.Sprintf("%.0f%%/%.0f%%", 100*r.SrvBusy, 100*r.LgBusy)
}

// writeJSON writes the machine header fields and every row as JSON.
func writeJSON(path string, cfg *benchConfig, rows []*aggRow) error {
	doc := struct {
		Header string    `json:"header"`
		Rows   []*aggRow `json:"rows"`
	}{machineHeader(cfg), rows}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func lossIn(r *aggRow) string {
	if r.LossInPct < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", r.LossInPct)
}
