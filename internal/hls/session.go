package hls

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Producer steering.
const (
	// readaheadSeconds: a running ffmpeg pauses (SIGSTOP) once it is this
	// far ahead of the player's last request, and resumes when the player
	// catches up. Players buffer 30-60 s.
	readaheadSeconds = 60
	// restartAheadSegments: a request further than this ahead of the
	// running ffmpeg restarts it at the request (a seek); closer ones wait.
	restartAheadSegments = 3
	// hotGrace: segments of a session touched within this time and inside
	// its playback window are never evicted for disk space.
	hotGrace = 30 * time.Second
	// probeTimeout bounds ffprobe plus the keyframe index reads.
	probeTimeout = 3 * time.Minute
)

// Session is one HLS rendition of one input. Safe for concurrent use.
type Session struct {
	m        *Manager
	id       string
	taskID   string
	input    string // carries a token: never logged
	dir      string
	startSec float64
	created  time.Time
	log      *slog.Logger

	ctx    context.Context // session lifetime, cancelled by Close
	cancel context.CancelFunc

	ready chan struct{} // closed when prepare is done
	// Written by prepare before ready is closed; read-only after.
	media      *mediaInfo
	variant    variant
	plan       *plan
	prepErr    error
	readahead  int
	audioIndex int

	startGate chan struct{} // capacity 1: serialises producer restarts, ctx-aware

	mu        sync.Mutex // guards the fields below
	closed    bool
	lastTouch time.Time
	active    int // Playlist/Segment/WaitReady calls in flight
	segs      []segInfo
	lastReq   int
	prod      *producer
	fail      *failure
	changed   chan struct{} // closed and replaced on every state change
	runs      int
	diskBytes int64

	wg        sync.WaitGroup // prepare and producer goroutines
	closeOnce sync.Once
	closeErr  error
}

type segInfo struct {
	done bool
	size int64
	used time.Time // last served, or produced
}

// producer is one ffmpeg run making segments [start, end).
type producer struct {
	run        int
	start, end int
	next       int  // next segment expected
	pid        int  // 0 until started
	exiting    bool // stdout closed: the pid may be reaped at any moment
	paused     bool
	stopping   bool // killed on purpose: its exit is not a failure
	cmd        *exec.Cmd
	done       chan struct{}
}

// failure is a producer that died before finishing its segments.
type failure struct {
	run  int
	from int
	err  error
}

func newSession(m *Manager, spec Spec, dir string) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	return &Session{
		m:         m,
		id:        spec.ID,
		taskID:    spec.TaskID,
		input:     spec.InputURL,
		dir:       dir,
		startSec:  spec.StartSec,
		created:   now,
		log:       m.log.With("session", spec.ID, "task", spec.TaskID),
		ctx:       ctx,
		cancel:    cancel,
		ready:     make(chan struct{}),
		startGate: make(chan struct{}, 1),
		lastTouch: now,
		changed:   make(chan struct{}),
	}
}

// ID returns the session ID.
func (s *Session) ID() string { return s.id }

// TaskID returns the task the session belongs to.
func (s *Session) TaskID() string { return s.taskID }

// Info is a snapshot of a session.
type Info struct {
	ID, TaskID string
	Ready      bool
	Err        error   // probe failure, when Ready
	Mode       string  // ModeCopy, ModeCopyVideo or ModeTranscode, when Ready
	Duration   float64 // seconds
	Segments   int     // in the playlist
	OnDisk     int     // complete segment files
	DiskBytes  int64
	Running    bool // an ffmpeg is running (or paused)
}

