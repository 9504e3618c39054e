//go:build unix

package control

import (
	"syscall"
	"testing"
)

// setUmask sets the process's umask to mask until the test ends.
func setUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}
