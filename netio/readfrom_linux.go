//go:build linux

package netio

import (
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ringwire/ringwire/ring"
	"github.com/ringwire/ringwire/runtime"
)

// spliceChunk is how much one SPLICE moves into the pipe: the default pipe size.
const spliceChunk = 64 << 10

// ReadFrom implements io.ReaderFrom. From an *os.File (optionally inside an
// *io.LimitedReader) it moves the data with IORING_OP_SPLICE, file to pipe to
// socket, so no byte passes through user memory; writes made before it (a
// header) go out first, since Write returns only when sent. Other readers are
// copied through Write.
//
// io.Copy(conn, f) reaches ReadFrom too, though not with f itself: since Go
// 1.22 it goes through (*os.File).WriteTo, which hands ReadFrom f wrapped in
// a type of package os that hides WriteTo but keeps File's other methods.
// A reader with File's SyscallConn and Stat is therefore taken as a file.
func (t *tcpConn) ReadFrom(r io.Reader) (int64, error) {
	remain := int64(-1)
	src := r
	if lr, ok := r.(*io.LimitedReader); ok {
		remain, src = lr.N, lr.R
		if remain <= 0 {
			return 0, nil
		}
	}
	f, ok := src.(fileReader)
	if !ok {
		return io.Copy(writerOnly{t}, r)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return io.Copy(writerOnly{t}, r)
	}
	var n int64
	var serr error
	cerr := rc.Control(func(fd uintptr) { n, serr = t.splice(int(fd), remain) })
	if lr, ok := r.(*io.LimitedReader); ok {
		lr.N -= n
	}
	if cerr != nil {
		return n, t.opError("readfrom", cerr)
	}
	if serr != nil {
		return n, t.opError("readfrom", serr)
	}
	return n, nil
}

type writerOnly struct{ io.Writer }

// fileReader is what ReadFrom splices from: an *os.File, or package os's
// wrapper of one (see ReadFrom).
type fileReader interface {
	io.Reader
	SyscallConn() (syscall.RawConn, error)
	Stat() (os.FileInfo, error)
}

var _ fileReader = (*os.File)(nil)

// splicer moves a file into the socket through a pipe, one SPLICE at a time,
// on the connection's loop.
type splicer struct {
	t      *tcpConn
	file   int
	pr, pw int
	remain int64 // -1: to EOF
	inPipe int
	total  int64
	op     runtime.OpID
	err    error
	stop   bool
	done   chan struct{}
}

const (
	tagSpliceIn uint64 = iota + 1
	tagSpliceOut
)

func (t *tcpConn) splice(file int, remain int64) (int64, error) {
	t.writeMu.Lock()
	defer t.writeMu.Unlock()
	if t.isClosed() {
		return 0, net.ErrClosed
	}
	if t.wdl.expired() {
		return 0, os.ErrDeadlineExceeded
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return 0, os.NewSyscallError("pipe2", err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	s := &splicer{t: t, file: file, pr: p[0], pw: p[1], remain: remain, done: make(chan struct{})}
	if err := t.l.Post(runtime.TaskFunc(func(*runtime.Loop) { s.step() })); err != nil {
		return 0, net.ErrClosed
	}
	var why error
	select {
	case <-s.done:
	case <-t.wdl.wait():
		why = os.ErrDeadlineExceeded
	case <-t.closeCh:
		why = net.ErrClosed
	}
	if why != nil {
		_ = t.l.Post(runtime.TaskFunc(func(l *runtime.Loop) {
			s.stop = true
			if s.op != 0 {
				_ = l.Cancel(s.op)
			}
		}))
		<-s.done
		if s.err == nil || s.err == errCanceled {
			s.err = why
		}
	}
	return s.total, s.err
}

// step starts the next SPLICE, or finishes. Loop thread.
func (s *splicer) step() {
	c := s.t.c
	if c.state != stOpen {
		s.finish(net.ErrClosed)
		return
	}
	if s.stop {
		s.finish(errCanceled)
		return
	}
	l := c.ls.l
	if s.inPipe > 0 {
		sqe, id, err := l.NewOp(s, tagSpliceOut)
		if err != nil {
			s.finish(err)
			return
		}
		sqe.PrepSplice(s.pr, -1, c.fd, -1, uint32(s.inPipe), 0)
		s.op = id
		return
	}
	n := int64(spliceChunk)
	if s.remain >= 0 {
		n = min(n, s.remain)
	}
	if n == 0 {
		s.finish(nil)
		return
	}
	sqe, id, err := l.NewOp(s, tagSpliceIn)
	if err != nil {
		s.finish(err)
		return
	}
	sqe.PrepSplice(s.file, -1, s.pw, -1, uint32(n), 0)
	s.op = id
}

func (s *splicer) HandleCompletion(_ *runtime.Loop, tag uint64, cqe *ring.CQE) {
	s.op = 0
	if cqe.Res < 0 {
		if cqe.Errno() == syscall.ECANCELED {
			s.finish(errCanceled)
			return
		}
		name := "splice"
		s.finish(os.NewSyscallError(name, cqe.Errno()))
		return
	}
	switch tag {
	case tagSpliceIn:
		if cqe.Res == 0 {
			s.finish(nil) // end of file
			return
		}
		s.inPipe = int(cqe.Res)
		if s.remain >= 0 {
			s.remain -= int64(cqe.Res)
		}
	case tagSpliceOut:
		s.inPipe -= int(cqe.Res)
		s.total += int64(cqe.Res)
	}
	s.step()
}

func (s *splicer) finish(err error) {
	s.err = err
	close(s.done)
}
