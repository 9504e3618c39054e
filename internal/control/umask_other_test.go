//go:build !unix

package control

import "testing"

// setUmask skips the test: this system has no umask, and no Unix file modes to check.
func setUmask(t *testing.T, _ int) {
	t.Skip("no umask or Unix file modes on this system")
}
