//go:build !unix

package engine_test

import "os"

// mkfifo stands a regular file in for a FIFO where the system has none in its file system:
// the path must still be refused, though opening it would not block.
func mkfifo(path string) error { return os.WriteFile(path, nil, 0o600) }
