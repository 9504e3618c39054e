package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"golang.org/x/time/rate"
)

// Integrity: only verified bytes are served or uploaded, also after a restart.
//
// The piece-completion database says which pieces were verified, but not whether their files
// changed since: an edit on disk, a copy over the download, or a crash that lost writes the
// database had already recorded. So for every file the engine records its size and mtime at
// a moment its verified pieces were known to match it (a sidecar per torrent,
// DataDir/verified/<infohash>.json, written on a clean Close and when a task is removed), and
// keeps a marker file (DataDir/.engine-running) from start to clean Close.
//
// When a torrent's storage opens, a file is trusted only if the last stop was clean and its
// size and mtime equal the record. Every piece touching an untrusted file is "suspect": the
// storage reports its completion as unknown even if the database says complete, so the
// library hashes it again before it counts as complete. Until then readers block on it and it
// is never uploaded (the library serves only complete pieces); a piece that passes is
// complete again, one that fails is marked incomplete and fetched again from peers. Pieces of
// trusted files are complete at once, so a piece verified before is served without waiting.
//
// The re-hashing runs on the library's hashers, in the background, reading with pread at no
// more than [Options.VerifyRateBytes] while no reader of the task waits for data; while one
// waits it runs at disk speed, so a player is held up by its own pieces only as long as the
// disk needs (the library hashes queued pieces in index order).
//
// A file's record is written only when no suspect piece touches it and it has not changed
// since the engine last wrote to it or since it was verified (mtime not later than that
// moment); otherwise the file is verified again at the next start.

// DefaultVerifyRateBytes is the default of [Options.VerifyRateBytes].
const DefaultVerifyRateBytes = 64 << 20

const (
	runningMarker = ".engine-running"
	recordsDir    = "verified"
)

// fileRecord is a file's size and mtime when its verified pieces matched it.
type fileRecord struct {
	Path    string `json:"path"` // sanitised, slash-separated, relative to the task's base dir
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtimeNs"`
}

type verifyRecord struct {
	Files []fileRecord `json:"files"`
}

// startIntegrity notes whether the last run stopped cleanly and marks this one as running.
// Called at the end of New.
func (e *Engine) startIntegrity() error {
	marker := filepath.Join(e.opts.DataDir, runningMarker)
	if _, err := os.Stat(marker); err == nil {
		e.unclean = true
		e.log.Warn("the last run did not stop cleanly: verified pieces are verified again before they are served")
		e.addRecovery(Recovery{What: "the last run did not stop cleanly: pieces verified again from the files", At: time.Now()})
	}
	f, err := os.OpenFile(marker, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("engine: create run marker: %w", err)
	}
	return f.Close()
}

// stopIntegrity removes the run marker; the engine stopped cleanly.
func (e *Engine) stopIntegrity() error {
	if err := os.Remove(filepath.Join(e.opts.DataDir, runningMarker)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove run marker: %w", err)
	}
	return nil
}

func (e *Engine) recordPath(key string) string {
	return filepath.Join(e.opts.DataDir, recordsDir, key+".json")
}

// loadRecord returns the file records of the torrent filed under key, by path; nil when there
// are none or the last stop was unclean. A damaged record counts as none.
func (e *Engine) loadRecord(key string) map[string]fileRecord {
	if e.unclean {
		return nil
	}
	b, err := os.ReadFile(e.recordPath(key))
	if err != nil {
		return nil
	}
	var rec verifyRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		e.log.Warn("file record unreadable: verifying the torrent's pieces again", "infohash", key, "err", err)
		return nil
	}
	out := make(map[string]fileRecord, len(rec.Files))
	for _, f := range rec.Files {
		out[f.Path] = f
	}
	return out
}

// throttle waits until n more bytes of verification may be read, or the engine closes.
func (e *Engine) throttle(n int) {
	if e.verifyLimit == nil {
		return
	}
	r := e.verifyLimit.ReserveN(time.Now(), n)
	if !r.OK() {
		return
	}
	d := r.Delay()
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-e.stop:
		r.Cancel()
	}
}

