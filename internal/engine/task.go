package engine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
)

// State is a task's lifecycle state.
type State string

// Task states.
const (
	StateResolving   State = "resolving"   // waiting for the metainfo
	StateDownloading State = "downloading" // wanted data incomplete
	StateSeeding     State = "seeding"     // wanted data complete, uploading
	StateCompleted   State = "completed"   // wanted data complete, not uploading
	StateFailed      State = "failed"      // see Status.Error; after ErrDiskFull or ErrWrite, Resume retries
	StatePaused      State = "paused"      // paused by Pause
)

// File is one file of a torrent.
type File struct {
	Index int `json:"index"`
	// Path is the sanitised path relative to the download directory, slash-separated;
	// for a multi-file torrent it starts with the torrent's directory.
	Path     string `json:"path"`
	Length   int64  `json:"length"`
	Playable bool   `json:"playable"`
}

// Status is a snapshot of a task.
type Status struct {
	ID       string `json:"id"`
	InfoHash string `json:"infoHash"`
	// Name is the torrent's name (sanitised), or the display name until the info is known.
	Name   string `json:"name"`
	Title  string `json:"title,omitempty"`
	Stream bool   `json:"stream"`
	State  State  `json:"state"`
	// Progress is 0-100 over the selected file for stream tasks, the whole torrent otherwise.
	Progress float64 `json:"progress"`
	// DownloadedBytes and TotalBytes cover the same data as Progress.
	DownloadedBytes int64 `json:"downloadedBytes"`
	TotalBytes      int64 `json:"totalBytes"`
	// SpeedBps and UploadSpeedBps are smoothed rates in bytes per second.
	SpeedBps       int64 `json:"speedBps"`
	UploadSpeedBps int64 `json:"uploadSpeedBps"`
	// ETASeconds is the estimated time to completion; 0 when complete, -1 when unknown.
	ETASeconds int64 `json:"eta"`
	// FileName is the base name of the selected file; FileIndex is its index, -1 if none.
	FileName  string `json:"fileName,omitempty"`
	FileIndex int    `json:"fileIndex"`
	// StreamReady reports that the head and tail of the selected file are verified.
	StreamReady bool `json:"streamReady"`
	// Idle reports a stream task that stopped downloading WarmGrace after its last reader.
	Idle  bool   `json:"idle,omitempty"`
	Error string `json:"error,omitempty"`
	// Notice explains something the engine changed, such as renamed unsafe file names.
	Notice string `json:"notice,omitempty"`

	Peers          int   `json:"peers"`
	KnownPeers     int   `json:"knownPeers"` // peers known (connected, connecting or waiting)
	Seeds          int   `json:"seeds"`
	PiecesComplete int   `json:"piecesComplete"`
	PiecesTotal    int   `json:"piecesTotal"`
	BytesFromPeers int64 `json:"bytesFromPeers"` // useful piece data received
	UploadedBytes  int64 `json:"uploadedBytes"`
	// BufferedBytes is the verified data of the selected file that follows the player's
	// position (the latest stream read) without a gap; BufferedSeconds is that span in
	// seconds of playback, 0 when the file's bitrate is unknown.
	BufferedBytes   int64   `json:"bufferedBytes"`
	BufferedSeconds float64 `json:"bufferedSeconds"`
}

// streamEdgeBytes is how much of the head and the tail of a streamed file is fetched first.
const streamEdgeBytes = 2 << 20

// streamEdgeFirstBytes of each end come before the rest of the edges. A player's or
// ffprobe's first reads want the container's header at the head and its index at the very
// end (Matroska's cues, an MP4's moov when it was not moved to the front); with the edges
// taken in piece order, the file's last piece came only after the whole 2 MiB head and
// the rest of the tail, about two seconds after the first byte from a 2 MB/s seeder.
const streamEdgeFirstBytes = 512 << 10

