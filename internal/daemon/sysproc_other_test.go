//go:build !unix

package daemon

import (
	"os"
	"os/exec"
)

// inOwnGroup does nothing where there are no Unix process groups.
func inOwnGroup(*exec.Cmd) {}

// killGroup kills the process cmd started (its children are the system's to end).
func killGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

// runAs is never reached here: the tests switch user only when running as root (uid 0),
// which os.Geteuid never reports on this system.
func runAs(*exec.Cmd, uint32, uint32) { panic("runAs: no Unix users on this system") }

// mkfifo stands a regular file in for a FIFO where the system has none in its file system.
func mkfifo(path string) error { return os.WriteFile(path, nil, 0o600) }
