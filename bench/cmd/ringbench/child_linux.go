//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// childEnv marks a process started by ringbench as one of its servers; the
// test binary uses it to act as `ringbench serve`.
const childEnv = "RINGBENCH_CHILD"

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat
// (100 on every Linux architecture Go supports).
const clockTicks = 100

// serverProc is a running `ringbench serve` subprocess, optionally wrapped in
// `perf stat`, as the parent sees it.
type serverProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte
	stderr *capBuffer
	Addr   string
	Addrs  []string // per-stream ingress addresses, if the relay has them
	PID    int      // the server's own pid (not perf's)

	perfCtl *os.File // parent's end of perf's --control ctl pipe
	perfAck *os.File // parent's end of perf's ack pipe
	perfOut string   // perf's -o file
	tmpDir  string

	stopOnce   sync.Once
	final      ServerStats
	stopErr    error
	sysCount   int64
	sysOK      bool
	uringCount int64
	uringOK    bool
}

type serverSpec struct {
	Args []string // arguments after "serve"
	CPUs []int    // affinity of the subprocess (and of perf around it); nil: none
	Perf bool     // wrap in perf stat
}

// startServer starts the subprocess and waits for its hello line.
func startServer(spec serverSpec) (*serverProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p := &serverProc{lines: make(chan []byte, 16), stderr: &capBuffer{max: 16 << 10}}
	args := append([]string{"serve"}, spec.Args...)
	if len(spec.CPUs) > 0 {
		args = append(args, "-cpus", joinInts(spec.CPUs))
	}
	var cmd *exec.Cmd
	var extra []*os.File
	if spec.Perf {
		p.tmpDir, err = os.MkdirTemp("", "ringbench-perf-")
		if err != nil {
			return nil, err
		}
		p.perfOut = filepath.Join(p.tmpDir, "perf.csv")
		ctlR, ctlW, err := os.Pipe()
		if err != nil {
			p.cleanup()
			return nil, err
		}
		ackR, ackW, err := os.Pipe()
		if err != nil {
			ctlR.Close()
			ctlW.Close()
			p.cleanup()
			return nil, err
		}
		p.perfCtl, p.perfAck = ctlW, ackR
		extra = []*os.File{ctlR, ackW} // fds 3 and 4 in perf
		events := perfSyscallEvent
		if ok, _, uring := perfAvailable(); ok && uring {
			events += "," + perfUringEvent
		}
		perfArgs := []string{
			"stat", "-e", events, "-x,", "-D", "-1",
			"--control", "fd:3,4", "-o", p.perfOut, "--", exe,
		}
		cmd = exec.Command("perf", append(perfArgs, args...)...)
	} else {
		cmd = exec.Command(exe, args...)
	}
	cmd.ExtraFiles = extra
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err == nil {
		p.stdin, err = cmd.StdinPipe()
	}
	if err != nil {
		for _, f := range extra {
			f.Close()
		}
		p.cleanup()
		return nil, err
	}
	p.cmd = cmd
	affinity := spec.CPUs
	if len(affinity) == 0 && allowedCPUs() < onlineCPUs() {
		// this process is pinned (-client-cpus); an unpinned server must not
		// inherit that mask through fork
		affinity = onlineCPUList()
	}
	err = startPinned(cmd, affinity)
	for _, f := range extra {
		f.Close()
	}
	if err != nil {
		p.cleanup()
		return nil, err
	}
	go func() { // ends when the subprocess's stdout closes (at its exit)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- append([]byte(nil), sc.Bytes()...)
		}
		close(p.lines)
	}()
	var hello helloMsg
	if err := p.readJSON(&hello, 15*time.Second); err != nil {
		p.kill()
		_, _ = p.Stop()
		return nil, fmt.Errorf("ringbench: server %v did not start: %w; stderr: %s", spec.Args, err, p.stderr.String())
	}
	p.Addr, p.Addrs, p.PID = hello.Addr, hello.Addrs, hello.PID
	return p, nil
}

// startPinned starts cmd from an OS thread whose affinity is cpus, so the
// subprocess (and every thread it makes) inherits that mask from fork. The
// thread is never unlocked, so the runtime discards it with its mask.
func startPinned(cmd *exec.Cmd, cpus []int) error {
	if len(cpus) == 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.SchedSetaffinity(0, cpuSet(cpus)); err != nil {
			errc <- os.NewSyscallError("sched_setaffinity", err)
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

func (p *serverProc) readJSON(v any, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				return io.ErrUnexpectedEOF
			}
			if len(line) == 0 || line[0] != '{' {
				continue // a mode's stray output
			}
			return json.Unmarshal(line, v)
		case <-t.C:
			return errors.New("timed out")
		}
	}
}

