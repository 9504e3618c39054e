package engine_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// TestDiskFull downloads a 6 MiB file into an 8 MiB tmpfs that a 5 MiB filler leaves too small:
// the task must stop with a clear error, a blocked reader must fail instead of hanging,
// verified data must stay readable, and after the filler is deleted Resume must finish the
// download byte-identical.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	// Warm up: the libraries start some goroutines once per process.
	warm, err := engine.New(enginetest.Options(t))
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	if err := warm.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkGoroutines(t) // registered first: runs after every other cleanup

	root := t.TempDir()
	dl := filepath.Join(root, "dl")
	if err := os.Mkdir(dl, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dl, "tmpfs", 0, "size=8m"); err != nil {
		if errors.Is(err, syscall.EPERM) {
			t.Skipf("mount tmpfs on %s refused (%v): run as root with CAP_SYS_ADMIN", dl, err)
		}
		t.Fatalf("mount tmpfs on %s: %v", dl, err)
	}
	// Registered before the engine's Close, so it runs after it. Lazy: the file storage
	// never unmaps the files it mapped (torrent v1.59.1), so the mount stays busy until the
	// process exits.
	t.Cleanup(func() {
		if err := syscall.Unmount(dl, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dl, err)
		}
	})
	filler, _ := enginetest.WriteRandomFile(t, dl, "filler", 5<<20, 1)

	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: pieceLen})
	srcDir := t.TempDir()
	src, sum := enginetest.WriteRandomFile(t, srcDir, "movie.mkv", 6<<20, 7)
	si := seeder.Add(t, src)

	logs := &recordHandler{}
	le := enginetest.NewEngine(t, func(o *engine.Options) {
		o.DownloadDir = dl
		o.Logger = slog.New(logs)
	})
	dumpOnFailure(t, le, seeder.Engine())
	task, err := le.Add(t.Context(), engine.AddSpec{Source: si.Magnet, FileIndex: 0})
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	if err := task.WaitInfo(timeout(t, 30*time.Second)); err != nil {
		t.Fatalf("WaitInfo: %v", err)
	}

	// A reader reading the whole file blocks on pieces that can never be stored.
	r := openFile(t, task, timeout(t, time.Minute), 0)
	readErr := make(chan error, 1) // buffered: the reader never waits for the test
	go func() {
		_, err := io.Copy(io.Discard, r)
		readErr <- err
	}()

	st := waitState(t, task, 30*time.Second, func(st engine.Status) bool { return st.State == engine.StateFailed })
	if want := "disk full: " + dl + ": no space left on device"; st.Error != want {
		t.Errorf("Status().Error = %q, want %q", st.Error, want)
	}
	if st.PiecesComplete == st.PiecesTotal {
		t.Fatalf("Status().PiecesComplete = %d of %d, want some missing", st.PiecesComplete, st.PiecesTotal)
	}
	select {
	case err := <-readErr:
		if !errors.Is(err, engine.ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("blocked Read error = %v, want ErrDiskFull and ENOSPC", err)
		}
	case <-time.After(2 * time.Minute): // a hang guard, generous for a loaded machine
		t.Fatal("blocked Read did not return after the task failed")
	}
	if err := r.Close(); err != nil {
		t.Errorf("reader Close: %v", err)
	}

	// Verified pieces stay readable; a read of a missing piece fails at once.
	r2 := openFile(t, task, timeout(t, 30*time.Second), 0)
	var complete, missing []int
	for p := range st.PiecesTotal {
		if engine.PieceComplete(task, p) {
			complete = append(complete, p)
		} else {
			missing = append(missing, p)
		}
	}
	for _, p := range complete {
		got := readPiece(t, r2, p)
		if want := readAt(t, src, int64(p)*pieceLen, len(got)); !bytes.Equal(got, want) {
			t.Errorf("verified piece %d differs from the source", p)
		}
	}
	// Chunks in flight when the task stopped may still complete a piece, so a missing piece
	// may have become readable; at least one cannot (6 MiB do not fit in 3).
	failed := 0
	for _, p := range missing {
		if _, err := r2.Seek(int64(p)*pieceLen, io.SeekStart); err != nil {
			t.Fatalf("Seek: %v", err)
		}
		start := time.Now()
		_, err := r2.Read(make([]byte, 1))
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Read of missing piece %d took %v, want an immediate error", p, d)
		}
		switch {
		case err == nil && !engine.PieceComplete(task, p):
			t.Errorf("Read of missing piece %d succeeded, piece not complete", p)
		case err != nil && !errors.Is(err, engine.ErrDiskFull):
			t.Errorf("Read of missing piece %d = %v, want ErrDiskFull", p, err)
		case err != nil:
			failed++
		}
	}
	if failed == 0 {
		t.Errorf("Reads of %d missing pieces all succeeded, want ErrDiskFull", len(missing))
	}

	// Nothing was written outside the download directory, and the task said it once.
	if got := dirNames(t, dl); !slices.Equal(got, []string{"filler", "movie.mkv"}) {
		t.Errorf("download dir holds %q, want filler and movie.mkv", got)
	}
	if got := dirNames(t, root); !slices.Equal(got, []string{"dl"}) {
		t.Errorf("%s holds %q, want only dl", root, got)
	}
	if got := dirNames(t, srcDir); !slices.Equal(got, []string{"movie.mkv"}) {
		t.Errorf("seed dir holds %q, want only movie.mkv", got)
	}
	if n := logs.count("task stopped: cannot store data"); n != 1 {
		t.Errorf("logged %q %d times, want once", "task stopped: cannot store data", n)
	}
	if n := logs.countAtLeast(slog.LevelError); n != 1 {
		t.Errorf("logged %d errors, want 1: %q", n, logs.messages())
	}

	// The user frees space and resumes: the download completes.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := le.Resume(task.ID()); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	st = waitState(t, task, time.Minute, func(st engine.Status) bool {
		return st.State == engine.StateCompleted || st.State == engine.StateSeeding || st.State == engine.StateFailed
	})
	if st.State == engine.StateFailed {
		t.Fatalf("after Resume: State = failed, Error = %q", st.Error)
	}
	if got := enginetest.SHA256File(t, filepath.Join(dl, "movie.mkv")); got != sum {
		t.Errorf("downloaded sha256 = %s, want %s", got, sum)
	}
	if _, err := r2.Seek(0, io.SeekStart); err != nil {
		t.Fatalf("Seek: %v", err)
	}
	if got := enginetest.SHA256Reader(t, r2); got != sum {
		t.Errorf("read sha256 = %s, want %s", got, sum)
	}
}

