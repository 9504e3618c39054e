package hls

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// gatedServer serves one file like the daemon's /stream and holds back
// the bytes in [from, to) as a torrent that has not downloaded them yet
// would: for ffmpeg (every request but the session's prefetch) until open
// is closed, and for the prefetch too when holdPrefetch is set (until the
// request is cancelled).
type gatedServer struct {
	*httptest.Server
	from, to     int64
	holdPrefetch bool
	open         chan struct{}
	openOnce     sync.Once

	mu sync.Mutex
	// prefetch records every prefetch request: its first byte, the
	// furthest byte it was served, and whether its context ended before
	// the response was finished.
	prefetch []*gatedRead
	// reads records where each of ffmpeg's requests was first read.
	reads []int64
}

type gatedRead struct {
	start, reached int64
	cancelled      bool
}

func (g *gatedServer) release() { g.openOnce.Do(func() { close(g.open) }) }

func serveGated(t *testing.T, path string, from, to int64, holdPrefetch bool) *gatedServer {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedServer{from: from, to: to, holdPrefetch: holdPrefetch, open: make(chan struct{})}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("t") != testToken {
			http.NotFound(w, r)
			return
		}
		rd := &gatedReader{r: bytes.NewReader(data), g: g, ctx: r.Context()}
		if r.Header.Get("User-Agent") == prefetchUserAgent {
			rd.pf = &gatedRead{start: -1, reached: -1}
			g.mu.Lock()
			g.prefetch = append(g.prefetch, rd.pf)
			g.mu.Unlock()
		}
		w.Header().Set("Content-Type", "video/x-matroska") // no sniffing read at 0
		http.ServeContent(w, r, filepath.Base(path), time.Time{}, rd)
		if rd.pf != nil && r.Context().Err() != nil {
			g.mu.Lock()
			rd.pf.cancelled = true
			g.mu.Unlock()
		}
	}))
	t.Cleanup(func() {
		g.release()
		g.Server.CloseClientConnections()
		g.Server.Close()
	})
	return g
}

func (g *gatedServer) inputURL() string { return g.URL + "/stream?id=task&t=" + testToken }

// prefetchedLocked reports whether the prefetch reads together have been
// served all of [from, to).
func (g *gatedServer) prefetchedLocked() bool {
	reads := make([]gatedRead, 0, len(g.prefetch))
	for _, p := range g.prefetch {
		if p.start >= 0 {
			reads = append(reads, *p)
		}
	}
	slices.SortFunc(reads, func(a, b gatedRead) int { return cmp.Compare(a.start, b.start) })
	at := g.from
	for _, p := range reads {
		if p.start <= at {
			at = max(at, p.reached)
		}
	}
	return at >= g.to
}

func (g *gatedServer) snapshot() []gatedRead {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]gatedRead, len(g.prefetch))
	for i, p := range g.prefetch {
		out[i] = *p
	}
	return out
}

type gatedReader struct {
	r    *bytes.Reader
	g    *gatedServer
	pf   *gatedRead // nil: not the prefetch
	ctx  context.Context
	read bool // ffmpeg's request has been read from
}

func (rd *gatedReader) Seek(off int64, whence int) (int64, error) { return rd.r.Seek(off, whence) }

func (rd *gatedReader) Read(p []byte) (int, error) {
	g := rd.g
	pos := rd.r.Size() - int64(rd.r.Len())
	if pos < g.from && int64(len(p)) > g.from-pos {
		p = p[:g.from-pos] // stop at the gate
	}
	if len(p) > 32<<10 {
		p = p[:32<<10]
	}
	g.mu.Lock()
	if rd.pf != nil && rd.pf.start < 0 {
		rd.pf.start = pos
	}
	if rd.pf == nil && !rd.read {
		rd.read = true
		g.reads = append(g.reads, pos)
	}
	g.mu.Unlock()
	if pos >= g.from && pos < g.to {
		if rd.pf == nil || g.holdPrefetch {
			select {
			case <-g.open:
			case <-rd.ctx.Done():
				return 0, rd.ctx.Err()
			}
		}
	}
	n, err := rd.r.Read(p)
	if rd.pf != nil {
		g.mu.Lock()
		rd.pf.reached = max(rd.pf.reached, pos+int64(n))
		g.mu.Unlock()
	}
	return n, err
}

