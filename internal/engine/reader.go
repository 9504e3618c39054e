package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
)

// Readahead sizing.
const (
	defaultReadaheadBytes = 8 << 20
	maxReadaheadBytes     = 256 << 20
	readaheadSeconds      = 30
	// maxSpanBytes bounds how much of a bounded read (SetSpan) is wanted at once at the
	// top priority; spanTime bounds it to what the task downloads in that long (see
	// spanLeft).
	maxSpanBytes = 8 << 20
	spanTime     = time.Second
)

// OpenFile opens file index of the task for streaming; index -1 is the selected file. It
// waits for the metainfo (bounded by ctx). Reads honour ctx until [Reader.SetContext] sets
// another. Opening a reader wakes an idle stream task. The caller must Close the reader.
func (t *Task) OpenFile(ctx context.Context, index int) (*Reader, error) {
	if err := t.WaitInfo(ctx); err != nil {
		return nil, err
	}
	t.mu.Lock()
	if index == -1 {
		index = t.selected
		if index < 0 {
			t.mu.Unlock()
			return nil, fmt.Errorf("open task %s: %w", t.id, ErrNoPlayableFile)
		}
	}
	if index < 0 || index >= len(t.files) {
		t.mu.Unlock()
		return nil, fmt.Errorf("open task %s file %d: %w", t.id, index, ErrNotFound)
	}
	file := t.files[index]
	t.mu.Unlock()
	if t.isDone() {
		return nil, fmt.Errorf("open task %s: %w", t.id, ErrNotFound)
	}
	t.readerOpened()
	t.claimEdges(index)
	tf := t.tor.Files()[index]
	pieceLen := t.tor.Info().PieceLength
	lr := tf.NewReader()
	// The library marks the piece under its reader Now and its readahead Readahead. Keep
	// its part to that one piece (1 byte of readahead) and grade the window ourselves (see
	// window), so that in urgent mode nothing but the piece being read is wanted.
	lr.SetReadahead(1)
	lr.SetContext(ctx)
	r := &Reader{
		t:        t,
		lr:       lr,
		file:     file,
		offset:   tf.Offset(),
		length:   tf.Length(),
		pieceLen: pieceLen,
		ctx:      ctx,
		piece:    -1,
		jumped:   true,
	}
	r.claimWindow()
	return r, nil
}

// Reader streams one file of a task. Reads block until the bytes they need are downloaded
// and verified; only verified bytes are returned. Each reader keeps the pieces at its
// position at the top priority, with a graded readahead window behind them, and moves that
// window before the first read after a Seek. A Reader is an [io.ReadSeekCloser]; it is not
// safe for concurrent use, except that Close may be called after a blocked Read's context is
// cancelled.
type Reader struct {
	t        *Task
	lr       torrent.Reader
	file     File
	offset   int64 // torrent offset of the file
	length   int64
	pieceLen int64
	ctx      context.Context

	pos   int64
	piece int // piece the window was last claimed for, -1 when none
	// jumped is set by Seek (and open) until the next read: a read after a jump to a piece
	// that is not there puts the task in urgent mode at once.
	jumped bool
	// spanStart and spanEnd are the file bytes [spanStart, spanEnd) the caller said it will
	// read (SetSpan); spanEnd 0: none.
	spanStart, spanEnd int64

	closeOnce sync.Once
}

var _ io.ReadSeekCloser = (*Reader)(nil)

// File returns the file the reader reads.
func (r *Reader) File() File { return r.file }

// SetContext sets the context that cancels blocked reads (the HTTP request's, typically).
func (r *Reader) SetContext(ctx context.Context) {
	r.ctx = ctx
	r.lr.SetContext(ctx)
}