// Stats asks the server for its self-reported counters.
func (p *serverProc) Stats() (ServerStats, error) {
	if _, err := io.WriteString(p.stdin, "stats\n"); err != nil {
		return ServerStats{}, err
	}
	var m statsMsg
	err := p.readJSON(&m, 5*time.Second)
	return m.Stats, err
}

// perfControl sends "enable" or "disable" to perf and waits for its ack.
func (p *serverProc) perfControl(cmd string) error {
	if p.perfCtl == nil {
		return nil
	}
	if _, err := io.WriteString(p.perfCtl, cmd+"\n"); err != nil {
		return err
	}
	_ = p.perfAck.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 16)
	n, err := p.perfAck.Read(buf)
	if err != nil {
		return fmt.Errorf("perf %s: %w", cmd, err)
	}
	if !strings.HasPrefix(string(buf[:n]), "ack") {
		return fmt.Errorf("perf %s: got %q", cmd, buf[:n])
	}
	return nil
}

// Stop closes the server's stdin, reads its final stats and waits for it (and
// perf) to exit; a subprocess still running after 10 s is killed by pid.
func (p *serverProc) Stop() (ServerStats, error) {
	p.stopOnce.Do(func() {
		_ = p.stdin.Close()
		var m statsMsg
		for {
			if err := p.readJSON(&m, 10*time.Second); err != nil {
				p.stopErr = err
				break
			}
			if m.Final {
				p.final = m.Stats
				break
			}
		}
		drained := make(chan struct{})
		go func() { // stdout closes when the server (and perf) have exited
			for range p.lines {
			}
			close(drained)
		}()
		select {
		case <-drained:
		case <-time.After(10 * time.Second):
			p.kill()
			<-drained
			if p.stopErr == nil {
				p.stopErr = errors.New("server did not exit; killed")
			}
		}
		if err := p.cmd.Wait(); err != nil && p.stopErr == nil {
			p.stopErr = fmt.Errorf("%w; stderr: %s", err, p.stderr.String())
		}
		if p.perfOut != "" {
			if b, err := os.ReadFile(p.perfOut); err == nil {
				c := parsePerfCounts(b)
				p.sysCount, p.sysOK = c[perfSyscallEvent]
				p.uringCount, p.uringOK = c[perfUringEvent]
			}
		}
		p.cleanup()
	})
	return p.final, p.stopErr
}

// SyscallCount returns perf's raw_syscalls:sys_enter count for the enabled
// windows, after Stop. ok is false when perf was not used or printed no count.
func (p *serverProc) SyscallCount() (n int64, ok bool) { return p.sysCount, p.sysOK }

// UringEnterCount is like SyscallCount for io_uring_enter alone.
func (p *serverProc) UringEnterCount() (n int64, ok bool) { return p.uringCount, p.uringOK }

// The perf events counted around a server.
const (
	perfSyscallEvent = "raw_syscalls:sys_enter"
	perfUringEvent   = "syscalls:sys_enter_io_uring_enter"
)

// parsePerfCounts reads `perf stat -x,` output: event name to count, for the
// events that were counted.
func parsePerfCounts(b []byte) map[string]int64 {
	m := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			m[f[2]] = n
		}
	}
	return m
}

func parsePerfCount(b []byte) (int64, bool) {
	n, ok := parsePerfCounts(b)[perfSyscallEvent]
	return n, ok
}

func (p *serverProc) kill() {
	if p.PID > 0 {
		_ = unix.Kill(p.PID, unix.SIGKILL)
	}
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
}

// cleanup removes perf's files and closes the control pipes.
func (p *serverProc) cleanup() {
	if p.perfCtl != nil {
		p.perfCtl.Close()
		p.perfAck.Close()
	}
	if p.tmpDir != "" {
		os.RemoveAll(p.tmpDir)
	}
}

// procSample is one reading of /proc/PID/{stat,status}.
type procSample struct {
	CPU    time.Duration // utime+stime, all threads
	RSSKiB int64         // VmRSS
	HWMKiB int64         // VmHWM, the peak RSS so far
}

