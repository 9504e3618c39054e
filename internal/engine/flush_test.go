package engine_test

import (
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// TestRecordNeedsSyncedFile: pieces are marked complete without waiting for the disk, so a
// file is trusted at the next start only if it was synced when the engine stopped. Each run
// downloads a file from a real seeder and stops cleanly; then bytes are changed on disk with
// size and mtime put back (what a system crash that lost unsynced writes can leave). When the
// sync before the record succeeded, the record is trusted (every piece complete at once).
// When it failed, the file is left out of the record, so the changed piece is verified again,
// not served, and fetched again.
func TestRecordNeedsSyncedFile(t *testing.T) {
	t.Run("synced", func(t *testing.T) {
		var mu sync.Mutex
		var synced []string
		restore := engine.SetSyncFile(func(path string) error {
			mu.Lock()
			synced = append(synced, path)
			mu.Unlock()
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			return errors.Join(f.Sync(), f.Close())
		})
		defer restore()
		opts := enginetest.Options(t)
		si, src, path := downloaded(t, opts, 2<<20+5)
		mu.Lock()
		got := append([]string(nil), synced...)
		mu.Unlock()
		if len(got) != 1 || got[0] != path {
			t.Fatalf("synced %q at the clean stop; want exactly the downloaded file %q", got, path)
		}
		restartAndCheck(t, opts, si, src, -1)
	})
	t.Run("sync fails", func(t *testing.T) {
		restore := engine.SetSyncFile(func(path string) error { return errors.New("injected: device gone") })
		defer restore()
		opts := enginetest.Options(t)
		si, src, path := downloaded(t, opts, 2<<20+5)
		restore()
		flip(t, path, 3*pieceLen, 64, true)
		restartAndCheck(t, opts, si, src, 3)
	})
}
