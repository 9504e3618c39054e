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
	// maxPlayerRuns bounds the ffmpeg runs of one track at once: one per
	// player that names itself (SegmentFor), for two players far apart in
	// one session. A further player's run takes over the run asked for least
	// recently. Two is the hls package's MaxTranscodes default (the daemon's
	// hls.max_transcodes is 1: a re-encoding run then takes the other over).
	maxPlayerRuns = 2
	// minSegmentBytes: an MPEG-TS segment smaller than three packets holds
	// at most its tables (PAT, PMT), no media.
	minSegmentBytes = 3 * 188
	// hotGrace: segments of a session touched within this time and inside
	// its playback window are never evicted for disk space.
	hotGrace = 30 * time.Second
	// probeTimeout bounds ffprobe plus the keyframe index reads.
	probeTimeout = 3 * time.Minute
)

// Session is one HLS rendition of one input. Safe for concurrent use.
type Session struct {
	m         *Manager
	id        string
	taskID    string
	fileIndex int    // the input's file in its task
	key       string // Spec.Key
	input     string // carries a token: never logged
	dir       string
	startSec  float64
	created   time.Time
	log       *slog.Logger

	ctx    context.Context // session lifetime, cancelled by Close
	cancel context.CancelFunc

	// inputs are the URLs ffmpeg reads (through the input proxy, see
	// proxy.go): [0] the media, [1:] the sidecar subtitles. They carry
	// tokens: never logged, never in a process's arguments.
	inputs []string
	// secret authenticates this session's ffmpeg to the input proxy; it
	// reaches ffmpeg in its environment, which only our user can read.
	secret   string
	sidecars []SidecarInput
	opts     TrackOptions

	ready chan struct{} // closed when prepare is done
	// idxDone is closed when seekIdx is as good as it gets: after
	// prepare (copy) or after loadSeekIndex (transcode).
	idxDone chan struct{}
	// Written by prepare before ready is closed; read-only after.
	media     *mediaInfo
	variant   variant
	plan      *plan
	prepErr   error
	readahead int
	tracks    []*track // [0] video, [1+k] audio rendition k
	audios    []*audioRendition
	subs      []*subRendition // text and image subtitles
	textSubs  []*subRendition // the WebVTT renditions, by number
	burn      *subRendition   // image subtitle burnt into the video, or nil

	mu        sync.Mutex // guards the fields below and every track's state
	closed    bool
	lastTouch time.Time
	active    int           // Playlist/Segment/WaitReady calls in flight
	changed   chan struct{} // closed and replaced on every state change
	runs      int
	diskBytes int64
	subState  []subtitleState             // by text subtitle number
	winState  map[resource]*subtitleState // subtitle windows (subtitles.go)
	// seekIdx maps segment starts to input bytes for the prefetch (nil:
	// unknown); set by probeAndPlan (copy) or loadSeekIndex (transcode).
	seekIdx *seekIndex
	pf      map[string]*prefetchRun // the running prefetch, by player
	// lastAudio is, by player, the audio rendition it asked a segment of
	// most recently: a video restart starts it alongside.
	lastAudio map[string]*track

	wg        sync.WaitGroup // prepare and producer goroutines
	closeOnce sync.Once
	closeErr  error
}

// track is one segmented output of a session: the video or one audio
// rendition. Each has its own ffmpeg (started on the first request for one
// of its segments), so an audio switch never touches the video's ffmpeg.
// Its state is guarded by Session.mu.
type track struct {
	id    int             // 0 video, 1+k audio rendition k
	audio *audioRendition // nil for the video

	startGate chan struct{} // capacity 1: serialises producer restarts, ctx-aware

	segs    []segInfo
	lastReq int
	// prods are the running ffmpegs, by player (SegmentFor): each player
	// that names itself has its own, so two far apart are served at once.
	prods map[string]*producer
	fail  *failure
}