// SetSpan tells the reader that the caller will read file bytes [off, end) and no further
// (a bounded HTTP range). While the position is inside them, the next part of them is
// wanted at once at the top priority, as the piece under the position is, and a read that
// jumped waits in urgent mode for all of those pieces, not only the one it reads first.
// Without it, urgent mode asks peers only for the piece under each reader, and a short range
// read by a player or a prefetch after a seek would fetch its pieces one at a time. That part
// is what the task downloads in spanTime (at least two pieces, at most maxSpanBytes): a
// player's range can run to the end of the file (Chromium asks for everything up to an MP4's
// index at the end), and asking for megabytes of it at once from a slow swarm makes the
// first read wait for all of them, since peers need not send them in order. The rest of the
// span is read ahead as any read is. end <= off clears the span.
func (r *Reader) SetSpan(off, end int64) {
	if end <= off || off < 0 {
		off, end = 0, 0
	}
	r.spanStart, r.spanEnd = off, min(end, r.length)
	r.claimWindow()
}

// spanLeft returns how many bytes of the span ahead of the position are wanted at once (see
// SetSpan), 0 outside it.
func (r *Reader) spanLeft() int64 {
	if r.pos < r.spanStart || r.pos >= r.spanEnd {
		return 0
	}
	r.t.mu.Lock()
	bps := r.t.down.bps()
	r.t.mu.Unlock()
	return spanAhead(r.spanEnd-r.pos, r.pieceLen, bps)
}

// spanAhead returns how many of the left bytes of a span are wanted at once, for a task
// that downloads bps bytes per second: what it downloads in spanTime, at least two pieces,
// at most maxSpanBytes.
func spanAhead(left, pieceLen, bps int64) int64 {
	return min(left, max(2*pieceLen, int64(float64(bps)*spanTime.Seconds())), maxSpanBytes)
}

