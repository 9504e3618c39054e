package hls

// Keyframe index: stream copy can only cut a segment on a source keyframe,
// so the playlist is truthful only if the package knows where keyframes are
// before ffmpeg runs. MP4 (moov: stss/stts/ctts/elst) and Matroska (Cues)
// carry a keyframe index in their head or tail; this file reads exactly that
// index with HTTP Range requests, never the media data in between.

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

var errNoIndex = errors.New("no keyframe index")

// maxIndexBytes caps one index read (moov or Cues). A two-hour film's moov
// is a few MiB.
const maxIndexBytes = 64 << 20

// byteSource reads byte ranges of the input: up to n bytes at off, fewer
// only at its end.
type byteSource interface {
	readAt(ctx context.Context, off, n int64) ([]byte, error)
	// length returns the input size, -1 while unknown.
	length() int64
}

// rangeSource reads byte ranges of an HTTP resource.
type rangeSource struct {
	client *http.Client
	url    string
	size   int64 // -1 until known
}

func (r *rangeSource) length() int64 { return r.size }

// readAt returns up to n bytes at off; fewer only at the end of the
// resource. Errors never contain the URL.
func (r *rangeSource) readAt(ctx context.Context, off, n int64) ([]byte, error) {
	if n <= 0 || (r.size >= 0 && off >= r.size) {
		return nil, io.EOF
	}
	resp, err := getRange(ctx, r.client, r.url, off, n, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != off {
			return nil, errors.New("read input: bad Content-Range")
		}
		r.size = total
	case http.StatusOK:
		if off != 0 {
			return nil, errors.New("read input: server ignores Range")
		}
		r.size = resp.ContentLength
	case http.StatusRequestedRangeNotSatisfiable:
		return nil, io.EOF
	default:
		return nil, fmt.Errorf("read input: http status %d", resp.StatusCode)
	}
	buf := make([]byte, n)
	m, err := io.ReadFull(resp.Body, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read input: %w", err)
	}
	return buf[:m], nil
}

// getRange asks url for the n bytes at off (with userAgent, when not
// empty). Errors never contain the URL.
func getRange(ctx context.Context, client *http.Client, u string, off, n int64, userAgent string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, errors.New("read input: bad url")
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	if userAgent != "" {
		req.Header.Set("User-Agent", userAgent)
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the url.Error names the URL
		}
		return nil, fmt.Errorf("read input: %w", err)
	}
	return resp, nil
}

// parseContentRange parses "bytes a-b/total" (total may be "*": -1).
func parseContentRange(s string) (start, total int64, ok bool) {
	s, ok = strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, false
	}
	rng, tot, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, false
	}
	a, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}

// keyframeIndex is what fetchKeyframes learns from the container.
type keyframeIndex struct {
	times []float64 // keyframe presentation times, seconds, stream timeline, ascending
	// offsets[i] is the byte offset in the input where reading for
	// times[i] begins (Matroska: its cluster; MP4: the keyframe sample),
	// or nil when the container's index does not say. It tells the prefetch (prefetch.go) which bytes
	// a run started there will read first.
	offsets []int64
	avcC    []byte // AVCDecoderConfigurationRecord, when found
}

// fetchKeyframes reads the keyframe index of the chosen video stream.
func fetchKeyframes(ctx context.Context, client *http.Client, input string, mi *mediaInfo) (*keyframeIndex, error) {
	src := &rangeSource{client: client, url: input, size: -1}
	formats := strings.Split(mi.format, ",")
	switch {
	case slices.Contains(formats, "mp4") || slices.Contains(formats, "mov"):
		trackID := 0
		if id, err := strconv.ParseInt(strings.TrimPrefix(mi.video.ID, "0x"), 16, 64); err == nil && id > 0 {
			trackID = int(id)
		}
		return mp4Keyframes(ctx, src, trackID)
	case slices.Contains(formats, "matroska") || slices.Contains(formats, "webm"):
		return mkvKeyframes(ctx, src, mi.videoNth)
	}
	return nil, fmt.Errorf("%w: container %s", errNoIndex, mi.format)
}

// ---- MP4 ----

