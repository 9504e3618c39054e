package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/anacrolix/torrent"
)

// The playing time of a streamed file, from its container.
//
// Status.BufferedSeconds needs the selected file's bitrate. An HLS session learns it from
// ffprobe (see Task.SetBitrate), but a player reading /stream directly (VLC, a browser playing
// the raw file) starts none. So once a task's file is selected, the engine reads the duration
// the container records — MP4's movie header (mvhd) or Matroska's segment Info — through a
// reader of the torrent library, which returns only verified bytes, and derives the bitrate as
// size / duration. Only headers are read: the head of the file, and for an MP4 whose movie box
// follows the media data, the start of that box near the tail (the head and tail are what a
// stream task fetches first). Other containers leave the bitrate unknown, and the progress
// line shows bytes.

// errNoDuration reports a file whose container duration is not known to [containerDuration].
var errNoDuration = errors.New("no container duration")

// Bounds on what containerDuration reads, so a hostile file cannot make it loop or allocate.
const (
	maxDurationBoxes = 4096
	maxDurationSecs  = 30 * 24 * 3600 // a month: anything longer is not a real duration
)

// containerDuration returns the playing time in seconds recorded by an MP4/MOV or a
// Matroska/WebM file of size bytes read through r, or errNoDuration.
func containerDuration(r io.ReadSeeker, size int64) (float64, error) {
	var head [12]byte
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, errNoDuration
	}
	var secs float64
	var err error
	switch {
	case binary.BigEndian.Uint32(head[:4]) == ebmlMagic:
		secs, err = matroskaDuration(r, size)
	case isMP4Box(string(head[4:8])):
		secs, err = mp4Duration(r, size)
	default:
		return 0, errNoDuration
	}
	if err != nil {
		return 0, err
	}
	if !(secs > 0 && secs <= maxDurationSecs) { // also NaN
		return 0, errNoDuration
	}
	return secs, nil
}

// isMP4Box reports whether typ is a top-level box type that starts ISO BMFF files.
func isMP4Box(typ string) bool {
	switch typ {
	case "ftyp", "moov", "mdat", "free", "skip", "wide", "pnot", "styp":
		return true
	}
	return false
}

// mp4Duration walks the top-level boxes to moov, then moov's children to mvhd.
func mp4Duration(r io.ReadSeeker, size int64) (float64, error) {
	off, end := int64(0), size
	inMoov := false
	for range maxDurationBoxes {
		if off+8 > end {
			return 0, errNoDuration
		}
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			return 0, err
		}
		var h [16]byte
		if _, err := io.ReadFull(r, h[:8]); err != nil {
			return 0, err
		}
		boxLen, hdr := int64(binary.BigEndian.Uint32(h[:4])), int64(8)
		switch boxLen {
		case 0: // to the end of the enclosing box
			boxLen = end - off
		case 1: // a 64-bit size follows the type
			if _, err := io.ReadFull(r, h[8:16]); err != nil {
				return 0, err
			}
			v := binary.BigEndian.Uint64(h[8:16])
			if v > math.MaxInt64 {
				return 0, errNoDuration
			}
			boxLen, hdr = int64(v), 16
		}
		if boxLen < hdr || boxLen > end-off {
			return 0, errNoDuration
		}
		switch typ := string(h[4:8]); {
		case !inMoov && typ == "moov":
			inMoov, off, end = true, off+hdr, off+boxLen
			continue
		case inMoov && typ == "mvhd":
			return mvhdDuration(r, boxLen-hdr)
		}
		off += boxLen
	}
	return 0, errNoDuration
}