// Info returns a snapshot of the session.
func (s *Session) Info() Info {
	in := Info{ID: s.id, TaskID: s.taskID}
	select {
	case <-s.ready:
		in.Ready, in.Err = true, s.prepErr
		if s.prepErr == nil {
			in.Mode, in.Duration, in.Segments = s.variant.mode(), s.plan.duration, s.plan.n()
		}
	default:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seg := range s.segs {
		if seg.done {
			in.OnDisk++
		}
	}
	in.DiskBytes, in.Running = s.diskBytes, s.prod != nil
	return in
}

// prepare probes the input and plans the segments.
func (s *Session) prepare() {
	defer s.wg.Done()
	err := s.probeAndPlan()
	switch {
	case err != nil && s.ctx.Err() != nil:
		s.prepErr = ErrNotFound // closed while probing
	case err != nil:
		s.prepErr = fmt.Errorf("hls session %s: %w", s.id, err)
		s.log.Warn("hls probe failed", "err", err)
	default:
		s.mu.Lock()
		s.segs = make([]segInfo, s.plan.n())
		s.mu.Unlock()
		s.log.Info("hls session ready", "mode", s.variant.mode(), "duration_sec", s.plan.duration,
			"segments", s.plan.n(), "codecs", s.variant.codecs())
	}
	close(s.ready)
	if err == nil && s.startSec > 0 {
		idx := s.plan.indexAt(s.startSec)
		if _, err := s.restart(s.ctx, idx); err != nil && s.ctx.Err() == nil {
			s.log.Warn("hls prewarm failed", "err", err)
		}
	}
}

func (s *Session) probeAndPlan() error {
	_, ffprobe, err := s.m.binaries()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, probeTimeout)
	defer cancel()
	res, err := runProbe(ctx, ffprobe, s.input)
	if err != nil {
		return err
	}
	mi, err := mediaInfoFrom(res)
	if err != nil {
		return err
	}
	segSec := s.m.opts.SegmentSeconds
	var pl *plan
	copyVideo := mi.canCopyVideo()
	var avcC []byte
	if copyVideo {
		// Stream copy cuts only on source keyframes: copy only when
		// the container says where they are, so the playlist is exact.
		idx, err := fetchKeyframes(ctx, s.m.client, s.input, mi)
		if err == nil {
			rel := make([]float64, 0, len(idx.times))
			for _, t := range idx.times {
				if r := t - mi.startTime; r >= -cutEpsilon {
					rel = append(rel, max(r, 0))
				}
			}
			pl, err = keyframePlan(rel, mi.duration, segSec)
			avcC = idx.avcC
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log.Info("hls keyframe index unusable, transcoding video", "err", err)
			copyVideo, pl = false, nil
		}
	}
	if !copyVideo && s.m.opts.CopyOnly {
		return ErrNeedsTranscode
	}
	if pl == nil {
		pl = gridPlan(mi.duration, segSec)
	}
	v := chooseVariant(mi, copyVideo)
	if copyVideo {
		if c, ok := avc1FromRecord(avcC); ok {
			v.videoCodec = c
		}
	}
	s.media, s.variant, s.plan = mi, v, pl
	s.audioIndex = -1
	if mi.audio != nil {
		s.audioIndex = mi.audio.Index
	}
	s.readahead = max(3, int(math.Ceil(s.m.readaheadSec/segSec)))
	return nil
}

// begin marks a call in flight (the session is not idle during it).
func (s *Session) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.active++
	s.lastTouch = time.Now()
	return true
}

func (s *Session) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	s.lastTouch = time.Now()
}

// idleFor returns how long the session has had no call in flight.
func (s *Session) idleFor(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active > 0 {
		return 0
	}
	return now.Sub(s.lastTouch)
}

// WaitReady waits until the input is probed and the playlists can be
// rendered. It returns the probe's error, ErrNotFound after Close, or
// ctx's error.
func (s *Session) WaitReady(ctx context.Context) error {
	if !s.begin() {
		return ErrNotFound
	}
	defer s.end()
	return s.waitReady(ctx)
}

func (s *Session) waitReady(ctx context.Context) error {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return ErrNotFound
	}
	if s.ctx.Err() != nil {
		return ErrNotFound
	}
	return s.prepErr
}

// Playlist renders "master.m3u8" or "index.m3u8" (waiting for the probe).
// Every child URI carries ?t=<token> (URL-escaped; omitted when token is
// ""). Content type: application/vnd.apple.mpegurl.
func (s *Session) Playlist(ctx context.Context, name, token string) ([]byte, error) {
	r, err := parseResource(name)
	if err != nil || r.kind == kindSegment {
		return nil, fmt.Errorf("playlist %q: %w", name, ErrBadResource)
	}
	if !s.begin() {
		return nil, ErrNotFound
	}
	defer s.end()
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	if r.kind == kindMaster {
		return renderMaster(s.variant, token), nil
	}
	return mediaPlaylistFor(s.plan, token).render(), nil
}

