package hls

// Prefetch: a seek into bytes the input does not have yet (a torrent still
// downloading) waits for two things in a row: ffmpeg's start (0.2-0.6 s of
// loading shared libraries before its first request) and then the bytes.
// When a run starts at a segment and the container's index says where that
// segment's bytes are (Matroska: the cluster of each cue point; MP4: the
// keyframe sample's position from the chunk tables), the
// session reads that byte range itself, at once, through the same input
// ffmpeg reads: the input (in the daemon, a torrent reader) starts fetching
// those bytes while ffmpeg is still loading. The prefetch reads one segment
// (from the cluster holding the keyframe the run starts from to the cluster
// of the keyframe after the segment, plus a little) and discards it; it is
// cancelled when a later run starts elsewhere (the player moved on), when the
// segment is done, or when the session closes.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// prefetchTailBytes is read past the cluster that holds the keyframe
	// after the segment: ffmpeg finishes a segment only when it has read
	// the next one's first packet.
	prefetchTailBytes = 64 << 10
	// maxPrefetchBytes bounds one prefetch (a last segment, a huge GOP).
	maxPrefetchBytes = 32 << 20
	// prefetchChunkBytes and maxPrefetchStreams split one prefetch into
	// parallel reads. A torrent reader asks for the piece under a read
	// that jumped at once, but for the pieces after it only once it has
	// waited on them a while (see the engine's urgent mode): parallel reads
	// from several offsets make every piece of the segment one a reader
	// is waiting for. 256 KiB is the smallest usual piece size; larger
	// pieces only get two readers on one piece.
	prefetchChunkBytes = 256 << 10
	maxPrefetchStreams = 8
	// prefetchUserAgent marks the session's own reads of the input.
	prefetchUserAgent = "torrentclaw-hls-prefetch"
)

// seekIndex maps playback times to the input bytes a run starting there
// reads first.
type seekIndex struct {
	times   []float64 // keyframe times relative to the input's start time, ascending
	offsets []int64   // byte offset where reading for times[i] begins, ascending
	land    landing   // how ffmpeg's demuxer seeks in this input
}

// newSeekIndex returns the seek index of a keyframe index whose times are
// on the stream timeline starting at startTime, for an input where ffmpeg's
// demuxer seek lands lead seconds before the time asked for, or nil when the
// index has no byte positions.
func newSeekIndex(idx *keyframeIndex, startTime float64, land landing) *seekIndex {
	if idx == nil || len(idx.offsets) == 0 || len(idx.offsets) != len(idx.times) {
		return nil
	}
	si := &seekIndex{times: make([]float64, len(idx.times)), offsets: slices.Clone(idx.offsets), land: land}
	for i, t := range idx.times {
		si.times[i] = t - startTime
	}
	return si
}

// exactAt reports whether a copy run starting at from (seconds) can make
// ffmpeg's demuxer land on the keyframe at from (landing): there is one
// there, and the next keyframe is far enough after it.
func (si *seekIndex) exactAt(from float64) bool {
	for k, t := range si.times {
		if t < from-cutEpsilon {
			continue
		}
		if t > from+cutEpsilon {
			return false
		}
		return k+1 == len(si.times) || si.times[k+1] > si.land.time(from)+cutEpsilon
	}
	return false
}

// exactSeekLocked reports whether the runs starting at segment idx land on
// its first keyframe (landing): copy sessions whose index says they can.
func (s *Session) exactSeekLocked(idx int) bool {
	return idx > 0 && s.variant.copyVideo && s.seekIdx != nil && s.seekIdx.exactAt(s.plan.starts[idx])
}

// byteRange returns the bytes a run needs to make the segment [from, to)
// (seconds; to < 0: to the end of the input): from the position of the
// keyframe ffmpeg's read starts at to the position of the first keyframe at
// or after to, plus prefetchTailBytes, at most maxPrefetchBytes. With
// exact, that is the last keyframe at or before from (a run that lands on
// it, or ffmpeg already reading its way there); otherwise a run's -ss, up
// to cutEpsilon before from, less the demuxer's lead, makes it the last
// keyframe at or before from - cutEpsilon - lead.
func (si *seekIndex) byteRange(from, to float64, exact bool) (off, n int64) {
	limit := from + cutEpsilon
	if !exact {
		limit = from - cutEpsilon - si.land.lead
	}
	i := 0
	for k, t := range si.times {
		if t > limit {
			break
		}
		i = k
	}
	off = si.offsets[i]
	end := off + maxPrefetchBytes
	if to >= 0 {
		for k := i + 1; k < len(si.times); k++ {
			if si.times[k] >= to-cutEpsilon {
				end = si.offsets[k] + prefetchTailBytes
				break
			}
		}
	}
	return off, min(end-off, maxPrefetchBytes)
}

