package engine_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// TestRemoveWhileUploading removes a task, deleting its files, while another engine is
// downloading from it. The torrent library serves a peer's request from a goroutine that
// reads the files without its lock; a read that failed after the torrent was closed used to
// trip the library's own consistency check and panic the whole process (see
// reservedPiece.ReadAt). The test holds such reads until the files are gone, which made it
// panic every time before the fix; the engine must survive and keep working.
func TestRemoveWhileUploading(t *testing.T) {
	src := filepath.Join(t.TempDir(), "Film")
	enginetest.WriteRandomFile(t, src, "film.mkv", 8<<20, 41)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: pieceLen})
	si := seeder.Add(t, src)
	// A seeding engine: an engine that does not seed stops uploading a task once it is
	// complete, and whether the downloader connected before that was a race.
	up := enginetest.NewEngine(t, func(o *engine.Options) { o.Seed = true })
	dumpOnFailure(t, up, seeder.Engine())
	for round := range 2 {
		task, err := up.Add(t.Context(), engine.AddSpec{Source: si.Magnet, FileIndex: -1})
		if err != nil {
			t.Fatal(err)
		}
		enginetest.WaitStatus(t, task, 2*time.Minute, func(s engine.Status) bool { return s.State == engine.StateSeeding })

		// From now on every piece read waits until the files are deleted.
		var held atomic.Int32
		arrived := make(chan struct{}, 1)
		release := make(chan struct{})
		var releaseOnce sync.Once
		restore := engine.SetReadGate(func() {
			held.Add(1)
			select {
			case arrived <- struct{}{}:
			default:
			}
			<-release
		})
		unblock := func() { releaseOnce.Do(func() { close(release) }); restore() }
		t.Cleanup(unblock)

		down := enginetest.NewEngine(t)
		magnet := fmt.Sprintf("magnet:?xt=urn:btih:%s&x.pe=%s", si.InfoHash, up.ListenAddr())
		if _, err := down.Add(t.Context(), engine.AddSpec{Source: magnet, FileIndex: -1}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-arrived: // a peer's request is being served from the files
		case <-time.After(2 * time.Minute): // generous: a busy machine connects slowly
			t.Fatalf("round %d: no piece read reached the storage", round)
		}
		if err := up.Remove(task.ID(), true); err != nil {
			t.Fatalf("round %d: Remove: %v", round, err)
		}
		if !engine.StorageDropped(task) {
			t.Fatalf("round %d: the library did not close the removed task's storage", round)
		}
		unblock() // the held reads now find the files gone
		if err := down.Close(); err != nil {
			t.Logf("round %d: close the downloader: %v", round, err)
		}
		t.Logf("round %d: %d reads held across the removal", round, held.Load())
	}
}
