package engine

import "syscall"

const quickAckSupported = true

// setQuickAck switches the TCP socket fd to quick-ack mode (see quickack.go).
func setQuickAck(fd uintptr) error {
	return syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
}
