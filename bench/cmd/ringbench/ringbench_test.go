//go:build linux

package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The benchmark starts its servers as `<this binary> serve ...`; in a test
	// the binary is the test binary, so act as ringbench when asked to.
	if os.Getenv(childEnv) == "1" {
		if err := realMain(os.Args[1:], os.Stdout, os.Stderr); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m,
		// gnet imports ants, whose package-level default pool starts these at init.
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"),
	)
}

// parseTable returns the rows of the Markdown table that follows heading, as
// maps from column name to cell.
func parseTable(t *testing.T, md, heading string) []map[string]string {
	t.Helper()
	_, rest, ok := strings.Cut(md, heading)
	if !ok {
		t.Fatalf("no %q section in:\n%s", heading, md)
	}
	var hdr []string
	var rows []map[string]string
	for _, line := range strings.Split(rest, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if hdr != nil {
				break
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case hdr == nil:
			hdr = cells
		case cells[0] == "---":
		default:
			if len(cells) != len(hdr) {
				t.Fatalf("row has %d cells, header %d: %q", len(cells), len(hdr), line)
			}
			m := map[string]string{}
			for i, h := range hdr {
				m[h] = cells[i]
			}
			rows = append(rows, m)
		}
	}
	return rows
}

func positive(t *testing.T, row map[string]string, cols ...string) {
	t.Helper()
	for _, c := range cols {
		f := strings.Fields(strings.Split(row[c], "/")[0])
		if len(f) == 0 {
			t.Errorf("%s %s: column %q missing", row["row"], row["mode"], c)
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil || v <= 0 {
			t.Errorf("%s %s: %s = %q, want a positive number", row["row"], row["mode"], c, row[c])
		}
	}
}

// TestSmokeGoNetGnet runs one tiny bounded TCP row against gonet and gnet, and
// one tiny relay row, through the real subprocess path, and checks the full
// table in the -out file, the compact table on stdout, and the chart.
func TestSmokeGoNetGnet(t *testing.T) {
	dir := t.TempDir()
	chart := filepath.Join(dir, "chart.png")
	full := filepath.Join(dir, "full.md")
	var out, errb bytes.Buffer
	start := time.Now()
	err := realMain([]string{
		"-modes", "gonet,gnet", "-relay-modes", "gorelay,udpconn",
		"-conns", "2", "-depth", "1", "-size", "64",
		"-relay", "-streams", "2", "-pps", "1000",
		"-duration", "200ms", "-warmup", "50ms", "-rounds", "1",
		"-png", chart, "-out", full,
	}, &out, &errb)
	if err != nil {
		t.Fatalf("ringbench: %v\nstderr:\n%s\nstdout:\n%s", err, errb.String(), out.String())
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("tiny run took %v", d)
	}
	compact := out.String()
	for _, want := range []string{"full table: " + full, "chart: " + chart, "\n2c pp 64B\n", "  → least server CPU per msg: ", "\nudp 2x1000pps\n"} {
		if !strings.Contains(compact, want) {
			t.Errorf("stdout lacks %q:\n%s", want, compact)
		}
	}
	if strings.Contains(compact, "| --- |") {
		t.Errorf("stdout holds the full Markdown table:\n%s", compact)
	}
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	for _, want := range []string{"Machine:", "Go: go", "Linux"} {
		if !strings.Contains(md, want) {
			t.Errorf("header lacks %q", want)
		}
	}
	rows := parseTable(t, md, "## TCP echo")
	if len(rows) != 2 {
		t.Fatalf("got %d TCP rows, want 2:\n%s", len(rows), md)
	}
	for i, mode := range []string{"gonet", "gnet"} {
		r := rows[i]
		if r["mode"] != mode || r["row"] != "2c pp 64B" {
			t.Errorf("row %d = %q %q, want 2c pp 64B %s", i, r["row"], r["mode"], mode)
		}
		positive(t, r, "msgs/s", "p50 µs", "p99 µs", "p99.9 µs", "srv µs/msg", "srv RSS MiB", "srv peak MiB", "lg µs/msg", "lg cores")
		if ok, _, _ := perfAvailable(); ok {
			positive(t, r, "srv sys/msg")
		}
		if strings.Contains(r["bottleneck"], "ERR") {
			t.Errorf("%s: %s", mode, r["bottleneck"])
		}
	}
	if rows[0]["msgs/s ×gonet"] != "1.00" {
		t.Errorf("gonet vs itself = %q, want 1.00", rows[0]["msgs/s ×gonet"])
	}
	positive(t, rows[1], "msgs/s ×gonet", "srv µs/msg ×gonet")

	relay := parseTable(t, md, "## UDP RTP relay")
	if len(relay) != 2 {
		t.Fatalf("got %d relay rows, want 2", len(relay))
	}
	for _, r := range relay {
		// relay CPU is a few 10 ms ticks at this size, so it may read 0
		positive(t, r, "sent pkt/s", "fwd pkt/s", "relay RSS MiB")
		if v, err := strconv.ParseFloat(r["relay µs/pkt"], 64); err != nil || v < 0 {
			t.Errorf("%s: relay µs/pkt = %q", r["mode"], r["relay µs/pkt"])
		}
	}

	f, err := os.Open(chart)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("chart: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 200 || b.Dy() < 100 {
		t.Errorf("chart is %v", b)
	}
}

func TestHistQuantiles(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{q: 0.5, want: 500 * time.Microsecond},
		{q: 0.99, want: 990 * time.Microsecond},
		{q: 0.999, want: 999 * time.Microsecond},
	} {
		got := h.quantile(tc.q)
		if d := float64(got-tc.want) / float64(tc.want); d < -0.04 || d > 0.04 {
			t.Errorf("quantile(%v) = %v, want %v within 4%%", tc.q, got, tc.want)
		}
	}
	for v := uint64(0); v < 1<<20; v = v*5/4 + 1 {
		if got := histValue(histIndex(v)); float64(got) < float64(v)*0.96 || float64(got) > float64(v)*1.04+1 {
			t.Errorf("histValue(histIndex(%d)) = %d", v, got)
		}
	}
	if a := testing.AllocsPerRun(100, func() { h.record(time.Millisecond) }); a != 0 {
		t.Errorf("record allocates %v", a)
	}
}

