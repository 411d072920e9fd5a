//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "kernelmatrix: boots Linux guests and needs a Linux host")
	os.Exit(1)
}
