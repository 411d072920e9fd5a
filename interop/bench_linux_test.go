//go:build linux

package interop

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sys/unix"
)

// Every benchmark here measures package net and netio in the same run:
// each b.Loop iteration is one round that runs both, the order alternating
// from round to round, and the figures are reported per implementation
// ("net_UNIT", "netio_UNIT") and as the ratio netio/net ("ratio_UNIT").
// ns/op is the time of a whole round and says little; `make bench-interop`
// prints the table.

var benchWindow = flag.Duration("interop.window", 2*time.Second, "how long each load run of the server benchmarks lasts")

// benchImpls are the two implementations every benchmark compares.
var benchImpls = [2]*stack{netStack, netioDefault}

// roundOrder returns the order in which round i runs the implementations.
func roundOrder(i int) [2]int {
	if i%2 == 0 {
		return [2]int{0, 1}
	}
	return [2]int{1, 0}
}

// reportPair reports a figure for both implementations and their ratio.
func reportPair(b *testing.B, unit string, onNet, onNetio float64) {
	b.ReportMetric(onNet, "net_"+unit)
	b.ReportMetric(onNetio, "netio_"+unit)
	if onNet > 0 {
		b.ReportMetric(onNetio/onNet, "ratio_"+unit)
	}
}

// BenchmarkUDPWriteTo sends 1280-byte datagrams (a QUIC or RTP packet)
// with WriteTo from one goroutine to a socket on 127.0.0.1, in batches of
// 64 per implementation per round: datagrams/s, and allocations per
// datagram measured apart from the timed rounds.
func BenchmarkUDPWriteTo(b *testing.B) {
	needRing(b)
	rx, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(rx)
	if err := unix.Bind(rx, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		b.Fatal(err)
	}
	sa, _ := unix.Getsockname(rx)
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*unix.SockaddrInet4).Port}
	var pcs [2]net.PacketConn
	for k, st := range benchImpls {
		pc, err := st.listenPacket(context.Background(), "udp", "127.0.0.1:0")
		if err != nil {
			b.Fatalf("%s: ListenPacket: %v", st.name, err)
		}
		defer pc.Close()
		if err := checkType(st, "ListenPacket", pc); err != nil {
			b.Fatal(err)
		}
		pcs[k] = pc
	}
	msg := make([]byte, 1280)
	const batch = 64
	var dur [2]time.Duration
	var sent [2]int
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for _, k := range roundOrder(i) {
			start := time.Now()
			for range batch {
				if _, err := pcs[k].WriteTo(msg, to); err != nil {
					b.Fatalf("%s: WriteTo: %v", benchImpls[k].name, err)
				}
			}
			dur[k] += time.Since(start)
			sent[k] += batch
		}
		i++
	}
	reportPair(b, "dgrams/s", float64(sent[0])/dur[0].Seconds(), float64(sent[1])/dur[1].Seconds())
	var allocs [2]float64
	for k := range pcs {
		allocs[k] = testing.AllocsPerRun(1000, func() { _, _ = pcs[k].WriteTo(msg, to) })
	}
	b.ReportMetric(allocs[0], "net_allocs/dgram")
	b.ReportMetric(allocs[1], "netio_allocs/dgram")
}

