//go:build !unix

package hls

import (
	"os/exec"
	"syscall"
)

func setProcAttrs(cmd *exec.Cmd) {}

// signalGroup is a no-op where process groups do not exist; the caller
// also kills the process itself.
func signalGroup(pid int, sig syscall.Signal) error { return nil }

const (
	sigKill = syscall.SIGKILL
	sigStop = syscall.Signal(-1)
	sigCont = syscall.Signal(-1)
)