// coveringLocked returns the run that will make segment idx soon: the
// player's own, else another player's, or nil.
func (s *Session) coveringLocked(tr *track, idx int, player string) *producer {
	if p := tr.prods[player]; s.coversLocked(p, idx) {
		return p
	}
	for _, p := range tr.prods {
		if s.coversLocked(p, idx) {
			return p
		}
	}
	return nil
}

func (tr *track) segName(i int) string {
	if tr.audio == nil {
		return segmentName(i)
	}
	return audioSegmentName(tr.id-1, i)
}

// subtitleState is the conversion of one text subtitle to WebVTT.
type subtitleState struct {
	running, ready bool
	err            error
	done           chan struct{} // closed when the running conversion ends
	waiters        int           // requests waiting for done
	// cancel stops a window's conversion (nil for a whole track, which
	// only the session's close stops).
	cancel context.CancelFunc
}

type segInfo struct {
	done bool
	size int64
	used time.Time // last served, or produced
}

// producer is one ffmpeg run making segments [start, end).
type producer struct {
	run        int
	player     string // whose run it is (SegmentFor)
	slot       bool   // it holds a transcode slot (it re-encodes video)
	start, end int
	next       int // next segment expected
	// lastReq is the last segment asked of this run (it pauses once it is
	// readahead segments past it); lastUse when.
	lastReq  int
	lastUse  time.Time
	pid      int  // 0 until started
	exiting  bool // stdout closed: the pid may be reaped at any moment
	paused   bool
	stopping bool // killed on purpose: its exit is not a failure
	// waiters counts requests waiting for a segment this run will make
	// (Segment); while it has made none of them yet, a restart for another
	// request leaves it alone (protectedLocked).
	waiters int
	cmd     *exec.Cmd
	done    chan struct{}
	started time.Time // when the run was asked for (debug log)
}

// failure is a producer that died before finishing its segments.
type failure struct {
	run  int
	from int
	err  error
}

func newSession(m *Manager, spec Spec, dir, secret string) *Session {
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now()
	inputs := []string{spec.InputURL}
	for _, sc := range spec.Sidecars {
		inputs = append(inputs, sc.InputURL)
	}
	return &Session{
		inputs:    inputs,
		secret:    secret,
		sidecars:  spec.Sidecars,
		opts:      spec.Tracks,
		m:         m,
		id:        spec.ID,
		taskID:    spec.TaskID,
		fileIndex: spec.FileIndex,
		key:       spec.Key,
		input:     spec.InputURL,
		dir:       dir,
		startSec:  spec.StartSec,
		created:   now,
		log:       m.log.With("session", spec.ID, "task", spec.TaskID),
		ctx:       ctx,
		cancel:    cancel,
		ready:     make(chan struct{}),
		idxDone:   make(chan struct{}),
		lastTouch: now,
		changed:   make(chan struct{}),
		pf:        map[string]*prefetchRun{},
		lastAudio: map[string]*track{},
	}
}

// ID returns the session ID.
func (s *Session) ID() string { return s.id }

// TaskID returns the task the session belongs to.
func (s *Session) TaskID() string { return s.taskID }

// Info is a snapshot of a session.
type Info struct {
	ID, TaskID string
	FileIndex  int // the input's file in its task (Spec.FileIndex)
	Ready      bool
	Err        error   // probe failure, when Ready
	Mode       string  // ModeCopy, ModeCopyVideo or ModeTranscode, when Ready
	Duration   float64 // seconds
	Segments   int     // in the playlist
	OnDisk     int     // complete segment files
	DiskBytes  int64
	Running    bool // an ffmpeg is running (or paused)
	// Audio and Subtitles list every track of the input (and the
	// sidecars), with the renditions' names and defaults, when Ready.
	Audio, Subtitles []TrackInfo
	// SourceType is the input as a MIME type with RFC 6381 codecs
	// (`video/mp4; codecs="avc1.64001f, mp4a.40.2"`) when the container
	// and codecs can be named that way, else "": a player page asks the
	// browser's canPlayType whether it can play the file as it is.
	SourceType string
}

