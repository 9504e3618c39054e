package engine_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// Deadlines in these tests only turn a hang into a failure: every step awaits an event (a
// status, a verification count, a read). They are generous so a loaded machine never meets them.
const integrityWait = 2 * time.Minute

// downloaded fetches a whole torrent of one random file from a loopback seeder into an engine
// with opts, closes that engine cleanly, and returns the seed, the source file and the
// downloaded file's path.
func downloaded(t *testing.T, opts engine.Options, size int64) (engine.SeedInfo, string, string) {
	t.Helper()
	src, _ := enginetest.WriteRandomFile(t, t.TempDir(), "movie.mkv", size, 21)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: pieceLen})
	si := seeder.Add(t, src)
	e, err := engine.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	task, err := e.Add(t.Context(), engine.AddSpec{Source: si.Magnet, FileIndex: -1})
	if err != nil {
		t.Fatal(err)
	}
	enginetest.WaitStatus(t, task, integrityWait, func(st engine.Status) bool {
		return st.PiecesTotal > 0 && st.PiecesComplete == st.PiecesTotal
	})
	path := filepath.Join(opts.DownloadDir, filepath.FromSlash(task.Files()[0].Path))
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return si, src, path
}

// flip inverts n bytes of the file at path from off; keepTimes puts its size and mtime back,
// so only the unclean-stop marker can tell.
func flip(t *testing.T, path string, off int64, n int, keepTimes bool) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] ^= 0xff
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if keepTimes {
		if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
}

// restartAndCheck starts a new engine on opts, adds the torrent by infohash (the metainfo is
// cached, no peer is known), waits for verification, and checks which pieces are complete.
// bad is the piece that must not be served, or -1 when every piece must be.
func restartAndCheck(t *testing.T, opts engine.Options, si engine.SeedInfo, src string, bad int) {
	t.Helper()
	e, err := engine.New(opts)
	if err != nil {
		t.Fatalf("New after restart: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	dumpOnFailure(t, e)
	task := addStream(t, e, "magnet:?xt=urn:btih:"+si.InfoHash)
	if err := task.WaitInfo(timeout(t, integrityWait)); err != nil {
		t.Fatalf("WaitInfo from the cache: %v", err)
	}
	enginetest.WaitFor(t, integrityWait, "verification", func() bool {
		if bad < 0 {
			// Pieces of unknown completion (a new piece database) are hashed by the library.
			st := task.Status()
			return st.PiecesComplete == st.PiecesTotal
		}
		return engine.VerifyPending(task) == 0
	})
	st := task.Status()
	for p := range st.PiecesTotal {
		if got, want := engine.PieceComplete(task, p), p != bad; got != want {
			t.Errorf("after verification PieceComplete(%d) = %v, want %v", p, got, want)
		}
	}
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if bad < 0 {
		r := openFile(t, task, timeout(t, integrityWait), -1)
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read after restart: %d bytes, %v; want the seeded %d bytes", len(got), err, len(want))
		}
		if st := task.Status(); st.BytesFromPeers != 0 {
			t.Errorf("fetched %d bytes from peers; nothing was missing", st.BytesFromPeers)
		}
		return
	}

	// The bad piece is not served: with no peer, a read of it blocks until it is cancelled
	// and returns no byte.
	ctx, cancel := context.WithCancel(t.Context())
	r := openFile(t, task, ctx, -1)
	if _, err := r.Seek(int64(bad)*pieceLen, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1) // buffered: the reader never waits for the test
	go func() {
		n, err := r.Read(make([]byte, 1024))
		done <- result{n, err}
	}()
	enginetest.WaitFor(t, integrityWait, "the read to wait for the piece", func() bool { return engine.Urgent(task) })
	cancel()
	if res := <-done; res.n != 0 || !errors.Is(res.err, context.Canceled) {
		t.Fatalf("read of the changed piece without peers = %d, %v; want 0 bytes and context.Canceled", res.n, res.err)
	}

	// With the seeder back, the piece is fetched again and the bytes are right.
	if err := task.AddPeers(si.Peer.String()); err != nil {
		t.Fatal(err)
	}
	r2 := openFile(t, task, timeout(t, integrityWait), -1)
	got, err := io.ReadAll(r2)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read after refetch: %d bytes, %v; want the seeded %d bytes", len(got), err, len(want))
	}
	if st := task.Status(); st.BytesFromPeers > 2*pieceLen {
		t.Errorf("fetched %d bytes from peers; only one piece (%d bytes) was bad", st.BytesFromPeers, pieceLen)
	}
}

