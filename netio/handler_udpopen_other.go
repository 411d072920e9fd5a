//go:build !linux

package netio

import "os"

// FileUDP returns an error wrapping errors.ErrUnsupported here.
func (lc *ListenConfig) FileUDP(*os.File, PacketHandler) (*UDPConn, error) {
	return nil, errUnsupported
}