// Task is one torrent in the engine. Its methods are safe for concurrent use.
type Task struct {
	e        *Engine
	id       string
	key      string // 40-hex infohash the torrent is filed under
	title    string
	stream   bool
	seeded   bool // made by Engine.Seed: served in place, never written, never deleted
	wantFile int
	baseDir  string
	layout   *layoutCache
	prio     *ledger
	tor      *torrent.Torrent // set once in Add/Seed before the task is published

	infoReady chan struct{} // closed once the info is processed or the task failed before it
	infoOnce  sync.Once
	done      chan struct{} // closed when the task is removed or the engine closes
	doneOnce  sync.Once

	urg urgency
	// storeGen counts resumes; written with mu held, read without it by storage writes (see
	// onStoreError).
	storeGen atomic.Uint64
	// ver and res are the integrity state and the reserver of the task's storage, set when
	// it opens (see integrity.go); waiting counts reads blocked on missing pieces.
	ver     atomic.Pointer[verifier]
	res     atomic.Pointer[reserver]
	waiting atomic.Int32
	kicks   atomic.Int64 // how often a seek cancelled the outstanding requests (kick.go)

	// flagMu serialises what we tell the library about transfers (see syncFlags, poke).
	flagMu    sync.Mutex
	dlAllowed bool // guarded by flagMu
	ulAllowed bool // guarded by flagMu
	stopped   bool // guarded by flagMu; set by shutdown, after which the torrent is left alone

	mu       sync.Mutex // guards the fields below
	files    []File
	selected int
	edges    map[int]bool // files whose head and tail are claimed
	notice   string
	err      error
	storeErr error // a storage write failed (ErrDiskFull, ErrWrite); cleared by resume
	// retryDelay is the backoff of automatic retries after a storage error, 0 once the task
	// made progress; retryAt is when the next retry is due (see maintainStore).
	retryDelay time.Duration
	retryAt    time.Time
	paused     bool
	cold       bool
	readers    int
	lastClose  time.Time
	complete   bool
	ratioDone  bool
	down, up   meter
	bitrate    int64 // bits per second of the selected file, 0 if unknown
	// lastGot and lastGotAt track the last change of the bytes received, to spot
	// connections the library left idle (see maintain).
	lastGot   int64
	lastGotAt time.Time
	wake      idleWake // see idlewake.go

	played playPos // where the latest stream read happened; see Status.BufferedBytes
}

// idlePoke is how long a task that still wants data and has peers may receive nothing
// before its connections are poked (see Task.poke).
const idlePoke = 2 * time.Second

func newTask(e *Engine, id, key string, spec AddSpec, baseDir string, seeded bool) *Task {
	t := &Task{
		e:         e,
		id:        id,
		key:       key,
		title:     spec.Title,
		stream:    spec.Stream,
		seeded:    seeded,
		wantFile:  spec.FileIndex,
		baseDir:   baseDir,
		layout:    &layoutCache{fallback: key},
		infoReady: make(chan struct{}),
		done:      make(chan struct{}),
		dlAllowed: true,
		ulAllowed: true,
		selected:  -1,
		edges:     make(map[int]bool),
	}
	t.prio = newLedger(func(piece int, prio torrent.PiecePriority) {
		t.tor.Piece(piece).SetPriority(prio)
	})
	return t
}

// newStorage returns the task's file storage: files at their sanitised paths under baseDir,
// completion in the engine's database, no part files (so partial downloads survive a
// restart), space allocated before writing (see reserveStorage).
func (t *Task) newStorage() storage.ClientImpl {
	opts := storage.NewFileClientOpts{
		ClientBaseDir: t.baseDir,
		FilePathMaker: func(o storage.FilePathMakerOpts) string {
			return t.layout.pathFor(o.Info, o.File)
		},
		PieceCompletion: sharedCompletion{t.e.completion},
		Logger:          t.e.tlog,
	}
	opts.UsePartFiles.Set(false)
	return reserveStorage{
		ClientImpl: storage.NewFileOpts(opts),
		baseDir:    t.baseDir,
		layout:     t.layout,
		gen:        &t.storeGen,
		t:          t,
	}
}

// checkLayout fails when a file of info would be written through a symbolic link.
func (t *Task) checkLayout(info *metainfo.Info) error {
	if t.seeded {
		return nil
	}
	lay := t.layout.get(info)
	checked := make(map[string]bool)
	for _, p := range lay.paths {
		if err := checkNoSymlinks(t.baseDir, p, checked); err != nil {
			return err
		}
	}
	return nil
}

// ID returns the task's ID.
func (t *Task) ID() string { return t.id }

// InfoHash returns the 40-hex infohash the task is filed under (for a v2-only torrent, the
// truncated v2 infohash).
func (t *Task) InfoHash() string { return t.key }

