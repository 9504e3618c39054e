//go:build unix

package engine_test

import "syscall"

// mkfifo makes a FIFO at path: opening it for reading blocks until a writer comes, so a
// test that finishes proves nothing opened it.
func mkfifo(path string) error { return syscall.Mkfifo(path, 0o600) }
