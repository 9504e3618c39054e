package engine_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// rawSeeder seeds info with the torrent library directly (our engine refuses to make
// torrents with unsafe names), storing file i as dir/<i>. It returns the peer address.
func rawSeeder(t *testing.T, info *metainfo.Info, data [][]byte) string {
	t.Helper()
	dir := t.TempDir()
	offsets := make(map[int64]int)
	for i, fi := range info.UpvertedFiles() {
		offsets[fi.TorrentOffset] = i
		if err := os.WriteFile(filepath.Join(dir, string(rune('a'+i))), data[i], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := torrent.NewDefaultClientConfig()
	cfg.ListenHost = func(string) string { return "127.0.0.1" }
	cfg.ListenPort = 0
	cfg.DisableIPv6 = true
	cfg.NoDHT = true
	cfg.DisableTrackers = true
	cfg.DisableUTP = true
	cfg.NoDefaultPortForwarding = true
	cfg.DisableWebtorrent = true
	cfg.Seed = true
	cfg.MaxAllocPeerRequestDataPerConn = 16 << 20
	cfg.DataDir = dir
	cfg.DefaultStorage = storage.NewFileOpts(storage.NewFileClientOpts{
		ClientBaseDir: dir,
		FilePathMaker: func(o storage.FilePathMakerOpts) string {
			return string(rune('a' + offsets[o.File.TorrentOffset]))
		},
		PieceCompletion: storage.NewMapPieceCompletion(),
	})
	cl, err := torrent.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	infoBytes, err := bencode.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	tor, _ := cl.AddTorrentOpt(torrent.AddTorrentOpts{InfoHash: metainfo.HashBytes(infoBytes), InfoBytes: infoBytes})
	if err := tor.VerifyDataContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	enginetest.WaitFor(t, 10*time.Second, "raw seeder complete", tor.Complete().Bool)
	return cl.ListenAddrs()[0].String()
}

// TestPathTraversal downloads a torrent whose names try to escape the download directory.
func TestPathTraversal(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(root, "outside")
	names := [][]string{
		{"..", "..", "x.bin"},
		{filepath.Join(outside, "abs.bin")}, // an absolute path in one component
		{"a\x00b.mkv"},
		{"sub", "..", "..", "..", "y.bin"},
		{"ok", "movie.mp4"},
		{`..\..\win.bin`},
	}
	info := &metainfo.Info{Name: "../../evil", PieceLength: 16 << 10}
	var data [][]byte
	var all bytes.Buffer
	for i, n := range names {
		b := bytes.Repeat([]byte{byte('A' + i)}, 20000+i*777)
		data = append(data, b)
		all.Write(b)
		info.Files = append(info.Files, metainfo.FileInfo{Path: n, Length: int64(len(b))})
	}
	pieces, err := metainfo.GeneratePieces(bytes.NewReader(all.Bytes()), info.PieceLength, nil)
	if err != nil {
		t.Fatal(err)
	}
	info.Pieces = pieces
	peer := rawSeeder(t, info, data)
	torrentPath, _ := enginetest.WriteInfo(t, t.TempDir(), info)

	dl := filepath.Join(root, "a", "b", "dl")
	le := enginetest.NewEngine(t, func(o *engine.Options) { o.DownloadDir = dl })
	task, err := le.Add(t.Context(), engine.AddSpec{Source: torrentPath, FileIndex: -1})
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	if err := task.AddPeers(peer); err != nil {
		t.Fatal(err)
	}
	st := enginetest.WaitStatus(t, task, 30*time.Second, func(s engine.Status) bool { return s.State == engine.StateCompleted })
	if !strings.Contains(st.Notice, "renamed") {
		t.Errorf("Status().Notice = %q, want it to report renamed file names", st.Notice)
	}
	files := task.Files()
	for i, f := range files {
		if !filepath.IsLocal(f.Path) || strings.ContainsAny(f.Path, "\x00\\") {
			t.Errorf("file %d path %q is not a safe local path", i, f.Path)
		}
		got, err := os.ReadFile(filepath.Join(dl, filepath.FromSlash(f.Path)))
		if err != nil || !bytes.Equal(got, data[i]) {
			t.Errorf("file %d (%q from %q): %v, content ok %v", i, f.Path, names[i], err, bytes.Equal(got, data[i]))
		}
	}
	if sel := task.SelectedFile(); sel < 0 || !strings.HasSuffix(files[sel].Path, "movie.mp4") {
		t.Errorf("SelectedFile() = %d, want ok/movie.mp4 (largest video)", sel)
	}
	// Nothing may exist under root outside the download dir, except the other tests dirs.
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dl || strings.HasPrefix(p, dl+string(filepath.Separator)) {
			return nil
		}
		if !d.IsDir() {
			t.Errorf("file written outside the download dir: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSymlinkRefused refuses a torrent whose files would be written through a symlink.
func TestSymlinkRefused(t *testing.T) {
	src := filepath.Join(t.TempDir(), "evil")
	enginetest.WriteRandomFile(t, src, "movie.mp4", 64<<10, 20)
	torrentPath, _ := enginetest.WriteTorrentFile(t, t.TempDir(), src, 16<<10)
	outside := t.TempDir()
	le := enginetest.NewEngine(t)
	if err := os.Symlink(outside, filepath.Join(le.DownloadDir(), "evil")); err != nil {
		t.Fatal(err)
	}
	_, err := le.Add(t.Context(), engine.AddSpec{Source: torrentPath, FileIndex: -1})
	if !errors.Is(err, engine.ErrUnsafePath) {
		t.Errorf("Add through a symlinked folder = %v, want ErrUnsafePath", err)
	}
}

// TestMalformedTorrents feeds bad info dictionaries: errors, never panics.
func TestMalformedTorrents(t *testing.T) {
	t.Parallel()
	h := bytes.Repeat([]byte{1}, 20)
	tests := []struct {
		name string
		info metainfo.Info
	}{
		{"negative length", metainfo.Info{Name: "x", PieceLength: 16 << 10, Length: -5, Pieces: h}},
		{"negative file length", metainfo.Info{Name: "x", PieceLength: 16 << 10, Files: []metainfo.FileInfo{{Path: []string{"a"}, Length: -1}}, Pieces: h}},
		{"zero piece length", metainfo.Info{Name: "x", Length: 10, Pieces: h}},
		{"piece count mismatch", metainfo.Info{Name: "x", PieceLength: 16 << 10, Length: 1 << 20, Pieces: h}},
		{"ragged pieces", metainfo.Info{Name: "x", PieceLength: 16 << 10, Length: 10, Pieces: h[:7]}},
		{"empty", metainfo.Info{Name: "x", PieceLength: 16 << 10}},
		{"huge length", metainfo.Info{Name: "x", PieceLength: 16 << 10, Length: 1 << 62, Pieces: h}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := engine.CheckInfo(&tc.info); !errors.Is(err, engine.ErrBadSource) {
				t.Errorf("CheckInfo(%s) = %v, want ErrBadSource", tc.name, err)
			}
			b, err := bencode.Marshal(metainfo.MetaInfo{InfoBytes: bencode.MustMarshal(tc.info)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := engine.DecodeMetainfo(b); !errors.Is(err, engine.ErrBadSource) {
				t.Errorf("DecodeMetainfo(%s) = %v, want ErrBadSource", tc.name, err)
			}
		})
	}
}

func FuzzDecodeMetainfo(f *testing.F) {
	f.Add([]byte("d4:infod6:lengthi10e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee"))
	f.Add([]byte("d4:infoi3ee"))
	f.Add([]byte("d4:infod5:filesld6:lengthi-1e4:pathl2:..eee4:name2:..12:piece lengthi1e6:pieces0:ee"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := engine.DecodeMetainfo(b)
		if err != nil {
			if !errors.Is(err, engine.ErrBadSource) {
				t.Fatalf("DecodeMetainfo error %v does not wrap ErrBadSource", err)
			}
			return
		}
		_ = m
	})
}