// waitState polls the task's status until ok accepts it.
func waitState(t *testing.T, task *engine.Task, d time.Duration, ok func(engine.Status) bool) engine.Status {
	t.Helper()
	d = max(d, enginetest.EventWait) // a hang guard only: generous for a loaded machine
	deadline := time.Now().Add(d)
	for {
		st := task.Status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: state %s, error %q, %d/%d pieces", d, st.State, st.Error, st.PiecesComplete, st.PiecesTotal)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// readPiece reads piece p of a single-file torrent through r.
func readPiece(t *testing.T, r *engine.Reader, p int) []byte {
	t.Helper()
	if _, err := r.Seek(int64(p)*pieceLen, io.SeekStart); err != nil {
		t.Fatalf("Seek to piece %d: %v", p, err)
	}
	b := make([]byte, pieceLen)
	n, err := io.ReadFull(r, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read verified piece %d: %v", p, err)
	}
	return b[:n]
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// checkGoroutines fails the test if the goroutine count has not come back to its current
// value shortly after the test's other cleanups.
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		// Goroutines end soon after the cleanups; the bound only turns a leak into a
		// failure, and is generous for a loaded machine.
		ctx, cancel := context.WithTimeout(context.Background(), enginetest.EventWait)
		defer cancel()
		for runtime.NumGoroutine() > before {
			select {
			case <-ctx.Done():
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines after cleanup, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
}

// recordHandler keeps the message and level of every record. Safe for concurrent use.
type recordHandler struct {
	mu   sync.Mutex // guards recs
	recs []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}

func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Message == msg {
			n++
		}
	}
	return n
}

func (h *recordHandler) countAtLeast(l slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Level >= l {
			n++
		}
	}
	return n
}

func (h *recordHandler) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs {
		if r.Level >= slog.LevelWarn {
			out = append(out, r.Level.String()+" "+r.Message)
		}
	}
	return out
}

// TestDiskFullRetriesByItself fills a tmpfs so a download stops, then frees the space: the
// task retries by itself (no Resume, no restart) and finishes byte-identical.
func TestDiskFullRetriesByItself(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dl := filepath.Join(t.TempDir(), "dl")
	if err := os.Mkdir(dl, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dl, "tmpfs", 0, "size=8m"); err != nil {
		if errors.Is(err, syscall.EPERM) {
			t.Skipf("mount tmpfs on %s refused (%v): run as root with CAP_SYS_ADMIN", dl, err)
		}
		t.Fatalf("mount tmpfs on %s: %v", dl, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dl, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dl, err)
		}
	})
	filler, _ := enginetest.WriteRandomFile(t, dl, "filler", 5<<20, 1)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: pieceLen})
	src, sum := enginetest.WriteRandomFile(t, t.TempDir(), "movie.mkv", 6<<20, 9)
	si := seeder.Add(t, src)
	le := enginetest.NewEngine(t, func(o *engine.Options) {
		o.DownloadDir = dl
		o.StoreRetryMin = 100 * time.Millisecond
	})
	dumpOnFailure(t, le, seeder.Engine())
	task, err := le.Add(t.Context(), engine.AddSpec{Source: si.Magnet, FileIndex: 0})
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	// Deadlines here only turn a hang into a failure; each waits for an event.
	st := waitState(t, task, 2*time.Minute, func(st engine.Status) bool { return st.State == engine.StateFailed })
	if !strings.HasPrefix(st.Error, "disk full") {
		t.Fatalf("Status().Error = %q, want disk full", st.Error)
	}
	// While the disk is full, a read of a missing piece is refused, not left waiting.
	missing := -1
	for p := range st.PiecesTotal {
		if !engine.PieceComplete(task, p) {
			missing = p
			break
		}
	}
	if err := task.Unavailable(0, int64(missing)*pieceLen); !errors.Is(err, engine.ErrDiskFull) {
		t.Errorf("Unavailable(missing piece %d) = %v, want ErrDiskFull", missing, err)
	}
	if err := task.Held(); !errors.Is(err, engine.ErrDiskFull) {
		t.Errorf("Held() on a full disk = %v, want ErrDiskFull", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	st = waitState(t, task, 2*time.Minute, func(st engine.Status) bool {
		return st.State == engine.StateCompleted || st.State == engine.StateSeeding
	})
	if got := enginetest.SHA256File(t, filepath.Join(dl, "movie.mkv")); got != sum {
		t.Errorf("downloaded sha256 = %s, want %s", got, sum)
	}
	if err := task.Unavailable(0, int64(missing)*pieceLen); err != nil {
		t.Errorf("Unavailable after completion = %v, want nil", err)
	}
	if err := task.Held(); err != nil {
		t.Errorf("Held() after the disk had room again = %v, want nil", err)
	}
}
