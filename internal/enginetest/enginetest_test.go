package enginetest_test

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/anacrolix/torrent/metainfo"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

func TestWriteRandomFileIsReproducible(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p1, s1 := enginetest.WriteRandomFile(t, dir, "a.bin", 100_000, 7)
	_, s2 := enginetest.WriteRandomFile(t, dir, "sub/b.bin", 100_000, 7)
	_, s3 := enginetest.WriteRandomFile(t, dir, "c.bin", 100_000, 8)
	if s1 != s2 || s1 == s3 {
		t.Errorf("sums %s %s %s: want equal for the same seed, different for another", s1, s2, s3)
	}
	if got := enginetest.SHA256File(t, p1); got != s1 {
		t.Errorf("SHA256File = %s, want %s", got, s1)
	}
	if fi, err := os.Stat(p1); err != nil || fi.Size() != 100_000 {
		t.Errorf("Stat = %v, %v", fi, err)
	}
}

// TestWriteTorrentFileAnnounce: the announce URL lands in the .torrent, WriteTorrentFile
// writes none, and both name the same infohash.
func TestWriteTorrentFileAnnounce(t *testing.T) {
	t.Parallel()
	path, _ := enginetest.WriteRandomFile(t, t.TempDir(), "clip.mp4", 200_000, 3)
	const announce = "http://127.0.0.1:6969/announce"
	plainPath, plainIH := enginetest.WriteTorrentFile(t, t.TempDir(), path, 64<<10)
	annPath, annIH := enginetest.WriteTorrentFileAnnounce(t, t.TempDir(), path, 64<<10, announce)
	if annIH != plainIH {
		t.Errorf("WriteTorrentFileAnnounce infohash %s, WriteTorrentFile %s; want equal", annIH, plainIH)
	}
	for _, tc := range []struct{ path, ih, announce string }{{plainPath, plainIH, ""}, {annPath, annIH, announce}} {
		mi, err := metainfo.LoadFromFile(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if mi.Announce != tc.announce || mi.HashInfoBytes().HexString() != tc.ih {
			t.Errorf("%s: announce %q, infohash %s; want %q, %s", tc.path, mi.Announce, mi.HashInfoBytes().HexString(), tc.announce, tc.ih)
		}
	}
}

func TestSeederServesALeecher(t *testing.T) {
	path, sum := enginetest.WriteRandomFile(t, t.TempDir(), "clip.mp4", 1<<20, 1)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: 64 << 10})
	si := seeder.Add(t, path)
	torrentPath, ih := enginetest.WriteTorrentFile(t, t.TempDir(), path, 64<<10)
	if ih != si.InfoHash {
		t.Errorf("WriteTorrentFile infohash %s, seeder says %s", ih, si.InfoHash)
	}
	le := enginetest.NewEngine(t, func(o *engine.Options) { o.WarmGrace = time.Minute })
	task, r := enginetest.OpenStream(t, le, torrentPath, si.Peer.String())
	if got := enginetest.SHA256Reader(t, io.LimitReader(r, 1<<20)); got != sum {
		t.Errorf("sha256 = %s, want %s", got, sum)
	}
	enginetest.WaitStatus(t, task, 10*time.Second, func(s engine.Status) bool { return s.State == engine.StateCompleted })
}
