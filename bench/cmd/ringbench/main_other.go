//go:build !linux

package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

func main() {
	err := fmt.Errorf("ringbench: %s: %w (needs Linux: epoll, /proc, perf)", runtime.GOOS, errors.ErrUnsupported)
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}
