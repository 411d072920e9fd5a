//go:build linux

package main

// The guest side: this same program, built static, is the initramfs's /init.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// guestConfig is what the host packs into the initramfs as guestConfigPath.
type guestConfig struct {
	// Tests are the binaries to run, in order.
	Tests []guestTest
	// Args are passed to every test binary after -test.v=test2json.
	Args []string
	// Strict sets RINGWIRE_STRICT=1 for the tests.
	Strict bool
	// Timeout kills a test binary that runs longer (its -test.timeout is
	// set a minute shorter, so that it reports which test hung).
	Timeout time.Duration
	// Rerun runs the top-level tests that failed once more (see runTest).
	Rerun bool
}

type guestTest struct {
	Name string // binary under /t, and the name in the results
	Dir  string // working directory, the package's path in the module
}

const (
	guestConfigPath = "/etc/kernelmatrix.json"
	resultsTTY      = "/dev/ttyS1"
	// Markers on the results port; test output never starts a line with "@@".
	markEnv   = "@@ENV "
	markMode  = "@@MODE "
	markBegin = "@@BEGIN "
	markEnd   = "@@END "
	markDone  = "@@DONE"
	markRerun = "rerun"
)

// guestMain runs as PID 1: it sets the machine up, runs the tests and powers
// off. It never returns: the kernel panics when init exits.
func guestMain() {
	defer func() {
		if v := recover(); v != nil {
			fmt.Fprintf(os.Stderr, "kernelmatrix init: panic: %v\n", v)
		}
		unix.Sync()
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
		select {}
	}()
	if err := guestRun(); err != nil {
		fmt.Fprintf(os.Stderr, "kernelmatrix init: %v\n", err)
	}
}

func guestRun() error {
	if err := mountAll(); err != nil {
		return err
	}
	out, err := openResults()
	if err != nil {
		return err
	}
	defer out.Close()
	raw, err := os.ReadFile(guestConfigPath)
	if err != nil {
		return err
	}
	var cfg guestConfig
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return err
	}
	w := &lineWriter{w: out, nl: true}
	if err := bringUpLoopback(); err != nil {
		fmt.Fprintf(w, "%sfailed: loopback: %v\n", markMode, err)
		fmt.Fprintln(w, markDone)
		return err
	}
	if err := tuneSocketBuffers(); err != nil {
		fmt.Fprintf(w, "%sfailed: socket buffers: %v\n", markMode, err)
		fmt.Fprintln(w, markDone)
		return err
	}
	fmt.Fprintf(w, "%s%s\n", markEnv, guestEnv())
	mode := cmdlineValue("ringwire.mode")
	ok, detail := applyMode(mode)
	fmt.Fprintf(w, "%s%s %s\n", markMode, map[bool]string{true: "ok", false: "n/a"}[ok], detail)
	if ok {
		for _, tc := range cfg.Tests {
			runTest(w, &cfg, tc)
		}
	}
	w.ensureNL()
	fmt.Fprintln(w, markDone)
	return nil
}

func mountAll() error {
	for _, m := range []struct{ src, dst, fs string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
		{"tmpfs", "/dev/shm", "tmpfs"},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	return os.Chmod("/tmp", 0o1777)
}

// openResults opens the second serial port raw, so that the bytes the tests
// write arrive as they are.
func openResults() (*os.File, error) {
	f, err := os.OpenFile(resultsTTY, os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		f.Close()
		return nil, err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CBAUD
	t.Cflag |= unix.CS8 | unix.B115200
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// lineWriter remembers whether the last byte written ended a line, so that a
// marker always starts one.
type lineWriter struct {
	w  io.Writer
	nl bool
}

func (l *lineWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		l.nl = p[len(p)-1] == '\n'
	}
	return l.w.Write(p)
}

func (l *lineWriter) ensureNL() {
	if !l.nl {
		_, _ = l.Write([]byte("\n"))
	}
}

func cmdlineValue(key string) string {
	b, _ := os.ReadFile("/proc/cmdline")
	for _, f := range strings.Fields(string(b)) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// guestEnv describes the guest in key=value pairs.
func guestEnv() string {
	var u unix.Utsname
	_ = unix.Uname(&u)
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			return "absent"
		}
		return strings.TrimSpace(string(b))
	}
	thp := read("/sys/kernel/mm/transparent_hugepage/enabled")
	if i, j := strings.IndexByte(thp, '['), strings.IndexByte(thp, ']'); i >= 0 && j > i {
		thp = thp[i+1 : j]
	}
	var si unix.Sysinfo_t
	_ = unix.Sysinfo(&si)
	return fmt.Sprintf("uname=%s cpus=%d mem=%dMiB thp=%s io_uring_disabled=%s rmem_default=%s",
		unix.ByteSliceToString(u.Release[:]), countCPUs(), uint64(si.Totalram)*uint64(si.Unit)>>20, thp,
		read("/proc/sys/kernel/io_uring_disabled"), read("/proc/sys/net/core/rmem_default"))
}

func countCPUs() int {
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) != nil {
		return 0
	}
	return set.Count()
}

