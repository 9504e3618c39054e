package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
)

// Storage failures.
//
// When the library cannot store a received chunk it calls the torrent's chunk-write error
// handler (on a goroutine of its own, once per chunk). The library's default handler
// disallows downloading behind the task's back, so the task kept saying "downloading" while
// its kicks re-allowed the download: a silent retry loop. Instead the task records the first
// error (storeErr), logs it once, and stops downloading through syncFlags like a pause:
// Status reports StateFailed with the reason, reads of missing pieces fail at once with it,
// verified data stays readable and uploads go on. [Engine.Resume] clears it and downloads
// again, so a user who frees space can continue.
//
// A full disk must first become an error at all. The library's file storage writes through
// shared memory maps by default, and a store into a sparse page that the filesystem cannot
// back kills the process with SIGBUS. reserveStorage therefore allocates each piece's bytes
// (fallocate) before its first write, so a full disk fails that write with ENOSPC, and reads
// pieces for hashing with pread, so holes are never faulted in (see reservedPiece.WriteTo).

// onStoreError is the torrent's chunk-write error handler. Errors of writes that started
// before the last resume are stale (the user has freed space since) and ignored.
func (t *Task) onStoreError(err error) {
	if errors.Is(err, errStorageClosed) {
		return // the task is being removed or the engine closed: nothing to report
	}
	serr := t.storeError(err)
	var we *writeError
	t.mu.Lock()
	stale := errors.As(err, &we) && we.gen != t.storeGen.Load()
	first := !stale && t.storeErr == nil && t.err == nil
	retried := t.retryDelay > 0
	if first {
		t.storeErr = serr
		// Retry by itself (see maintainStore), waiting longer after each failed retry.
		t.retryDelay = min(max(2*t.retryDelay, t.e.opts.StoreRetryMin), storeRetryMax)
		t.retryAt = time.Now().Add(t.retryDelay)
	}
	t.mu.Unlock()
	if !first {
		return
	}
	if retried {
		t.e.log.Debug("task stopped again: cannot store data", "task", t.id, "err", serr)
	} else {
		t.e.log.Error("task stopped: cannot store data", "task", t.id, "infohash", t.key, "err", serr)
	}
	t.syncFlags()
}

// storeRetryMax caps the wait between automatic retries after a storage error.
const storeRetryMax = 5 * time.Minute

// DefaultStoreRetryMin is the default of [Options.StoreRetryMin].
const DefaultStoreRetryMin = 5 * time.Second

// maintainStore retries a task stopped by a storage error once its backoff has passed and,
// for a full disk, the download directory has room for a piece again; the retry fails the
// same way (after a longer backoff) if the room is gone by then. It also forgets the backoff
// once the task has made progress since its last retry. Called by maintain.
func (t *Task) maintainStore(now time.Time, progressed bool) {
	t.mu.Lock()
	serr, due := t.storeErr, !now.Before(t.retryAt)
	if serr == nil && progressed {
		t.retryDelay = 0
	}
	t.mu.Unlock()
	if serr == nil || !due || t.isDone() {
		return
	}
	if errors.Is(serr, ErrDiskFull) && t.hasInfo() {
		if free, err := freeBytes(t.baseDir); err == nil && free < t.tor.Info().PieceLength {
			t.mu.Lock()
			t.retryAt = now.Add(t.retryDelay)
			t.mu.Unlock()
			return
		}
	}
	t.e.log.Info("task retrying after storage error", "task", t.id, "infohash", t.key)
	t.clearStoreError()
	t.syncFlags()
}

// clearStoreError forgets the storage error; writes that fail from now on count again.
func (t *Task) clearStoreError() error {
	t.mu.Lock()
	cleared := t.storeErr
	t.storeErr = nil
	t.storeGen.Add(1)
	t.mu.Unlock()
	return cleared
}

// isChunkWriteError reports the library's message for a chunk it could not store, logged
// for every chunk (the task logs the first error once, see onStoreError).
func isChunkWriteError(msg string) bool {
	return strings.Contains(msg, "writing received chunk ")
}

