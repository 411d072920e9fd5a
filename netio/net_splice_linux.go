//go:build linux

package netio

import (
	"errors"
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Zero-copy moves for the net face, as package net makes them
// (internal/poll's splice_linux.go and sendfile_unix.go): splice(2) through a
// pipe between two stream sockets (or from a pipe), sendfile(2) from a
// regular file. Every call is non-blocking and waits in Go's poller, on the
// source for reading and on the destination for writing, so a slow reader
// at the far end only makes the copy wait; deadlines and Close interrupt
// it.

const (
	// maxSpliceSize is the pipe size asked for and the most one splice moves.
	maxSpliceSize = 1 << 20
	// maxSendfileSize is the most one sendfile moves.
	maxSendfileSize = 4 << 20
)

// syscallConner is what a socket or file offers for zero-copy moves.
type syscallConner interface {
	SyscallConn() (syscall.RawConn, error)
}

// readerOnly and writerOnly hide a value's ReadFrom and WriteTo from
// io.Copy, so the generic copies below do not come back here.
type (
	readerOnly struct{ io.Reader }
	writerOnly struct{ io.Writer }
)

// endpoint is one end of a zero-copy move: its raw connection, and how to
// turn its errors into net's.
type endpoint struct {
	rc  syscall.RawConn
	own *netFD // set when it is a net-face socket
}

func (e endpoint) mapErr(call string, err error) error {
	if e.own != nil {
		return e.own.mapErr(call, err)
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		var se *os.SyscallError
		if !errors.As(err, &se) {
			return os.NewSyscallError(call, errno)
		}
	}
	return err
}

// endpointOf returns v as an endpoint, and its kind: unix.S_IFSOCK for a
// stream socket, unix.S_IFIFO for a pipe, unix.S_IFREG for a regular file,
// 0 when v can only be copied.
func endpointOf(v any) (endpoint, uint32) {
	var e endpoint
	switch c := v.(type) {
	case *netTCPConn:
		e = endpoint{rc: c.fd.raw(), own: &c.fd}
	case syscallConner:
		rc, err := c.SyscallConn()
		if err != nil || rc == nil {
			return e, 0
		}
		e.rc = rc
	default:
		return e, 0
	}
	var kind uint32
	err := e.rc.Control(func(fd uintptr) {
		var st unix.Stat_t
		if unix.Fstat(int(fd), &st) != nil {
			return
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFSOCK:
			if t, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE); err == nil && t == unix.SOCK_STREAM {
				kind = unix.S_IFSOCK
			}
		case unix.S_IFIFO, unix.S_IFREG:
			kind = st.Mode & unix.S_IFMT
		}
	})
	if err != nil {
		return e, 0
	}
	return e, kind
}

// readFrom is ReadFrom's body.
func (c *netTCPConn) readFrom(r io.Reader) (int64, error) {
	remain := int64(-1)
	src := r
	lr, _ := r.(*io.LimitedReader)
	if lr != nil {
		remain, src = lr.N, lr.R
		if remain <= 0 {
			return 0, nil
		}
	}
	from, kind := endpointOf(src)
	dst := endpoint{rc: c.fd.raw(), own: &c.fd}
	var n int64
	var err error
	switch kind {
	case unix.S_IFSOCK, unix.S_IFIFO:
		n, err = spliceStream(dst, from, remain)
	case unix.S_IFREG:
		n, err = sendFile(dst, from, remain)
	default:
		return io.Copy(writerOnly{c}, r)
	}
	if lr != nil {
		lr.N -= n
	}
	c.fd.countSpliced(n)
	return n, err
}

// writeTo is WriteTo's body.
func (c *netTCPConn) writeTo(w io.Writer) (int64, error) {
	to, kind := endpointOf(w)
	if kind != unix.S_IFSOCK {
		return io.Copy(w, readerOnly{c})
	}
	n, err := spliceStream(to, endpoint{rc: c.fd.raw(), own: &c.fd}, -1)
	c.fd.countSpliced(n)
	return n, err
}