// Read reads from the current position, blocking until the data is verified.
func (r *Reader) Read(p []byte) (int, error) {
	if r.pos >= r.length {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	// The library's file reader (v1.59.1) can return bytes past the end of its file (from
	// the next file of the torrent); never ask it for more than the file holds.
	if rem := r.length - r.pos; int64(len(p)) > rem {
		p = p[:rem]
	}
	// Urgency covers what this read needs, up to two pieces, and the rest of a span.
	if missing := r.missing(max(min(int64(len(p)), 2*r.pieceLen), r.spanLeft())); len(missing) > 0 {
		defer func(start time.Time) { r.t.e.wait.add(time.Since(start)) }(time.Now())
		var stopStall func()
		if r.jumped {
			r.t.urge(r, missing)
			r.t.kick(missing) // kick.go
		} else {
			// A sequential read that stalls may wait behind a queue as a jump does: the
			// requests a connection's first update sends, before its rate sets a ceiling,
			// hold seconds of a slow peer's upload (kick.go).
			stopStall = r.onStall(missing)
		}
		defer r.t.unurge(r, true)
		if stopStall != nil {
			defer stopStall() // before unurge: a stall that fires late must not urge again
		}
		r.t.waiting.Add(1) // verification runs at disk speed meanwhile (integrity.go)
		defer r.t.waiting.Add(-1)
	}
	r.jumped = false
	n, err := r.t.readPastKicks(r.ctx, r.lr, p)
	if res := r.t.res.Load(); n > 0 && res != nil && res.dropped.Load() {
		// The torrent was closed under this read: its bytes may be the zeros a closed
		// storage returns for a deleted file (see reservedPiece.ReadAt). Never pass them on.
		return 0, fmt.Errorf("read %s: task %s removed: %w", r.file.Path, r.t.id, ErrNotFound)
	}
	r.pos += int64(n)
	r.t.played.set(r.file.Index, r.pos)
	if r.piece != r.pieceAt(r.pos) {
		r.claimWindow()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		err = r.readError(err)
	}
	return n, err
}

// onStall puts the task in urgent mode for missing, and kicks a queue they wait behind, once
// the read has waited readStallUrge. The returned stop ends that: after it returns, the
// stall neither runs nor is still running, so it cannot put a reader whose read has ended
// back in urgent mode (or kick for it).
func (r *Reader) onStall(missing []int) (stop func()) {
	var mu sync.Mutex
	ended := false
	timer := time.AfterFunc(readStallUrge, func() {
		mu.Lock()
		defer mu.Unlock()
		if ended {
			return
		}
		r.t.urge(r, missing)
		r.t.kick(missing)
	})
	return func() {
		timer.Stop()
		mu.Lock()
		ended = true
		mu.Unlock()
	}
}

// readError explains why the library gave up on a read.
func (r *Reader) readError(err error) error {
	if ctxErr := r.ctx.Err(); ctxErr != nil {
		return fmt.Errorf("read %s: %w", r.file.Path, context.Cause(r.ctx))
	}
	if r.t.isDone() {
		return fmt.Errorf("read %s: task removed: %w", r.file.Path, ErrNotFound)
	}
	r.t.mu.Lock()
	paused := r.t.paused
	r.t.mu.Unlock()
	if paused {
		return fmt.Errorf("read %s: %w", r.file.Path, ErrPaused)
	}
	if serr := r.t.storeFailure(); serr != nil {
		return fmt.Errorf("read %s: %w", r.file.Path, serr)
	}
	return fmt.Errorf("read %s: %w", r.file.Path, err)
}

// Seek sets the position for the next Read and, before returning, raises the pieces there
// above everything else.
func (r *Reader) Seek(off int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = off
	case io.SeekCurrent:
		abs = r.pos + off
	case io.SeekEnd:
		abs = r.length + off
	default:
		return 0, fmt.Errorf("seek %s: bad whence %d", r.file.Path, whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("seek %s: negative position %d", r.file.Path, abs)
	}
	if abs == r.pos {
		return abs, nil
	}
	if _, err := r.lr.Seek(abs, io.SeekStart); err != nil {
		return 0, fmt.Errorf("seek %s: %w", r.file.Path, err)
	}
	r.pos = abs
	r.jumped = true
	r.t.unurge(r, false)
	r.claimWindow()
	return abs, nil
}

// Close releases the reader's window and its hold on the task.
func (r *Reader) Close() error {
	var err error
	r.closeOnce.Do(func() {
		r.t.unurge(r, false)
		r.t.prio.claim(r, nil)
		err = r.lr.Close()
		r.t.readerClosed()
	})
	if err != nil {
		return fmt.Errorf("close reader of %s: %w", r.file.Path, err)
	}
	return nil
}

// missing returns the pieces not yet verified among those holding the next n bytes.
func (r *Reader) missing(n int64) []int {
	var out []int
	for p := r.pieceAt(r.pos); p >= 0 && int64(p)*r.pieceLen < r.offset+r.pos+n; p++ {
		if !r.t.tor.Piece(p).State().Complete {
			out = append(out, p)
		}
		if int64(p+1)*r.pieceLen >= r.offset+r.length {
			break
		}
	}
	return out
}

// pieceAt returns the torrent piece under file position pos, or -1 past the end.
func (r *Reader) pieceAt(pos int64) int {
	if pos >= r.length {
		return -1
	}
	return int((r.offset + pos) / r.pieceLen)
}

// claimWindow moves the reader's claimed window to its position.
func (r *Reader) claimWindow() {
	r.piece = r.pieceAt(r.pos)
	if r.piece < 0 {
		r.t.prio.claim(r, nil)
		return
	}
	c := window(r.offset+r.pos, r.offset+r.length, r.pieceLen, r.readahead())
	if n := r.spanLeft(); n > 0 {
		c = merge(c, span(r.offset+r.pos, n, r.pieceLen, prioNow))
	}
	r.t.prio.claim(r, c)
}

// readahead returns how far ahead of the position the reader wants data: about
// readaheadSeconds of playback when the bitrate is known, else max(8 MiB, 2 pieces).
func (r *Reader) readahead() int64 {
	r.t.mu.Lock()
	bitrate := r.t.bitrate
	r.t.mu.Unlock()
	ra := int64(defaultReadaheadBytes)
	if bitrate > 0 {
		ra = min(bitrate/8*readaheadSeconds, maxReadaheadBytes)
	}
	return max(ra, 2*r.pieceLen)
}