// storeError explains a storage write error to the user: [ErrDiskFull] naming the download
// directory for ENOSPC, [ErrWrite] with the library's detail otherwise.
func (t *Task) storeError(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: %s: %w", ErrDiskFull, t.baseDir, syscall.ENOSPC)
	}
	return fmt.Errorf("%w: %w", ErrWrite, err)
}

// storeFailure returns the storage error that stopped the task, or nil.
func (t *Task) storeFailure() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.storeErr
}

// resume clears a pause and a storage error and lets the task download again.
func (t *Task) resume() {
	if cleared := t.clearStoreError(); cleared != nil {
		t.e.log.Info("task resumed after storage error", "task", t.id, "infohash", t.key)
	}
	t.setPaused(false)
}

// reserveStorage wraps a file storage so that each piece's bytes are allocated on disk (see
// reserve) before the piece is first written, and pieces are hashed from pread.
type reserveStorage struct {
	storage.ClientImpl
	baseDir string
	layout  *layoutCache
	gen     *atomic.Uint64 // the task's storeGen, recorded in write errors
	t       *Task          // for integrity (see integrity.go)
}

func (s reserveStorage) OpenTorrent(ctx context.Context, info *metainfo.Info, ih metainfo.Hash) (storage.TorrentImpl, error) {
	impl, err := s.ClientImpl.OpenTorrent(ctx, info, ih)
	if err != nil || impl.Piece == nil {
		return impl, err
	}
	r := &reserver{reserved: make([]bool, info.NumPieces()), gen: s.gen, pieceLen: info.PieceLength, total: info.TotalLength()}
	for fi := range info.UpvertedFilesIter() {
		if fi.Length == 0 {
			continue
		}
		// The same path the file storage writes (its TorrentDirMaker is the identity).
		rel := s.layout.pathFor(info, &fi)
		p := filepath.Join(s.baseDir, rel)
		r.files = append(r.files, reserveFile{path: p, rel: filepath.ToSlash(rel), off: fi.TorrentOffset, length: fi.Length})
	}
	sort.Slice(r.files, func(i, j int) bool { return r.files[i].off < r.files[j].off })
	if s.t != nil {
		r.t = s.t
		s.t.initIntegrity(r, info)
		s.t.res.Store(r)
	}
	piece := impl.Piece
	impl.Piece = func(p metainfo.Piece) storage.PieceImpl {
		return reservedPiece{PieceImpl: piece(p), r: r, p: p}
	}
	closeImpl := impl.Close
	impl.Close = func() error {
		// The library calls this after it marked the torrent closed (see ReadAt).
		r.markClosed()
		if closeImpl == nil {
			return nil
		}
		return closeImpl()
	}
	return impl, nil
}

// reserveFile is a file of the torrent: its OS path and its extent in the torrent.
type reserveFile struct {
	path        string
	rel         string // path relative to the base dir, slash-separated
	off, length int64
}

// reserver allocates the disk space of pieces. It is safe for concurrent use.
type reserver struct {
	files           []reserveFile // by offset
	gen             *atomic.Uint64
	pieceLen, total int64
	t               *Task     // nil without integrity
	v               *verifier // nil without integrity (set before the library uses the storage)

	// allocMu serialises allocations: on tmpfs an allocation that fails with ENOSPC frees
	// the pages of its range that are allocated but not yet written, including those of a
	// concurrent allocation that succeeded, and reading such a hole through a memory map on
	// a full tmpfs faults too.
	allocMu sync.Mutex

	// dropped is set once the library closed the torrent (see reservedPiece.ReadAt).
	dropped atomic.Bool
	// closeMu is held for reading by every write and taken for writing by markClosed, so
	// that no write is under way once the storage is closed (see reservedPiece.WriteAt).
	closeMu sync.RWMutex

	mu          sync.Mutex // guards the fields below
	reserved    []bool     // by piece: allocated
	unsupported bool       // the filesystem cannot allocate; stop trying
}

