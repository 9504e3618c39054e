package enginetest

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"github.com/torrentclaw/cli/internal/engine"
)

// Options returns engine options for a test: loopback only, DHT, trackers, LSD and uTP off,
// fresh temporary directories. Set TORRENTCLAW_TEST_LOG=1 to see engine warnings on stderr.
func Options(t testing.TB) engine.Options {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("TORRENTCLAW_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return engine.Options{
		DownloadDir:     t.TempDir(),
		DataDir:         t.TempDir(),
		ListenHost:      "127.0.0.1",
		DisableDHT:      true,
		DisableTrackers: true,
		DisableLSD:      true,
		DisableUTP:      true,
		Logger:          logger,
	}
}

// NewEngine starts an engine with [Options], changed by mods, and closes it when the test
// ends.
func NewEngine(t testing.TB, mods ...func(*engine.Options)) *engine.Engine {
	t.Helper()
	opts := Options(t)
	for _, m := range mods {
		m(&opts)
	}
	e, err := engine.New(opts)
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("engine Close: %v", err)
		}
	})
	return e
}

// SeederOptions configures [NewSeeder].
type SeederOptions struct {
	// UploadRateBytes limits the seeder's upload in bytes per second; 0 is unlimited.
	UploadRateBytes int64
	// PieceLength forces the piece length of torrents the seeder makes; 0 lets it choose.
	PieceLength int64
}

// Seeder is an engine that seeds files on loopback.
type Seeder struct {
	e    *engine.Engine
	opts SeederOptions
}

// NewSeeder starts a seeding engine, closed when the test ends.
func NewSeeder(t testing.TB, opts SeederOptions) *Seeder {
	t.Helper()
	e := NewEngine(t, func(o *engine.Options) {
		o.UploadRateBytes = opts.UploadRateBytes
		o.Seed = true
	})
	return &Seeder{e: e, opts: opts}
}

// Engine returns the seeder's engine.
func (s *Seeder) Engine() *engine.Engine { return s.e }

// Add makes a torrent of path (a file or directory) and seeds it. The magnet it returns has
// x.pe pointing at the seeder.
func (s *Seeder) Add(t testing.TB, path string) engine.SeedInfo {
	t.Helper()
	si, err := s.e.SeedWith(t.Context(), path, engine.SeedOptions{PieceLength: s.opts.PieceLength})
	if err != nil {
		t.Fatalf("Seed(%s): %v", path, err)
	}
	return si
}

// WriteRandomFile writes size pseudo-random bytes (from seed, so reproducible) to dir/name and
// returns its path and SHA-256 (hex).
func WriteRandomFile(t testing.TB, dir, name string, size int64, seed int64) (path, sha256hex string) {
	t.Helper()
	path = filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	rng := rand.NewChaCha8(seedBytes(seed))
	if _, err := io.CopyN(io.MultiWriter(f, h), rng, size); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, hex.EncodeToString(h.Sum(nil))
}

func seedBytes(seed int64) (b [32]byte) {
	for i := range 8 {
		b[i] = byte(seed >> (8 * i))
	}
	return b
}