// BenchmarkQUICBulk sends 100 MiB on one quic-go stream from a server
// whose quic.Transport runs on each implementation's ListenPacket conn to a
// client on package net, in the same process: MiB/s.
func BenchmarkQUICBulk(b *testing.B) {
	needRing(b)
	scfg, ccfg := tlsConfigs(b, "ringwire-interop")
	var conns [2]*quic.Conn
	for k, st := range benchImpls {
		spc, err := st.listenPacket(context.Background(), "udp", "127.0.0.1:0")
		if err != nil {
			b.Fatalf("%s: ListenPacket: %v", st.name, err)
		}
		if err := checkType(st, "ListenPacket", spc); err != nil {
			b.Fatal(err)
		}
		cpc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		str, ctr := &quic.Transport{Conn: spc}, &quic.Transport{Conn: cpc}
		ln, err := str.Listen(scfg, &quic.Config{MaxIdleTimeout: time.Minute})
		if err != nil {
			b.Fatalf("%s: quic Listen: %v", st.name, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			c, err := ln.Accept(ctx)
			if err == nil {
				quicServe(ctx, c)
			}
		}()
		hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := ctr.Dial(hctx, spc.LocalAddr(), ccfg, &quic.Config{MaxIdleTimeout: time.Minute})
		hcancel()
		if err != nil {
			b.Fatalf("%s server: quic handshake: %v", st.name, err)
		}
		conns[k] = conn
		defer func() {
			_ = conn.CloseWithError(0, "")
			cancel()
			_ = ln.Close()
			_ = ctr.Close()
			_ = str.Close()
			_ = cpc.Close()
			_ = spc.Close()
		}()
	}
	const size = 100 << 20
	var dur [2]time.Duration
	var moved [2]int64
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for _, k := range roundOrder(i) {
			start := time.Now()
			n, err := quicDownload(conns[k], size, 2*time.Minute)
			dur[k] += time.Since(start)
			moved[k] += n
			if err != nil {
				b.Fatalf("%s server: %s of %s in %v: %v", benchImpls[k].name, mib(n), mib(size), time.Since(start), err)
			}
		}
		i++
	}
	reportPair(b, "MiB/s", float64(moved[0])/(1<<20)/dur[0].Seconds(), float64(moved[1])/(1<<20)/dur[1].Seconds())
}

// quicDownload asks the server for n bytes on a new stream and discards
// them.
func quicDownload(conn *quic.Conn, n int64, limit time.Duration) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return 0, err
	}
	_ = s.SetDeadline(time.Now().Add(limit))
	hdr := []byte{'d', 0, 0, 0, 0, 0, 0, 0, 0}
	for i := range 8 {
		hdr[1+i] = byte(uint64(n) >> (56 - 8*i))
	}
	if _, err := s.Write(hdr); err != nil {
		return 0, err
	}
	_ = s.Close()
	got, err := io.Copy(io.Discard, s)
	if err == nil && got != n {
		err = fmt.Errorf("stream ended after %d bytes", got)
	}
	return got, err
}

// benchCPUs returns the CPU lists for the server and the load generator:
// the first two CPUs this process may use, or none where there is only
// one.
func benchCPUs() (server, load string) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil || set.Count() < 2 {
		return "", ""
	}
	var cpus []int
	for c := 0; len(cpus) < 2; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return strconv.Itoa(cpus[0]), strconv.Itoa(cpus[1])
}

// benchServer is a server child of the benchmarks.
type benchServer struct {
	c    *child
	addr string
	pid  int
}

// startBenchServer starts a bench-server child of kind on st.
func startBenchServer(b *testing.B, kind string, st *stack, env ...string) *benchServer {
	b.Helper()
	cpus, _ := benchCPUs()
	c := startChildT(b, "bench-server", append(env, "INTEROP_KIND="+kind, "INTEROP_STACK="+st.name, "INTEROP_CPUS="+cpus)...)
	l, err := c.line(30 * time.Second)
	if err != nil {
		b.Fatalf("%s %s server: %v", st.name, kind, err)
	}
	addr, ok := strings.CutPrefix(l, "addr ")
	if !ok {
		b.Fatalf("%s %s server said %q", st.name, kind, l)
	}
	b.Cleanup(func() {
		if err := c.stop(); err != nil {
			b.Errorf("%s %s server: %v", st.name, kind, err)
		}
	})
	return &benchServer{c: c, addr: addr, pid: c.cmd.Process.Pid}
}