// WaitInfo blocks until the task's metainfo is known, ctx is done, or the task fails or is
// removed.
func (t *Task) WaitInfo(ctx context.Context) error {
	select {
	case <-t.infoReady:
	case <-t.done:
		return fmt.Errorf("task %s: %w", t.id, ErrNotFound)
	case <-ctx.Done():
		return fmt.Errorf("wait for metainfo of %s: %w", t.key, context.Cause(ctx))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return t.err
	}
	select {
	case <-t.done:
		return fmt.Errorf("task %s: %w", t.id, ErrNotFound)
	default:
	}
	return nil
}

// HasInfo reports whether the task has its metainfo (its files are known).
func (t *Task) HasInfo() bool { return t.hasInfo() }

func (t *Task) hasInfo() bool {
	select {
	case <-t.infoReady:
		return true
	default:
		return false
	}
}

func (t *Task) isDone() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// awaitInfo waits for the library to fetch the metainfo from peers.
func (t *Task) awaitInfo() {
	select {
	case <-t.tor.GotInfo():
		t.onInfo(nil)
	case <-t.done:
	}
}

// onInfo validates the info, selects the file and sets priorities, and caches the metainfo
// in DataDir unless it is there already. mi is the metainfo the task was added with, or nil
// when it came from peers.
func (t *Task) onInfo(mi *metainfo.MetaInfo) {
	defer t.infoOnce.Do(func() { close(t.infoReady) })
	info := t.tor.Info()
	if info == nil {
		t.fail(fmt.Errorf("%w: the torrent library rejected the info dictionary", ErrBadTorrent))
		return
	}
	if err := checkInfo(info); err != nil {
		t.fail(err)
		return
	}
	if err := t.e.checkBounds(info); err != nil {
		t.fail(err)
		return
	}
	if err := t.checkLayout(info); err != nil {
		t.fail(err)
		return
	}
	lay := t.layout.get(info)
	tfs := t.tor.Files()
	files := make([]File, len(tfs))
	for i, f := range tfs {
		files[i] = File{Index: i, Path: lay.paths[i], Length: f.Length(), Playable: playable(lay.paths[i])}
	}
	sel := t.wantFile
	if sel >= len(files) {
		t.fail(fmt.Errorf("file index %d: torrent has %d files: %w", sel, len(files), ErrNotFound))
		return
	}
	if sel < 0 {
		sel = largestPlayable(files)
	}
	if t.stream && sel < 0 {
		t.fail(fmt.Errorf("%w: no video file in the torrent", ErrNoPlayableFile))
		return
	}
	var notice string
	if lay.renamed > 0 {
		notice = fmt.Sprintf("renamed %d unsafe file names", lay.renamed)
	}
	t.mu.Lock()
	t.files, t.selected, t.notice = files, sel, notice
	t.mu.Unlock()

	if !t.seeded {
		if t.stream {
			tfs[sel].SetPriority(torrent.PiecePriorityNormal)
		} else {
			for _, f := range tfs {
				f.SetPriority(torrent.PiecePriorityNormal)
			}
		}
		if sel >= 0 {
			t.claimEdges(sel)
			if files[sel].Playable {
				// The bitrate behind Status.BufferedSeconds (duration.go).
				t.e.wg.Go(t.probeBitrate)
			}
		}
		if !t.e.cache.has(t.key) {
			if mi == nil {
				full := t.tor.Metainfo()
				mi = &full
			}
			if err := t.e.cache.store(t.key, mi); err != nil {
				t.e.log.Warn("cache metainfo", "infohash", t.key, "err", err)
			}
		}
	}
	if notice != "" {
		t.e.log.Warn("unsafe file names renamed", "task", t.id, "infohash", t.key, "count", lay.renamed)
	}
	t.e.log.Info("task metainfo ready", "task", t.id, "infohash", t.key, "files", len(files), "selected", sel)
}

// largestPlayable returns the index of the largest video file, or -1.
func largestPlayable(files []File) int {
	best := -1
	for i, f := range files {
		if f.Playable && (best < 0 || f.Length > files[best].Length) {
			best = i
		}
	}
	return best
}

// fail marks the task failed for good: nothing more is downloaded.
func (t *Task) fail(err error) {
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
	t.e.log.Warn("task failed", "task", t.id, "infohash", t.key, "err", err)
	t.syncFlags()
}

// claimEdges raises the head and tail of file i to High so a player can start (MP4 moov and
// MKV cues are often at the end).
func (t *Task) claimEdges(i int) {
	t.mu.Lock()
	if t.edges[i] {
		t.mu.Unlock()
		return
	}
	t.edges[i] = true
	t.mu.Unlock()
	f := t.tor.Files()[i]
	t.prio.claim(edgeOwner{i}, edgeSpans(f.Offset(), f.Length(), t.tor.Info().PieceLength, prioHigh))
}