// keyframePositions returns the byte position of every video keyframe
// packet of path by its presentation time, as ffprobe reads them.
func keyframePositions(t *testing.T, path string) map[float64]int64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pts_time,pos,flags", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets: %v", err)
	}
	pos := map[float64]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 || !strings.HasPrefix(f[2], "K") {
			continue
		}
		ts, err1 := strconv.ParseFloat(f[0], 64)
		p, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 == nil && err2 == nil {
			pos[math.Round(ts*1000)/1000] = p
		}
	}
	return pos
}

// posAt returns the position of the keyframe packet at t (within 10 ms).
func posAt(t *testing.T, kf map[float64]int64, at float64) int64 {
	t.Helper()
	for ts, p := range kf {
		if math.Abs(ts-at) < 0.01 {
			return p
		}
	}
	t.Fatalf("no keyframe packet at %.3f s in %v", at, kf)
	return 0
}

// gatedSession serves path through serveGated and opens a session on it,
// fetched up to its playlists.
func gatedSession(t *testing.T, m *Manager, path string, from, to int64, holdPrefetch bool) (*gatedServer, *Session) {
	t.Helper()
	g := serveGated(t, path, from, to, holdPrefetch)
	s, err := m.Create(t.Context(), Spec{InputURL: g.inputURL()})
	if err != nil {
		t.Fatal(err)
	}
	fetchPlaylist(t, s)
	return g, s
}

// learnPlan opens a first session on path (segments of 2 s) and returns it,
// fetched up to its playlists, with its seek index; the caller closes it.
func learnPlan(t *testing.T, m *Manager, path string) (*Session, *seekIndex) {
	t.Helper()
	probe := serveMedia(t, path, serverOptions{})
	s0, err := m.Create(t.Context(), Spec{InputURL: probe.inputURL()})
	if err != nil {
		t.Fatal(err)
	}
	fetchPlaylist(t, s0)
	s0.mu.Lock()
	si := s0.seekIdx
	s0.mu.Unlock()
	if si == nil {
		t.Fatal("no seek index")
	}
	return s0, si
}

// A run started at a segment whose bytes have not arrived makes the
// session read those bytes itself, without waiting for ffmpeg: the input
// holds ffmpeg's reads of the segment's bytes until a prefetch has read all
// of them, so the segment is made only if the prefetch asked first, and
// ffprobe's packet positions show the range runs from the segment's
// keyframe to the next segment's.
func TestPrefetchReadsTargetFirst(t *testing.T) {
	for _, name := range []string{mediaIrregular, mediaCopy} {
		t.Run(name, func(t *testing.T) { testPrefetchReadsTargetFirst(t, name) })
	}
}

