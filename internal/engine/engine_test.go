package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

const pieceLen = 256 << 10

// readAt returns n bytes of the file at path from off.
func readAt(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	m, err := f.ReadAt(b, off)
	if err != nil && !(errors.Is(err, io.EOF) && m == n) {
		t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
	}
	return b
}

// dumpOnFailure writes the engines' debug state to the test log if the test fails.
func dumpOnFailure(t *testing.T, engines ...*engine.Engine) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, st := range engines[0].Tasks() {
			if task, err := engines[0].Task(st.ID); err == nil {
				t.Logf("task %s: %s", st.ID, engine.DebugTask(task))
			}
		}
		for i, e := range engines {
			var b strings.Builder
			e.WriteDebug(&b)
			t.Logf("engine %d:\n%s", i, b.String())
		}
		if os.Getenv("TORRENTCLAW_TEST_STACKS") != "" {
			buf := make([]byte, 8<<20)
			t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
		}
	})
}

func addStream(t *testing.T, e *engine.Engine, source string) *engine.Task {
	t.Helper()
	task, err := e.Add(t.Context(), engine.AddSpec{Source: source, FileIndex: -1, Stream: true})
	if err != nil {
		t.Fatalf("Add(%q): %v", source, err)
	}
	return task
}

func openFile(t *testing.T, task *engine.Task, ctx context.Context, index int) *engine.Reader {
	t.Helper()
	r, err := task.OpenFile(ctx, index)
	if err != nil {
		t.Fatalf("OpenFile(%d): %v", index, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func timeout(t *testing.T, d time.Duration) context.Context {
	// d only turns a hang into a failure: generous, so a loaded machine never reaches it.
	ctx, cancel := context.WithTimeout(t.Context(), max(d, enginetest.EventWait))
	t.Cleanup(cancel)
	return ctx
}

// TestStreamFullRead streams the largest video of a multi-file torrent end to end.
func TestStreamFullRead(t *testing.T) {
	src := t.TempDir()
	dir := filepath.Join(src, "Show")
	moviePath, movieSum := enginetest.WriteRandomFile(t, dir, "movie.mkv", 6<<20+12345, 1)
	enginetest.WriteRandomFile(t, dir, "extra.bin", 3<<20, 2)
	enginetest.WriteRandomFile(t, dir, "sample.mp4", 1<<20, 3)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: pieceLen})
	si := seeder.Add(t, dir)

	le := enginetest.NewEngine(t)
	dumpOnFailure(t, le, seeder.Engine())
	task := addStream(t, le, si.Magnet)
	if err := task.WaitInfo(timeout(t, 20*time.Second)); err != nil {
		t.Fatalf("WaitInfo: %v", err)
	}
	files := task.Files()
	sel := task.SelectedFile()
	if sel < 0 || files[sel].Path != "Show/movie.mkv" || !files[sel].Playable {
		t.Fatalf("SelectedFile() = %d in %+v, want Show/movie.mkv", sel, files)
	}
	r := openFile(t, task, timeout(t, 30*time.Second), -1)
	if got := r.File(); got != files[sel] {
		t.Errorf("Reader.File() = %+v, want %+v", got, files[sel])
	}
	if got := enginetest.SHA256Reader(t, r); got != movieSum {
		t.Fatalf("streamed sha256 = %s, want %s", got, movieSum)
	}
	st := enginetest.WaitStatus(t, task, 10*time.Second, func(s engine.Status) bool { return s.State == engine.StateCompleted })
	if st.Progress != 100 || st.DownloadedBytes != st.TotalBytes || st.TotalBytes != files[sel].Length || !st.StreamReady || st.FileName != "movie.mkv" {
		t.Errorf("Status() = %+v, want 100%% of movie.mkv and stream ready", st)
	}
	if st.PiecesComplete >= st.PiecesTotal {
		t.Errorf("stream task completed %d/%d pieces; want the other files left alone", st.PiecesComplete, st.PiecesTotal)
	}
	if _, err := os.Stat(filepath.Join(le.DownloadDir(), "Show", "movie.mkv")); err != nil {
		t.Errorf("downloaded file: %v", err)
	}
	_ = moviePath
}

// TestRandomSeeks reads 50 random ranges after seeks and compares them with the source.
func TestRandomSeeks(t *testing.T) {
	const size = 16 << 20
	path, _ := enginetest.WriteRandomFile(t, t.TempDir(), "movie.mp4", size, 4)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: pieceLen})
	si := seeder.Add(t, path)
	le := enginetest.NewEngine(t)
	dumpOnFailure(t, le, seeder.Engine())
	task := addStream(t, le, si.Magnet)
	r := openFile(t, task, timeout(t, 60*time.Second), -1)

	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		off := rng.Int64N(size)
		n := 1 + rng.IntN(512<<10)
		if off+int64(n) > size {
			n = int(size - off)
		}
		var pos int64
		var err error
		switch i % 3 {
		case 0:
			pos, err = r.Seek(off, io.SeekStart)
		case 1:
			cur, _ := r.Seek(0, io.SeekCurrent)
			pos, err = r.Seek(off-cur, io.SeekCurrent)
		case 2:
			pos, err = r.Seek(off-size, io.SeekEnd)
		}
		if err != nil || pos != off {
			t.Fatalf("Seek to %d = %d, %v", off, pos, err)
		}
		got := make([]byte, n)
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatalf("range %d: ReadFull(%d at %d): %v", i, n, off, err)
		}
		if want := readAt(t, path, off, n); !bytes.Equal(got, want) {
			t.Fatalf("range %d: %d bytes at %d differ from the source", i, n, off)
		}
	}
	if _, err := r.Seek(0, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read at end = %d, %v; want 0, EOF", n, err)
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek(-1) succeeded, want error")
	}
}