type edgeOwner struct{ file int }

// edgeSpans returns claims for the head and tail of a file at torrent offset off: prio for
// streamEdgeBytes at each end, Readahead for the streamEdgeFirstBytes at each end.
func edgeSpans(off, length, pieceLen int64, prio torrent.PiecePriority) claims {
	ends := func(n int64, prio torrent.PiecePriority) claims {
		n = min(n, length)
		return merge(span(off, n, pieceLen, prio), span(off+length-n, n, pieceLen, prio))
	}
	return merge(ends(streamEdgeBytes, prio), ends(streamEdgeFirstBytes, prioReadahead))
}

// Files returns the torrent's files, or nil before the info is known.
func (t *Task) Files() []File {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.files)
}

// SelectedFile returns the index of the file to stream, or -1 before the info is known or
// when the torrent has no video file.
func (t *Task) SelectedFile() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.selected
}

// SetBitrate tells the engine the selected file's bitrate (bits per second, e.g. from a
// probe), so readers size their readahead to about 30 seconds of playback.
func (t *Task) SetBitrate(bitsPerSecond int64) {
	t.mu.Lock()
	t.bitrate = max(0, bitsPerSecond)
	t.mu.Unlock()
}

// active reports whether the task counts against Options.MaxActive.
func (t *Task) active() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.seeded && !t.paused && t.err == nil && t.storeErr == nil && !t.complete
}

// Status returns a snapshot of the task.
func (t *Task) Status() Status {
	t.mu.Lock()
	st := Status{
		ID:             t.id,
		InfoHash:       t.key,
		Title:          t.title,
		Stream:         t.stream,
		FileIndex:      t.selected,
		ETASeconds:     -1,
		Notice:         t.notice,
		Idle:           t.cold,
		SpeedBps:       t.down.bps(),
		UploadSpeedBps: t.up.bps(),
	}
	failErr, storeErr, paused, ratioDone, bitrate := t.err, t.storeErr, t.paused, t.ratioDone, t.bitrate
	var sel File
	if t.selected >= 0 {
		sel = t.files[t.selected]
		st.FileName = path.Base(sel.Path)
	}
	t.mu.Unlock()

	st.Name, _ = sanitizeComponent(t.tor.Name())
	stats := t.tor.Stats()
	st.Peers, st.Seeds, st.KnownPeers = stats.ActivePeers, stats.ConnectedSeeders, stats.TotalPeers
	st.BytesFromPeers = stats.BytesReadUsefulData.Int64()
	st.UploadedBytes = stats.BytesWrittenData.Int64()
	complete := false
	if t.hasInfo() && failErr == nil {
		runs := t.tor.PieceStateRuns()
		st.PiecesTotal = t.tor.NumPieces()
		st.PiecesComplete = countComplete(runs, 0, st.PiecesTotal)
		if t.stream && st.FileIndex >= 0 {
			f := t.tor.Files()[st.FileIndex]
			st.TotalBytes, st.DownloadedBytes = f.Length(), f.BytesCompleted()
			complete = countComplete(runs, f.BeginPieceIndex(), f.EndPieceIndex()) == f.EndPieceIndex()-f.BeginPieceIndex()
		} else {
			st.TotalBytes, st.DownloadedBytes = t.tor.Length(), t.tor.BytesCompleted()
			complete = st.PiecesComplete == st.PiecesTotal
		}
		if st.FileIndex >= 0 {
			f := t.tor.Files()[st.FileIndex]
			st.BufferedBytes, st.BufferedSeconds = t.bufferedAhead(runs, st.FileIndex, f.Offset(), f.Length(), t.tor.Info().PieceLength, bitrate)
			edges := edgeSpans(f.Offset(), f.Length(), t.tor.Info().PieceLength, prioHigh)
			st.StreamReady = true
			for p := range edges {
				if countComplete(runs, p, p+1) != 1 {
					st.StreamReady = false
					break
				}
			}
		}
		if complete {
			st.DownloadedBytes = st.TotalBytes
		}
		if st.TotalBytes > 0 {
			st.Progress = math.Round(float64(st.DownloadedBytes)/float64(st.TotalBytes)*1000) / 10
		}
		switch {
		case complete:
			st.ETASeconds = 0
		case st.SpeedBps > 0:
			st.ETASeconds = (st.TotalBytes - st.DownloadedBytes + st.SpeedBps - 1) / st.SpeedBps
		}
	}
	switch {
	case failErr != nil:
		st.State, st.Error = StateFailed, failErr.Error()
	case storeErr != nil:
		st.State, st.Error = StateFailed, storeErr.Error()
	case paused:
		st.State = StatePaused
	case !t.hasInfo():
		st.State = StateResolving
	case complete && (t.seeded || t.e.opts.Seed && !ratioDone):
		st.State = StateSeeding
	case complete:
		st.State = StateCompleted
	default:
		st.State = StateDownloading
	}
	return st
}

