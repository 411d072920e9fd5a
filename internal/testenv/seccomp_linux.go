//go:build linux

package testenv

// unsafe here only passes the filter program to seccomp(2), which copies it
// into the kernel before it returns.

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// BlockIOUring installs, on every thread of this process, a seccomp filter
// that fails io_uring_setup, io_uring_enter and io_uring_register with errno:
// EPERM is what Docker's and containerd's default profiles answer, ENOSYS what
// a kernel without io_uring does. A filter cannot be removed, so tests call it
// in a child process (a re-executed test binary) only. It sets NO_NEW_PRIVS,
// which lets an unprivileged process install a filter.
func BlockIOUring(errno syscall.Errno) error {
	ret := func(k uint32) unix.SockFilter { return unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k} }
	jeq := func(nr uint32, jt uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: jt, K: nr}
	}
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		jeq(unix.SYS_IO_URING_SETUP, 3),
		jeq(unix.SYS_IO_URING_ENTER, 2),
		jeq(unix.SYS_IO_URING_REGISTER, 1),
		ret(unix.SECCOMP_RET_ALLOW),
		ret(unix.SECCOMP_RET_ERRNO | uint32(errno)),
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&prog))); e != 0 {
		return e
	}
	return nil
}
