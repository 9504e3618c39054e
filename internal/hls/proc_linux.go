//go:build linux

package hls

import (
	"os/exec"
	"syscall"
)

// setProcAttrs puts the child in its own process group (so the whole group
// can be killed) and asks the kernel to SIGKILL it if the thread that
// started it dies: no ffmpeg outlives a crashed daemon. Callers keep the
// starting goroutine locked to its OS thread until the child is reaped,
// since Pdeathsig follows the thread, not the process.
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