func (s *Session) segPath(i int) string { return filepath.Join(s.dir, segmentName(i)) }

// Segment returns the path of a complete segment file ("seg-00042.ts"),
// making it if needed: it waits for the running ffmpeg when the segment is
// just ahead of it, and (re)starts ffmpeg at the segment otherwise.
// Concurrent requests share one ffmpeg. The file stays valid until the
// session closes or the disk cap evicts it (never while it is in the
// player's window); serve it at once. Content type: video/mp2t.
func (s *Session) Segment(ctx context.Context, name string) (string, error) {
	r, err := parseResource(name)
	if err != nil || r.kind != kindSegment {
		return "", fmt.Errorf("segment %q: %w", name, ErrBadResource)
	}
	if !s.begin() {
		return "", ErrNotFound
	}
	defer s.end()
	if err := s.waitReady(ctx); err != nil {
		return "", err
	}
	idx := r.index
	if idx >= s.plan.n() {
		return "", fmt.Errorf("segment %q: %w", name, ErrBadResource)
	}
	waitRun := 0
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return "", ErrNotFound
		}
		s.lastReq = idx
		if seg := &s.segs[idx]; seg.done {
			seg.used = time.Now()
			s.resumeLocked()
			s.mu.Unlock()
			// The player moved on: what it left behind may go.
			s.m.enforceDisk()
			return s.segPath(idx), nil
		}
		if f := s.fail; f != nil && waitRun > 0 && f.run >= waitRun && idx >= f.from {
			s.mu.Unlock()
			return "", f.err
		}
		if p := s.prod; s.coversLocked(p, idx) {
			waitRun = p.run
			s.resumeLocked()
			ch := s.changed
			s.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		s.mu.Unlock()
		run, err := s.restart(ctx, idx)
		if err != nil {
			return "", err
		}
		if run > 0 {
			waitRun = run
		}
	}
}

// coversLocked reports whether producer p will make segment idx soon.
func (s *Session) coversLocked(p *producer, idx int) bool {
	return p != nil && !p.stopping && idx >= p.next && idx < p.end && idx <= p.next+restartAheadSegments
}

// restart starts ffmpeg at segment idx (stopping the current one) unless
// another request did it meanwhile. It returns the run that will make idx,
// or 0 when idx is already done.
func (s *Session) restart(ctx context.Context, idx int) (int, error) {
	select {
	case s.startGate <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-s.ctx.Done():
		return 0, ErrNotFound
	}
	defer func() { <-s.startGate }()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrNotFound
	}
	if s.segs[idx].done {
		s.mu.Unlock()
		return 0, nil
	}
	if p := s.prod; s.coversLocked(p, idx) {
		s.mu.Unlock()
		return p.run, nil
	}
	old := s.prod
	if old != nil {
		old.stopping = true
		s.signalLocked(old, sigKill)
		s.m.restarts.Add(1)
	}
	s.mu.Unlock()
	if old != nil {
		<-old.done // its slot is free once done is closed
	}

	if err := s.m.acquireSlot(ctx, s); err != nil {
		return 0, err
	}
	ffmpeg, _, err := s.m.binaries()
	if err != nil {
		s.m.releaseSlot()
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.m.releaseSlot()
		return 0, ErrNotFound
	}
	// Stop where finished segments begin: they need no remaking.
	end := min(idx+windowSegments, s.plan.n())
	for j := idx + 1; j < end; j++ {
		if s.segs[j].done {
			end = j
			break
		}
	}
	s.runs++
	p := &producer{run: s.runs, start: idx, end: end, next: idx, done: make(chan struct{})}
	p.cmd = exec.Command(ffmpeg, ffmpegArgs(runSpec{
		input:      s.input,
		plan:       s.plan,
		variant:    s.variant,
		videoIndex: s.media.video.Index,
		audioIndex: s.audioIndex,
		segSec:     s.m.opts.SegmentSeconds,
		start:      idx,
		end:        end,
		pattern:    filepath.Join(escapePattern(s.dir), "part-"+strconv.Itoa(p.run)+"-%05d.ts"),
	})...)
	s.prod = p
	s.wg.Add(1)
	go s.produce(p)
	s.log.Debug("ffmpeg start", "run", p.run, "segment", idx, "end", end)
	return p.run, nil
}