// TestColdStart opens and reads before the engine has the metainfo or any piece.
func TestColdStart(t *testing.T) {
	path, _ := enginetest.WriteRandomFile(t, t.TempDir(), "movie.webm", 4<<20, 5)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: pieceLen})
	si := seeder.Add(t, path)
	le := enginetest.NewEngine(t)
	dumpOnFailure(t, le, seeder.Engine())
	// No x.pe: the engine knows no peer yet.
	task := addStream(t, le, "magnet:?xt=urn:btih:"+si.InfoHash)

	type result struct {
		r   *engine.Reader
		b   []byte
		err error
	}
	done := make(chan result, 1) // buffered: the reader goroutine never blocks on send
	ctx := timeout(t, 30*time.Second)
	go func() {
		r, err := task.OpenFile(ctx, -1)
		if err != nil {
			done <- result{err: err}
			return
		}
		b := make([]byte, 1<<20)
		_, err = io.ReadFull(r, b)
		done <- result{r, b, err}
	}()
	select {
	case res := <-done:
		t.Fatalf("read finished before the engine had a peer: %v", res.err)
	default:
	}
	if st := task.Status(); st.State != engine.StateResolving {
		t.Errorf("Status().State = %s, want resolving", st.State)
	}
	if err := task.AddPeers(si.Peer.String()); err != nil {
		t.Fatalf("AddPeers: %v", err)
	}
	res := <-done
	if res.err != nil {
		t.Fatalf("cold read: %v", res.err)
	}
	defer res.r.Close()
	if !bytes.Equal(res.b, readAt(t, path, 0, len(res.b))) {
		t.Fatal("cold read returned wrong bytes")
	}
}

// TestSeekAnsweredBeforeMiddle checks that a seek to 90% is served before the pieces in
// between, with a seeder slow enough to tell.
func TestSeekAnsweredBeforeMiddle(t *testing.T) {
	const size = 24 << 20
	path, _ := enginetest.WriteRandomFile(t, t.TempDir(), "movie.mp4", size, 6)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: pieceLen, UploadRateBytes: 2 << 20})
	si := seeder.Add(t, path)
	le := enginetest.NewEngine(t)
	dumpOnFailure(t, le, seeder.Engine())
	task := addStream(t, le, si.Magnet)
	r := openFile(t, task, timeout(t, 60*time.Second), -1)

	head := make([]byte, 64<<10)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatalf("read head: %v", err)
	}
	off := int64(size) * 9 / 10
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	start := time.Now()
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("read at 90%%: %v", err)
	}
	elapsed := time.Since(start)
	first, last := int(size/10/pieceLen), int(size*8/10/pieceLen)
	middle := 0
	for p := first; p < last; p++ {
		if engine.PieceComplete(task, p) {
			middle++
		}
	}
	t.Logf("read at 90%% took %v; %d of %d middle pieces complete", elapsed, middle, last-first)
	if middle > (last-first)/4 {
		t.Errorf("%d of %d pieces between 10%% and 80%% were complete when the read at 90%% returned", middle, last-first)
	}
	if !bytes.Equal(buf, readAt(t, path, off, len(buf))) {
		t.Error("read at 90% returned wrong bytes")
	}
	st := enginetest.WaitStatus(t, task, 10*time.Second, func(s engine.Status) bool { return s.SpeedBps > 0 })
	if st.ETASeconds <= 0 || st.State != engine.StateDownloading || st.Progress <= 0 || st.Progress >= 100 {
		t.Errorf("Status() during download = %+v", st)
	}
}