func newVerifyLimiter(bytesPerSec int64) *rate.Limiter {
	if bytesPerSec < 0 {
		return nil
	}
	if bytesPerSec == 0 {
		bytesPerSec = DefaultVerifyRateBytes
	}
	// The burst holds one read of copyPiece.
	return rate.NewLimiter(rate.Limit(bytesPerSec), copyBufferBytes)
}

// verifier is the integrity state of one torrent's storage. It is safe for concurrent use.
type verifier struct {
	t *Task

	mu       sync.Mutex // guards the fields below
	suspect  []bool     // by piece: stored completion not trusted until hashed in this run
	nSuspect int
	written  []bool  // by piece: written in this run
	files    []vfile // parallel to reserver.files
	failed   int     // suspect pieces that failed their hash
}

// vfile is the integrity state of one file.
type vfile struct {
	rel        string
	startMtime int64 // ns, when the storage opened; 0 if missing
	pending    int   // suspect pieces touching the file
	checkedAt  int64 // ns: the file matched its verified pieces at this mtime or time
}

// initIntegrity decides which pieces of r's torrent are suspect (see the top of this file).
func (t *Task) initIntegrity(r *reserver, info *metainfo.Info) {
	if t.seeded {
		return // hashed just before it was added, and never written
	}
	n := info.NumPieces()
	rec := t.e.loadRecord(t.key)
	v := &verifier{t: t, suspect: make([]bool, n), written: make([]bool, n), files: make([]vfile, len(r.files))}
	pl := info.PieceLength
	for k, f := range r.files {
		vf := &v.files[k]
		vf.rel = f.rel
		st, err := os.Stat(f.path)
		if err == nil {
			vf.startMtime = st.ModTime().UnixNano()
		}
		if fr, ok := rec[f.rel]; ok && err == nil && fr.Size == st.Size() && fr.MtimeNs == vf.startMtime {
			vf.checkedAt = vf.startMtime
			continue
		}
		if pl <= 0 {
			continue
		}
		for i := f.off / pl; i < int64(n) && i*pl < f.off+f.length; i++ {
			v.suspect[i] = true
		}
	}
	for i, s := range v.suspect {
		if !s {
			continue
		}
		v.nSuspect++
		lo, hi := r.filesIn(int64(i)*pl, min(int64(i+1)*pl, info.TotalLength()))
		for k := lo; k < hi; k++ {
			v.files[k].pending++
		}
	}
	r.v = v
	t.ver.Store(v)
}

// isSuspect reports whether piece i's stored completion must not be trusted yet.
func (v *verifier) isSuspect(i int) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return i >= 0 && i < len(v.suspect) && v.suspect[i]
}

// resolve notes that piece i's completion is known in this run (hashed, or nothing to
// distrust). failed reports a suspect piece whose hash failed.
func (v *verifier) resolve(r *reserver, i int, pieceLen, total int64, failed bool) {
	v.mu.Lock()
	if i < 0 || i >= len(v.suspect) || !v.suspect[i] {
		v.mu.Unlock()
		return
	}
	v.suspect[i] = false
	v.nSuspect--
	lo, hi := r.filesIn(int64(i)*pieceLen, min(int64(i+1)*pieceLen, total))
	var file string
	for k := lo; k < hi; k++ {
		vf := &v.files[k]
		vf.pending--
		if vf.pending == 0 {
			vf.checkedAt = max(vf.checkedAt, vf.startMtime)
		}
		file = vf.rel
	}
	first := false
	if failed {
		v.failed++
		first = v.failed == 1
	}
	left := v.nSuspect
	v.mu.Unlock()
	log := v.t.e.log
	if first {
		log.Warn("a piece changed on disk since it was verified: fetching it again",
			"task", v.t.id, "infohash", v.t.key, "piece", i, "file", file)
	} else if failed {
		log.Debug("a piece changed on disk since it was verified", "task", v.t.id, "piece", i)
	}
	if left == 0 {
		v.mu.Lock()
		nf := v.failed
		v.mu.Unlock()
		log.Info("pieces verified again", "task", v.t.id, "infohash", v.t.key, "failed", nf)
	}
}