// Info returns a snapshot of the session.
func (s *Session) Info() Info {
	in := Info{ID: s.id, TaskID: s.taskID, FileIndex: s.fileIndex}
	select {
	case <-s.ready:
		in.Ready, in.Err = true, s.prepErr
		if s.prepErr == nil {
			in.Mode, in.Duration, in.Segments = s.variant.mode(), s.plan.duration, s.plan.n()
			for _, a := range s.audios {
				in.Audio = append(in.Audio, a.info)
			}
			for _, r := range s.subs {
				in.Subtitles = append(in.Subtitles, r.info)
			}
			in.SourceType = sourceType(s.media)
		}
	default:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tr := range s.tracks {
		for _, seg := range tr.segs {
			if seg.done {
				in.OnDisk++
			}
		}
		in.Running = in.Running || len(tr.prods) > 0
	}
	in.DiskBytes = s.diskBytes
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
		for _, tr := range s.tracks {
			tr.segs = make([]segInfo, s.plan.n())
		}
		s.subState = make([]subtitleState, len(s.textSubs))
		s.mu.Unlock()
		ft := FileTracks{Mode: s.variant.mode()}
		for _, a := range s.audios {
			ft.Audio = append(ft.Audio, a.info)
		}
		for _, r := range s.subs {
			info := r.info
			info.Burnt = false // a fact of this session, not of the file
			ft.Subtitles = append(ft.Subtitles, info)
		}
		// A burn-in session's mode is forced: it describes the file only
		// when nothing better is known.
		s.m.probed.put(probedKey{s.taskID, s.fileIndex}, ft, s.burn == nil)
		s.log.Info("hls session ready", "mode", s.variant.mode(), "duration_sec", s.plan.duration,
			"segments", s.plan.n(), "codecs", s.variant.codecs(), "audio_tracks", len(s.audios),
			"subtitle_tracks", len(s.textSubs), "burnt_subtitles", s.burn != nil)
	}
	close(s.ready)
	if err == nil && !s.variant.copyVideo {
		// A transcode run reads from the keyframe before its start, as a
		// copy run does: learn where those are for the prefetch, without
		// holding the playlists back.
		s.wg.Add(1)
		go s.loadSeekIndex()
	} else {
		close(s.idxDone)
	}
	if err == nil && s.startSec > 0 {
		idx := s.plan.indexAt(s.startSec)
		if _, err := s.restart(s.ctx, s.tracks[0], idx, ""); err != nil && s.ctx.Err() == nil {
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
	env, err := s.procEnv()
	if err != nil {
		return err
	}
	res, err := runProbe(ctx, ffprobe, s.ffInput(0), env)
	if err != nil {
		return err
	}
	mi, err := mediaInfoFrom(res)
	if err != nil {
		return err
	}
	audios, subs := planTracks(mi, s.sidecars, s.opts.AudioLanguage, s.opts.SubtitleLanguage)
	for i, a := range audios {
		if a.info.Default {
			mi.audio = mi.audios[i] // the variant's mode and bandwidth follow the default
		}
	}
	var burn *subRendition
	if s.opts.BurnImageSubtitles {
		if burn = burnTarget(subs, mi, s.opts.SubtitleLanguage); burn != nil {
			burn.info.Burnt = true
		}
	}
	segSec := s.m.opts.SegmentSeconds
	var pl *plan
	// Burning subtitles in means drawing on every frame: transcode.
	copyVideo := mi.canCopyVideo() && burn == nil
	var avcC []byte
	var seekIdx *seekIndex
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
			seekIdx = newSeekIndex(idx, mi.startTime, mi.landing())
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			s.log.Info("hls keyframe index unusable, transcoding video", "err", err)
			copyVideo, pl, seekIdx = false, nil, nil
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
	s.mu.Lock()
	s.seekIdx = seekIdx
	s.mu.Unlock()
	s.audios, s.subs, s.burn = audios, subs, burn
	s.tracks = []*track{{id: 0, startGate: make(chan struct{}, 1), prods: map[string]*producer{}}}
	for i, a := range audios {
		s.tracks = append(s.tracks, &track{id: i + 1, audio: a, startGate: make(chan struct{}, 1), prods: map[string]*producer{}})
	}
	for _, r := range subs {
		if !r.info.Image {
			s.textSubs = append(s.textSubs, r)
		}
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
	if err != nil || (r.kind != kindMaster && r.kind != kindIndex && r.kind != kindAudioPlaylist && r.kind != kindSubPlaylist) {
		return nil, fmt.Errorf("playlist %q: %w", name, ErrBadResource)
	}
	if !s.begin() {
		return nil, ErrNotFound
	}
	defer s.end()
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	switch r.kind {
	case kindMaster:
		return renderMaster(s.variant, s.audios, s.subs, token), nil
	case kindAudioPlaylist:
		if r.track >= len(s.audios) {
			return nil, fmt.Errorf("playlist %q: %w", name, ErrBadResource)
		}
		k := r.track
		return mediaPlaylistNamed(s.plan, token, func(i int) string { return audioSegmentName(k, i) }).render(), nil
	case kindSubPlaylist:
		if r.track >= len(s.textSubs) {
			return nil, fmt.Errorf("playlist %q: %w", name, ErrBadResource)
		}
		window := 0.0
		if s.subWindowed(r.track) {
			window = subWindowSeconds
		}
		return renderSubtitlePlaylist(r.track, s.plan.duration, window, token), nil
	}
	return mediaPlaylistFor(s.plan, token).render(), nil
}

func (s *Session) segPath(tr *track, i int) string { return filepath.Join(s.dir, tr.segName(i)) }

// Segment returns the path of a complete segment file ("seg-00042.ts", or
// "a1-00042.ts" of audio rendition 1),
// making it if needed: it waits for the running ffmpeg when the segment is
// just ahead of it, and (re)starts ffmpeg at the segment otherwise.
// Concurrent requests share one ffmpeg. The file stays valid until the
// session closes or the disk cap evicts it (never while it is in the
// player's window); serve it at once. Content type: video/mp2t.
func (s *Session) Segment(ctx context.Context, name string) (string, error) {
	return s.SegmentFor(ctx, name, "")
}

// SegmentFor is Segment for a player that names itself (any short string; ""
// is every player that does not): each named player gets ffmpeg runs of its
// own, up to maxPlayerRuns per track, so two players far apart in one
// session are both served at once instead of in turn. A request still waits
// for another player's run that will make its segment soon.
func (s *Session) SegmentFor(ctx context.Context, name, player string) (string, error) {
	r, err := parseResource(name)
	if err != nil || (r.kind != kindSegment && r.kind != kindAudioSegment) {
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
	trackID := 0
	if r.kind == kindAudioSegment {
		trackID = r.track + 1
	}
	if idx >= s.plan.n() || trackID >= len(s.tracks) {
		return "", fmt.Errorf("segment %q: %w", name, ErrBadResource)
	}
	tr := s.tracks[trackID]
	waitRun := 0
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return "", ErrNotFound
		}
		tr.lastReq = idx
		if own := tr.prods[player]; own != nil {
			own.lastReq, own.lastUse = idx, time.Now()
		}
		if tr.audio != nil {
			s.lastAudio[player] = tr
			s.forgetPlayersLocked()
		}
		if seg := &tr.segs[idx]; seg.done {
			seg.used = time.Now()
			s.resumeLocked(tr)
			s.mu.Unlock()
			// The player moved on: what it left behind may go.
			s.m.enforceDisk()
			return s.segPath(tr, idx), nil
		}
		if f := tr.fail; f != nil && waitRun > 0 && f.run >= waitRun && idx >= f.from {
			s.mu.Unlock()
			return "", f.err
		}
		if p := s.coveringLocked(tr, idx, player); p != nil {
			waitRun = p.run
			// Another player's run keeps going for this one.
			p.lastReq, p.lastUse = max(p.lastReq, idx), time.Now()
			s.resumeLocked(tr)
			if idx > p.next {
				// A short jump ahead: ffmpeg reads on to it, but
				// the input is asked for those bytes only as it
				// gets there.
				s.prefetchLocked(player, p.next, idx)
			}
			ch := s.changed
			p.waiters++
			s.mu.Unlock()
			var err error
			select {
			case <-ch:
			case <-ctx.Done():
				err = ctx.Err()
			}
			s.mu.Lock()
			if p.waiters--; p.waiters == 0 {
				s.broadcastLocked() // a restart may wait for this run's waiters to go
			}
			s.mu.Unlock()
			if err != nil {
				return "", err
			}
			continue
		}
		if tr.audio == nil && waitRun == 0 {
			if a := s.companionLocked(idx, player); a != nil {
				s.wg.Add(1) // under mu: Close waits only after it set closed
				go s.startCompanion(a, idx, player)
			}
		}
		s.mu.Unlock()
		run, err := s.restart(ctx, tr, idx, player)
		if err != nil {
			return "", err
		}
		if run > 0 {
			waitRun = run
		}
	}
}

// forgetPlayersLocked drops what is kept of players that have no run left,
// once more than a few are known: a client may name as many as it likes.
func (s *Session) forgetPlayersLocked() {
	if len(s.lastAudio) <= 2*maxPlayerRuns {
		return
	}
	for name := range s.lastAudio {
		running := false
		for _, tr := range s.tracks {
			running = running || tr.prods[name] != nil
		}
		if name != "" && !running {
			delete(s.lastAudio, name)
		}
	}
}

// companionLocked returns the audio rendition to start at segment idx next
// to a video restart there, or nil: the one the player last asked for, when
// its segment idx is neither made nor on its way. A player that seeks asks
// for both; hls.js often asks for the audio only once the video segment has
// arrived, and two ffmpeg starts in a row cost twice one. An audio switch
// restarts only the new rendition: the video's segment at the playhead is
// made already.
func (s *Session) companionLocked(idx int, player string) *track {
	a := s.lastAudio[player]
	if a == nil || a.segs[idx].done || s.coveringLocked(a, idx, player) != nil {
		return nil
	}
	return a
}

// startCompanion starts audio track a at segment idx (see companionLocked).
func (s *Session) startCompanion(a *track, idx int, player string) {
	defer s.wg.Done()
	if _, err := s.restart(s.ctx, a, idx, player); err != nil && s.ctx.Err() == nil {
		s.log.Debug("hls companion audio start failed", "track", a.id, "segment", idx, "err", err)
	}
}

// coversLocked reports whether producer p will make segment idx soon.
func (s *Session) coversLocked(p *producer, idx int) bool {
	return p != nil && !p.stopping && idx >= p.next && idx < p.end && idx <= p.next+restartAheadSegments
}

// protectFirstSegment bounds how long a run that requests wait on is kept
// from a restart before it made any segment (protectedLocked): a run whose
// input stalled must not hold another player back for ever.
const protectFirstSegment = 10 * time.Second

// protectedLocked reports whether run p is kept from a restart: requests
// wait for its segments, it has made none yet, and it started less than
// protectFirstSegment ago.
func protectedLocked(p *producer) bool {
	return p.waiters > 0 && p.next == p.start && !p.stopping && !p.exiting &&
		time.Since(p.started) < protectFirstSegment
}

// restart starts the track's ffmpeg at segment idx (stopping its current
// one) unless another request did it meanwhile. It returns the run that will
// make idx, or 0 when idx is already done. Only the video's ffmpeg takes a
// transcode slot: an audio rendition's (AAC at 160 kb/s, or a copy) costs a
// few percent of one core, and a player needs it next to the video's.
func (s *Session) restart(ctx context.Context, tr *track, idx int, player string) (int, error) {
	asked := time.Now()
	select {
	case tr.startGate <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-s.ctx.Done():
		return 0, ErrNotFound
	}
	defer func() { <-tr.startGate }()

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrNotFound
	}
	if tr.segs[idx].done {
		s.mu.Unlock()
		return 0, nil
	}
	if p := s.coveringLocked(tr, idx, player); p != nil {
		s.mu.Unlock()
		return p.run, nil
	}
	// Only a run that re-encodes video takes a transcode slot: a copy or an
	// audio run costs a few percent of a core.
	slot := tr.audio == nil && !s.variant.copyVideo
	haveSlot := false
	old := s.victimLocked(tr, player)
	if old == nil && slot && s.liveRunsLocked(tr) > 0 {
		// A run beside another player's needs a slot free now; else it
		// takes over the run asked for least recently, as one player's
		// seek does.
		if haveSlot = s.m.trySlot(); !haveSlot {
			old = s.lruLocked(tr)
		}
	}
	if old != nil && protectedLocked(old) {
		// Another request waits for this run's first segment: let it
		// come before taking the run away, or two players at two places
		// in one session kill each other's ffmpeg before either makes
		// a segment, for ever. Wait for a change (every restart of this
		// track would wait the same: the gate stays held), then look again.
		ch := s.changed
		expiry := time.After(protectFirstSegment - time.Since(old.started))
		s.mu.Unlock()
		select {
		case <-ch:
			return 0, nil
		case <-expiry:
			return 0, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-s.ctx.Done():
			return 0, ErrNotFound
		}
	}
	if old != nil {
		old.stopping = true
		s.signalLocked(old, sigKill)
		s.m.restarts.Add(1)
	}
	s.mu.Unlock()
	if old != nil {
		<-old.done // its slot is free once done is closed
	}

	video := tr.audio == nil
	release := func() {
		if slot {
			s.m.releaseSlot()
		}
	}
	if slot && !haveSlot {
		if err := s.m.acquireSlot(ctx, s); err != nil {
			return 0, err
		}
	}
	ffmpeg, _, err := s.m.binaries()
	if err != nil {
		release()
		return 0, err
	}
	env, err := s.procEnv()
	if err != nil {
		release()
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		release()
		return 0, ErrNotFound
	}
	// Stop where finished segments begin: they need no remaking; nor are
	// another player's, before or after ours.
	end := min(idx+windowSegments, s.plan.n())
	for j := idx + 1; j < end; j++ {
		if tr.segs[j].done {
			end = j
			break
		}
	}
	for _, o := range tr.prods {
		switch {
		case o == old || o.stopping:
		case o.start > idx:
			end = min(end, o.start)
		case o.next > idx:
			// idx is in what o made (and was evicted): go no further
			// than o has.
			end = min(end, o.next)
		case o.end > idx:
			o.end = idx // o is behind: it stops once it gets here (segmentDone)
		}
	}
	s.runs++
	now := time.Now()
	p := &producer{run: s.runs, player: player, slot: slot, start: idx, end: end, next: idx, lastReq: idx, lastUse: now,
		done: make(chan struct{}), started: now}
	spec := runSpec{
		input:      s.ffInput(0),
		plan:       s.plan,
		variant:    s.variant,
		videoIndex: s.media.video.Index,
		audioIndex: -1,
		burnIndex:  -1,
		segSec:     s.m.opts.SegmentSeconds,
		start:      idx,
		end:        end,
		pattern:    filepath.Join(escapePattern(s.dir), "part-"+strconv.Itoa(p.run)+"-%05d.ts"),
		exactSeek:  s.exactSeekLocked(idx),
	}
	if spec.exactSeek {
		spec.land = s.seekIdx.land // exactSeekLocked: there is an index, made with the landing
	}
	var args []string
	if video {
		if s.burn != nil {
			spec.burnIndex = s.burn.streamIndex
		}
		args = ffmpegArgs(spec)
	} else {
		spec.audioIndex, spec.audioCopy = tr.audio.streamIndex, tr.audio.info.Copy
		args = audioArgs(spec)
	}
	p.cmd = exec.Command(ffmpeg, args...)
	p.cmd.Env = env
	tr.prods[player] = p
	s.wg.Add(1)
	go s.produce(tr, p)
	s.prefetchLocked(player, idx, idx)
	// waited_ms: the old run's exit and a transcode slot, before this
	// one could start.
	s.log.Debug("ffmpeg start", "run", p.run, "track", tr.id, "segment", idx, "end", end,
		"waited_ms", p.started.Sub(asked).Milliseconds())
	return p.run, nil
}

// victimLocked returns the run a new run of player's stops: its own, else,
// when maxPlayerRuns run already, the one asked for least recently; or nil.
func (s *Session) victimLocked(tr *track, player string) *producer {
	if p := tr.prods[player]; p != nil && !p.stopping {
		return p
	}
	if s.liveRunsLocked(tr) >= maxPlayerRuns {
		return s.lruLocked(tr)
	}
	return nil
}

// liveRunsLocked counts the track's runs that are not being stopped.
func (s *Session) liveRunsLocked(tr *track) int {
	n := 0
	for _, p := range tr.prods {
		if !p.stopping {
			n++
		}
	}
	return n
}

// lruLocked returns the track's live run asked for least recently, or nil.
func (s *Session) lruLocked(tr *track) *producer {
	var lru *producer
	for _, p := range tr.prods {
		if !p.stopping && (lru == nil || p.lastUse.Before(lru.lastUse)) {
			lru = p
		}
	}
	return lru
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
	return p.next > p.lastReq+s.readahead || (s.m.overDisk() && p.next > p.lastReq+1)
}

func (s *Session) resumeLocked(tr *track) {
	for _, p := range tr.prods {
		if p.paused && !p.stopping && !s.shouldPauseLocked(p) {
			p.paused = false
			s.signalLocked(p, sigCont)
		}
	}
}

// preemptPaused stops this session's video ffmpeg if it is paused, freeing
// its slot for another session.
func (s *Session) preemptPaused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tracks) == 0 {
		return false
	}
	for _, p := range s.tracks[0].prods {
		if p.slot && p.paused && !p.stopping {
			p.stopping = true
			s.signalLocked(p, sigKill)
			s.log.Debug("ffmpeg preempted", "run", p.run)
			return true
		}
	}
	return false
}