// TestRestart checks that a restarted engine keeps verified pieces and the metainfo.
func TestRestart(t *testing.T) {
	const size = 16 << 20
	path, sum := enginetest.WriteRandomFile(t, t.TempDir(), "movie.mkv", size, 7)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: pieceLen, UploadRateBytes: 8 << 20})
	si := seeder.Add(t, path)
	opts := enginetest.Options(t)

	first, err := engine.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	task := addStream(t, first, si.Magnet)
	r, err := task.OpenFile(timeout(t, 30*time.Second), -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, r, 4<<20); err != nil {
		t.Fatalf("partial read: %v", err)
	}
	r.Close()
	before := task.Status()
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if before.PiecesComplete < 16 || before.PiecesComplete == before.PiecesTotal {
		t.Fatalf("before restart %d/%d pieces complete; want a partial download", before.PiecesComplete, before.PiecesTotal)
	}

	second, err := engine.New(opts)
	if err != nil {
		t.Fatalf("New after restart: %v", err)
	}
	t.Cleanup(func() { second.Close() })
	task = addStream(t, second, "magnet:?xt=urn:btih:"+si.InfoHash)
	if err := task.WaitInfo(timeout(t, 2*time.Minute)); err != nil { // from the cache; a hang guard
		t.Fatalf("WaitInfo without peers after restart: %v", err)
	}
	// Pieces whose file may have changed since they were verified are hashed
	// again in the background before they count as complete (an engine that
	// wrote after recording the file's mtime, or a loaded machine, can cause
	// that), so await the count instead of reading it once.
	enginetest.WaitFor(t, 2*time.Minute, "verified pieces restored", func() bool {
		return task.Status().PiecesComplete >= before.PiecesComplete
	})
	after := task.Status()
	if after.PiecesComplete < before.PiecesComplete || after.BytesFromPeers != 0 || after.TotalBytes != size {
		t.Fatalf("after restart, before peers: %+v; want >= %d pieces complete, nothing from peers", after, before.PiecesComplete)
	}
	if err := task.AddPeers(si.Peer.String()); err != nil {
		t.Fatal(err)
	}
	r2 := openFile(t, task, timeout(t, 60*time.Second), -1)
	if got := enginetest.SHA256Reader(t, r2); got != sum {
		t.Fatalf("sha256 after restart = %s, want %s", got, sum)
	}
	final := task.Status()
	missing := int64(after.PiecesTotal-after.PiecesComplete) * pieceLen
	if final.BytesFromPeers > missing+4*pieceLen {
		t.Errorf("fetched %d bytes after restart; only %d were missing", final.BytesFromPeers, missing)
	}
}

// peerlessStream adds a stream task of an 8 MiB file of pieceLen pieces with no peers, so
// that nothing completes, and waits until the library has read every piece's completion
// from storage: until then it reports a piece's priority as None whatever is claimed.
func peerlessStream(t *testing.T) *engine.Task {
	t.Helper()
	dataPath, _ := enginetest.WriteRandomFile(t, t.TempDir(), "movie.mp4", 8<<20, 8)
	torrentPath, _ := enginetest.WriteTorrentFile(t, t.TempDir(), dataPath, pieceLen)
	le := enginetest.NewEngine(t)
	dumpOnFailure(t, le)
	task := addStream(t, le, torrentPath)
	enginetest.WaitFor(t, 30*time.Second, "the pieces' completion read from storage", func() bool {
		for p := range (8 << 20) / pieceLen {
			if !engine.PieceCompletionKnown(task, p) {
				return false
			}
		}
		return true
	})
	return task
}