// spliceStream moves up to remain bytes (-1: until EOF) from src to the
// socket dst through a pipe, as package net's splice does.
func spliceStream(dst, src endpoint, remain int64) (int64, error) {
	p, err := getPipe()
	if err != nil {
		return 0, os.NewSyscallError("pipe2", err)
	}
	defer putPipe(p)
	var written int64
	for remain != 0 {
		max := maxSpliceSize
		if remain > 0 && remain < int64(max) {
			max = int(remain)
		}
		in, err := spliceDrain(p.wfd, src, max)
		if err != nil {
			return written, err
		}
		if in == 0 {
			break // EOF
		}
		p.data += in
		n, err := splicePump(dst, p.rfd, in)
		written += int64(n)
		p.data -= n
		if remain > 0 {
			remain -= int64(n)
		}
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// spliceDrain moves up to max bytes from src into the pipe, waiting for
// src to be readable; 0 means EOF.
func spliceDrain(pipe int, src endpoint, max int) (int, error) {
	var n int
	var serr error
	err := src.rc.Read(func(fd uintptr) bool {
		for {
			k, err := unix.Splice(int(fd), nil, pipe, nil, max, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
			switch err {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			n, serr = int(k), err
			return true
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return 0, src.mapErr("splice", err)
	}
	return n, nil
}

// splicePump moves the in bytes in the pipe to dst, waiting for dst to be
// writable as often as needed; it returns how many it moved.
func splicePump(dst endpoint, pipe, in int) (int, error) {
	written := 0
	var serr error
	err := dst.rc.Write(func(fd uintptr) bool {
		for written < in {
			k, err := unix.Splice(pipe, nil, int(fd), nil, in-written, unix.SPLICE_F_NONBLOCK|unix.SPLICE_F_MOVE)
			if k > 0 {
				written += int(k)
				continue
			}
			switch err {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			case nil:
				serr = io.ErrUnexpectedEOF // nothing moved and no error: cannot happen with data in the pipe
			default:
				serr = err
			}
			return true
		}
		return true
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return written, dst.mapErr("splice", err)
	}
	return written, nil
}

// sendFile moves up to remain bytes (-1: until EOF) of the regular file src
// from its current offset to the socket dst with sendfile(2).
func sendFile(dst, src endpoint, remain int64) (int64, error) {
	var written int64
	var werr, serr error
	cerr := src.rc.Control(func(sfd uintptr) {
		werr = dst.rc.Write(func(fd uintptr) bool {
			for remain != 0 {
				max := maxSendfileSize
				if remain > 0 && remain < int64(max) {
					max = int(remain)
				}
				k, err := unix.Sendfile(int(fd), int(sfd), nil, max)
				if k > 0 {
					written += int64(k)
					if remain > 0 {
						remain -= int64(k)
					}
					continue
				}
				switch err {
				case unix.EINTR:
					continue
				case unix.EAGAIN:
					return false
				case nil:
					return true // EOF
				}
				serr = os.NewSyscallError("sendfile", err)
				return true
			}
			return true
		})
	})
	if werr == nil {
		werr = serr
	}
	if cerr != nil {
		return written, src.mapErr("sendfile", cerr)
	}
	if werr != nil {
		return written, dst.mapErr("sendfile", werr)
	}
	return written, nil
}

// A pool of pipes for splice, as internal/poll keeps: a pipe that still
// holds data (a move cut short) is closed rather than reused.
type splicePipe struct {
	pipeFDs
	cleanup runtime.Cleanup
}

type pipeFDs struct {
	rfd, wfd int
	data     int
}

var pipePool = sync.Pool{New: func() any {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return err
	}
	_, _ = unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, maxSpliceSize)
	p := &splicePipe{pipeFDs: pipeFDs{rfd: fds[0], wfd: fds[1]}}
	p.cleanup = runtime.AddCleanup(p, func(f pipeFDs) { f.close() }, p.pipeFDs)
	return p
}}

func (f pipeFDs) close() {
	_ = unix.Close(f.rfd)
	_ = unix.Close(f.wfd)
}

func getPipe() (*splicePipe, error) {
	switch v := pipePool.Get().(type) {
	case *splicePipe:
		return v, nil
	case error:
		return nil, v
	}
	return nil, unix.EINVAL
}

func putPipe(p *splicePipe) {
	if p.data != 0 {
		p.cleanup.Stop()
		p.close()
		return
	}
	pipePool.Put(p)
}