// applyMode blocks io_uring as mode says, before any test starts. It reports
// false when the kernel cannot do what the mode asks.
func applyMode(mode string) (bool, string) {
	switch mode {
	case "on":
		return true, "io_uring as the kernel ships it"
	case "sysctl":
		const p = "/proc/sys/kernel/io_uring_disabled"
		if _, err := os.Stat(p); err != nil {
			return false, "the kernel has no kernel.io_uring_disabled (Linux 6.6)"
		}
		if err := os.WriteFile(p, []byte("2"), 0); err != nil {
			return false, "cannot set kernel.io_uring_disabled=2: " + err.Error()
		}
		return true, "kernel.io_uring_disabled=2"
	case "seccomp":
		if err := installSeccomp(); err != nil {
			return false, "cannot install the seccomp filter: " + err.Error()
		}
		return true, "seccomp filter: io_uring_setup/enter/register fail with EPERM"
	}
	return false, fmt.Sprintf("unknown mode %q", mode)
}

// installSeccomp installs on this process, and so on every test binary it
// starts, a filter that fails the three io_uring system calls with EPERM, as
// Docker's default profile does (it does not list them, and its default
// action is SCMP_ACT_ERRNO). The guest is x86_64: other architectures' calls
// are let through.
func installSeccomp() error {
	const auditArchX86_64 = 0xc000003e
	ret := func(k uint32) unix.SockFilter { return unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k} }
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4}, // seccomp_data.arch
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, Jf: 0, K: auditArchX86_64},
		ret(unix.SECCOMP_RET_ALLOW),
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0},                  // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 3, Jf: 0, K: 425}, // io_uring_setup
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 2, Jf: 0, K: 426}, // io_uring_enter
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 1, Jf: 0, K: 427}, // io_uring_register
		ret(unix.SECCOMP_RET_ALLOW),
		ret(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)),
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	_, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&prog)))
	if e != 0 {
		return e
	}
	return nil
}

// socketSysctls size the socket buffers for an emulated machine: under TCG
// a process runs tens of times slower than natively, and datagrams that a
// test sends at its usual pace overflow the default 208 KiB receive buffers
// of a relay or a receiver that is behind. The matrix checks behaviour on
// each kernel, not speed; the relays ask for 1 MiB (SO_RCVBUF), which
// net.core.rmem_max would otherwise cap.
var socketSysctls = map[string]string{
	"net/core/rmem_max":     "4194304",
	"net/core/wmem_max":     "4194304",
	"net/core/rmem_default": "1048576",
	"net/core/wmem_default": "1048576",
}

func tuneSocketBuffers() error {
	for k, v := range socketSysctls {
		if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0); err != nil {
			return err
		}
	}
	return nil
}

// bringUpLoopback sets lo up (the kernel then gives it 127.0.0.1/8 and ::1)
// and adds a unique local IPv6 address, which nettest needs to count IPv6 as
// supported.
func bringUpLoopback() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return err
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return err
	}
	return addIPv6(lo.Index, net.ParseIP("fd00:5267:7769::1"), 64)
}

