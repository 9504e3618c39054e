//go:build unix

package daemon

import (
	"os/exec"
	"syscall"
)

// inOwnGroup makes cmd the leader of a new process group, so that killGroup reaches every
// process it starts (Chromium's zygote, renderers and utility processes).
func inOwnGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// killGroup kills the process group cmd leads.
func killGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

// runAs makes cmd run as the user and group uid, gid.
func runAs(cmd *exec.Cmd, uid, gid uint32) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
}

// mkfifo makes a FIFO at path: opening it for reading blocks until a writer comes.
func mkfifo(path string) error { return syscall.Mkfifo(path, 0o600) }