// TestChangedFileNeverServed flips bytes in a finished file between two runs: the piece is
// verified again, never served, and fetched again from the seeder.
func TestChangedFileNeverServed(t *testing.T) {
	opts := enginetest.Options(t)
	si, src, path := downloaded(t, opts, 3<<20+777)
	flip(t, path, 5*pieceLen+100, 64, false)
	restartAndCheck(t, opts, si, src, 5)
}

// TestUncleanStopReverifies changes bytes but puts size and mtime back: after a clean stop the
// record is trusted (every piece complete at once, nothing hashed), after an unclean one
// (the run marker left behind) every piece is verified and the changed one is fetched again.
func TestUncleanStopReverifies(t *testing.T) {
	t.Run("clean", func(t *testing.T) {
		opts := enginetest.Options(t)
		si, src, _ := downloaded(t, opts, 2<<20+5)
		restartAndCheck(t, opts, si, src, -1)
	})
	t.Run("unclean", func(t *testing.T) {
		opts := enginetest.Options(t)
		si, src, path := downloaded(t, opts, 2<<20+5)
		flip(t, path, 3*pieceLen, 64, true)
		if err := os.WriteFile(filepath.Join(opts.DataDir, ".engine-running"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		restartAndCheck(t, opts, si, src, 3)
	})
}

// TestPieceDatabaseRecovery damages the piece database between two runs: the engine starts,
// moves a corrupt file aside, reports it, and verifies the pieces from the files (nothing is
// downloaded again).
func TestPieceDatabaseRecovery(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, p string)
		moved  bool
	}{
		{"garbage", func(t *testing.T, p string) {
			if err := os.WriteFile(p, bytes.Repeat([]byte("not a bolt database "), 2000), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"truncated", func(t *testing.T, p string) {
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, st.Size()/3); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"empty", func(t *testing.T, p string) {
			if err := os.Truncate(p, 0); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := enginetest.Options(t)
			si, src, _ := downloaded(t, opts, 2<<20+5)
			db := filepath.Join(opts.DataDir, ".torrent.bolt.db")
			tc.damage(t, db)
			e, err := engine.New(opts)
			if err != nil {
				t.Fatalf("New with a %s piece database: %v", tc.name, err)
			}
			recs := e.Recoveries()
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 || (recs[0].MovedTo != "") != tc.moved {
				t.Fatalf("Recoveries() = %+v, want one (moved aside: %v)", recs, tc.moved)
			}
			if tc.moved {
				if _, err := os.Stat(recs[0].MovedTo); err != nil || !strings.HasPrefix(filepath.Base(recs[0].MovedTo), ".torrent.bolt.db.corrupt-") {
					t.Errorf("moved aside to %q: %v", recs[0].MovedTo, err)
				}
			}
			restartAndCheck(t, opts, si, src, -1)
		})
	}
}

// TestPieceDatabaseLocked keeps the one real conflict an error that says so.
func TestPieceDatabaseLocked(t *testing.T) {
	opts := enginetest.Options(t)
	enginetest.NewEngine(t, func(o *engine.Options) { *o = opts })
	o := opts
	o.DownloadDir = t.TempDir()
	e2, err := engine.New(o)
	if err == nil {
		e2.Close()
		t.Fatal("second engine on the same data dir succeeded")
	}
	if !strings.Contains(err.Error(), "another daemon") {
		t.Errorf("New error = %q, want the lock hint", err)
	}
	names, _ := filepath.Glob(filepath.Join(opts.DataDir, "*.corrupt-*"))
	if len(names) != 0 {
		t.Errorf("a locked database was moved aside: %v", names)
	}
}
