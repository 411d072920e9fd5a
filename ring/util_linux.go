//go:build linux

package ring

import (
	"errors"
	"syscall"
)

func isErrno(err error, e syscall.Errno) bool {
	var got syscall.Errno
	return errors.As(err, &got) && got == e
}