// countComplete counts the complete pieces in [begin, end).
func countComplete(runs torrent.PieceStateRuns, begin, end int) int {
	n, at := 0, 0
	for _, r := range runs {
		lo, hi := max(at, begin), min(at+r.Length, end)
		if r.Complete && hi > lo {
			n += hi - lo
		}
		at += r.Length
		if at >= end {
			break
		}
	}
	return n
}

// ready reports whether the task has its info and has not failed.
func (t *Task) ready() bool {
	if !t.hasInfo() {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err == nil
}

// wantedComplete reports whether the data the task wants is all verified.
func (t *Task) wantedComplete() bool {
	if !t.ready() {
		return false
	}
	t.mu.Lock()
	sel := t.selected
	t.mu.Unlock()
	runs := t.tor.PieceStateRuns()
	if t.stream && sel >= 0 {
		f := t.tor.Files()[sel]
		return countComplete(runs, f.BeginPieceIndex(), f.EndPieceIndex()) == f.EndPieceIndex()-f.BeginPieceIndex()
	}
	n := t.tor.NumPieces()
	return countComplete(runs, 0, n) == n
}

// maintain samples speeds, notes completion, enforces the seed ratio and idles stream tasks
// without readers. Called every maintainInterval.
func (t *Task) maintain(now time.Time) {
	if t.isDone() {
		return
	}
	stats := t.tor.Stats()
	complete := t.wantedComplete()
	ready := t.ready()
	t.mu.Lock()
	t.down.sample(now, stats.BytesReadUsefulData.Int64())
	t.up.sample(now, stats.BytesWrittenData.Int64())
	justCompleted := complete && !t.complete
	t.complete = complete
	if ratio := t.e.opts.SeedRatio; ratio > 0 && complete && !t.seeded && !t.ratioDone {
		if total := t.tor.Length(); total > 0 && float64(stats.BytesWrittenData.Int64()) >= ratio*float64(total) {
			t.ratioDone = true
			t.e.log.Info("seed ratio reached", "task", t.id, "infohash", t.key, "ratio", ratio)
		}
	}
	grace := t.e.opts.WarmGrace
	if t.stream && grace > 0 && !t.cold && t.readers == 0 && !t.lastClose.IsZero() && now.Sub(t.lastClose) >= grace && !complete {
		t.cold = true
		t.e.log.Info("stream task idle", "task", t.id, "infohash", t.key)
	}
	got := stats.BytesReadUsefulData.Int64()
	progressed := got != t.lastGot
	idle := false
	if got != t.lastGot || complete || !ready || t.paused || t.cold || stats.ActivePeers == 0 {
		t.lastGot, t.lastGotAt = got, now
	} else if now.Sub(t.lastGotAt) >= idlePoke {
		idle, t.lastGotAt = true, now
	}
	t.mu.Unlock()
	if justCompleted {
		t.e.log.Info("task completed", "task", t.id, "infohash", t.key)
	}
	t.maintainStore(now, progressed || complete)
	t.syncFlags()
	if idle {
		// The library can leave a connection with nothing requested (after its requests were
		// rejected, for one); a poke makes it ask again. Harmless otherwise.
		t.poke()
	}
}

// syncFlags tells the library whether the task may download and upload now.
func (t *Task) syncFlags() {
	t.mu.Lock()
	bad := t.err != nil
	wantDown := !t.paused && !t.cold && !bad && !t.seeded && t.storeErr == nil
	wantUp := !t.paused && !bad && (t.seeded || !t.complete || t.e.opts.Seed && !t.ratioDone)
	t.mu.Unlock()
	t.flagMu.Lock()
	defer t.flagMu.Unlock()
	if t.stopped {
		return
	}
	if wantDown != t.dlAllowed {
		if wantDown {
			t.tor.AllowDataDownload()
		} else {
			t.tor.DisallowDataDownload()
		}
		t.dlAllowed = wantDown
	}
	if wantUp != t.ulAllowed {
		if wantUp {
			t.tor.AllowDataUpload()
		} else {
			t.tor.DisallowDataUpload()
		}
		t.ulAllowed = wantUp
	}
}

func (t *Task) setPaused(p bool) {
	t.mu.Lock()
	changed := t.paused != p
	t.paused = p
	t.mu.Unlock()
	if changed {
		t.e.log.Info("task paused", "task", t.id, "paused", p)
	}
	t.syncFlags()
}

// readerOpened notes a new reader and wakes an idle task.
func (t *Task) readerOpened() {
	t.mu.Lock()
	t.readers++
	woke := t.cold
	t.cold = false
	t.mu.Unlock()
	if woke {
		t.e.log.Info("stream task resumed by a reader", "task", t.id)
		t.syncFlags()
	}
}

func (t *Task) readerClosed() {
	t.mu.Lock()
	t.readers--
	if t.readers == 0 {
		t.lastClose = time.Now()
	}
	t.mu.Unlock()
}

// shutdown stops the task's background work before its torrent is dropped.
func (t *Task) shutdown() {
	t.doneOnce.Do(func() { close(t.done) })
	t.urg.mu.Lock()
	t.urg.stopped = true // no urgency watchdog starts from now on (see urge)
	t.urg.mu.Unlock()
	t.prio.close()
	t.flagMu.Lock()
	t.stopped = true // waits for a syncFlags or poke in flight
	t.flagMu.Unlock()
}

// deleteData removes the task's files (only regular files at their sanitised paths under
// the download directory, never through a symlink), then the directories left empty, the
// cached metainfo and the piece completion. The torrent must be dropped.
func (t *Task) deleteData() error {
	var errs []error
	if t.hasInfo() {
		info := t.tor.Info()
		lay := t.layout.get(info)
		checked := make(map[string]bool)
		dirs := make(map[string]bool)
		for _, rel := range lay.paths {
			if err := checkNoSymlinks(t.baseDir, rel, checked); err != nil {
				errs = append(errs, err)
				continue
			}
			full := filepath.Join(t.baseDir, filepath.FromSlash(rel))
			if fi, err := os.Lstat(full); err == nil && fi.Mode().IsRegular() {
				if err := os.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
					errs = append(errs, err)
				}
			}
			for d := path.Dir(rel); d != "." && d != "/"; d = path.Dir(d) {
				dirs[d] = true
			}
		}
		// Deepest first; a directory that still holds other things stays.
		ds := make([]string, 0, len(dirs))
		for d := range dirs {
			ds = append(ds, d)
		}
		sort.Slice(ds, func(i, j int) bool { return strings.Count(ds[i], "/") > strings.Count(ds[j], "/") })
		for _, d := range ds {
			_ = os.Remove(filepath.Join(t.baseDir, filepath.FromSlash(d)))
		}
		for i := range t.tor.NumPieces() {
			if err := t.e.completion.Set(pieceKey(t.key, i), false); err != nil {
				errs = append(errs, fmt.Errorf("reset piece completion: %w", err))
				break
			}
		}
	}
	if err := t.e.cache.remove(t.key); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// meter is a smoothed transfer rate (exponentially weighted, time constant speedTau).
type meter struct {
	last   int64
	at     time.Time
	rate   float64
	primed bool
}

const speedTau = 3 * time.Second

func (m *meter) sample(now time.Time, total int64) {
	if !m.primed {
		m.last, m.at, m.primed = total, now, true
		return
	}
	dt := now.Sub(m.at).Seconds()
	if dt <= 0 {
		return
	}
	inst := max(0, float64(total-m.last)/dt)
	m.rate += (1 - math.Exp(-dt/speedTau.Seconds())) * (inst - m.rate)
	m.last, m.at = total, now
}

func (m *meter) bps() int64 {
	if m.rate < 1 {
		return 0
	}
	return int64(math.Round(m.rate))
}

// AddPeers gives the task peer addresses (host:port, as in a magnet's x.pe) to connect to.
func (t *Task) AddPeers(peers ...string) error {
	for _, p := range peers {
		if err := validPeer(p); err != nil {
			return fmt.Errorf("add peer %q: %w", p, err)
		}
	}
	if t.isDone() {
		return fmt.Errorf("task %s: %w", t.id, ErrNotFound)
	}
	t.tor.AddPeers(peerInfos(peers))
	t.e.peers.direct(t, peerInfos(peers), time.Now())
	return nil
}
