//go:build !linux

package engine

import "errors"

// Quick-ack mode (quickack.go) is Linux's; other systems keep their delayed ACKs.
const quickAckSupported = false

func setQuickAck(uintptr) error { return errors.ErrUnsupported }
