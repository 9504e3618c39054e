package engine_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"weak"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// rssKiB returns the resident set size of this process in KiB, 0 where /proc is absent.
// Logged for docs/testing.md, never asserted: the runtime returns freed pages to the OS at
// its own pace.
func rssKiB() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// awaitCollected runs the garbage collector until neither the removed task nor its library
// torrent is reachable. Whatever still referred to them a moment after Remove (a connection
// goroutine finishing) lets go by itself; a real retainer never does, and the generous
// deadline turns that into a failure.
func awaitCollected(t *testing.T, what string, task weak.Pointer[engine.Task], torrentAlive func() bool) {
	t.Helper()
	enginetest.WaitFor(t, enginetest.EventWait, what+" collected after Remove", func() bool {
		runtime.GC()
		return task.Value() == nil && !torrentAlive()
	})
}

// TestRemovedTaskMemoryReturns admits a torrent of DefaultMaxFiles files (the most the
// default bounds admit), removes it, and checks that nothing keeps it: the task and the
// library's torrent are collected, and the live heap (HeapAlloc after GC, steadier than RSS)
// comes back to within 4 MiB of where it started. Adding the torrent costs about 16 MiB of
// heap, and before releaseDeferred (memory.go) all of it stayed. The 4 MiB slack is for what
// the runtime, the race detector and the test framework allocate meanwhile; a retained
// torrent of this size cannot fit in it, and the test checks that the add did grow the heap
// by more than the slack, so the measure is not vacuous.
func TestRemovedTaskMemoryReturns(t *testing.T) {
	const slack = 4 << 20
	path, _ := enginetest.WriteInfo(t, t.TempDir(), packInfo(engine.DefaultMaxFiles))
	e := enginetest.NewEngine(t)
	for round := range 2 { // twice: a second add and remove must not leave more behind
		base, baseRSS := heapInuse(), rssKiB()
		task, err := e.Add(t.Context(), engine.AddSpec{Source: path, FileIndex: -1})
		if err != nil {
			t.Fatalf("Add(%d files) = %v", engine.DefaultMaxFiles, err)
		}
		added, addedRSS := heapInuse(), rssKiB()
		wTask, torAlive := weak.Make(task), engine.WeakTorrent(task)
		if err := e.Remove(task.ID(), false); err != nil {
			t.Fatal(err)
		}
		task = nil
		awaitCollected(t, "10,000-file task", wTask, torAlive)
		after, afterRSS := heapInuse(), rssKiB()
		t.Logf("round %d: heap %d KiB, with the task %d KiB, after Remove %d KiB; RSS %d, %d, %d KiB",
			round, base>>10, added>>10, after>>10, baseRSS, addedRSS, afterRSS)
		if added < base+slack {
			t.Fatalf("heap grew only from %d KiB to %d KiB with a %d-file task; the test measures nothing", base>>10, added>>10, engine.DefaultMaxFiles)
		}
		if after > base+slack {
			t.Errorf("heap after Remove = %d KiB, want at most %d KiB (start %d KiB + %d KiB)", after>>10, (base+slack)>>10, base>>10, slack>>10)
		}
	}
}

// TestRemovedDownloadCollected downloads a many-file torrent from a loopback seeder through
// its magnet (connections, hashing, metainfo from a peer), removes it, and checks that
// nothing keeps the task or its library torrent.
func TestRemovedDownloadCollected(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Pack")
	for i := range 300 {
		enginetest.WriteRandomFile(t, dir, fmt.Sprintf("f%03d.bin", i), 4<<10+int64(i), int64(i))
	}
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: 64 << 10})
	si := seeder.Add(t, dir)
	le := enginetest.NewEngine(t)
	task, err := le.Add(t.Context(), engine.AddSpec{Source: si.Magnet, FileIndex: -1})
	if err != nil {
		t.Fatalf("Add(magnet) = %v", err)
	}
	enginetest.WaitStatus(t, task, enginetest.EventWait, func(s engine.Status) bool {
		return s.State == engine.StateCompleted || s.State == engine.StateSeeding
	})
	wTask, torAlive := weak.Make(task), engine.WeakTorrent(task)
	if err := le.Remove(task.ID(), true); err != nil {
		t.Fatal(err)
	}
	task = nil
	awaitCollected(t, "downloaded task", wTask, torAlive)
}

// TestRemovedStreamCollected streams a video through the engine's reader (piece priorities,
// urgency, the container-duration probe), closes the reader, removes the task, and checks
// that nothing keeps the task or its library torrent.
func TestRemovedStreamCollected(t *testing.T) {
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{})
	si := seeder.Add(t, sampleMP4)
	le := enginetest.NewEngine(t)
	task, err := le.Add(t.Context(), engine.AddSpec{Source: si.Magnet, FileIndex: -1, Stream: true})
	if err != nil {
		t.Fatalf("Add(magnet) = %v", err)
	}
	// Not openFile: its cleanup would keep the reader, and through it the task.
	r, err := task.OpenFile(timeout(t, enginetest.EventWait), -1)
	if err != nil {
		t.Fatalf("OpenFile = %v", err)
	}
	if got, want := enginetest.SHA256Reader(t, r), enginetest.SHA256File(t, sampleMP4); got != want {
		t.Fatalf("streamed sha256 = %s, want %s", got, want)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r = nil
	wTask, torAlive := weak.Make(task), engine.WeakTorrent(task)
	if err := le.Remove(task.ID(), true); err != nil {
		t.Fatal(err)
	}
	task = nil
	awaitCollected(t, "streamed task", wTask, torAlive)
}