// mvhdDuration reads a movie header's body (r is at its start): version and flags, the
// creation and modification times, the timescale and the duration; the times and the
// duration are 32-bit in version 0 and 64-bit in version 1.
func mvhdDuration(r io.Reader, bodyLen int64) (float64, error) {
	var b [32]byte
	if bodyLen < 20 {
		return 0, errNoDuration
	}
	n := min(bodyLen, int64(len(b)))
	if _, err := io.ReadFull(r, b[:n]); err != nil {
		return 0, err
	}
	var scale uint32
	var dur uint64
	switch b[0] {
	case 0:
		scale, dur = binary.BigEndian.Uint32(b[12:16]), uint64(binary.BigEndian.Uint32(b[16:20]))
		if dur == math.MaxUint32 {
			return 0, errNoDuration // "unknown"
		}
	case 1:
		if n < 32 {
			return 0, errNoDuration
		}
		scale, dur = binary.BigEndian.Uint32(b[20:24]), binary.BigEndian.Uint64(b[24:32])
		if dur == math.MaxUint64 {
			return 0, errNoDuration
		}
	default:
		return 0, errNoDuration
	}
	if scale == 0 {
		return 0, errNoDuration
	}
	return float64(dur) / float64(scale), nil
}

// Matroska (EBML) element IDs, with their length markers, as written in files.
const (
	ebmlMagic       = 0x1A45DFA3
	mkvSegment      = 0x18538067
	mkvInfo         = 0x1549A966
	mkvTimecodeScal = 0x2AD7B1
	mkvDuration     = 0x4489
	mkvCluster      = 0x1F43B675
)

// matroskaDuration reads the EBML header, enters the Segment and reads its Info: Duration
// (a float in TimecodeScale units, nanoseconds each by default).
func matroskaDuration(r io.ReadSeeker, size int64) (float64, error) {
	br := &ebmlReader{r: r}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	off, end := int64(0), size
	for range maxDurationBoxes {
		if off >= end {
			return 0, errNoDuration
		}
		id, body, n, err := br.element(off, end, true)
		if err != nil {
			return 0, err
		}
		switch id {
		case mkvSegment:
			off, end = body, body+n // enter it
			continue
		case mkvInfo:
			return matroskaInfo(br, body, body+n)
		case mkvCluster:
			return 0, errNoDuration // media data: Info comes before it in every real file
		}
		off = body + n
	}
	return 0, errNoDuration
}

// matroskaInfo reads the Info element's children between off and end.
func matroskaInfo(br *ebmlReader, off, end int64) (float64, error) {
	scale := uint64(1_000_000)
	dur := math.NaN()
	for range maxDurationBoxes {
		if off >= end {
			break
		}
		id, body, n, err := br.element(off, end, false)
		if err != nil {
			return 0, err
		}
		switch id {
		case mkvTimecodeScal:
			if n < 1 || n > 8 {
				return 0, errNoDuration
			}
			var b [8]byte
			if _, err := io.ReadFull(br.r, b[8-n:]); err != nil {
				return 0, err
			}
			scale = binary.BigEndian.Uint64(b[:])
		case mkvDuration:
			var b [8]byte
			switch n {
			case 4:
				if _, err := io.ReadFull(br.r, b[:4]); err != nil {
					return 0, err
				}
				dur = float64(math.Float32frombits(binary.BigEndian.Uint32(b[:4])))
			case 8:
				if _, err := io.ReadFull(br.r, b[:]); err != nil {
					return 0, err
				}
				dur = math.Float64frombits(binary.BigEndian.Uint64(b[:]))
			default:
				return 0, errNoDuration
			}
		}
		off = body + n
	}
	if math.IsNaN(dur) || scale == 0 {
		return 0, errNoDuration
	}
	return dur * float64(scale) / 1e9, nil
}

// ebmlReader reads EBML variable-length integers, counting the bytes it read in n.
type ebmlReader struct {
	r io.ReadSeeker
	n int64
}

func (br *ebmlReader) byte() (byte, error) {
	var b [1]byte
	if _, err := io.ReadFull(br.r, b[:]); err != nil {
		return 0, err
	}
	br.n++
	return b[0], nil
}