func (s *Session) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// produce runs one ffmpeg to completion. A video producer that re-encodes
// owns a transcode slot.
func (s *Session) produce(tr *track, p *producer) {
	defer s.wg.Done()
	video := tr.audio == nil
	if p.slot {
		defer s.m.releaseSlot()
	}
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
		s.finish(tr, p, fmt.Errorf("start ffmpeg: %w", err), "")
		return
	}
	if video {
		for n := s.m.running.Add(1); ; {
			peak := s.m.peak.Load()
			if n <= peak || s.m.peak.CompareAndSwap(peak, n) {
				break
			}
		}
		s.m.starts.Add(1)
	} else {
		s.m.audioStarts.Add(1)
	}
	s.mu.Lock()
	p.pid = cmd.Process.Pid
	if p.stopping {
		s.signalLocked(p, sigKill)
	}
	s.mu.Unlock()

	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		s.segmentDone(tr, p, sc.Text())
	}
	s.mu.Lock()
	p.exiting = true
	s.mu.Unlock()
	err = cmd.Wait()
	if video {
		s.m.running.Add(-1)
	}
	s.finish(tr, p, err, stderr.String())
}

// segmentDone handles one line of ffmpeg's segment list: the part file is
// complete, so move it into place.
func (s *Session) segmentDone(tr *track, p *producer, line string) {
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
	if err == nil && fi.Size() < minSegmentBytes {
		// No media in it: ffmpeg closed the segment on an input error (a
		// paused task answers 503 where its pieces are missing). Served,
		// it is a fragment no player can parse, and it would stay cached.
		_ = os.Remove(src)
		s.log.Warn("ffmpeg wrote a segment without media; not serving it", "run", p.run, "track", tr.id,
			"segment", idx, "bytes", fi.Size())
		return
	}
	if err == nil {
		size = fi.Size()
		err = os.Rename(src, s.segPath(tr, idx))
	}
	if err != nil {
		s.log.Warn("hls segment rename", "track", tr.id, "segment", idx, "err", err)
		return
	}
	if idx > p.start && tr.audio == nil {
		// ffmpeg reports where it actually cut: a boundary off the plan
		// means the playlist lies about this segment.
		if d := start - s.plan.starts[idx]; d > 0.05 || d < -0.05 {
			s.log.Warn("hls segment boundary differs from plan", "segment", idx,
				"planned_sec", s.plan.starts[idx], "actual_sec", start)
		}
	}

	s.mu.Lock()
	delta := size
	if old := tr.segs[idx]; old.done {
		delta -= old.size
	}
	tr.segs[idx] = segInfo{done: true, size: size, used: time.Now()}
	if tr.audio == nil {
		s.endPrefetchLocked(idx)
	}
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
		if p.slot {
			s.m.notifyPaused()
		}
	}
	s.broadcastLocked()
	s.mu.Unlock()
	s.log.Debug("hls segment ready", "run", p.run, "track", tr.id, "segment", idx,
		"ms_since_start", time.Since(p.started).Milliseconds())
	s.m.enforceDisk()
}