// TestReaderCloseReleasesPriorities checks the graded window and its release.
func TestReaderCloseReleasesPriorities(t *testing.T) {
	task := peerlessStream(t)
	enginetest.WaitFor(t, 10*time.Second, "initial piece checks", func() bool {
		for p := 8; p < 24; p++ {
			if engine.LibraryPiecePriority(task, p) != engine.PrioNormal {
				return false
			}
		}
		return true
	})

	// The first and last 512 KiB (two pieces at each end) come before the rest of the
	// 2 MiB edges: a probe wants the header and the index at the very end first.
	edges := engine.PiecePriorities(task)
	for p, want := range map[int]int{0: engine.PrioReadahead, 1: engine.PrioReadahead, 2: engine.PrioHigh, 7: engine.PrioHigh,
		24: engine.PrioHigh, 29: engine.PrioHigh, 30: engine.PrioReadahead, 31: engine.PrioReadahead} {
		if edges[p] != want {
			t.Errorf("head/tail piece %d priority %d, want %d", p, edges[p], want)
		}
	}
	if len(edges) != 16 {
		t.Errorf("%d pieces claimed before any reader, want the 2 MiB at each end (16)", len(edges))
	}

	r := openFile(t, task, t.Context(), -1)
	if _, err := r.Seek(4<<20, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	prios := engine.PiecePriorities(task)
	want := map[int]int{16: engine.PrioNow, 17: engine.PrioNext, 18: engine.PrioReadahead, 24: engine.PrioReadahead, 25: engine.PrioHigh, 31: engine.PrioReadahead}
	for p, w := range want {
		if prios[p] != w {
			t.Errorf("after seek, piece %d priority %d, want %d", p, prios[p], w)
		}
	}
	if got := engine.LibraryPiecePriority(task, 16); got != engine.PrioNow {
		t.Errorf("library priority of piece 16 = %d, want Now", got)
	}

	r2 := openFile(t, task, t.Context(), -1)
	if _, err := r2.Seek(5<<20, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	prios = engine.PiecePriorities(task)
	for p := 16; p < 20; p++ {
		if _, ok := prios[p]; ok {
			t.Errorf("after Close, piece %d still claimed (%d)", p, prios[p])
		}
		if got := engine.LibraryPiecePriority(task, p); got != engine.PrioNormal {
			t.Errorf("after Close, library priority of piece %d = %d, want Normal", p, got)
		}
	}
	if prios[20] != engine.PrioNow {
		t.Errorf("the other reader's piece 20 priority %d, want Now", prios[20])
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	if got := engine.PiecePriorities(task); len(got) != len(edges) {
		t.Errorf("after both readers closed, claims %v, want only head and tail %v", got, edges)
	}
}

// TestReaderSpan: a reader told the bounded range it will read (a player's or
// the hls prefetch's Range request) wants the first part of it at once, what the task
// downloads in a second but at least two pieces, and a read there that waits puts all of
// those, and only those, in urgent mode; the rest of a long span is read ahead as any read
// is (Chromium asks for an MP4 up to its index at the end: all of that at once from a
// slow swarm made its first read wait for megabytes). A reader without a span wants only
// the piece under it there.
func TestReaderSpan(t *testing.T) {
	task := peerlessStream(t)

	r := openFile(t, task, t.Context(), -1)
	off := int64(4<<20) + 100
	r.SetSpan(off, off+12*pieceLen) // pieces 16 to 28; nothing downloads here
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	prios := engine.PiecePriorities(task)
	for p := 16; p <= 28; p++ {
		// Two pieces' bytes from 100 bytes into piece 16 end in piece 18.
		if now := prios[p] == engine.PrioNow; now != (p <= 18) {
			t.Errorf("piece %d of the span: priority %d, want Now only for the first two pieces' bytes", p, prios[p])
		}
	}
	if prios[19] == engine.PrioNone {
		t.Error("piece 19, in the span, not read ahead")
	}
	ctx, cancel := context.WithCancel(t.Context())
	r.SetContext(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 32<<10))
		done <- err
	}()
	enginetest.WaitFor(t, 30*time.Second, "the read to go urgent", func() bool { return engine.Urgent(task) })
	for p := 16; p <= 21; p++ {
		want := engine.PrioNone
		if p <= 18 {
			want = engine.PrioNow
		}
		if got := engine.LibraryPiecePriority(task, p); got != want {
			t.Errorf("urgent: library priority of piece %d = %d, want %d", p, got, want)
		}
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("a read of missing pieces returned no error when cancelled")
	}

	// Without a span, urgency covers the piece under the read only.
	r2 := openFile(t, task, t.Context(), -1)
	if _, err := r2.Seek(6<<20, io.SeekStart); err != nil { // piece 24
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(t.Context())
	r2.SetContext(ctx2)
	go func() {
		_, err := r2.Read(make([]byte, 32<<10))
		done <- err
	}()
	enginetest.WaitFor(t, 30*time.Second, "the read to go urgent", func() bool {
		return engine.Urgent(task) && engine.LibraryPiecePriority(task, 24) == engine.PrioNow
	})
	if got := engine.LibraryPiecePriority(task, 25); got != engine.PrioNone {
		t.Errorf("urgent without a span: library priority of piece 25 = %d, want None", got)
	}
	cancel2()
	<-done
}

// TestDownloadAll downloads a whole multi-file torrent (not a stream task).
func TestDownloadAll(t *testing.T) {
	src := filepath.Join(t.TempDir(), "Album")
	_, sumA := enginetest.WriteRandomFile(t, src, "a.bin", 3<<20+7, 9)
	_, sumB := enginetest.WriteRandomFile(t, src, "sub/b.bin", 2<<20, 10)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: pieceLen})
	si := seeder.Add(t, src)
	le := enginetest.NewEngine(t)
	dumpOnFailure(t, le, seeder.Engine())
	task, err := le.Add(t.Context(), engine.AddSpec{ID: "album", Source: si.Magnet, FileIndex: -1, Title: "An album"})
	if err != nil {
		t.Fatal(err)
	}
	st := enginetest.WaitStatus(t, task, 30*time.Second, func(s engine.Status) bool { return s.State == engine.StateCompleted })
	if st.ID != "album" || st.Title != "An album" || st.Name != "Album" || st.FileIndex != -1 || st.Progress != 100 {
		t.Errorf("Status() = %+v", st)
	}
	if _, err := task.OpenFile(t.Context(), -1); !errors.Is(err, engine.ErrNoPlayableFile) {
		t.Errorf("OpenFile(-1) without a video = %v, want ErrNoPlayableFile", err)
	}
	for rel, want := range map[string]string{"Album/a.bin": sumA, "Album/sub/b.bin": sumB} {
		if got := enginetest.SHA256File(t, filepath.Join(le.DownloadDir(), rel)); got != want {
			t.Errorf("%s sha256 = %s, want %s", rel, got, want)
		}
	}
	if got := le.Tasks(); len(got) != 1 || got[0].ID != "album" {
		t.Errorf("Tasks() = %+v", got)
	}
}