func readProc(pid int) (procSample, error) {
	var s procSample
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return s, err
	}
	// comm may contain spaces; fields after the last ')' start at field 3.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return s, errors.New("ringbench: malformed /proc/PID/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return s, errors.New("ringbench: short /proc/PID/stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	s.CPU = time.Duration(ut+st) * time.Second / clockTicks
	b, err = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS", "VmHWM":
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if k == "VmRSS" {
				s.RSSKiB = n
			} else {
				s.HWMKiB = n
			}
		}
	}
	return s, nil
}

// rssSampler polls VmRSS every interval until stopped and keeps the peak.
type rssSampler struct {
	stop chan struct{}
	done chan struct{}
	peak int64
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	r := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if s, err := readProc(pid); err == nil && s.RSSKiB > r.peak {
				r.peak = s.RSSKiB
			}
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
		}
	}()
	return r
}

// Stop joins the sampler and returns the peak VmRSS it saw.
func (r *rssSampler) Stop() int64 {
	close(r.stop)
	<-r.done
	return r.peak
}

// rusageSelf is this process's CPU time (user+system, all threads).
func rusageSelf() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var perfProbe struct {
	once  sync.Once
	ok    bool
	uring bool
	why   string
}

// perfAvailable reports whether `perf stat -e raw_syscalls:sys_enter` counts
// here, and whether the io_uring_enter tracepoint does too.
func perfAvailable() (ok bool, why string, uring bool) {
	perfProbe.once.Do(func() {
		path, err := exec.LookPath("perf")
		if err != nil {
			perfProbe.why = "perf not in PATH"
			return
		}
		out, err := exec.Command(path, "stat", "-e", perfSyscallEvent, "-x,", "--", "true").CombinedOutput()
		if n, ok := parsePerfCount(out); err != nil || !ok || n <= 0 {
			perfProbe.why = "perf cannot count " + perfSyscallEvent + ": " + strings.TrimSpace(lastLine(string(out)))
			return
		}
		perfProbe.ok = true
		out, err = exec.Command(path, "stat", "-e", perfUringEvent, "-x,", "--", "true").CombinedOutput()
		_, perfProbe.uring = parsePerfCounts(out)[perfUringEvent]
		perfProbe.uring = perfProbe.uring && err == nil
	})
	return perfProbe.ok, perfProbe.why, perfProbe.uring
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// capBuffer keeps the first max bytes written to it.
type capBuffer struct {
	mu  sync.Mutex
	b   bytes.Buffer
	max int
}

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capBuffer) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// sortedModes lists a registry map's names: known ones in order, then the rest sorted.
func sortedModes[V any](m map[string]V, order []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range order {
		if _, ok := m[k]; ok {
			out = append(out, k)
			seen[k] = true
		}
	}
	var rest []string
	for k := range m {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

// cpuTimes is one reading of /proc/stat: busy and total jiffies per line
// ("cpu" for the machine, "cpu0", "cpu1", ...).
type cpuTimes map[string][2]uint64

func readCPUTimes() cpuTimes {
	t := cpuTimes{}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return t
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		var total, idle uint64
		for i, s := range f[1:] {
			if i >= 8 { // guest and guest_nice are already in user and nice
				break
			}
			v, _ := strconv.ParseUint(s, 10, 64)
			total += v
			if i == 3 || i == 4 { // idle, iowait
				idle += v
			}
		}
		t[f[0]] = [2]uint64{total - idle, total}
	}
	return t
}

// busyFraction is how busy cpus were (by anyone) between a and b; nil cpus
// means the whole machine.
func busyFraction(a, b cpuTimes, cpus []int) float64 {
	keys := []string{"cpu"}
	if len(cpus) > 0 {
		keys = keys[:0]
		for _, c := range cpus {
			keys = append(keys, "cpu"+strconv.Itoa(c))
		}
	}
	var busy, total uint64
	for _, k := range keys {
		x, y := a[k], b[k]
		busy += y[0] - x[0]
		total += y[1] - x[1]
	}
	if total == 0 {
		return 0
	}
	return float64(busy) / float64(total)
}

// onlineCPUList lists the online CPUs.
func onlineCPUList() []int {
	if b, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		if c, err := parseCPUList(strings.TrimSpace(string(b))); err == nil {
			return c
		}
	}
	c := make([]int, runtime.NumCPU())
	for i := range c {
		c[i] = i
	}
	return c
}