// SHA256File returns the hex SHA-256 of a file.
func SHA256File(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// SHA256Reader reads r to the end and returns the hex SHA-256 of what it read.
func SHA256Reader(t testing.TB, r io.Reader) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Errorf("read: %v", err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// WriteTorrentFile makes a .torrent of dataPath (a file or directory) in dir and returns its
// path and infohash. pieceLength 0 lets the library choose.
func WriteTorrentFile(t testing.TB, dir, dataPath string, pieceLength int64) (torrentPath, infoHash string) {
	t.Helper()
	info := buildInfo(t, dataPath, pieceLength)
	return WriteInfo(t, dir, &info)
}

// buildInfo hashes dataPath (a file or directory) into the info of a torrent with pieces of
// pieceLength (0: the library chooses).
func buildInfo(t testing.TB, dataPath string, pieceLength int64) metainfo.Info {
	t.Helper()
	info := metainfo.Info{PieceLength: pieceLength}
	if err := info.BuildFromFilePath(dataPath); err != nil {
		t.Fatalf("build torrent of %s: %v", dataPath, err)
	}
	return info
}

// WriteInfo writes a .torrent holding info (which may be deliberately malformed) to dir and
// returns its path and infohash.
func WriteInfo(t testing.TB, dir string, info *metainfo.Info) (torrentPath, infoHash string) {
	t.Helper()
	return writeMetaInfo(t, dir, info, "")
}

// writeMetaInfo writes a .torrent holding info and the tracker URL announce (none when
// empty) to dir, named for its infohash, and returns its path and infohash.
func writeMetaInfo(t testing.TB, dir string, info *metainfo.Info, announce string) (torrentPath, infoHash string) {
	t.Helper()
	b, err := bencode.Marshal(info)
	if err != nil {
		t.Fatalf("encode info: %v", err)
	}
	mi := metainfo.MetaInfo{InfoBytes: b, Announce: announce}
	infoHash = mi.HashInfoBytes().HexString()
	torrentPath = filepath.Join(dir, infoHash+".torrent")
	f, err := os.Create(torrentPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := mi.Write(f); err != nil {
		f.Close()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return torrentPath, infoHash
}

// EventWait is the least time WaitFor waits for an event; generous, so a busy 2-core
// machine never reaches it.
const EventWait = 2 * time.Minute

// WaitFor polls cond every 10ms until it is true, failing the test after timeout.
//
// timeout is raised to at least EventWait: it only turns a hang into a failure, and a loaded
// machine must never reach it (tests await events, they never assert timings).
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	timeout = max(timeout, EventWait)
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("test context done waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// WaitStatus polls task's status until cond holds, failing the test after timeout, and
// returns the status that satisfied it.
func WaitStatus(t testing.TB, task *engine.Task, timeout time.Duration, cond func(engine.Status) bool) engine.Status {
	t.Helper()
	var st engine.Status
	WaitFor(t, timeout, "task status", func() bool {
		st = task.Status()
		return cond(st)
	})
	return st
}

// WriteUnsafeTorrent writes a metainfo-only .torrent (its data is seeded by
// no one) whose file names try to leave the download directory: "../../x",
// an absolute path, a NUL, and one safe "ok/movie.mp4". It returns the
// torrent's path, for tests of name sanitising beyond the engine.
func WriteUnsafeTorrent(t testing.TB, dir string) string {
	t.Helper()
	const pieceLength = 16 << 10
	files := []metainfo.FileInfo{
		{Path: []string{"..", "..", "x.bin"}, Length: pieceLength},
		{Path: []string{"/etc/abs.bin"}, Length: pieceLength},
		{Path: []string{"a\x00b.bin"}, Length: pieceLength},
		{Path: []string{"ok", "movie.mp4"}, Length: 4 * pieceLength},
	}
	var total int64
	for _, f := range files {
		total += f.Length
	}
	info := metainfo.Info{
		Name:        "unsafe",
		PieceLength: pieceLength,
		Pieces:      make([]byte, 20*(total/pieceLength)),
		Files:       files,
	}
	path, _ := WriteInfo(t, dir, &info)
	return path
}

// OpenStream adds source (a magnet, infohash or .torrent path) to e as a streaming task of
// its largest video file, hands the task peers (host:port; none is fine) and opens a reader
// of that file, closed when the test ends.
func OpenStream(t testing.TB, e *engine.Engine, source string, peers ...string) (*engine.Task, *engine.Reader) {
	t.Helper()
	task, err := e.Add(t.Context(), engine.AddSpec{Source: source, FileIndex: -1, Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) > 0 {
		if err := task.AddPeers(peers...); err != nil {
			t.Fatal(err)
		}
	}
	r, err := task.OpenFile(t.Context(), -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return task, r
}