// streamBeforePeer makes a 4 MiB movie (from seed), seeds it, and adds it to a new leecher
// engine as a stream task from its .torrent, without the seeder's address: the task has the
// metainfo and no peer until the test hands it si.Peer.
func streamBeforePeer(t *testing.T, seed int64) (le *engine.Engine, task *engine.Task, si engine.SeedInfo, path string) {
	t.Helper()
	path, _ = enginetest.WriteRandomFile(t, t.TempDir(), "movie.mp4", 4<<20, seed)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: pieceLen})
	si = seeder.Add(t, path)
	le = enginetest.NewEngine(t)
	dumpOnFailure(t, le, seeder.Engine())
	torrentPath, _ := enginetest.WriteTorrentFile(t, t.TempDir(), path, pieceLen)
	return le, addStream(t, le, torrentPath), si, path
}

// TestPauseResume checks that a paused task fails reads that need data, then resumes.
func TestPauseResume(t *testing.T) {
	le, task, si, path := streamBeforePeer(t, 11)
	if err := le.Pause(task.ID()); err != nil {
		t.Fatal(err)
	}
	if st := task.Status(); st.State != engine.StatePaused {
		t.Errorf("State after Pause = %s, want paused", st.State)
	}
	if err := task.AddPeers(si.Peer.String()); err != nil {
		t.Fatal(err)
	}
	r := openFile(t, task, timeout(t, 30*time.Second), -1)
	if _, err := r.Read(make([]byte, 1024)); !errors.Is(err, engine.ErrPaused) {
		t.Errorf("Read while paused = %v, want ErrPaused", err)
	}
	if err := le.Resume(task.ID()); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 1<<20)
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatalf("Read after Resume: %v", err)
	}
	if !bytes.Equal(got, readAt(t, path, 0, len(got))) {
		t.Error("wrong bytes after Resume")
	}
	if err := le.Pause("nope"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Pause(unknown) = %v, want ErrNotFound", err)
	}
}

// TestKickKeepsOtherReadersWaiting: a kick (kick.go) turns the task's downloading off and on
// again, and the library fails every read that waits for data meanwhile. A reader that waits
// while another reader's seek kicks must go on waiting, and get its bytes once a peer sends
// them. (Found by the qbt-1m benchmark: one of four concurrent readers got a 206 and no byte
// in 3 of 43 rounds.)
func TestKickKeepsOtherReadersWaiting(t *testing.T) {
	_, task, si, path := streamBeforePeer(t, 41) // no peer yet: the read below waits
	r := openFile(t, task, timeout(t, 30*time.Second), -1)
	got := make([]byte, 1<<20)
	done := make(chan error, 1) // buffered: the reader never waits for the test
	go func() {
		_, err := io.ReadFull(r, got)
		done <- err
	}()
	// Each kick must come while the read is parked in the library's wait for data (its
	// reader's waitAvailable), as the read's goroutine's stack says. The library reads
	// once more after a failed wait, so a single kick would not show the failure: several
	// must, each after the read is back in its wait.
	kickParked(t, task, 5, "the read", func() bool {
		select {
		case err := <-done:
			t.Fatalf("the read ended after %d kicks, before any peer: %v", engine.Kicks(task), err)
		default:
		}
		return parkedIn("TestKickKeepsOtherReadersWaiting.func", "waitAvailable")
	})
	if err := task.AddPeers(si.Peer.String()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("read after the kicks: %v", err)
	}
	if !bytes.Equal(got, readAt(t, path, 0, len(got))) {
		t.Error("wrong bytes after the kicks")
	}
}