// signalLocked signals p's process group. After stdout closed (the process
// is exiting and may be reaped any moment, freeing its pid for reuse) only
// the process itself is signalled, through os.Process, which knows when it
// has been reaped.
func (s *Session) signalLocked(p *producer, sig syscall.Signal) {
	if p.pid == 0 {
		return // not started yet: produce checks p.stopping after Start
	}
	if !p.exiting {
		_ = signalGroup(p.pid, sig)
	}
	if sig == sigKill {
		_ = p.cmd.Process.Kill() // a no-op error once reaped
	}
}

// shouldPauseLocked: ffmpeg is far enough ahead of the player, or the disk
// cap is reached and the player's next segment is done.
func (s *Session) shouldPauseLocked(p *producer) bool {
	return p.next > s.lastReq+s.readahead || (s.m.overDisk() && p.next > s.lastReq+1)
}

func (s *Session) resumeLocked() {
	p := s.prod
	if p != nil && p.paused && !p.stopping && !s.shouldPauseLocked(p) {
		p.paused = false
		s.signalLocked(p, sigCont)
	}
}

// preemptPaused stops this session's ffmpeg if it is paused, freeing its
// slot for another session.
func (s *Session) preemptPaused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.prod
	if p == nil || !p.paused || p.stopping {
		return false
	}
	p.stopping = true
	s.signalLocked(p, sigKill)
	s.log.Debug("ffmpeg preempted", "run", p.run)
	return true
}

func (s *Session) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// produce runs one ffmpeg to completion. It owns a transcode slot.
func (s *Session) produce(p *producer) {
	defer s.wg.Done()
	defer s.m.releaseSlot()
	// Pdeathsig follows the thread that forked: keep it until Wait.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	cmd := p.cmd
	setProcAttrs(cmd)
	cmd.WaitDelay = 5 * time.Second
	stderr := newTail(4096)
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		s.finish(p, fmt.Errorf("start ffmpeg: %w", err), "")
		return
	}
	for n := s.m.running.Add(1); ; {
		peak := s.m.peak.Load()
		if n <= peak || s.m.peak.CompareAndSwap(peak, n) {
			break
		}
	}
	s.m.starts.Add(1)
	s.mu.Lock()
	p.pid = cmd.Process.Pid
	if p.stopping {
		s.signalLocked(p, sigKill)
	}
	s.mu.Unlock()

	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		s.segmentDone(p, sc.Text())
	}
	s.mu.Lock()
	p.exiting = true
	s.mu.Unlock()
	err = cmd.Wait()
	s.m.running.Add(-1)
	s.finish(p, err, stderr.String())
}

// segmentDone handles one line of ffmpeg's segment list: the part file is
// complete, so move it into place.
func (s *Session) segmentDone(p *producer, line string) {
	name, start, _, ok := parseListLine(line)
	idx, ok2 := partIndex(name, p.run)
	if !ok || !ok2 || idx < 0 || idx >= s.plan.n() {
		s.log.Warn("ffmpeg: unexpected segment list line", "run", p.run)
		return
	}
	src := filepath.Join(s.dir, name)
	if idx >= p.end {
		// Past the window: ffmpeg ran on before the kill landed. This
		// segment has no cut at its end; it is not the planned one.
		_ = os.Remove(src)
		return
	}
	var size int64
	fi, err := os.Stat(src)
	if err == nil {
		size = fi.Size()
		err = os.Rename(src, s.segPath(idx))
	}
	if err != nil {
		s.log.Warn("hls segment rename", "segment", idx, "err", err)
		return
	}
	if idx > p.start {
		// ffmpeg reports where it actually cut: a boundary off the plan
		// means the playlist lies about this segment.
		if d := start - s.plan.starts[idx]; d > 0.05 || d < -0.05 {
			s.log.Warn("hls segment boundary differs from plan", "segment", idx,
				"planned_sec", s.plan.starts[idx], "actual_sec", start)
		}
	}

	s.mu.Lock()
	delta := size
	if old := s.segs[idx]; old.done {
		delta -= old.size
	}
	s.segs[idx] = segInfo{done: true, size: size, used: time.Now()}
	s.diskBytes += delta
	s.m.disk.Add(delta)
	p.next = idx + 1
	switch {
	case p.next >= p.end && p.end < s.plan.n():
		// End of this run's window: it has begun a segment that the
		// next run will make.
		p.stopping = true
		s.signalLocked(p, sigKill)
	case !p.paused && p.next < p.end && s.shouldPauseLocked(p):
		p.paused = true
		s.signalLocked(p, sigStop)
		s.m.notifyPaused()
	}
	s.broadcastLocked()
	s.mu.Unlock()
	s.m.enforceDisk()
}

