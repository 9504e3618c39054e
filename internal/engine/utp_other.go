//go:build !linux

package engine

import (
	"errors"
	"net"
)

// setUDPRecvBuffer is implemented on Linux only: elsewhere the uTP socket keeps the system's
// default receive buffer.
func setUDPRecvBuffer(addr net.Addr, want int) (int, error) {
	return 0, errors.ErrUnsupported
}