func testPrefetchReadsTargetFirst(t *testing.T, name string) {
	path := media(t, name)
	kf := keyframePositions(t, path)
	// Segment 2 is [4.605, 9.005): learn the range from a first session.
	m := newTestManager(t, Options{SegmentSeconds: 2})
	s0, _ := learnPlan(t, m, path)
	target := s0.plan.indexAt(0.7 * s0.plan.duration)
	if target+1 >= s0.plan.n() {
		t.Fatalf("target %d has no next segment", target)
	}
	from, to := s0.plan.starts[target], s0.plan.starts[target+1]
	off, n := s0.runRange(target)
	first, next := posAt(t, kf, from+s0.media.startTime), posAt(t, kf, to+s0.media.startTime)
	if off > first || off+n <= next {
		t.Fatalf("prefetch range [%d, %d) does not hold the keyframes at %d and %d", off, off+n, first, next)
	}
	_ = s0.Close()

	g, s := gatedSession(t, m, path, off, off+n, false)
	done := make(chan error, 1)
	go func() {
		_, err := s.Segment(t.Context(), segmentName(target))
		done <- err
	}()
	waitFor(t, "a prefetch to read the segment's bytes", eventWait, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.prefetchedLocked()
	})
	g.release() // the bytes "arrive" for everyone
	if err := <-done; err != nil {
		t.Fatalf("Segment(%d) = %v", target, err)
	}
	reads := g.snapshot()
	if !slices.ContainsFunc(reads, func(r gatedRead) bool { return r.start == off }) {
		t.Errorf("prefetch reads %+v, want one from %d", reads, off)
	}
	for _, r := range reads {
		if r.start < off || r.reached > off+n {
			t.Errorf("prefetch read [%d, %d) outside the segment's [%d, %d)", r.start, r.reached, off, off+n)
		}
	}
	// ffmpeg's seek lands in the range: its last request that starts
	// before the range's end (the one after the header, the index and the
	// probe's first packets) starts at the range's first byte or later. A
	// range that started after ffmpeg's seek point would leave the bytes
	// between to arrive only as ffmpeg reaches them.
	g.mu.Lock()
	ffReads := slices.Clone(g.reads)
	g.mu.Unlock()
	seekAt := int64(-1)
	for _, at := range ffReads {
		if at < off+n {
			seekAt = at
		}
	}
	if seekAt < off {
		t.Errorf("ffmpeg's seek read from %d, before the prefetch's range [%d, %d) (its reads %v)", seekAt, off, off+n, ffReads)
	}
}

// A prefetch whose bytes do not come is cancelled when the player moves
// elsewhere (a run starts at another segment): it must not keep the input
// busy with bytes nobody waits for.
func TestPrefetchStopsWhenSuperseded(t *testing.T) {
	path := media(t, mediaIrregular)
	m := newTestManager(t, Options{SegmentSeconds: 2})
	s0, _ := learnPlan(t, m, path)
	target := s0.plan.indexAt(0.7 * s0.plan.duration)
	off, n := s0.runRange(target)
	off0, n0 := s0.runRange(0)
	if off0+n0 > off {
		t.Fatalf("segment 0's range [%d, %d) reaches segment %d's at %d", off0, off0+n0, target, off)
	}
	_ = s0.Close()

	// Nobody gets segment target's bytes, the prefetch included.
	g, s := gatedSession(t, m, path, off, off+n, true)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := s.Segment(ctx, segmentName(target))
		done <- err
	}()
	waitFor(t, "the prefetch of the target to start", eventWait, func() bool {
		return slices.ContainsFunc(g.snapshot(), func(r gatedRead) bool { return r.start == off })
	})
	// The player gives up on it and asks for the first segment.
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Segment(%d) with a cancelled context = %v", target, err)
	}
	if _, err := s.Segment(t.Context(), segmentName(0)); err != nil {
		t.Fatalf("Segment(0) = %v", err)
	}
	// Every read of the target's held bytes ends: the reads of segment
	// 0's prefetch are outside the held range and finish on their own.
	waitFor(t, "the superseded prefetch to be cancelled", eventWait, func() bool {
		for _, r := range g.snapshot() {
			if r.start >= off && r.start < off+n && !r.cancelled {
				return false
			}
		}
		return true
	})
	for _, r := range g.snapshot() {
		if r.start >= off && r.start < off+n && r.reached > r.start {
			t.Errorf("a superseded prefetch read got bytes [%d, %d), held from %d", r.start, r.reached, off)
		}
	}
	// And it is gone from the session: the next run at the target
	// prefetches again.
	waitFor(t, "the session to forget the superseded prefetch", eventWait, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.pf[""] == nil || s.pf[""].off != off
	})
}