// finish records the end of a producer.
func (s *Session) finish(p *producer, err error, stderr string) {
	s.mu.Lock()
	if s.prod == p {
		s.prod = nil
	}
	var ferr error
	switch {
	case p.stopping:
	case err != nil:
		msg := redact(stderr, s.input)
		if msg != "" {
			ferr = fmt.Errorf("ffmpeg: %w: %s", err, msg)
		} else {
			ferr = fmt.Errorf("ffmpeg: %w", err)
		}
	case p.next < p.end:
		ferr = fmt.Errorf("ffmpeg ended at segment %d of %d", p.next, p.end)
	}
	if ferr != nil {
		s.fail = &failure{run: p.run, from: p.next, err: ferr}
	}
	s.broadcastLocked()
	s.mu.Unlock()

	parts, _ := filepath.Glob(filepath.Join(s.dir, "part-"+strconv.Itoa(p.run)+"-*.ts"))
	for _, f := range parts {
		_ = os.Remove(f)
	}
	if ferr != nil {
		s.log.Warn("ffmpeg failed", "run", p.run, "segment", p.next, "err", ferr)
	} else {
		s.log.Debug("ffmpeg done", "run", p.run, "next", p.next)
	}
	close(p.done)
}

// hotLocked: segment i is in the session's playback window and the session
// is in use, so it must not be evicted.
func (s *Session) hotLocked(i int, now time.Time) bool {
	if s.active == 0 && now.Sub(s.lastTouch) > hotGrace {
		return false
	}
	return i >= s.lastReq && i <= s.lastReq+s.readahead
}

// evict deletes segment i if it is still as the evictor saw it.
func (s *Session) evict(i int, used time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seg := s.segs[i]
	if s.closed || !seg.done || !seg.used.Equal(used) || s.hotLocked(i, time.Now()) {
		return
	}
	if err := os.Remove(s.segPath(i)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("hls evict segment", "segment", i, "err", err)
		return
	}
	s.segs[i] = segInfo{}
	s.diskBytes -= seg.size
	s.m.disk.Add(-seg.size)
	s.log.Debug("hls segment evicted", "segment", i)
}

// Close kills ffmpeg (and waits for it), deletes the session dir and
// invalidates the session: Get returns ErrNotFound from now on. OnClose is
// called once. Safe to call more than once.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		s.m.remove(s)
		s.mu.Lock()
		s.closed = true
		if p := s.prod; p != nil {
			p.stopping = true
			s.signalLocked(p, sigKill)
		}
		s.broadcastLocked()
		s.mu.Unlock()
		s.cancel()
		s.wg.Wait()

		s.mu.Lock()
		s.m.disk.Add(-s.diskBytes)
		s.diskBytes = 0
		s.mu.Unlock()
		if err := os.RemoveAll(s.dir); err != nil {
			s.closeErr = fmt.Errorf("close hls session %s: %w", s.id, err)
		}
		s.log.Info("hls session closed")
		if s.m.opts.OnClose != nil {
			s.m.opts.OnClose(s.id)
		}
	})
	return s.closeErr
}
