package engine

import (
	"errors"
	"fmt"
	"os"
)

// Writing verified pieces back to disk.
//
// The torrent library (v1.59.1) flushes a piece's storage after the piece passed its hash and
// before it marks it complete, and readers wait for that mark. With the plain file I/O the
// engine uses (classicio) that flush is an fsync of the whole file the piece lies in: every
// dirty page of the file, not just the piece's, is written to the device first. Traced on the
// qbt-1m benchmark swarm (docs/benchmarks.md), the fsync took 2 ms on a quiet machine and 20–90
// ms with the background download dirtying the file and other processes using the disk, after
// a hash that took under 1 ms: the slowest step of a seek.
//
// The flush buys nothing the engine relies on. After a process crash the page cache still
// holds every write; after a crash of the system the run marker is still there, so every
// piece is distrusted and hashed again before it is served (integrity.go), whatever the piece
// database says (it is not synced either). What does need the data on the device is a file
// record, which makes the next start trust a file without hashing it: so a file is synced
// just before it is recorded, once per clean stop, and left out of the record if that fails.
// A storage without integrity records (rp.r.v nil) keeps the library's flush.

// syncFile writes the file at path back to its device (a variable for tests).
var syncFile = syncPath

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := errors.Join(f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}