// addIPv6 adds addr/prefix to interface index with RTM_NEWADDR.
func addIPv6(index int, addr net.IP, prefix uint8) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	attr := func(typ uint16, data []byte) []byte {
		b := make([]byte, unix.SizeofRtAttr, unix.SizeofRtAttr+len(data)+3)
		binary.NativeEndian.PutUint16(b[0:], uint16(unix.SizeofRtAttr+len(data)))
		binary.NativeEndian.PutUint16(b[2:], typ)
		b = append(b, data...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	body := make([]byte, unix.SizeofIfAddrmsg)
	body[0] = unix.AF_INET6
	body[1] = prefix
	body[2] = unix.IFA_F_NODAD
	body[3] = unix.RT_SCOPE_UNIVERSE
	binary.NativeEndian.PutUint32(body[4:], uint32(index))
	body = append(body, attr(unix.IFA_LOCAL, addr.To16())...)
	body = append(body, attr(unix.IFA_ADDRESS, addr.To16())...)
	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(unix.SizeofNlMsghdr+len(body)))
	binary.NativeEndian.PutUint16(msg[4:], unix.RTM_NEWADDR)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	binary.NativeEndian.PutUint32(msg[8:], 1)
	msg = append(msg, body...)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return err
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR && len(m.Data) >= 4 {
			if e := int32(binary.NativeEndian.Uint32(m.Data)); e != 0 {
				return fmt.Errorf("RTM_NEWADDR: %w", unix.Errno(-e))
			}
			return nil
		}
	}
	return fmt.Errorf("RTM_NEWADDR: no acknowledgement")
}

// runTest runs one test binary with its output going to w between markers,
// then, with cfg.Rerun, the top-level tests that failed once more, between
// markers of their own: under an emulator a test bound to wall-clock time can
// fail once, and the host reports a test that passes the second time as
// flaky rather than failed.
func runTest(w *lineWriter, cfg *guestConfig, tc guestTest) {
	var out bytes.Buffer
	rc := runBinary(w, &out, cfg, tc, "", cfg.Args)
	if rc == 0 || rc == -2 || !cfg.Rerun {
		return
	}
	failed := failedTests(out.Bytes())
	if len(failed) == 0 || len(failed) > maxRerun {
		return
	}
	args := append(append([]string(nil), cfg.Args...), "-test.run=^("+strings.Join(failed, "|")+")$")
	runBinary(w, io.Discard, cfg, tc, " "+markRerun, args)
}

// maxRerun: more failed tests than this are not a flake.
const maxRerun = 5

// failedTests names the top-level tests a -test.v run reported failed.
func failedTests(out []byte) []string {
	var names []string
	for _, line := range bytes.Split(out, []byte("\n")) {
		line = bytes.TrimPrefix(line, []byte{0x16}) // -test.v=test2json's framing mark
		if rest, ok := bytes.CutPrefix(line, []byte("--- FAIL: ")); ok {
			name, _, _ := bytes.Cut(rest, []byte(" "))
			if !bytes.Contains(name, []byte("/")) {
				names = append(names, regexp.QuoteMeta(string(name)))
			}
		}
	}
	return names
}

// runBinary runs tc's binary with args, its output going to w between
// @@BEGIN and @@END (suffix marks a rerun) and to tee, and returns its exit
// status: -1 when it could not run, -2 when it was killed after cfg.Timeout.
func runBinary(w *lineWriter, tee io.Writer, cfg *guestConfig, tc guestTest, suffix string, extra []string) int {
	dir := filepath.Join("/src", tc.Dir)
	_ = os.MkdirAll(dir, 0o755)
	args := append([]string{
		"-test.v=test2json", "-test.count=1",
		"-test.timeout=" + (cfg.Timeout - time.Minute).String(),
	}, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join("/t", tc.Name), args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/bin:/usr/bin", "HOME=/root", "TMPDIR=/tmp", "USER=root", "GOTRACEBACK=all"}
	if cfg.Strict {
		cmd.Env = append(cmd.Env, "RINGWIRE_STRICT=1")
	}
	cmd.WaitDelay = 10 * time.Second
	both := io.MultiWriter(w, tee)
	cmd.Stdout = both // one pipe for both, copied in order
	cmd.Stderr = both
	fmt.Fprintf(os.Stdout, "kernelmatrix: %s%s ...\n", tc.Name, suffix)
	fmt.Fprintf(w, "%s%s%s\n", markBegin, tc.Name, suffix)
	start := time.Now()
	err := cmd.Run()
	rc := 0
	if err != nil {
		rc = -1
		if ee, ok := err.(*exec.ExitError); ok {
			rc = ee.ExitCode()
		}
		if ctx.Err() != nil {
			rc = -2
		}
	}
	secs := time.Since(start).Seconds()
	w.ensureNL()
	fmt.Fprintf(w, "%s%s%s rc=%d secs=%.1f\n", markEnd, tc.Name, suffix, rc, secs)
	fmt.Fprintf(os.Stdout, "kernelmatrix: %s%s rc=%d %.0fs\n", tc.Name, suffix, rc, secs)
	return rc
}
