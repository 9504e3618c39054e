//go:build unix && !linux

package hls

import (
	"os/exec"
	"syscall"
)

// setProcAttrs puts the child in its own process group so the whole group
// can be killed. There is no parent-death signal outside Linux.
func setProcAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