// cpuTime is a process's user+system CPU time from /proc/PID/stat, in
// USER_HZ ticks (10 ms) turned into a duration.
func cpuTime(pid int) (time.Duration, error) {
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(s), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	f := strings.Fields(string(s[i+1:]))
	// After the command: state(3) ... utime(14) stime(15).
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// A loader applies one load run to a server's address.
type loader interface {
	run(addr string) (loadResult, error)
	String() string
}

// childLoader is the in-repo load generator in its own pinned process.
type childLoader struct {
	c    *child
	kind string
	arg  string
}

func startChildLoader(b *testing.B, kind string, conns int, arg string) (*childLoader, string) {
	b.Helper()
	_, cpus := benchCPUs()
	c := startChildT(b, "loadgen", "INTEROP_KIND="+kind, "INTEROP_CONNS="+strconv.Itoa(conns), "INTEROP_CPUS="+cpus)
	hello, err := c.line(30 * time.Second)
	if err != nil {
		b.Fatalf("load generator: %v", err)
	}
	b.Cleanup(func() {
		if err := c.stop(); err != nil {
			b.Errorf("load generator: %v", err)
		}
	})
	return &childLoader{c: c, kind: kind, arg: arg}, hello
}

func (l *childLoader) run(addr string) (loadResult, error) {
	if _, err := fmt.Fprintf(l.c.stdin, "run %s %s\n", addr, l.arg); err != nil {
		return loadResult{}, err
	}
	line, err := l.c.line(10 * time.Minute)
	if err != nil {
		return loadResult{}, err
	}
	return parseLoadResult(line)
}

func (l *childLoader) String() string { return "the in-repo Go load generator (" + l.kind + ")" }

// wrkLoader runs Debian's wrk, pinned with taskset where it exists.
type wrkLoader struct {
	wrk, taskset, cpus string
	conns              int
	https              bool
}

var (
	wrkRequestsRE = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(us|ms|s|m)`)
	wrkErrorsRE   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)|Non-2xx or 3xx responses: (\d+)`)
)

func (w *wrkLoader) run(addr string) (loadResult, error) {
	scheme := "http"
	if w.https {
		scheme = "https"
	}
	args := []string{"-t1", "-c" + strconv.Itoa(w.conns), "-d" + strconv.Itoa(max(1, int(benchWindow.Seconds()))) + "s", scheme + "://" + addr + "/small"}
	cmd := exec.Command(w.wrk, args...)
	if w.taskset != "" && w.cpus != "" {
		cmd = exec.Command(w.taskset, append([]string{"-c", w.cpus, w.wrk}, args...)...)
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return loadResult{}, fmt.Errorf("wrk: %v: %s", err, out)
	}
	m := wrkRequestsRE.FindStringSubmatch(string(out))
	if m == nil {
		return loadResult{}, fmt.Errorf("wrk printed no request count: %s", out)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	r := loadResult{requests: n, dur: d}
	if v, err := strconv.ParseFloat(m[2], 64); err == nil {
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute}[m[3]]
		r.dur = time.Duration(v * float64(unit))
	}
	for _, e := range wrkErrorsRE.FindAllStringSubmatch(string(out), -1) {
		for _, f := range e[1:] {
			if k, _ := strconv.ParseInt(f, 10, 64); k > 0 {
				r.errors += k
				r.firstErr = strings.TrimSpace(e[0])
			}
		}
	}
	return r, nil
}

func (w *wrkLoader) String() string {
	pin := "unpinned"
	if w.taskset != "" && w.cpus != "" {
		pin = "pinned to CPU " + w.cpus
	}
	return fmt.Sprintf("wrk -t1 -c%d (%s)", w.conns, pin)
}

// newLoader picks wrk for HTTP and HTTPS where it is installed, else the
// in-repo load generator.
func newLoader(b *testing.B, kind string, conns int) loader {
	b.Helper()
	if kind == "http" || kind == "https" {
		if wrk, err := exec.LookPath("wrk"); err == nil {
			ts, _ := exec.LookPath("taskset")
			_, cpus := benchCPUs()
			return &wrkLoader{wrk: wrk, taskset: ts, cpus: cpus, conns: conns, https: kind == "https"}
		}
	}
	l, _ := startChildLoader(b, kind, conns, benchWindow.String())
	return l
}

// loadOnce runs load against srv, the server of benchImpls[k] (what names
// it in a failure), and returns the result and the CPU time srv's process
// used meanwhile.
func loadOnce(b *testing.B, what string, k int, srv *benchServer, load loader) (loadResult, time.Duration) {
	b.Helper()
	c0, err := cpuTime(srv.pid)
	if err != nil {
		b.Fatal(err)
	}
	r, err := load.run(srv.addr)
	if err != nil {
		b.Fatalf("%s %s: %v", benchImpls[k].name, what, err)
	}
	c1, err := cpuTime(srv.pid)
	if err != nil {
		b.Fatal(err)
	}
	return r, c1 - c0
}