// prefetchRun is one prefetch of a session.
type prefetchRun struct {
	player  string // whose it is (SegmentFor); each player has one at most
	segment int    // the last segment it reads for
	off, n  int64  // its bytes
	cancel  context.CancelFunc
}

// prefetchLocked starts reading the bytes of segments [from, last] unless
// a prefetch from the same byte reaching as far is running; a running
// prefetch of other bytes is cancelled (the player moved on). Called with
// s.mu held, after the closed check: by every run start (from == last ==
// the run's first segment; the video's and the audio renditions' runs at
// one segment share one prefetch), and by a request for a segment a little
// ahead of the running ffmpeg, which it waits for (from: the segment
// ffmpeg makes next).
func (s *Session) prefetchLocked(player string, from, last int) {
	si := s.seekIdx
	if si == nil {
		return
	}
	to := -1.0
	if last+1 < s.plan.n() {
		to = s.plan.starts[last+1]
	}
	// A run starts at from (from == last), unless ffmpeg already runs up to it.
	exact := from != last || s.exactSeekLocked(from)
	off, n := si.byteRange(s.plan.starts[from], to, exact)
	if pf := s.pf[player]; pf != nil {
		if pf.off == off && pf.n >= n {
			return
		}
		pf.cancel()
		delete(s.pf, player)
	}
	if n <= 0 {
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	pf := &prefetchRun{player: player, segment: last, off: off, n: n, cancel: cancel}
	s.pf[player] = pf
	s.wg.Add(1)
	go s.runPrefetch(ctx, pf, n)
}

// endPrefetchLocked cancels the prefetch whose last segment is idx, which
// is done.
func (s *Session) endPrefetchLocked(idx int) {
	for player, pf := range s.pf {
		if pf.segment == idx {
			pf.cancel()
			delete(s.pf, player)
		}
	}
}

// runPrefetch reads n bytes at pf.off, in up to maxPrefetchStreams
// parallel ranges, and discards them.
func (s *Session) runPrefetch(ctx context.Context, pf *prefetchRun, n int64) {
	defer s.wg.Done()
	defer pf.cancel()
	start := time.Now()
	streams := min((n+prefetchChunkBytes-1)/prefetchChunkBytes, maxPrefetchStreams)
	size := (n + streams - 1) / streams
	var got atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for off := pf.off; off < pf.off+n; off += size {
		wg.Go(func() {
			k, err := s.readDiscard(ctx, off, min(size, pf.off+n-off))
			got.Add(k)
			if err != nil {
				errOnce.Do(func() { firstErr = err })
			}
		})
	}
	wg.Wait()
	s.mu.Lock()
	if s.pf[pf.player] == pf {
		delete(s.pf, pf.player)
	}
	s.mu.Unlock()
	s.m.prefetches.Add(1)
	attrs := []any{"segment", pf.segment, "offset", pf.off, "bytes", got.Load(), "want_bytes", n,
		"streams", streams, "ms", time.Since(start).Milliseconds()}
	switch {
	case ctx.Err() != nil:
		s.log.Debug("hls prefetch stopped", attrs...)
	case firstErr != nil:
		s.log.Debug("hls prefetch failed", append(attrs, "err", firstErr)...)
	default:
		s.log.Debug("hls prefetch done", attrs...)
	}
}

// readDiscard reads up to n bytes of the input at off and throws them
// away, returning how many arrived. Errors never contain the URL.
func (s *Session) readDiscard(ctx context.Context, off, n int64) (int64, error) {
	resp, err := getRange(ctx, s.m.client, s.input, off, n, prefetchUserAgent)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return 0, fmt.Errorf("read input: http status %d", resp.StatusCode)
	}
	got, err := io.Copy(io.Discard, io.LimitReader(resp.Body, n))
	if err != nil {
		return got, errors.New("read input: body cut short")
	}
	return got, nil
}

// loadSeekIndex reads the keyframe index of a transcode session's input
// (MP4 or Matroska) for the prefetch; a failure only means no prefetch.
func (s *Session) loadSeekIndex() {
	defer s.wg.Done()
	defer close(s.idxDone)
	ctx, cancel := context.WithTimeout(s.ctx, probeTimeout)
	defer cancel()
	idx, err := fetchKeyframes(ctx, s.m.client, s.input, s.media) // no I/O for other containers
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Debug("hls seek index unusable, no prefetch", "err", err)
		}
		return
	}
	if si := newSeekIndex(idx, s.media.startTime, s.media.landing()); si != nil {
		s.mu.Lock()
		s.seekIdx = si
		s.mu.Unlock()
	}
}