// wrote notes a write of [off, off+n) of the torrent in piece i.
func (v *verifier) wrote(r *reserver, i int, off, n int64) {
	now := time.Now().UnixNano()
	lo, hi := r.filesIn(off, off+n)
	v.mu.Lock()
	if i >= 0 && i < len(v.written) {
		v.written[i] = true
	}
	for k := lo; k < hi; k++ {
		v.files[k].checkedAt = max(v.files[k].checkedAt, now)
	}
	v.mu.Unlock()
}

func (v *verifier) wasWritten(i int) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return i >= 0 && i < len(v.written) && v.written[i]
}

// pending returns the number of suspect pieces not yet hashed.
func (v *verifier) pending() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.nSuspect
}

// writeRecord records the files of the task that match their verified pieces (see the top
// of this file). Called when the task's torrent is closed or dropped.
func (t *Task) writeRecord(r *reserver) error {
	v := t.ver.Load()
	if v == nil || r == nil {
		return nil
	}
	var rec verifyRecord
	v.mu.Lock()
	files := append([]vfile(nil), v.files...)
	v.mu.Unlock()
	for k, f := range r.files {
		vf := files[k]
		if vf.pending > 0 || vf.checkedAt == 0 {
			continue
		}
		st, err := os.Stat(f.path)
		if err != nil || !st.Mode().IsRegular() || st.ModTime().UnixNano() > vf.checkedAt {
			continue
		}
		if err := syncFile(f.path); err != nil { // flush.go
			t.e.log.Warn("file not synced to disk: its pieces are verified again at the next start", "task", t.id, "err", err)
			continue
		}
		rec.Files = append(rec.Files, fileRecord{Path: f.rel, Size: st.Size(), MtimeNs: st.ModTime().UnixNano()})
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode file record: %w", err)
	}
	return writeFileAtomic(t.e.recordPath(t.key), b)
}

// removeRecord deletes the task's file record.
func (t *Task) removeRecord() error {
	if err := os.Remove(t.e.recordPath(t.key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove file record: %w", err)
	}
	return nil
}

// writeFileAtomic writes b to name through a temporary file in the same directory.
func writeFileAtomic(name string, b []byte) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return nil
}

// filesIn returns the range [lo, hi) of r.files overlapping [begin, end) of the torrent.
func (r *reserver) filesIn(begin, end int64) (lo, hi int) {
	lo = sort.Search(len(r.files), func(k int) bool { return r.files[k].off+r.files[k].length > begin })
	hi = lo
	for hi < len(r.files) && r.files[hi].off < end {
		hi++
	}
	return lo, hi
}

// Completion is the piece's stored completion, except that a suspect piece the database
// calls complete is of unknown completion: the library hashes it before it counts.
func (rp reservedPiece) Completion() storage.Completion {
	c := rp.PieceImpl.Completion()
	v := rp.r.v
	if v == nil || !v.isSuspect(rp.p.Index()) {
		return c
	}
	if c.Ok && c.Complete && c.Err == nil {
		return storage.Completion{}
	}
	if c.Err == nil {
		v.resolve(rp.r, rp.p.Index(), rp.r.pieceLen, rp.r.total, false) // nothing verified to distrust
	}
	return c
}

// MarkComplete records a piece that passed its hash.
func (rp reservedPiece) MarkComplete() error {
	if err := rp.PieceImpl.MarkComplete(); err != nil {
		return err
	}
	if v := rp.r.v; v != nil {
		v.resolve(rp.r, rp.p.Index(), rp.r.pieceLen, rp.r.total, false)
	}
	return nil
}

// MarkNotComplete records a piece that failed its hash (it is then fetched again).
func (rp reservedPiece) MarkNotComplete() error {
	if err := rp.PieceImpl.MarkNotComplete(); err != nil {
		return err
	}
	if v := rp.r.v; v != nil {
		v.resolve(rp.r, rp.p.Index(), rp.r.pieceLen, rp.r.total, true)
	}
	return nil
}

// throttledWriter paces the reads of a verification (see copyPiece).
type throttledWriter struct {
	w io.Writer
	t *Task
}

func (tw throttledWriter) Write(b []byte) (int, error) {
	if tw.t.waiting.Load() == 0 {
		tw.t.e.throttle(len(b))
	}
	return tw.w.Write(b)
}
