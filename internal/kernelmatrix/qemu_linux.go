//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// accel is how QEMU runs the guest.
type accel struct {
	name string
	args []string
}

var (
	accelKVM = accel{"kvm", []string{"-accel", "kvm", "-cpu", "host"}}
	accelTCG = accel{"tcg", []string{"-accel", "tcg,thread=multi", "-cpu", "max"}}
)

// chooseAccel picks KVM where /dev/kvm can create a VM, TCG otherwise.
func chooseAccel(want string) accel {
	switch want {
	case "kvm":
		return accelKVM
	case "tcg":
		return accelTCG
	}
	if kvmWorks() {
		return accelKVM
	}
	return accelTCG
}

func kvmWorks() bool {
	const (
		kvmGetAPIVersion = 0xAE00
		kvmCreateVM      = 0xAE01
	)
	fd, err := unix.Open("/dev/kvm", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	v, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvmGetAPIVersion, 0)
	if e != 0 || v != 12 {
		return false
	}
	vm, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvmCreateVM, 0)
	if e != 0 {
		return false
	}
	unix.Close(int(vm))
	return true
}

// boot runs one guest: kernel k, mode, the tests in initrd. Its first serial
// port (the console) and second (the results) go to files in work.
func boot(ctx context.Context, o *options, acc accel, k kernel, mode, initrd, work string, tests []testBinary, logf func(string, ...any)) *bootResult {
	r := &bootResult{kernel: k.label, mode: mode}
	dir := filepath.Join(work, nameRE.ReplaceAllString(k.label+"-"+mode, "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.err = err.Error()
		return r
	}
	console, results := filepath.Join(dir, "console.log"), filepath.Join(dir, "results.log")
	args := []string{
		"-n", "10", "qemu-system-x86_64",
		"-nodefaults", "-no-reboot", "-display", "none",
		"-m", fmt.Sprint(o.memMiB), "-smp", fmt.Sprint(o.cpus),
	}
	args = append(args, acc.args...)
	args = append(args,
		"-kernel", k.image, "-initrd", initrd,
		"-append", "console=ttyS0 loglevel=4 panic=-1 rdinit=/init ringwire.mode="+mode,
		"-serial", "file:"+console, "-serial", "file:"+results)
	bctx, cancel := context.WithTimeout(ctx, o.bootTimeout)
	defer cancel()
	cmd := exec.CommandContext(bctx, "nice", args...)
	var qout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &qout, &qout
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	stop := make(chan struct{})
	progress := make(chan struct{})
	go func() {
		defer close(progress)
		watchProgress(results, stop, k.label+" "+mode, logf)
	}()
	err := cmd.Run()
	close(stop)
	<-progress
	r.elapsed = time.Since(start)
	if err != nil {
		if bctx.Err() != nil && ctx.Err() == nil {
			r.err = fmt.Sprintf("guest still running after %v: killed", o.bootTimeout)
		} else {
			r.err = fmt.Sprintf("qemu: %v %s", err, strings.TrimSpace(qout.String()))
		}
	}
	raw, _ := os.ReadFile(results)
	cons, _ := os.ReadFile(console)
	r.console = tail(string(cons), 40)
	parseResults(r, raw, tests)
	return r
}

// watchProgress logs each package the guest finishes, as it finishes.
func watchProgress(results string, stop <-chan struct{}, what string, logf func(string, ...any)) {
	seen := 0
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		b, _ := os.ReadFile(results)
		lines := strings.Split(string(b), "\n")
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, markEnd) || strings.HasPrefix(l, markMode) {
				n++
				if n > seen {
					logf("  %s: %s", what, strings.TrimSpace(l))
					seen = n
				}
			}
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
