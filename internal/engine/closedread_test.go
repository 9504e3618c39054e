package engine

import (
	"bytes"
	"os"
	"path/filepath"
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