// reserve allocates the bytes of piece p in every file it covers, once per piece. It returns
// an error wrapping ENOSPC when the disk is full. Filesystems without allocation support are
// left alone (writes then go to sparse pages as before).
func (r *reserver) reserve(p metainfo.Piece) error {
	i := p.Index()
	if r.done(i) {
		return nil
	}
	r.allocMu.Lock()
	defer r.allocMu.Unlock()
	if r.done(i) {
		return nil
	}
	err := r.extents(p, func(f reserveFile, lo, hi int64) error {
		return allocate(f.path, lo, hi-lo)
	})
	if errors.Is(err, errors.ErrUnsupported) {
		r.mu.Lock()
		r.unsupported = true
		r.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.reserved[i] = true
	r.mu.Unlock()
	return nil
}

// extents calls yield with each file that piece p covers and the piece's part of it, as a
// range [lo, hi) of the file.
func (r *reserver) extents(p metainfo.Piece, yield func(f reserveFile, lo, hi int64) error) error {
	begin, end := p.Offset(), p.Offset()+p.Length()
	k := sort.Search(len(r.files), func(k int) bool { return r.files[k].off+r.files[k].length > begin })
	for ; k < len(r.files) && r.files[k].off < end; k++ {
		f := r.files[k]
		if err := yield(f, max(begin, f.off)-f.off, min(end, f.off+f.length)-f.off); err != nil {
			return err
		}
	}
	return nil
}

// copyPiece writes the bytes of piece p to w; see reservedPiece.WriteTo.
func (r *reserver) copyPiece(w io.Writer, p metainfo.Piece) (int64, error) {
	var written int64
	buf := make([]byte, min(p.Length(), copyBufferBytes))
	err := r.extents(p, func(f reserveFile, lo, hi int64) error {
		fh, err := os.Open(f.path)
		if errors.Is(err, fs.ErrNotExist) {
			return errShort
		}
		if err != nil {
			return err
		}
		defer fh.Close() // read-only: nothing to lose
		n, err := io.CopyBuffer(w, io.NewSectionReader(fh, lo, hi-lo), buf)
		written += n
		if err != nil {
			return err
		}
		if n < hi-lo {
			return errShort
		}
		return nil
	})
	if errors.Is(err, errShort) {
		err = nil
	}
	return written, err
}

// copyBufferBytes bounds the buffer copyPiece reads through.
const copyBufferBytes = 256 << 10

// errShort stops copyPiece at a missing or short file.
var errShort = errors.New("short file")

// done reports whether piece i needs no allocation.
func (r *reserver) done(i int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.unsupported || i < 0 || i >= len(r.reserved) || r.reserved[i]
}

// reservedPiece is a piece of a reserveStorage. It passes on the optional interfaces of the
// file storage's pieces (io.WriterTo, storage.Flusher).
type reservedPiece struct {
	storage.PieceImpl
	r *reserver
	p metainfo.Piece
}

var _ interface {
	storage.PieceImpl
	io.WriterTo
	storage.Flusher
} = reservedPiece{}

// readGate, set only by tests, runs before every piece read of every engine.
var readGate atomic.Pointer[func()]

// ReadAt reads the piece's bytes. Once the torrent was closed (dropped or the engine
// closed), a read that fails — its file deleted by Remove, or by the user — returns zeros
// instead of the error. The torrent library (v1.59.1) serves a peer's request from a
// goroutine that reads without its lock; if that read fails after the torrent was closed,
// it leaves the request in place and its own consistency check panics, taking the daemon
// with it. Those zeros cannot reach anyone: the library closed every peer connection of
// the torrent before it closed the storage, and [Reader.Read] discards what it reads once
// the storage is closed.
func (rp reservedPiece) ReadAt(b []byte, off int64) (int, error) {
	if g := readGate.Load(); g != nil {
		(*g)()
	}
	n, err := rp.PieceImpl.ReadAt(b, off)
	if err != nil && n < len(b) && rp.r.dropped.Load() {
		clear(b[n:])
		return len(b), nil
	}
	return n, err
}

// markClosed marks the storage closed once no write is under way; later writes fail.
func (r *reserver) markClosed() {
	r.closeMu.Lock()
	r.dropped.Store(true)
	r.closeMu.Unlock()
}

// errStorageClosed fails a write that reaches a closed torrent's storage.
var errStorageClosed = errors.New("the torrent's storage is closed")

// WriteAt writes a received block. The library writes blocks without its lock, so a write
// can still be under way while a torrent is dropped or the engine closed. Closing the
// storage waits for such a write, and a write after the close fails without touching the
// disk: otherwise it could recreate a file that Remove is deleting, or write into a
// directory after the engine was closed.
func (rp reservedPiece) WriteAt(b []byte, off int64) (int, error) {
	rp.r.closeMu.RLock()
	defer rp.r.closeMu.RUnlock()
	if rp.r.dropped.Load() {
		return 0, errStorageClosed
	}
	gen := rp.r.gen.Load()
	if err := rp.r.reserve(rp.p); err != nil {
		return 0, &writeError{gen: gen, err: err}
	}
	n, err := rp.PieceImpl.WriteAt(b, off)
	if rp.r.v != nil && n > 0 {
		rp.r.v.wrote(rp.r, rp.p.Index(), rp.p.Offset()+off, int64(n))
	}
	if err != nil {
		return n, &writeError{gen: gen, err: err}
	}
	return n, nil
}

// writeError is a failed write, with the task's storeGen when the write started.
type writeError struct {
	gen uint64
	err error
}

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// WriteTo writes the piece's bytes to w (the library hashes pieces this way). It reads the
// files with pread rather than through the file storage's memory maps: a piece being hashed
// may have holes (the library checks every piece of unknown completion when a torrent
// starts), and on tmpfs faulting a hole into a shared map allocates a page, which fills the
// disk and, once it is full, kills the process with SIGBUS. Like the file storage it stops
// without error at a missing or short file.
//
// A piece not written in this run is being verified again (see integrity.go): its reads are
// paced.
func (rp reservedPiece) WriteTo(w io.Writer) (int64, error) {
	if rp.r.v != nil && !rp.r.v.wasWritten(rp.p.Index()) {
		w = throttledWriter{w: w, t: rp.r.t}
	}
	return rp.r.copyPiece(w, rp.p)
}

// Flush runs after a piece passed its hash and before the library marks it complete. With
// integrity records on it waits for nothing (see flush.go).
func (rp reservedPiece) Flush() error {
	if rp.r.v != nil {
		return nil
	}
	if fl, ok := rp.PieceImpl.(storage.Flusher); ok {
		return fl.Flush()
	}
	return nil
}

// Held returns why the task downloads nothing now: an error wrapping [ErrDiskFull] or
// [ErrWrite] (a storage failure, retried by itself) or [ErrPaused]; nil while it may
// download. A player waiting for data asks it to tell its viewer why nothing comes.
func (t *Task) Held() error {
	t.mu.Lock()
	serr, paused := t.storeErr, t.paused
	t.mu.Unlock()
	switch {
	case serr != nil:
		return fmt.Errorf("task %s: %w", t.id, serr)
	case paused:
		return fmt.Errorf("task %s: %w", t.id, ErrPaused)
	}
	return nil
}

// Unavailable returns an error wrapping [ErrDiskFull], [ErrWrite] or [ErrPaused] when the byte
// at offset off of file index cannot be read now: it is not verified yet and the task cannot
// download it (a storage failure, a pause). It returns nil when a read there would return
// data or wait for it to arrive. The media listener asks before it answers with a 206.
func (t *Task) Unavailable(index int, off int64) error {
	if !t.hasInfo() {
		return nil
	}
	t.mu.Lock()
	serr, paused := t.storeErr, t.paused
	t.mu.Unlock()
	if serr == nil && !paused {
		return nil
	}
	files := t.tor.Files()
	if index < 0 || index >= len(files) {
		return nil
	}
	f := files[index]
	if off < 0 || off >= f.Length() {
		return nil
	}
	if t.tor.Piece(int((f.Offset() + off) / t.tor.Info().PieceLength)).State().Complete {
		return nil
	}
	if serr != nil {
		return fmt.Errorf("task %s: %w", t.id, serr)
	}
	return fmt.Errorf("task %s: %w", t.id, ErrPaused)
}
