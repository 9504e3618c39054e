package engine

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
)

// TestClosedStorageReadNeverFails: once the library closed a torrent, a read of a file that
// is gone returns zeros and no error (the library's peer-request server panics on an error
// there, see reservedPiece.ReadAt); before that the error comes through as it is.
func TestClosedStorageReadNeverFails(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("torrentclaw "), 40000)
	path := filepath.Join(dir, "movie.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	info := metainfo.Info{PieceLength: 64 << 10}
	if err := info.BuildFromFilePath(path); err != nil {
		t.Fatal(err)
	}
	client := storage.NewFileOpts(storage.NewFileClientOpts{
		ClientBaseDir:   dir,
		PieceCompletion: storage.NewMapPieceCompletion(),
	})
	defer client.Close()
	impl, err := client.OpenTorrent(t.Context(), &info, metainfo.Hash{1})
	if err != nil {
		t.Fatal(err)
	}
	r := &reserver{}
	rp := reservedPiece{PieceImpl: impl.Piece(info.Piece(1)), r: r, p: info.Piece(1)}
	b := make([]byte, 16<<10)
	if _, err := rp.ReadAt(b, 0); err != nil {
		t.Fatalf("read of a present file: %v", err)
	}
	if !bytes.Equal(b, data[64<<10:80<<10]) {
		t.Fatal("read of a present file: wrong bytes")
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if n, err := rp.ReadAt(b, 0); err == nil {
		t.Fatalf("read of a deleted file of an open torrent: %d bytes, no error", n)
	}
	r.dropped.Store(true) // what the storage's Close does
	for i := range b {
		b[i] = 0xff
	}
	n, err := rp.ReadAt(b, 0)
	if err != nil || n != len(b) {
		t.Fatalf("read of a deleted file of a closed torrent = %d, %v; want %d, nil", n, err, len(b))
	}
	if !bytes.Equal(b, make([]byte, len(b))) {
		t.Fatal("read of a deleted file of a closed torrent: not zeros")
	}
}

// gatedPiece holds every write until release is closed, after signalling entered.
type gatedPiece struct {
	storage.PieceImpl
	entered chan struct{}
	release chan struct{}
}

func (g gatedPiece) WriteAt(b []byte, off int64) (int, error) {
	close(g.entered)
	<-g.release
	return g.PieceImpl.WriteAt(b, off)
}

// TestClosedStorageWritesNothing: the library writes received blocks without its lock, so a
// write may be under way while a torrent is dropped. Closing the storage must wait for it,
// and a write after the close must fail without creating or changing any file (a removed
// task's deleted file must not come back).
func TestClosedStorageWritesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "movie.bin")
	if err := os.WriteFile(path, make([]byte, 256<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	info := metainfo.Info{PieceLength: 64 << 10}
	if err := info.BuildFromFilePath(path); err != nil {
		t.Fatal(err)
	}
	opts := storage.NewFileClientOpts{
		ClientBaseDir:   dir,
		PieceCompletion: storage.NewMapPieceCompletion(),
	}
	opts.UsePartFiles.Set(false) // as the engine's storage (task.go)
	client := storage.NewFileOpts(opts)
	defer client.Close()
	impl, err := client.OpenTorrent(t.Context(), &info, metainfo.Hash{2})
	if err != nil {
		t.Fatal(err)
	}
	r := &reserver{gen: new(atomic.Uint64), unsupported: true, pieceLen: info.PieceLength, total: info.TotalLength()}
	gate := gatedPiece{PieceImpl: impl.Piece(info.Piece(1)), entered: make(chan struct{}), release: make(chan struct{})}
	rp := reservedPiece{PieceImpl: gate, r: r, p: info.Piece(1)}
	block := bytes.Repeat([]byte{0xab}, 16<<10)
	wrote := make(chan error, 1)
	go func() {
		_, err := rp.WriteAt(block, 0)
		wrote <- err
	}()
	<-gate.entered
	closed := make(chan struct{})
	go func() {
		r.markClosed()
		close(closed)
	}()
	// Wait until the close is waiting for the write (a pending writer makes TryRLock fail);
	// a close that does not wait returns meanwhile.
	for {
		select {
		case <-closed:
			t.Fatal("the storage closed while a write was under way")
		default:
		}
		if !r.closeMu.TryRLock() {
			break
		}
		r.closeMu.RUnlock()
		runtime.Gosched()
	}
	close(gate.release)
	if err := <-wrote; err != nil {
		t.Fatalf("write under way at the close: %v", err)
	}
	<-closed
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[64<<10:80<<10], block) {
		t.Fatal("the write under way at the close did not reach the file")
	}

	// After the close: the file is deleted (Remove), and a late write must not recreate it.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	rp.PieceImpl = impl.Piece(info.Piece(2))
	if n, err := rp.WriteAt(block, 0); !errors.Is(err, errStorageClosed) || n != 0 {
		t.Fatalf("write after the close = %d, %v; want 0, %v", n, err, errStorageClosed)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a write after the close recreated the deleted file: %v", err)
	}
}
