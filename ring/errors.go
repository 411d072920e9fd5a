package ring

import (
	"errors"
	"os"
	"syscall"
)

// ErrSQFull is returned by helpers that need an SQE when the submission queue is full.
var ErrSQFull = errors.New("ring: submission queue full")

// ErrClosed is returned when a closed ring is used.
var ErrClosed = errors.New("ring: closed")

// Boxed errnos: converting a syscall.Errno to error allocates for values outside
// the syscall package's small table, so the errnos a hot path sees are boxed once.
var (
	errEAGAIN       error = syscall.EAGAIN
	errEINTR        error = syscall.EINTR
	errETIME        error = syscall.ETIME
	errENOBUFS      error = syscall.ENOBUFS
	errECANCELED    error = syscall.ECANCELED
	errEBUSY        error = syscall.EBUSY
	errENOENT       error = syscall.ENOENT
	errEALREADY     error = syscall.EALREADY
	errECONNRESET   error = syscall.ECONNRESET
	errEPIPE        error = syscall.EPIPE
	errEINVAL       error = syscall.EINVAL
	errEBADF        error = syscall.EBADF
	errEOPNOTSUPP   error = syscall.EOPNOTSUPP
	errENOTCONN     error = syscall.ENOTCONN
	errECONNREFUSED error = syscall.ECONNREFUSED
	errEMSGSIZE     error = syscall.EMSGSIZE
	errEMFILE       error = syscall.EMFILE
)

// Errno returns errno as an error without allocating for the errnos networking
// completions commonly carry.
func Errno(e syscall.Errno) error {
	switch e {
	case 0:
		return nil
	case syscall.EAGAIN:
		return errEAGAIN
	case syscall.EINTR:
		return errEINTR
	case syscall.ETIME:
		return errETIME
	case syscall.ENOBUFS:
		return errENOBUFS
	case syscall.ECANCELED:
		return errECANCELED
	case syscall.EBUSY:
		return errEBUSY
	case syscall.ENOENT:
		return errENOENT
	case syscall.EALREADY:
		return errEALREADY
	case syscall.ECONNRESET:
		return errECONNRESET
	case syscall.EPIPE:
		return errEPIPE
	case syscall.EINVAL:
		return errEINVAL
	case syscall.EBADF:
		return errEBADF
	case syscall.EOPNOTSUPP:
		return errEOPNOTSUPP
	case syscall.ENOTCONN:
		return errENOTCONN
	case syscall.ECONNREFUSED:
		return errECONNREFUSED
	case syscall.EMSGSIZE:
		return errEMSGSIZE
	case syscall.EMFILE:
		return errEMFILE
	}
	return e
}

// errnoErr wraps a failed syscall as *os.SyscallError. Not for hot paths that
// expect the error (EAGAIN, ETIME, EINTR): those return the boxed errno so the
// common cases do not allocate.
func errnoErr(call string, e syscall.Errno) error {
	switch e {
	case syscall.ETIME, syscall.EAGAIN, syscall.EINTR, syscall.EBUSY:
		return Errno(e)
	}
	return os.NewSyscallError(call, e)
}
