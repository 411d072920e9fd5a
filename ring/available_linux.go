//go:build linux

package ring

// unsafe here only passes &Params to io_uring_setup, which fills it before it
// returns; nothing outlives the call.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped by every error that means io_uring cannot be used on
// this system at all (as opposed to a bad argument).
var ErrUnavailable = errors.New("ring: io_uring unavailable")

// Available reports whether io_uring can be used by this process: nil, or an error
// wrapping ErrUnavailable that says why and what to do about it. It creates and
// closes a one-entry ring; it does not cache the answer.
func Available() error {
	var p Params
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return fmt.Errorf("%w: %w", availabilityError(errno), os.NewSyscallError("io_uring_setup", errno))
	}
	unix.Close(int(fd))
	return nil
}

// availabilityError explains an io_uring_setup errno that means io_uring is off.
func availabilityError(errno syscall.Errno) error {
	switch errno {
	case unix.ENOSYS:
		return fmt.Errorf("%w: the kernel has no io_uring (ENOSYS: built without CONFIG_IO_URING, or older than 5.1); ringwire needs Linux 6.1 or later", ErrUnavailable)
	case unix.EPERM:
		return fmt.Errorf("%w: %s", ErrUnavailable, epermReason())
	case unix.ENOMEM:
		var lim unix.Rlimit
		_ = unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim)
		return fmt.Errorf("%w: ENOMEM creating a ring: RLIMIT_MEMLOCK is %d bytes; raise it (ulimit -l, LimitMEMLOCK= in systemd, --ulimit memlock= in Docker)", ErrUnavailable, lim.Cur)
	}
	return fmt.Errorf("%w: io_uring_setup failed with %v", ErrUnavailable, errno)
}

// epermReason distinguishes the sysctl from a seccomp filter.
func epermReason() string {
	disabled, _ := os.ReadFile("/proc/sys/kernel/io_uring_disabled")
	group, _ := os.ReadFile("/proc/sys/kernel/io_uring_group")
	status, _ := os.ReadFile("/proc/self/status")
	return epermReasonFrom(string(disabled), string(group), status)
}

// epermReasonFrom explains EPERM from the contents of
// /proc/sys/kernel/io_uring_disabled, /proc/sys/kernel/io_uring_group and
// /proc/self/status (empty when unreadable).
func epermReasonFrom(disabled, group string, status []byte) string {
	switch strings.TrimSpace(disabled) {
	case "2":
		return "kernel.io_uring_disabled=2 turns io_uring off for every process (EPERM); set it to 0 (sysctl -w kernel.io_uring_disabled=0)"
	case "1":
		return fmt.Sprintf("kernel.io_uring_disabled=1 limits io_uring to CAP_SYS_ADMIN and group %s (EPERM); add this process to that group or set the sysctl to 0",
			strings.TrimSpace(group))
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("Seccomp:")); ok && bytes.Equal(bytes.TrimSpace(v), []byte("2")) {
			return "a seccomp filter blocks io_uring_setup (EPERM), as Docker's and containerd's default profiles do; run with a profile that allows io_uring_setup, io_uring_enter and io_uring_register"
		}
	}
	return "io_uring_setup was refused (EPERM): a seccomp filter, an LSM policy or kernel.io_uring_disabled may be the cause"
}