// TestKickKeepsBitrateProbeWaiting: the bitrate probe reads the container's header through a
// library reader of its own, so kicks must not end its wait either; a probe that gave up
// leaves the file's bitrate unknown, and the buffered seconds at 0, for good.
func TestKickKeepsBitrateProbeWaiting(t *testing.T) {
	film := filepath.Join(t.TempDir(), "film.mp4") // a file, not the repository's symlink
	if err := os.WriteFile(film, readFile(t, sampleMP4), 0o644); err != nil {
		t.Fatal(err)
	}
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: pieceLen})
	si := seeder.Add(t, film)
	le := enginetest.NewEngine(t)
	dumpOnFailure(t, le, seeder.Engine())
	torrentPath, _ := enginetest.WriteTorrentFile(t, t.TempDir(), film, pieceLen)
	task := addStream(t, le, torrentPath) // no peer yet: the probe waits for the header
	kickParked(t, task, 5, "the probe", func() bool { return parkedIn("probeBitrate", "waitAvailable") })
	if err := task.AddPeers(si.Peer.String()); err != nil {
		t.Fatal(err)
	}
	st := enginetest.WaitStatus(t, task, enginetest.EventWait, func(s engine.Status) bool {
		return s.TotalBytes > 0 && s.BufferedBytes == s.TotalBytes && s.BufferedSeconds > 0
	})
	if st.BufferedSeconds < 29.9 || st.BufferedSeconds > 30.1 {
		t.Errorf("Status() buffered the whole file as %.2f s, want 30 s", st.BufferedSeconds)
	}
}

// kickParked kicks task n times, each once parked says a read (named by what) waits in the
// library, and then waits for parked once more: the read must wait again after the last
// kick. Every kick must count.
func kickParked(t *testing.T, task *engine.Task, n int, what string, parked func() bool) {
	t.Helper()
	for i := 0; i <= n; i++ {
		enginetest.WaitFor(t, 30*time.Second, fmt.Sprintf("%s to wait for data in the library after %d kicks", what, i), parked)
		if i == n {
			break
		}
		engine.KickNow(task)
		if got := engine.Kicks(task); got != int64(i+1) {
			t.Fatalf("%d kicks, want %d", got, i+1)
		}
	}
}

// parkedIn reports whether a goroutine whose stack holds both fn and wait is parked in a
// select or on a channel.
func parkedIn(fn, wait string) bool {
	buf := make([]byte, 1<<20)
	for g := range bytes.SplitSeq(buf[:runtime.Stack(buf, true)], []byte("\n\n")) {
		head, _, _ := bytes.Cut(g, []byte("\n"))
		parked := bytes.Contains(head, []byte("[select")) || bytes.Contains(head, []byte("[chan receive"))
		if parked && bytes.Contains(g, []byte(fn)) && bytes.Contains(g, []byte(wait)) {
			return true
		}
	}
	return false
}

// TestRemove deletes only the files of the removed torrent.
func TestRemove(t *testing.T) {
	src := filepath.Join(t.TempDir(), "Pack")
	enginetest.WriteRandomFile(t, src, "movie.mp4", 2<<20, 12)
	enginetest.WriteRandomFile(t, src, "sub/notes.bin", 1<<20, 13)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: pieceLen})
	si := seeder.Add(t, src)
	le := enginetest.NewEngine(t)
	dumpOnFailure(t, le, seeder.Engine())
	task, err := le.Add(t.Context(), engine.AddSpec{Source: si.Magnet, FileIndex: -1})
	if err != nil {
		t.Fatal(err)
	}
	enginetest.WaitStatus(t, task, 30*time.Second, func(s engine.Status) bool { return s.State == engine.StateCompleted })
	dl := le.DownloadDir()
	other := filepath.Join(dl, "other.bin")
	mine := filepath.Join(dl, "Pack", "mine.txt") // the user's file inside the torrent's folder
	for _, p := range []string{other, mine} {
		if err := os.WriteFile(p, []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := le.Remove(task.ID(), true); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	for _, p := range []string{"Pack/movie.mp4", "Pack/sub/notes.bin", "Pack/sub"} {
		if _, err := os.Stat(filepath.Join(dl, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after Remove: %v, want not exist", p, err)
		}
	}
	for _, p := range []string{other, mine} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("unrelated %s after Remove: %v", p, err)
		}
	}
	if _, err := le.Task(task.ID()); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Task after Remove = %v, want ErrNotFound", err)
	}
	if err := le.Remove(task.ID(), true); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("second Remove = %v, want ErrNotFound", err)
	}
	// Removing a seed never deletes the seeded files.
	if err := seeder.Engine().Remove(si.TaskID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(src, "movie.mp4")); err != nil {
		t.Errorf("seeded file after removing the seed: %v", err)
	}
}

