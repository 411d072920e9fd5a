//go:build linux

package netio

import (
	"errors"
	"net/netip"
	"syscall"
)

func isConnRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

func netipParse(s string) (netip.AddrPort, error) { return netip.ParseAddrPort(s) }