// benchServerCPU loads a package net server and a netio server of kind,
// each in its own process pinned to one CPU (the load on the other),
// alternately, and reports requests/s and the server's CPU time per
// request read from /proc over each run.
func benchServerCPU(b *testing.B, kind string, conns int) {
	needRing(b)
	var srvs [2]*benchServer
	for k, st := range benchImpls {
		srvs[k] = startBenchServer(b, kind, st)
	}
	load := newLoader(b, kind, conns)
	b.Logf("load: %s; servers pinned to CPU %q; %v per run", load, func() string { s, _ := benchCPUs(); return s }(), *benchWindow)
	var reqs [2]int64
	var dur, cpu [2]time.Duration
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for _, k := range roundOrder(i) {
			r, used := loadOnce(b, "server", k, srvs[k], load)
			if r.errors > 0 {
				b.Errorf("%s server: %d errors under load, first: %s", benchImpls[k].name, r.errors, r.firstErr)
			}
			reqs[k] += r.requests
			dur[k] += r.dur
			cpu[k] += used
		}
		i++
	}
	rate := func(k int) float64 { return float64(reqs[k]) / dur[k].Seconds() }
	perReq := func(k int) float64 { return float64(cpu[k].Microseconds()) / float64(max(reqs[k], 1)) }
	reportPair(b, "req/s", rate(0), rate(1))
	reportPair(b, "srv-us/req", perReq(0), perReq(1))
}

// BenchmarkHTTP is net/http behind net.Listen and behind netio.Listen
// under wrk with 100 connections and with 1.
func BenchmarkHTTP(b *testing.B) {
	for _, conns := range []int{100, 1} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) { benchServerCPU(b, "http", conns) })
	}
}

// BenchmarkHTTPS is net/http over crypto/tls (HTTP/1.1) with 50
// connections.
func BenchmarkHTTPS(b *testing.B) {
	b.Run("conns=50", func(b *testing.B) { benchServerCPU(b, "https", 50) })
}

// BenchmarkGRPC is a gRPC server with 50 concurrent callers making 64-byte
// unary calls over one connection.
func BenchmarkGRPC(b *testing.B) {
	b.Run("callers=50", func(b *testing.B) { benchServerCPU(b, "grpc", 50) })
}

// BenchmarkProxyCPU runs the io.Copy proxy of TestProxy in a pinned process
// on each implementation while the load generator's process (on the other
// CPU) sends 64 MiB on each of 16 connections through it to an upstream
// that counts them: the proxy process's CPU time per GiB moved, and
// throughput.
func BenchmarkProxyCPU(b *testing.B) {
	needRing(b)
	const conns, each = 16, 64 << 20
	load, hello := startChildLoader(b, "proxy", conns, strconv.Itoa(each))
	upstream, ok := strings.CutPrefix(hello, "upstream ")
	if !ok {
		b.Fatalf("load generator said %q", hello)
	}
	var srvs [2]*benchServer
	for k, st := range benchImpls {
		srvs[k] = startBenchServer(b, "proxy", st, "INTEROP_UPSTREAM="+upstream)
	}
	var moved [2]int64
	var dur, cpu [2]time.Duration
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for _, k := range roundOrder(i) {
			r, used := loadOnce(b, "proxy", k, srvs[k], load)
			if r.errors > 0 {
				b.Fatalf("%s proxy: %d of %d connections failed, first: %s", benchImpls[k].name, r.errors, conns, r.firstErr)
			}
			moved[k] += r.bytes
			dur[k] += r.dur
			cpu[k] += used
		}
		i++
	}
	gib := func(k int) float64 { return float64(moved[k]) / (1 << 30) }
	reportPair(b, "cpu-ms/GiB", float64(cpu[0].Milliseconds())/gib(0), float64(cpu[1].Milliseconds())/gib(1))
	reportPair(b, "MiB/s", gib(0)*1024/dur[0].Seconds(), gib(1)*1024/dur[1].Seconds())
}
