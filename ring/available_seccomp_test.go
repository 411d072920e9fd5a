//go:build linux

package ring

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/testenv"
)

// seccompChildEnv names the errno a re-executed test binary makes
// io_uring_setup fail with, through a seccomp filter, before it checks what
// Available, New and ProbeKernel say.
const seccompChildEnv = "RINGWIRE_TEST_SECCOMP_ERRNO"

// TestAvailableUnderSeccomp reproduces for real the two ways a system refuses
// io_uring that a test can stage without touching global state: a seccomp
// profile returning EPERM (Docker's default) and one returning ENOSYS (what a
// kernel without io_uring answers). Each runs in a child process, since a
// seccomp filter cannot be removed.
func TestAvailableUnderSeccomp(t *testing.T) {
	if e := os.Getenv(seccompChildEnv); e != "" {
		seccompChild(t, e)
		return
	}
	kernelProbe(t)
	for _, tt := range []struct {
		errno string
		want  []string
	}{
		{"EPERM", []string{"seccomp filter blocks io_uring_setup", "EPERM", "io_uring_enter"}},
		{"ENOSYS", []string{"ENOSYS", "CONFIG_IO_URING", "Linux 6.1"}},
	} {
		t.Run(tt.errno, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestAvailableUnderSeccomp$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), seccompChildEnv+"="+tt.errno)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			for _, w := range append(tt.want, "--- PASS: TestAvailableUnderSeccomp") {
				if !strings.Contains(string(out), w) {
					t.Errorf("child output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// seccompChild installs, on every thread of this process, a filter that fails
// the io_uring system calls with errno, then checks the errors the package
// returns.
func seccompChild(t *testing.T, name string) {
	errno := map[string]syscall.Errno{"EPERM": unix.EPERM, "ENOSYS": unix.ENOSYS}[name]
	if errno == 0 {
		t.Fatalf("unknown errno %q", name)
	}
	if err := testenv.BlockIOUring(errno); err != nil {
		testenv.NeedFeature(t, fmt.Sprintf("installing a seccomp filter (%v)", err), false)
	}
	err := Available()
	if err == nil {
		t.Fatal("Available() = nil under a filter that refuses io_uring_setup")
	}
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errno) {
		t.Fatalf("Available() = %v: want ErrUnavailable and %v", err, errno)
	}
	var se *os.SyscallError
	if !errors.As(err, &se) || se.Syscall != "io_uring_setup" {
		t.Fatalf("Available() = %v: want an *os.SyscallError for io_uring_setup", err)
	}
	t.Logf("Available: %v", err)
	if _, err := New(nil); !errors.Is(err, ErrUnavailable) || !errors.Is(err, errno) {
		t.Fatalf("New under the filter: %v, want ErrUnavailable and %v", err, errno)
	}
	if _, err := ProbeKernel(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ProbeKernel under the filter: %v, want ErrUnavailable", err)
	}
}