func TestSeekIndexByteRange(t *testing.T) {
	si := newSeekIndex(&keyframeIndex{
		times:   []float64{1, 3, 5, 9},
		offsets: []int64{100, 1000, 5000, 9000},
	}, 1, landing{stepUS: 1000}) // a stream starting at 1 s: relative times 0, 2, 4, 8
	tests := []struct {
		from, to float64
		off, n   int64
	}{
		{0, 2, 100, 900 + prefetchTailBytes},
		{2, 4, 1000, 4000 + prefetchTailBytes},
		{2.5, 4, 1000, 4000 + prefetchTailBytes}, // a grid cut between keyframes: from the one before
		{2, 6, 1000, 8000 + prefetchTailBytes},   // the next keyframe at or after the end
		{4, 8 - cutEpsilon/2, 5000, 4000 + prefetchTailBytes},
		{8, -1, 9000, maxPrefetchBytes}, // the last segment: to the end, bounded
		{9, 12, 9000, maxPrefetchBytes}, // no keyframe after: bounded
	}
	for _, tc := range tests {
		off, n := si.byteRange(tc.from, tc.to, true)
		if off != tc.off || n != tc.n {
			t.Errorf("byteRange(%v, %v) = %d, %d; want %d, %d", tc.from, tc.to, off, n, tc.off, tc.n)
		}
	}
	// With B-frames in Matroska, ffmpeg's demuxer seeks 3/23 s early: a cut
	// on a keyframe starts reading at the keyframe before it.
	si.land.lead = ffmpegSeekLead
	for _, tc := range []struct {
		from, to float64
		off, n   int64
	}{
		{0, 2, 100, 900 + prefetchTailBytes},
		{2, 4, 100, 4900 + prefetchTailBytes},
		{2.5, 4, 1000, 4000 + prefetchTailBytes},
		{2 + ffmpegSeekLead, 4, 100, 4900 + prefetchTailBytes},
		{2 + ffmpegSeekLead + 2*cutEpsilon, 4, 1000, 4000 + prefetchTailBytes},
		{8, -1, 5000, maxPrefetchBytes},
	} {
		off, n := si.byteRange(tc.from, tc.to, false)
		if off != tc.off || n != tc.n {
			t.Errorf("lead %.3f: byteRange(%v, %v) = %d, %d; want %d, %d", si.land.lead, tc.from, tc.to, off, n, tc.off, tc.n)
		}
	}
	if newSeekIndex(&keyframeIndex{times: []float64{0, 2}}, 0, landing{}) != nil {
		t.Error("a seek index from an index without offsets")
	}
}

// A request a couple of segments ahead of a running ffmpeg waits for that
// ffmpeg rather than restarting it; the bytes between are then prefetched,
// not left for ffmpeg to ask for as it reaches them.
func TestPrefetchAheadOfRunningFFmpeg(t *testing.T) {
	path := media(t, mediaIrregular)
	m := newTestManager(t, Options{SegmentSeconds: 2})
	s0, _ := learnPlan(t, m, path)
	if s0.plan.n() < 4 {
		t.Fatalf("%d segments, want at least 4", s0.plan.n())
	}
	// Segment 2's bytes are held back from ffmpeg: the run from 0 makes
	// segment 0 (and 1 only once segment 2's first keyframe arrives).
	off, n := s0.runRange(2)
	if off0, n0 := s0.runRange(0); off0+n0 > off {
		t.Fatalf("segment 0's range [%d, %d) reaches segment 2's at %d", off0, off0+n0, off)
	}
	_ = s0.Close()

	g, s := gatedSession(t, m, path, off, off+n, false)
	if _, err := s.Segment(t.Context(), segmentName(0)); err != nil {
		t.Fatalf("Segment(0) = %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Segment(t.Context(), segmentName(2))
		done <- err
	}()
	waitFor(t, "a prefetch to read segment 2's bytes", eventWait, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.prefetchedLocked()
	})
	g.release()
	if err := <-done; err != nil {
		t.Fatalf("Segment(2) = %v", err)
	}
	if got := m.starts.Load(); got != 1 {
		t.Errorf("ffmpeg started %d times, want 1 (the request waits for the running one)", got)
	}
}

// runRange returns the bytes a run starting at segment idx of s prefetches.
func (s *Session) runRange(idx int) (off, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	to := -1.0
	if idx+1 < s.plan.n() {
		to = s.plan.starts[idx+1]
	}
	return s.seekIdx.byteRange(s.plan.starts[idx], to, s.exactSeekLocked(idx))
}
