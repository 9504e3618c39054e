//go:build !linux

package engine

import (
	"errors"
	"fmt"
)

// allocate is not implemented here: storage writes go to sparse files as the library does
// them.
func allocate(path string, off, n int64) error {
	return fmt.Errorf("allocate %s: %w", path, errors.ErrUnsupported)
}

// freeBytes is not implemented here: a full disk is retried on the backoff alone.
func freeBytes(string) (int64, error) { return 0, errors.ErrUnsupported }