// vint reads a variable-length integer of at most maxLen bytes; it returns the value with
// the length marker (keep) or without it, and whether every value bit is set.
func (br *ebmlReader) vint(maxLen int, keep bool) (v uint64, allOnes bool, err error) {
	first, err := br.byte()
	if err != nil {
		return 0, false, err
	}
	l := 1
	for mask := byte(0x80); l <= 8 && first&mask == 0; mask >>= 1 {
		l++
	}
	if l > maxLen {
		return 0, false, errNoDuration
	}
	marker := uint64(1) << (7 * l)
	v = uint64(first)
	if !keep {
		v &^= uint64(0x80) >> (l - 1)
	}
	for range l - 1 {
		b, err := br.byte()
		if err != nil {
			return 0, false, err
		}
		v = v<<8 | uint64(b)
	}
	if keep {
		return v, false, nil
	}
	return v, v == marker-1, nil
}

// element reads the header of the element at off: its ID, where its body starts and the
// body's size, which must end by end. A body of unknown size runs to end when unknownOK
// (a live-written Segment), else it is an error.
func (br *ebmlReader) element(off, end int64, unknownOK bool) (id uint64, body, n int64, err error) {
	if _, err := br.r.Seek(off, io.SeekStart); err != nil {
		return 0, 0, 0, err
	}
	br.n = 0
	if id, err = br.id(); err != nil {
		return 0, 0, 0, err
	}
	n, unknown, err := br.size()
	if err != nil {
		return 0, 0, 0, err
	}
	body = off + br.n
	if unknown {
		if !unknownOK {
			return 0, 0, 0, errNoDuration
		}
		n = end - body
	}
	if n < 0 || n > end-body {
		return 0, 0, 0, errNoDuration
	}
	return id, body, n, nil
}

// id reads an element ID (1 to 4 bytes, marker kept, as IDs are written).
func (br *ebmlReader) id() (uint64, error) {
	v, _, err := br.vint(4, true)
	return v, err
}

// size reads an element's data size (1 to 8 bytes); unknown is the all-ones value.
func (br *ebmlReader) size() (n int64, unknown bool, err error) {
	v, allOnes, err := br.vint(8, false)
	if err != nil {
		return 0, false, err
	}
	if allOnes {
		return 0, true, nil
	}
	if v > math.MaxInt64 {
		return 0, false, errNoDuration
	}
	return int64(v), false, nil
}

// probeBitrate sets the bitrate of the task's selected file from its container's duration,
// unless one is known already (an HLS session's probe). It runs once per task, after the
// file is selected, and ends early when the task is removed. Failure leaves the bitrate
// unknown; the progress line then shows bytes.
func (t *Task) probeBitrate() {
	ctx := doneContext{t.done}
	t.mu.Lock()
	sel := t.selected
	t.mu.Unlock()
	files := t.tor.Files()
	if sel < 0 || sel >= len(files) {
		return
	}
	f := files[sel]
	r := f.NewReader()
	defer r.Close() // read-only: nothing to lose
	// Headers only: no readahead beyond what is asked.
	r.SetReadahead(0)
	r.SetContext(ctx)
	secs, err := containerDuration(pastKicks{r, t, ctx}, f.Length())
	if err != nil {
		if ctx.Err() == nil {
			t.e.log.Debug("no container duration", "task", t.id, "file", sel, "err", err)
		}
		return
	}
	bps := int64(float64(f.Length()*8) / secs)
	t.mu.Lock()
	if t.bitrate == 0 && t.selected == sel {
		t.bitrate = bps
	}
	t.mu.Unlock()
	t.e.log.Debug("bitrate from container", "task", t.id, "file", sel, "dur", fmt.Sprintf("%.1fs", secs), "bps", bps)
}

// pastKicks is a library reader of task t whose reads wait on through kicks (readPastKicks).
type pastKicks struct {
	torrent.Reader
	t   *Task
	ctx context.Context
}

func (k pastKicks) Read(p []byte) (int, error) { return k.t.readPastKicks(k.ctx, k.Reader, p) }

// doneContext is a context canceled when done is closed: the task's lifetime, for the
// library reader's SetContext.
type doneContext struct{ done <-chan struct{} }

var _ context.Context = doneContext{}

func (doneContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c doneContext) Done() <-chan struct{}     { return c.done }
func (doneContext) Value(any) any               { return nil }

func (c doneContext) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}