// mp4Keyframes walks the top-level boxes to moov (at the head or the tail)
// and reads the sample tables of the video track.
func mp4Keyframes(ctx context.Context, src byteSource, trackID int) (*keyframeIndex, error) {
	off := int64(0)
	for range 64 {
		h, err := src.readAt(ctx, off, 16)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: no moov box", errNoIndex)
			}
			return nil, err
		}
		if len(h) < 8 {
			return nil, fmt.Errorf("%w: truncated box header", errNoIndex)
		}
		size, typ, hdr := int64(binary.BigEndian.Uint32(h)), string(h[4:8]), int64(8)
		switch size {
		case 1:
			if len(h) < 16 {
				return nil, fmt.Errorf("%w: truncated box header", errNoIndex)
			}
			size, hdr = int64(binary.BigEndian.Uint64(h[8:])), 16
		case 0: // box runs to the end of the file
			if src.length() < 0 {
				return nil, fmt.Errorf("%w: unsized box", errNoIndex)
			}
			size = src.length() - off
		}
		if size < hdr {
			return nil, fmt.Errorf("%w: bad box size", errNoIndex)
		}
		if typ == "moov" {
			if size-hdr > maxIndexBytes {
				return nil, fmt.Errorf("%w: moov too large", errNoIndex)
			}
			moov, err := src.readAt(ctx, off+hdr, size-hdr)
			if err != nil {
				return nil, err
			}
			if int64(len(moov)) != size-hdr {
				return nil, fmt.Errorf("%w: truncated moov", errNoIndex)
			}
			return parseMoov(moov, trackID)
		}
		off += size
	}
	return nil, fmt.Errorf("%w: no moov box", errNoIndex)
}

// eachBox calls fn for every box in data.
func eachBox(data []byte, fn func(typ string, payload []byte) error) error {
	for len(data) > 0 {
		if len(data) < 8 {
			return fmt.Errorf("%w: truncated box", errNoIndex)
		}
		size, typ, hdr := uint64(binary.BigEndian.Uint32(data)), string(data[4:8]), uint64(8)
		switch size {
		case 1:
			if len(data) < 16 {
				return fmt.Errorf("%w: truncated box", errNoIndex)
			}
			size, hdr = binary.BigEndian.Uint64(data[8:]), 16
		case 0:
			size = uint64(len(data))
		}
		if size < hdr || size > uint64(len(data)) {
			return fmt.Errorf("%w: bad box size", errNoIndex)
		}
		if err := fn(typ, data[hdr:size]); err != nil {
			return err
		}
		data = data[size:]
	}
	return nil
}

type mp4Track struct {
	id        uint32
	handler   string
	timescale uint32
	elst      []byte
	stts      []byte
	ctts      []byte
	stss      []byte
	hasStss   bool
	avcC      []byte
	stsc      []byte
	stsz      []byte
	stco      []byte
	co64      []byte
}

