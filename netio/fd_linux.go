//go:build linux

package netio

import "golang.org/x/sys/unix"

func closeFD(fd int) { _ = unix.Close(fd) }