func TestParsePerfCount(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want int64
		ok   bool
	}{
		{name: "counted", in: "# started on x\n\n639,,raw_syscalls:sys_enter,27672145,100.00,,\nEvents disabled\n", want: 639, ok: true},
		{name: "not counted", in: "<not counted>,,raw_syscalls:sys_enter,0,100.00,,\n", ok: false},
		{name: "empty", in: "", ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parsePerfCount([]byte(tc.in))
			if got != tc.want || ok != tc.ok {
				t.Errorf("parsePerfCount = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  bool
	}{
		{in: "0", want: "0"},
		{in: "0-1", want: "0,1"},
		{in: "0,2-3", want: "0,2,3"},
		{in: "x", err: true},
		{in: "3-1", err: true},
		{in: "", err: true},
	} {
		got, err := parseCPUList(tc.in)
		if (err != nil) != tc.err || (err == nil && joinInts(got) != tc.want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %s, err %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestReportSelfReportedSyscalls checks that a mode's self-reported count (the
// ringwire modes' io_uring_enter) gets its own column, and that a missing perf
// count prints as n/a.
func TestReportSelfReportedSyscalls(t *testing.T) {
	mk := func(mode string, self int64, name string) cellResult {
		c := cellResult{
			Row: "1c pp 64B", Mode: mode, Msgs: 1000, Elapsed: time.Second,
			SrvCPU: 10 * time.Millisecond, SrvRSSKiB: 2048, SrvPeakKiB: 4096, SrvSyscalls: -1,
			SelfSys: self, SelfSysName: name, LoadCPU: 20 * time.Millisecond, LoadCores: 1, SrvCores: 1,
		}
		c.Hist.record(30 * time.Microsecond)
		return c
	}
	cells := []cellResult{mk("gonet", -1, ""), mk("ringwire-handler", 250, "io_uring_enter")}
	cfg := &benchConfig{
		Rounds: 1, Duration: time.Second, EchoModes: []string{"gonet", "ringwire-handler"},
		Baselines: []string{"gonet"}, PerfWhy: "test",
	}
	var b bytes.Buffer
	writeMarkdown(&b, cfg, aggregate(cells))
	rows := parseTable(t, b.String(), "## TCP echo")
	if len(rows) != 2 {
		t.Fatalf("got %d rows", len(rows))
	}
	if got := rows[1]["self-rep sys/msg"]; got != "0.250 io_uring_enter" {
		t.Errorf("self-reported = %q, want 0.250 io_uring_enter", got)
	}
	if got := rows[0]["self-rep sys/msg"]; got != "n/a" {
		t.Errorf("gonet self-reported = %q, want n/a", got)
	}
	if got := rows[0]["srv sys/msg"]; got != "n/a" {
		t.Errorf("srv sys/msg without perf = %q, want n/a", got)
	}
	if got := rows[1]["srv µs/msg"]; got != "10.0" {
		t.Errorf("srv µs/msg = %q, want 10.0", got)
	}
	if got := rows[0]["srv RSS MiB"]; got != "2.00" {
		t.Errorf("RSS = %q, want 2.00", got)
	}
}

// TestCompactTable checks the terminal summary on made-up rows: one block per
// row with its modes aligned, the ratios to the baselines, and a verdict that
// names the mode with the least server CPU per message and, when the load
// generator saturated, says so.
func TestCompactTable(t *testing.T) {
	mk := func(row, mode string, msgs int64, srv time.Duration, lgCPU time.Duration) cellResult {
		c := cellResult{
			Row: row, Mode: mode, Msgs: msgs, Elapsed: time.Second, Window: time.Second,
			SrvCPU: srv, SrvRSSKiB: 8192, SrvSyscalls: msgs * 2, SrvUring: -1, SelfSys: -1, RelayFwd: -1,
			LoadCPU: lgCPU, LoadCores: 1, SrvCores: 1,
		}
		c.Hist.record(100 * time.Microsecond)
		return c
	}
	cells := []cellResult{
		mk("1000c pp 64B", "gonet", 70_000, 700*time.Millisecond, 990*time.Millisecond),
		mk("1000c pp 64B", "gnet", 65_000, 650*time.Millisecond, 990*time.Millisecond),
		mk("1000c pp 64B", "ringwire-handler", 70_000, 350*time.Millisecond, 990*time.Millisecond),
		mk("1c pp 64B", "gonet", 10_000, 500*time.Millisecond, 300*time.Millisecond),
		mk("1c pp 64B", "gnet", 20_000, 400*time.Millisecond, 300*time.Millisecond),
		mk("1c pp 64B", "ringwire-handler", 15_000, 450*time.Millisecond, 300*time.Millisecond),
	}
	cfg := &benchConfig{
		Preset: "demo", Rounds: 1, Duration: time.Second, EchoModes: []string{"gonet", "gnet", "ringwire-handler"},
		Baselines: []string{"gonet", "gnet"}, PerfWhy: "test", ServerCPUs: []int{0}, ClientCPUs: []int{1},
	}
	rows := aggregate(cells)
	var b bytes.Buffer
	writeCompact(&b, cfg, rows, []string{"full table: /tmp/x.md"})
	got := b.String()
	lines := strings.Split(got, "\n")
	find := func(prefix string) string {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Fatalf("no line starting %q in:\n%s", prefix, got)
		return ""
	}
	if l := find("TCP echo"); !strings.Contains(l, "msgs/s ×gonet") || !strings.Contains(l, "µs/msg ×gnet") {
		t.Errorf("header %q", l)
	}
	// ringwire-handler in the first row: 5 µs/msg against gonet's 10 and gnet's 10.
	handler := strings.Fields(find("  ringwire-handler"))
	if want := []string{"ringwire-handler", "70000", fus(rows[2].P99), "5.00", "2.00", "8.00", "1.00", "1.08", "0.50", "0.50"}; strings.Join(handler, " ") != strings.Join(want, " ") {
		t.Errorf("ringwire-handler line %q, want %q", handler, want)
	}
	if v := find("  → least server CPU per msg: ringwire-handler (5.00 µs, 0.50× gonet, 0.50× gnet)"); !strings.Contains(v, "load generator saturated") {
		t.Errorf("first row's verdict does not say the load generator saturated: %q", v)
	}
	if v := find("  → least server CPU per msg: gnet (20.0 µs, 0.40× gonet)"); !strings.Contains(v, "most msgs/s: gnet") || strings.Contains(v, "load generator saturated") {
		t.Errorf("second row's verdict %q", v)
	}
	find("full table: /tmp/x.md")
	if strings.Count(got, "\n1000c pp 64B\n") != 1 || strings.Count(got, "\n1c pp 64B\n") != 1 {
		t.Errorf("want one block per row:\n%s", got)
	}
}
