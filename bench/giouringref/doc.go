// Package giouringref holds the tests and benchmarks that compare package ring
// with github.com/pawelgaczynski/giouring, a Go port of liburing: the encoding
// of every SQE both prepare, and a NOP round trip. They are built only with
// `-tags giouring -ldflags=-checklinkname=0` (giouring linknames
// syscall.munmap), which make test-giouring and make bench-giouring pass; the
// package itself is empty.
package giouringref
