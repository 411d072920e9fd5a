package netio

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// ErrWriteQueueFull is returned by the handler API's Send when a connection's
// write queue is above its high-water mark: the peer is not reading fast
// enough. Wait for OnWritable (or a send completion) and try again.
var ErrWriteQueueFull = errors.New("netio: write queue above its high-water mark")

// opErr wraps err in the stdlib's shape: a *net.OpError whose Err is
// net.ErrClosed, os.ErrDeadlineExceeded, or an *os.SyscallError naming the call.
// io.EOF and nil pass through unwrapped.
func opErr(op, network string, src, dst net.Addr, syscallName string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		var se *os.SyscallError
		if !errors.As(err, &se) {
			err = os.NewSyscallError(syscallName, errno)
		}
	}
	return &net.OpError{Op: op, Net: network, Source: src, Addr: dst, Err: err}
}
