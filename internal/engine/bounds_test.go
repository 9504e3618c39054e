package engine_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// packInfo returns the info of a season pack of n files of 1000 bytes each, with names like
// real ones; its data is never needed.
func packInfo(n int) *metainfo.Info {
	const fileLen, pieceLen = 1000, 1 << 20
	info := &metainfo.Info{Name: "Some.Show.S01-S20.1080p.WEB-DL", PieceLength: pieceLen}
	for i := range n {
		info.Files = append(info.Files, metainfo.FileInfo{
			Length: fileLen,
			Path:   []string{fmt.Sprintf("Season %02d", i/1000+1), fmt.Sprintf("Some.Show.S%02dE%04d.1080p.WEB-DL.mkv", i/1000+1, i%1000)},
		})
	}
	pieces := (int64(n)*fileLen + pieceLen - 1) / pieceLen
	info.Pieces = make([]byte, 20*pieces)
	return info
}

func TestMetainfoBounds(t *testing.T) {
	e := enginetest.NewEngine(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		info    *metainfo.Info
		wantErr string
	}{
		{"10,001 files", packInfo(10_001), "10001 files, more than the limit of 10000"},
		{"long names", func() *metainfo.Info {
			info := packInfo(2000)
			for i := range info.Files {
				info.Files[i].Path[1] = strings.Repeat("x", 2200) + fmt.Sprint(i) + ".mkv"
			}
			return info
		}(), "file names longer than the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, _ := enginetest.WriteInfo(t, dir, tc.info)
			_, err := e.Add(t.Context(), engine.AddSpec{Source: path, FileIndex: -1})
			if !errors.Is(err, engine.ErrBadSource) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Add(%s) = %v, want ErrBadSource %q", tc.name, err, tc.wantErr)
			}
		})
	}
	// A real season pack passes.
	path, _ := enginetest.WriteInfo(t, dir, packInfo(10_000))
	task, err := e.Add(t.Context(), engine.AddSpec{Source: path, FileIndex: -1})
	if err != nil {
		t.Fatalf("Add(10,000 files) = %v", err)
	}
	if err := e.Remove(task.ID(), false); err != nil {
		t.Fatal(err)
	}
}

// heapInuse returns the bytes of live heap after two collections.
func heapInuse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestHugeTorrentRefusedCheaply adds a 100,000-file torrent with the default bounds: it is
// refused before the torrent library builds state for it, so the live heap
// (runtime.MemStats.HeapAlloc after GC, steadier than RSS) ends where it started.
func TestHugeTorrentRefusedCheaply(t *testing.T) {
	dir := t.TempDir()
	path, _ := enginetest.WriteInfo(t, dir, packInfo(100_000))
	e := enginetest.NewEngine(t)
	before := heapInuse()
	_, err := e.Add(t.Context(), engine.AddSpec{Source: path, FileIndex: -1})
	if !errors.Is(err, engine.ErrBadSource) || !strings.Contains(err.Error(), "100000 files, more than the limit of 10000") {
		t.Fatalf("Add(100,000 files) = %v, want ErrBadSource naming the limit", err)
	}
	after := heapInuse()
	t.Logf("heap: before %d KiB, after the refused add %d KiB", before>>10, after>>10)
	if after > before+8<<20 {
		t.Errorf("heap grew from %d KiB to %d KiB over a refused add; want no lasting growth", before>>10, after>>10)
	}
	if n := len(e.Tasks()); n != 0 {
		t.Errorf("%d tasks after refused adds, want 0", n)
	}
}