// finish records the end of a producer.
func (s *Session) finish(tr *track, p *producer, err error, stderr string) {
	s.mu.Lock()
	if tr.prods[p.player] == p {
		delete(tr.prods, p.player)
	}
	var ferr error
	switch {
	case p.stopping:
	case err != nil:
		msg := s.redact(stderr)
		if msg != "" {
			ferr = fmt.Errorf("ffmpeg: %w: %s", err, msg)
		} else {
			ferr = fmt.Errorf("ffmpeg: %w", err)
		}
	case p.next < p.end:
		ferr = fmt.Errorf("ffmpeg ended at segment %d of %d", p.next, p.end)
	}
	if ferr != nil {
		tr.fail = &failure{run: p.run, from: p.next, err: ferr}
	}
	s.broadcastLocked()
	s.mu.Unlock()

	parts, _ := filepath.Glob(filepath.Join(s.dir, "part-"+strconv.Itoa(p.run)+"-*.ts"))
	for _, f := range parts {
		_ = os.Remove(f)
	}
	if ferr != nil {
		s.log.Warn("ffmpeg failed", "run", p.run, "track", tr.id, "segment", p.next, "err", ferr)
	} else {
		s.log.Debug("ffmpeg done", "run", p.run, "next", p.next)
	}
	close(p.done)
}

// hotLocked: segment i is in the session's playback window and the session
// is in use, so it must not be evicted.
func (s *Session) hotLocked(tr *track, i int, now time.Time) bool {
	if s.active == 0 && now.Sub(s.lastTouch) > hotGrace {
		return false
	}
	if i >= tr.lastReq && i <= tr.lastReq+s.readahead {
		return true
	}
	for _, p := range tr.prods {
		if i >= p.lastReq && i <= p.lastReq+s.readahead {
			return true
		}
	}
	return false
}

// evict deletes segment i if it is still as the evictor saw it.
func (s *Session) evict(tr *track, i int, used time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seg := tr.segs[i]
	if s.closed || !seg.done || !seg.used.Equal(used) || s.hotLocked(tr, i, time.Now()) {
		return
	}
	if err := os.Remove(s.segPath(tr, i)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("hls evict segment", "segment", i, "err", err)
		return
	}
	tr.segs[i] = segInfo{}
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
		for _, tr := range s.tracks {
			for _, p := range tr.prods {
				p.stopping = true
				s.signalLocked(p, sigKill)
			}
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