func parseMoov(moov []byte, trackID int) (*keyframeIndex, error) {
	var movieTimescale uint32
	var tracks []*mp4Track
	err := eachBox(moov, func(typ string, p []byte) error {
		switch typ {
		case "mvhd":
			ts, err := fullBoxTimescale(p)
			if err != nil {
				return err
			}
			movieTimescale = ts
		case "trak":
			t := &mp4Track{}
			if err := parseTrak(p, t); err != nil {
				return err
			}
			tracks = append(tracks, t)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var t *mp4Track
	for _, c := range tracks {
		if (trackID > 0 && int(c.id) == trackID) || (trackID <= 0 && c.handler == "vide") {
			t = c
			break
		}
	}
	if t == nil || t.handler != "vide" {
		return nil, fmt.Errorf("%w: video track not found", errNoIndex)
	}
	times, sync, err := t.keyframeTimes(movieTimescale)
	if err != nil {
		return nil, err
	}
	idx := &keyframeIndex{times: times, avcC: t.avcC}
	if offsets := t.sampleOffsets(sync); offsets != nil {
		// Pair each keyframe's time with its sample's position, in time
		// order; positions out of order leave the prefetch without a range.
		order := make([]int, len(times))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(times[a], times[b]) })
		idx.offsets = make([]int64, len(order))
		for i, k := range order {
			idx.offsets[i] = offsets[k]
		}
		if !slices.IsSorted(idx.offsets) {
			idx.offsets = nil
		}
	}
	slices.Sort(idx.times)
	return idx, nil
}

// sampleOffsets returns the byte position of each of the given samples
// (0-based, ascending) from the chunk tables (stsc, stco or co64, stsz),
// or nil when the tables are missing or disagree. This is where ffmpeg's
// mov demuxer starts reading the video after a seek to that keyframe; the
// audio of the same moment is interleaved nearby.
func (t *mp4Track) sampleOffsets(samples []uint64) []int64 {
	if t.stsc == nil || t.stsz == nil || (t.stco == nil) == (t.co64 == nil) || len(samples) == 0 {
		return nil
	}
	var chunks []int64
	if t.stco != nil {
		chunks = chunkOffsets(t.stco, 4)
	} else {
		chunks = chunkOffsets(t.co64, 8)
	}
	if chunks == nil {
		return nil
	}
	if len(t.stsz) < 12 {
		return nil
	}
	fixed := int64(binary.BigEndian.Uint32(t.stsz[4:]))
	count := uint64(binary.BigEndian.Uint32(t.stsz[8:]))
	if fixed == 0 && uint64(len(t.stsz)-12) < count*4 {
		return nil
	}
	size := func(i uint64) int64 {
		if fixed != 0 {
			return fixed
		}
		return int64(binary.BigEndian.Uint32(t.stsz[12+i*4:]))
	}
	if len(t.stsc) < 8 {
		return nil
	}
	runs := uint64(binary.BigEndian.Uint32(t.stsc[4:]))
	if uint64(len(t.stsc)-8) < runs*12 || runs == 0 {
		return nil
	}
	out := make([]int64, 0, len(samples))
	var first uint64 // first sample of chunk c
	k := 0
	for r := uint64(0); r < runs && k < len(samples); r++ {
		e := t.stsc[8+r*12:]
		from, per := uint64(binary.BigEndian.Uint32(e)), uint64(binary.BigEndian.Uint32(e[4:]))
		to := uint64(len(chunks)) + 1 // chunks of this run: [from, to), 1-based
		if r+1 < runs {
			to = uint64(binary.BigEndian.Uint32(t.stsc[8+(r+1)*12:]))
		}
		if from == 0 || to < from || to > uint64(len(chunks))+1 {
			return nil
		}
		for c := from; c < to && k < len(samples); c++ {
			// Walk the chunk's samples once, whatever number of
			// keyframes it holds.
			off, at := chunks[c-1], first
			for k < len(samples) && samples[k] < first+per {
				if samples[k] < first || samples[k] >= count {
					return nil
				}
				for ; at < samples[k]; at++ {
					off += size(at)
				}
				out = append(out, off)
				k++
			}
			first += per
		}
	}
	if len(out) != len(samples) {
		return nil
	}
	return out
}

// chunkOffsets returns the chunk positions of an stco (width 4) or co64
// (width 8) box, or nil when the box is short or a position is absurd.
func chunkOffsets(box []byte, width int) []int64 {
	if len(box) < 8 {
		return nil
	}
	n := uint64(binary.BigEndian.Uint32(box[4:]))
	if uint64(len(box)-8) < n*uint64(width) {
		return nil
	}
	chunks := make([]int64, n)
	for i := range chunks {
		e := box[8+i*width:]
		v := uint64(binary.BigEndian.Uint32(e))
		if width == 8 {
			v = binary.BigEndian.Uint64(e)
		}
		if v > 1<<62 {
			return nil
		}
		chunks[i] = int64(v)
	}
	return chunks
}

// fullBoxTimescale reads the timescale of an mvhd or mdhd box.
func fullBoxTimescale(p []byte) (uint32, error) {
	if len(p) < 4 {
		return 0, fmt.Errorf("%w: short header box", errNoIndex)
	}
	off := 12 // version+flags, creation, modification (32-bit)
	if p[0] == 1 {
		off = 20
	}
	if len(p) < off+4 {
		return 0, fmt.Errorf("%w: short header box", errNoIndex)
	}
	return binary.BigEndian.Uint32(p[off:]), nil
}

func parseTrak(p []byte, t *mp4Track) error {
	return eachBox(p, func(typ string, p []byte) error {
		switch typ {
		case "tkhd":
			off := 12
			if len(p) > 0 && p[0] == 1 {
				off = 20
			}
			if len(p) < off+4 {
				return fmt.Errorf("%w: short tkhd", errNoIndex)
			}
			t.id = binary.BigEndian.Uint32(p[off:])
		case "edts":
			return eachBox(p, func(typ string, p []byte) error {
				if typ == "elst" {
					t.elst = p
				}
				return nil
			})
		case "mdia":
			return eachBox(p, func(typ string, p []byte) error {
				switch typ {
				case "mdhd":
					ts, err := fullBoxTimescale(p)
					if err != nil {
						return err
					}
					t.timescale = ts
				case "hdlr":
					if len(p) >= 12 {
						t.handler = string(p[8:12])
					}
				case "minf":
					return eachBox(p, func(typ string, p []byte) error {
						if typ != "stbl" {
							return nil
						}
						return eachBox(p, func(typ string, p []byte) error {
							switch typ {
							case "stts":
								t.stts = p
							case "ctts":
								t.ctts = p
							case "stss":
								t.stss, t.hasStss = p, true
							case "stsd":
								t.avcC = findAVCC(p)
							case "stsc":
								t.stsc = p
							case "stsz":
								t.stsz = p
							case "stco":
								t.stco = p
							case "co64":
								t.co64 = p
							}
							return nil
						})
					})
				}
				return nil
			})
		}
		return nil
	})
}

// findAVCC returns the avcC payload of an avc1/avc3 sample entry in stsd.
func findAVCC(stsd []byte) []byte {
	if len(stsd) < 8 {
		return nil
	}
	var rec []byte
	_ = eachBox(stsd[8:], func(typ string, p []byte) error {
		if (typ != "avc1" && typ != "avc3") || len(p) < 78 || rec != nil {
			return nil
		}
		// A visual sample entry has 78 bytes of fixed fields before its
		// child boxes.
		return eachBox(p[78:], func(typ string, p []byte) error {
			if typ == "avcC" {
				rec = p
			}
			return nil
		})
	})
	return rec
}

type sttsRun struct {
	count uint32
	value int64 // delta (stts) or composition offset (ctts)
}

// tableRuns parses the (count, value) runs of an stts or ctts box.
func tableRuns(p []byte, signed bool) ([]sttsRun, error) {
	if len(p) < 8 {
		return nil, fmt.Errorf("%w: short sample table", errNoIndex)
	}
	n := binary.BigEndian.Uint32(p[4:])
	if uint64(len(p)-8) < uint64(n)*8 {
		return nil, fmt.Errorf("%w: short sample table", errNoIndex)
	}
	runs := make([]sttsRun, n)
	for i := range runs {
		e := p[8+i*8:]
		runs[i].count = binary.BigEndian.Uint32(e)
		v := binary.BigEndian.Uint32(e[4:])
		if signed {
			// ctts v0 offsets are unsigned by the spec, but writers put
			// negative ones there too; ffmpeg reads them as signed.
			runs[i].value = int64(int32(v))
		} else {
			runs[i].value = int64(v)
		}
	}
	return runs, nil
}

// editShift returns the shift the edit list applies to media timestamps:
// ticks of media time to subtract and seconds to add (leading empty edits).
func editShift(elst []byte, movieTimescale uint32) (mediaTicks int64, emptySeconds float64, err error) {
	if elst == nil {
		return 0, 0, nil
	}
	if len(elst) < 8 {
		return 0, 0, fmt.Errorf("%w: short elst", errNoIndex)
	}
	v1 := elst[0] == 1
	n := int(binary.BigEndian.Uint32(elst[4:]))
	size := 12
	if v1 {
		size = 20
	}
	if len(elst)-8 < n*size {
		return 0, 0, fmt.Errorf("%w: short elst", errNoIndex)
	}
	var empty uint64
	media := false
	for i := range n {
		e := elst[8+i*size:]
		var dur uint64
		var mt int64
		if v1 {
			dur, mt = binary.BigEndian.Uint64(e), int64(binary.BigEndian.Uint64(e[8:]))
		} else {
			dur, mt = uint64(binary.BigEndian.Uint32(e)), int64(int32(binary.BigEndian.Uint32(e[4:])))
		}
		if mt == -1 {
			if !media {
				empty += dur
			}
			continue
		}
		if media {
			// Several media edits re-time the track piecewise;
			// ffmpeg's rendition of that is not worth modelling.
			return 0, 0, fmt.Errorf("%w: multi-segment edit list", errNoIndex)
		}
		media, mediaTicks = true, mt
	}
	if empty > 0 && movieTimescale > 0 {
		emptySeconds = float64(empty) / float64(movieTimescale)
	}
	return mediaTicks, emptySeconds, nil
}

// maxAllSyncSamples bounds the index of a track without stss (every sample
// is a keyframe).
const maxAllSyncSamples = 2_000_000

// keyframeTimes computes the presentation time of every sync sample the
// way ffmpeg's mov demuxer does: dts (stts) + composition offset (ctts) -
// edit list media time + leading empty edit.
// The times are in sample order, with the sync samples' numbers.
func (t *mp4Track) keyframeTimes(movieTimescale uint32) ([]float64, []uint64, error) {
	if t.timescale == 0 || t.stts == nil {
		return nil, nil, fmt.Errorf("%w: no sample table", errNoIndex)
	}
	stts, err := tableRuns(t.stts, false)
	if err != nil {
		return nil, nil, err
	}
	var ctts []sttsRun
	if t.ctts != nil {
		if ctts, err = tableRuns(t.ctts, true); err != nil {
			return nil, nil, err
		}
	}
	var total uint64
	for _, r := range stts {
		total += uint64(r.count)
	}
	if total == 0 {
		return nil, nil, fmt.Errorf("%w: no samples (fragmented file)", errNoIndex)
	}
	var sync []uint64 // 0-based sample numbers
	if t.hasStss {
		if len(t.stss) < 8 {
			return nil, nil, fmt.Errorf("%w: short stss", errNoIndex)
		}
		n := binary.BigEndian.Uint32(t.stss[4:])
		if uint64(len(t.stss)-8) < uint64(n)*4 {
			return nil, nil, fmt.Errorf("%w: short stss", errNoIndex)
		}
		sync = make([]uint64, 0, n)
		for i := range n {
			s := uint64(binary.BigEndian.Uint32(t.stss[8+i*4:]))
			if s == 0 || s > total || (len(sync) > 0 && s-1 <= sync[len(sync)-1]) {
				return nil, nil, fmt.Errorf("%w: bad stss", errNoIndex)
			}
			sync = append(sync, s-1)
		}
	} else {
		if total > maxAllSyncSamples {
			return nil, nil, fmt.Errorf("%w: too many samples", errNoIndex)
		}
		sync = make([]uint64, total)
		for i := range sync {
			sync[i] = uint64(i)
		}
	}
	mediaTicks, emptySec, err := editShift(t.elst, movieTimescale)
	if err != nil {
		return nil, nil, err
	}

	times := make([]float64, 0, len(sync))
	// Two cursors walk the stts and ctts runs in step with the ascending
	// sync sample numbers.
	var si, runStart uint64
	var dts int64
	ci, cStart := 0, uint64(0)
	sIdx := 0
	for _, s := range sync {
		for sIdx < len(stts) && runStart+uint64(stts[sIdx].count) <= s {
			dts += int64(stts[sIdx].count) * stts[sIdx].value
			runStart += uint64(stts[sIdx].count)
			sIdx++
		}
		if sIdx >= len(stts) {
			return nil, nil, fmt.Errorf("%w: stts shorter than stss", errNoIndex)
		}
		si = s - runStart
		d := dts + int64(si)*stts[sIdx].value
		var off int64
		for ci < len(ctts) && cStart+uint64(ctts[ci].count) <= s {
			cStart += uint64(ctts[ci].count)
			ci++
		}
		if ci < len(ctts) {
			off = ctts[ci].value
		}
		times = append(times, float64(d+off-mediaTicks)/float64(t.timescale)+emptySec)
	}
	return times, sync, nil
}

// ---- Matroska ----

const (
	ebmlIDHeader      = 0x1A45DFA3
	mkvIDSegment      = 0x18538067
	mkvIDSeekHead     = 0x114D9B74
	mkvIDSeek         = 0x4DBB
	mkvIDSeekID       = 0x53AB
	mkvIDSeekPosition = 0x53AC
	mkvIDInfo         = 0x1549A966
	mkvIDTimecodeScl  = 0x2AD7B1
	mkvIDTracks       = 0x1654AE6B
	mkvIDTrackEntry   = 0xAE
	mkvIDTrackNumber  = 0xD7
	mkvIDTrackType    = 0x83
	mkvIDCodecPrivate = 0x63A2
	mkvIDCluster      = 0x1F43B675
	mkvIDCues         = 0x1C53BB6B
	mkvIDCuePoint     = 0xBB
	mkvIDCueTime      = 0xB3
	mkvIDCueTrackPos  = 0xB7
	mkvIDCueTrack     = 0xF7
	mkvIDCueClusterPs = 0xF1
)

// mkvHeadBytes is how much of the file head is read to find the SeekHead,
// Info and Tracks.
const mkvHeadBytes = 64 << 10

// ebmlElement reads an element header at b: ID (marker kept), data size
// (-1 unknown) and header length.
func ebmlElement(b []byte) (id uint32, size int64, n int, err error) {
	if len(b) == 0 || b[0] == 0 {
		return 0, 0, 0, fmt.Errorf("%w: bad EBML id", errNoIndex)
	}
	l := 1
	for b[0]&(0x80>>(l-1)) == 0 {
		l++
	}
	if l > 4 || len(b) < l {
		return 0, 0, 0, fmt.Errorf("%w: bad EBML id", errNoIndex)
	}
	for i := range l {
		id = id<<8 | uint32(b[i])
	}
	b = b[l:]
	if len(b) == 0 || b[0] == 0 {
		return 0, 0, 0, fmt.Errorf("%w: bad EBML size", errNoIndex)
	}
	sl := 1
	for b[0]&(0x80>>(sl-1)) == 0 {
		sl++
	}
	if len(b) < sl {
		return 0, 0, 0, fmt.Errorf("%w: bad EBML size", errNoIndex)
	}
	v := uint64(b[0] & (0xFF >> sl))
	allOnes := v == uint64(0xFF>>sl)
	for i := 1; i < sl; i++ {
		v = v<<8 | uint64(b[i])
		allOnes = allOnes && b[i] == 0xFF
	}
	if allOnes {
		return id, -1, l + sl, nil
	}
	if v > 1<<56 {
		return 0, 0, 0, fmt.Errorf("%w: bad EBML size", errNoIndex)
	}
	return id, int64(v), l + sl, nil
}

// eachElement calls fn for every complete child element in b. It stops
// without error at an element of unknown size or one that runs past b.
func eachElement(b []byte, fn func(id uint32, payload []byte) error) error {
	for len(b) > 0 {
		id, size, n, err := ebmlElement(b)
		if err != nil {
			return err
		}
		if size < 0 || int64(len(b)-n) < size {
			return nil
		}
		if err := fn(id, b[n:int64(n)+size]); err != nil {
			return err
		}
		b = b[int64(n)+size:]
	}
	return nil
}

func ebmlUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

type mkvTrack struct {
	number       uint64
	typ          uint64
	codecPrivate []byte
}

// mkvKeyframes reads the Cues of the videoNth video track.
func mkvKeyframes(ctx context.Context, src byteSource, videoNth int) (*keyframeIndex, error) {
	head, err := src.readAt(ctx, 0, mkvHeadBytes)
	if err != nil {
		return nil, err
	}
	id, size, n, err := ebmlElement(head)
	if err != nil || id != ebmlIDHeader || size < 0 || int64(len(head)) < int64(n)+size {
		return nil, fmt.Errorf("%w: not EBML", errNoIndex)
	}
	rest := head[int64(n)+size:]
	id, _, n, err = ebmlElement(rest)
	if err != nil || id != mkvIDSegment {
		return nil, fmt.Errorf("%w: no segment", errNoIndex)
	}
	segStart := int64(len(head)-len(rest)) + int64(n)

	found := map[uint32][]byte{}
	seeks := map[uint32]int64{}
	var seekHeads [][]byte
	_ = eachElement(rest[n:], func(id uint32, p []byte) error {
		switch id {
		case mkvIDSeekHead:
			seekHeads = append(seekHeads, p)
		case mkvIDInfo, mkvIDTracks, mkvIDCues:
			found[id] = p
		case mkvIDCluster:
			return errStop
		}
		return nil
	})
	for _, sh := range seekHeads {
		parseSeekHead(sh, seeks)
	}
	fetch := func(want uint32) ([]byte, error) {
		if p, ok := found[want]; ok {
			return p, nil
		}
		pos, ok := seeks[want]
		if !ok {
			return nil, nil
		}
		h, err := src.readAt(ctx, segStart+pos, 16)
		if err != nil {
			return nil, err
		}
		id, size, n, err := ebmlElement(h)
		if err != nil || id != want || size < 0 {
			return nil, fmt.Errorf("%w: seek entry does not point at element %x", errNoIndex, want)
		}
		if size > maxIndexBytes {
			return nil, fmt.Errorf("%w: element %x too large", errNoIndex, want)
		}
		p, err := src.readAt(ctx, segStart+pos+int64(n), size)
		if err != nil {
			return nil, err
		}
		if int64(len(p)) != size {
			return nil, fmt.Errorf("%w: truncated element %x", errNoIndex, want)
		}
		return p, nil
	}
	// A second SeekHead (mkvmerge writes one at the end) may hold the
	// Cues entry.
	if _, ok := seeks[mkvIDCues]; !ok {
		if _, ok := found[mkvIDCues]; !ok {
			if p, err := fetch(mkvIDSeekHead); err == nil && p != nil {
				parseSeekHead(p, seeks)
			}
		}
	}

	scale := uint64(1_000_000)
	info, err := fetch(mkvIDInfo)
	if err != nil {
		return nil, err
	}
	_ = eachElement(info, func(id uint32, p []byte) error {
		if id == mkvIDTimecodeScl {
			if v := ebmlUint(p); v > 0 {
				scale = v
			}
		}
		return nil
	})
	tracksEl, err := fetch(mkvIDTracks)
	if err != nil {
		return nil, err
	}
	if tracksEl == nil {
		return nil, fmt.Errorf("%w: no tracks", errNoIndex)
	}
	var video *mkvTrack
	nth := 0
	err = eachElement(tracksEl, func(id uint32, p []byte) error {
		if id != mkvIDTrackEntry {
			return nil
		}
		t := &mkvTrack{}
		if err := eachElement(p, func(id uint32, p []byte) error {
			switch id {
			case mkvIDTrackNumber:
				t.number = ebmlUint(p)
			case mkvIDTrackType:
				t.typ = ebmlUint(p)
			case mkvIDCodecPrivate:
				t.codecPrivate = p
			}
			return nil
		}); err != nil {
			return err
		}
		if t.typ == 1 {
			if nth == videoNth {
				video = t
			}
			nth++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if video == nil {
		return nil, fmt.Errorf("%w: video track not found", errNoIndex)
	}
	cues, err := fetch(mkvIDCues)
	if err != nil {
		return nil, err
	}
	if cues == nil {
		return nil, fmt.Errorf("%w: no cues", errNoIndex)
	}
	type cue struct {
		t   float64
		off int64 // -1: no cluster position
	}
	var points []cue
	err = eachElement(cues, func(id uint32, p []byte) error {
		if id != mkvIDCuePoint {
			return nil
		}
		var t uint64
		var mine bool
		off := int64(-1)
		if err := eachElement(p, func(id uint32, p []byte) error {
			switch id {
			case mkvIDCueTime:
				t = ebmlUint(p)
			case mkvIDCueTrackPos:
				var track uint64
				pos := int64(-1)
				if err := eachElement(p, func(id uint32, p []byte) error {
					switch id {
					case mkvIDCueTrack:
						track = ebmlUint(p)
					case mkvIDCueClusterPs:
						if v := ebmlUint(p); v < 1<<62 {
							pos = segStart + int64(v)
						}
					}
					return nil
				}); err != nil {
					return err
				}
				if track == video.number {
					mine, off = true, pos
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if mine {
			points = append(points, cue{float64(t) * float64(scale) / 1e9, off})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(points) == 0 {
		return nil, fmt.Errorf("%w: no cues for the video track", errNoIndex)
	}
	slices.SortStableFunc(points, func(a, b cue) int { return cmp.Compare(a.t, b.t) })
	points = slices.CompactFunc(points, func(a, b cue) bool { return a.t == b.t })
	times := make([]float64, len(points))
	offsets := make([]int64, len(points))
	for i, c := range points {
		times[i], offsets[i] = c.t, c.off
	}
	// The prefetch needs every point's position, in time order on disk.
	if slices.Min(offsets) < 0 || !slices.IsSorted(offsets) {
		offsets = nil
	}
	return &keyframeIndex{times: times, offsets: offsets, avcC: video.codecPrivate}, nil
}

var errStop = errors.New("stop")

func parseSeekHead(p []byte, seeks map[uint32]int64) {
	_ = eachElement(p, func(id uint32, p []byte) error {
		if id != mkvIDSeek {
			return nil
		}
		var target uint32
		pos := int64(-1)
		_ = eachElement(p, func(id uint32, p []byte) error {
			switch id {
			case mkvIDSeekID:
				target = uint32(ebmlUint(p))
			case mkvIDSeekPosition:
				if v := ebmlUint(p); v < 1<<62 {
					pos = int64(v)
				}
			}
			return nil
		})
		if target != 0 && pos >= 0 {
			if _, dup := seeks[target]; !dup {
				seeks[target] = pos
			}
		}
		return nil
	})
}