// TestWarmGrace checks that a stream task idles after its last reader and wakes on open.
func TestWarmGrace(t *testing.T) {
	dataPath, _ := enginetest.WriteRandomFile(t, t.TempDir(), "movie.mp4", 2<<20, 14)
	torrentPath, _ := enginetest.WriteTorrentFile(t, t.TempDir(), dataPath, pieceLen)
	le := enginetest.NewEngine(t, func(o *engine.Options) { o.WarmGrace = 50 * time.Millisecond })
	dumpOnFailure(t, le)
	task := addStream(t, le, torrentPath)
	r, err := task.OpenFile(t.Context(), -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	enginetest.WaitStatus(t, task, 5*time.Second, func(s engine.Status) bool { return s.Idle })
	openFile(t, task, t.Context(), -1)
	if st := task.Status(); st.Idle || st.State != engine.StateDownloading {
		t.Errorf("Status() after OpenFile = %+v, want awake and downloading", st)
	}
}

// TestSeed checks the magnet Seed returns.
func TestSeed(t *testing.T) {
	path, _ := enginetest.WriteRandomFile(t, t.TempDir(), "clip.mp4", 300<<10, 15)
	se := enginetest.NewEngine(t)
	si, err := se.Seed(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	src, err := engine.ParseSource(si.Magnet)
	if err != nil {
		t.Fatalf("ParseSource(%q): %v", si.Magnet, err)
	}
	if src.InfoHash != si.InfoHash || src.DisplayName != "clip.mp4" || len(src.Peers) != 1 || src.Peers[0] != si.Peer.String() {
		t.Errorf("magnet %q parses to %+v; want xt=%s dn=clip.mp4 x.pe=%s", si.Magnet, src, si.InfoHash, si.Peer)
	}
	if si.Peer != se.ListenAddr() {
		t.Errorf("Peer = %s, want the listen address %s", si.Peer, se.ListenAddr())
	}
	again, err := se.Seed(t.Context(), path)
	if err != nil || again != si {
		t.Errorf("Seed again = %+v, %v; want %+v", again, err, si)
	}
	if st, err := se.Task(si.TaskID); err != nil || st.Status().State != engine.StateSeeding {
		t.Errorf("seed task = %v, %v; want seeding", st, err)
	}
	if _, err := se.Seed(t.Context(), filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Seed(missing) succeeded")
	}
	bad := filepath.Join(t.TempDir(), "bad\nname.mp4")
	if err := os.WriteFile(bad, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := se.Seed(t.Context(), bad); !errors.Is(err, engine.ErrUnsafePath) {
		t.Errorf("Seed(name with newline) = %v, want ErrUnsafePath", err)
	}
	empty := t.TempDir()
	if _, err := se.Seed(t.Context(), empty); err == nil {
		t.Error("Seed(empty dir) succeeded")
	}
}

// TestAddErrors covers bad input, duplicates and the task cap.
func TestAddErrors(t *testing.T) {
	dataPath, _ := enginetest.WriteRandomFile(t, t.TempDir(), "movie.mp4", 1<<20, 16)
	torrentPath, ih := enginetest.WriteTorrentFile(t, t.TempDir(), dataPath, pieceLen)
	garbage := filepath.Join(t.TempDir(), "garbage.torrent")
	if err := os.WriteFile(garbage, []byte("d4:infoi3ee"), 0o644); err != nil {
		t.Fatal(err)
	}
	le := enginetest.NewEngine(t, func(o *engine.Options) { o.MaxActive = 1 })
	dumpOnFailure(t, le)

	for _, src := range []string{"", "nonsense", "magnet:?xt=urn:btih:123", garbage} {
		if _, err := le.Add(t.Context(), engine.AddSpec{Source: src, FileIndex: -1}); !errors.Is(err, engine.ErrBadSource) {
			t.Errorf("Add(%q) = %v, want ErrBadSource", src, err)
		}
	}
	if _, err := le.Add(t.Context(), engine.AddSpec{Source: filepath.Join(t.TempDir(), "missing.torrent"), FileIndex: -1}); err == nil {
		t.Error("Add(missing file) succeeded")
	}
	if _, err := le.Add(t.Context(), engine.AddSpec{Source: torrentPath, FileIndex: -2}); err == nil {
		t.Error("Add(FileIndex -2) succeeded")
	}
	task, err := le.Add(t.Context(), engine.AddSpec{ID: "one", Source: torrentPath, FileIndex: -1})
	if err != nil {
		t.Fatal(err)
	}
	if task.InfoHash() != ih || task.ID() != "one" {
		t.Errorf("task = %s/%s, want one/%s", task.ID(), task.InfoHash(), ih)
	}
	if again, err := le.Add(t.Context(), engine.AddSpec{ID: "one", Source: "magnet:?xt=urn:btih:" + ih, FileIndex: -1}); err != nil || again != task {
		t.Errorf("re-Add same id and infohash = %v, %v; want the same task", again, err)
	}
	if _, err := le.Add(t.Context(), engine.AddSpec{ID: "two", Source: ih, FileIndex: -1}); !errors.Is(err, engine.ErrExists) {
		t.Errorf("Add(same infohash, other id) = %v, want ErrExists", err)
	}
	if _, err := le.Add(t.Context(), engine.AddSpec{ID: "one", Source: hexHash, FileIndex: -1}); !errors.Is(err, engine.ErrExists) {
		t.Errorf("Add(same id, other infohash) = %v, want ErrExists", err)
	}
	if got := le.FreeSlots(); got != 0 {
		t.Errorf("FreeSlots() = %d, want 0", got)
	}
	if _, err := le.Add(t.Context(), engine.AddSpec{Source: hexHash, FileIndex: -1}); !errors.Is(err, engine.ErrTooManyTasks) {
		t.Errorf("Add beyond MaxActive = %v, want ErrTooManyTasks", err)
	}
	if err := le.Pause("one"); err != nil {
		t.Fatal(err)
	}
	if _, err := le.Add(t.Context(), engine.AddSpec{Source: hexHash, FileIndex: 3}); err != nil {
		t.Errorf("Add after pausing the active task: %v", err)
	}
	if _, err := le.Task("missing"); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("Task(missing) = %v, want ErrNotFound", err)
	}
	if _, err := task.OpenFile(t.Context(), 5); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("OpenFile(5) = %v, want ErrNotFound", err)
	}
}

// TestFileIndexOutOfRange fails a task whose requested file does not exist.
func TestFileIndexOutOfRange(t *testing.T) {
	dataPath, _ := enginetest.WriteRandomFile(t, t.TempDir(), "movie.mp4", 1<<20, 17)
	torrentPath, _ := enginetest.WriteTorrentFile(t, t.TempDir(), dataPath, pieceLen)
	le := enginetest.NewEngine(t)
	dumpOnFailure(t, le)
	task, err := le.Add(t.Context(), engine.AddSpec{Source: torrentPath, FileIndex: 3, Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := task.WaitInfo(t.Context()); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("WaitInfo = %v, want ErrNotFound", err)
	}
	if st := task.Status(); st.State != engine.StateFailed || st.Error == "" {
		t.Errorf("Status() = %+v, want failed with an error", st)
	}
	// A stream task without a video file fails too.
	txt, _ := enginetest.WriteRandomFile(t, t.TempDir(), "notes.txt", 1<<10, 18)
	txtTorrent, _ := enginetest.WriteTorrentFile(t, t.TempDir(), txt, 16<<10)
	task = addStream(t, le, txtTorrent)
	if err := task.WaitInfo(t.Context()); !errors.Is(err, engine.ErrNoPlayableFile) {
		t.Errorf("WaitInfo(no video) = %v, want ErrNoPlayableFile", err)
	}
}

// TestNoGoroutineLeak checks that closed engines leave no goroutines behind.
func TestNoGoroutineLeak(t *testing.T) {
	run := func() {
		path, sum := enginetest.WriteRandomFile(t, t.TempDir(), "movie.mp4", 2<<20, 19)
		seedOpts, leechOpts := enginetest.Options(t), enginetest.Options(t)
		se, err := engine.New(seedOpts)
		if err != nil {
			t.Fatal(err)
		}
		le, err := engine.New(leechOpts)
		if err != nil {
			t.Fatal(err)
		}
		si, err := se.Seed(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		task := addStream(t, le, si.Magnet)
		r, err := task.OpenFile(timeout(t, 30*time.Second), -1)
		if err != nil {
			t.Fatal(err)
		}
		if got := enginetest.SHA256Reader(t, r); got != sum {
			t.Errorf("sha256 = %s, want %s", got, sum)
		}
		r.Close()
		if err := errors.Join(le.Close(), se.Close()); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	run() // warm up: the libraries start some goroutines once per process
	before := runtime.NumGoroutine()
	run()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		select {
		case <-t.Context().Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestNewErrors covers bad options.
func TestNewErrors(t *testing.T) {
	t.Parallel()
	base := enginetest.Options(t)
	tests := []struct {
		name string
		mod  func(*engine.Options)
	}{
		{"no download dir", func(o *engine.Options) { o.DownloadDir = "" }},
		{"no data dir", func(o *engine.Options) { o.DataDir = "" }},
		{"host name", func(o *engine.Options) { o.ListenHost = "localhost" }},
		{"bad port", func(o *engine.Options) { o.ListenPort = 70000 }},
		{"negative rate", func(o *engine.Options) { o.UploadRateBytes = -1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mod(&o)
			if e, err := engine.New(o); err == nil {
				e.Close()
				t.Errorf("New(%s) succeeded", tc.name)
			}
		})
	}
	// Two engines cannot share a data dir.
	e := enginetest.NewEngine(t, func(o *engine.Options) { o.DataDir = base.DataDir })
	_ = e
	o := base
	o.DownloadDir = t.TempDir()
	if e2, err := engine.New(o); err == nil {
		e2.Close()
		t.Error("second engine on the same data dir succeeded")
	} else if !strings.Contains(err.Error(), base.DataDir) {
		t.Errorf("error %q does not name the data dir", err)
	}
}
