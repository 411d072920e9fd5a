//go:build linux

package ring

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/internal/testenv"
)

func TestAvailable(t *testing.T) {
	testenv.NeedIOUring(t, Available())
}

func TestAvailabilityError(t *testing.T) {
	tests := []struct {
		name  string
		errno unix.Errno
		want  []string // each must appear in the message
	}{
		{"kernel without io_uring", unix.ENOSYS, []string{"ENOSYS", "CONFIG_IO_URING", "6.1"}},
		{"refused", unix.EPERM, []string{"EPERM"}},
		{"memlock", unix.ENOMEM, []string{"RLIMIT_MEMLOCK"}},
		{"other", unix.EFAULT, []string{"io_uring_setup failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := availabilityError(tt.errno)
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("%v does not wrap ErrUnavailable", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "ring: io_uring unavailable: ") {
				t.Errorf("message %q lacks the package prefix", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
		})
	}
	// EPERM names its cause: the sysctl when it is set, else seccomp or a policy.
	msg := availabilityError(unix.EPERM).Error()
	if !strings.Contains(msg, "io_uring_disabled") && !strings.Contains(msg, "seccomp") {
		t.Errorf("EPERM message %q names neither kernel.io_uring_disabled nor seccomp", msg)
	}
	reasons := []struct {
		name, disabled, group, status, want string
	}{
		{"sysctl 2", "2\n", "", "", "kernel.io_uring_disabled=2"},
		{"sysctl 1 with group", "1\n", "1234\n", "", "group 1234"},
		{"seccomp filter", "0\n", "-1\n", "Name:\tx\nSeccomp:\t2\nSeccomp_filters:\t1\n", "seccomp filter blocks"},
		{"strict seccomp is not a filter", "0\n", "", "Seccomp:\t1\n", "may be the cause"},
		{"nothing readable", "", "", "", "may be the cause"},
	}
	for _, tt := range reasons {
		if got := epermReasonFrom(tt.disabled, tt.group, []byte(tt.status)); !strings.Contains(got, tt.want) || !strings.Contains(got, "EPERM") {
			t.Errorf("%s: %q lacks %q or EPERM", tt.name, got, tt.want)
		}
	}
	// setupError keeps the syscall error reachable.
	err := setupError(unix.ENOSYS, 0)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, unix.ENOSYS) {
		t.Errorf("setupError(ENOSYS) = %v: want ErrUnavailable and ENOSYS", err)
	}
	if err := setupError(unix.EINVAL, SetupDeferTaskrun); !strings.Contains(err.Error(), "DEFER_TASKRUN") {
		t.Errorf("setupError(EINVAL) = %v: should name the flags", err)
	}
}
