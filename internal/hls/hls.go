package hls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Sentinel errors.
var (
	// ErrNotFound: no such session, or it was closed.
	ErrNotFound = errors.New("hls session not found")
	// ErrNoFFmpeg: ffmpeg or ffprobe is not installed.
	ErrNoFFmpeg = errors.New("ffmpeg/ffprobe not found")
	// ErrTooManySessions: MaxSessions sessions are open.
	ErrTooManySessions = errors.New("too many hls sessions")
	// ErrBadResource: not a resource of the session.
	ErrBadResource = errors.New("bad hls resource")
	// ErrExists: Create with the ID of an open session.
	ErrExists = errors.New("hls session already exists")
	// ErrClosed: the manager is closed.
	ErrClosed = errors.New("hls manager closed")
	// ErrNeedsTranscode: Options.CopyOnly is set and the input's video
	// cannot be stream-copied (returned by WaitReady).
	ErrNeedsTranscode = errors.New("input needs video transcoding, which is disabled")
)

// Defaults for zero Options fields.
const (
	DefaultSegmentSeconds = 2.0
	DefaultMaxSessions    = 4
	DefaultMaxTranscodes  = 2
	DefaultIdleTimeout    = 2 * time.Minute
)

// Session modes reported by [Session.Info].
const (
	ModeCopy      = "copy"       // video and audio copied
	ModeCopyVideo = "copy-video" // video copied, audio re-encoded to AAC stereo
	ModeTranscode = "transcode"  // video encoded with libx264, audio to AAC stereo
)

// markerName marks a directory as a session dir this package made, so New
// only ever deletes what it created.
const markerName = ".torrentclaw-hls"

// Options configures a Manager.
type Options struct {
	// FFmpegPath and FFprobePath are the binaries; "" looks them up on
	// PATH (ffprobe first next to an explicit FFmpegPath).
	FFmpegPath, FFprobePath string
	// Dir holds one subdirectory per session. Stale session dirs from a
	// previous run are deleted by New. "" => <user cache dir>/torrentclaw/hls.
	Dir string
	// SegmentSeconds is the target segment length (default 2).
	SegmentSeconds float64
	// MaxSessions bounds open sessions (default 4).
	MaxSessions int
	// MaxTranscodes bounds concurrently running ffmpeg processes that
	// re-encode video (default 2). A run that copies the video, and an
	// audio run, costs a few percent of a core and takes no slot.
	MaxTranscodes int
	// CopyOnly refuses inputs whose video would need re-encoding
	// (WaitReady fails with ErrNeedsTranscode); audio may still be
	// re-encoded, which is cheap.
	CopyOnly bool
	// IdleTimeout closes a session nobody touched for this long (default 2m).
	IdleTimeout time.Duration
	// MaxDiskBytes caps the segment bytes of all sessions; 0 = unlimited.
	MaxDiskBytes int64
	// Logger; nil discards.
	Logger *slog.Logger
	// OnClose is called (once, outside any lock) after a session closed.
	OnClose func(sessionID string)
}

// Manager owns the HLS sessions. Safe for concurrent use.
type Manager struct {
	opts   Options
	log    *slog.Logger
	client *http.Client // keyframe-index reads on the input
	// inputRetry is how often the input proxy asks again for bytes the
	// input said come later (inputHeld).
	inputRetry time.Duration

	slots   chan struct{} // one token per running ffmpeg that re-encodes video
	disk    atomic.Int64  // bytes of complete segments on disk
	running atomic.Int32  // ffmpeg processes alive
	starts  atomic.Int64  // video ffmpeg processes started (tests)
	// audioStarts counts audio rendition ffmpeg processes started (tests).
	audioStarts atomic.Int64
	// restarts counts ffmpeg processes replaced by one at another position
	// (see Stats).
	restarts atomic.Int64
	// prefetches counts finished prefetch reads (tests).
	prefetches atomic.Int64
	peak       atomic.Int32 // most ffmpeg processes alive at once (tests)
	// readaheadSec is readaheadSeconds; tests lower it.
	readaheadSec float64
	evictMu      sync.Mutex    // one evictor at a time
	pauseMu      sync.Mutex    // guards paused
	paused       chan struct{} // closed and replaced when a producer pauses

	proxy inputProxy // loopback proxy between ffmpeg and the inputs (proxy.go)

	probed probedCache // tracks of probed files, kept after their sessions close

	binMu           sync.Mutex // guards ffmpeg, ffprobe
	ffmpeg, ffprobe string

	mu       sync.Mutex // guards sessions, closed
	sessions map[string]*Session
	closed   bool
}

// New returns a Manager. It creates Dir and deletes stale session dirs left
// by a previous run; it starts nothing. Missing ffmpeg is not an error here:
// [Manager.Available] reports it.
func New(opts Options) (*Manager, error) {
	if opts.SegmentSeconds <= 0 {
		opts.SegmentSeconds = DefaultSegmentSeconds
	}
	if opts.SegmentSeconds < 1 || opts.SegmentSeconds > 30 {
		return nil, fmt.Errorf("hls: segment seconds %v out of range [1, 30]", opts.SegmentSeconds)
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = DefaultMaxSessions
	}
	if opts.MaxTranscodes <= 0 {
		opts.MaxTranscodes = DefaultMaxTranscodes
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.Dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("hls: no dir configured and no cache dir: %w", err)
		}
		opts.Dir = filepath.Join(cache, "torrentclaw", "hls")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("hls: dir: %w", err)
	}
	opts.Dir = dir
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "hls")
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("hls: create dir: %w", err)
	}
	if err := cleanStale(opts.Dir); err != nil {
		return nil, fmt.Errorf("hls: clean dir: %w", err)
	}
	m := &Manager{
		opts:         opts,
		log:          log,
		slots:        make(chan struct{}, opts.MaxTranscodes),
		sessions:     map[string]*Session{},
		readaheadSec: readaheadSeconds,
		paused:       make(chan struct{}),
		inputRetry:   time.Second,
		client: &http.Client{
			Transport: &http.Transport{Proxy: nil, DisableCompression: true, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
	return m, nil
}

// cleanStale deletes session dirs (marked by markerName) under dir.
func cleanStale(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || !ValidSessionID(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if _, err := os.Lstat(filepath.Join(p, markerName)); err != nil {
			continue
		}
		errs = append(errs, os.RemoveAll(p))
	}
	return errors.Join(errs...)
}

// Available reports whether ffmpeg and ffprobe can be run: nil, or an error
// wrapping ErrNoFFmpeg that says how to install them. A failed lookup is
// retried on the next call, so installing ffmpeg needs no restart.
func (m *Manager) Available() error {
	_, _, err := m.binaries()
	return err
}

func (m *Manager) binaries() (ffmpeg, ffprobe string, err error) {
	m.binMu.Lock()
	defer m.binMu.Unlock()
	if m.ffmpeg != "" {
		return m.ffmpeg, m.ffprobe, nil
	}
	ffName := m.opts.FFmpegPath
	if ffName == "" {
		ffName = "ffmpeg"
	}
	ff, err1 := exec.LookPath(ffName)
	probeName := m.opts.FFprobePath
	if probeName == "" {
		probeName = "ffprobe"
		if err1 == nil && m.opts.FFmpegPath != "" {
			if p := filepath.Join(filepath.Dir(ff), "ffprobe"); isExecutable(p) {
				probeName = p
			}
		}
	}
	fp, err2 := exec.LookPath(probeName)
	if err1 != nil || err2 != nil {
		return "", "", fmt.Errorf("%w: install ffmpeg (e.g. `apt-get install ffmpeg`, `dnf install ffmpeg`, `brew install ffmpeg`) or set the ffmpeg and ffprobe paths in the [hls] config", ErrNoFFmpeg)
	}
	m.ffmpeg, m.ffprobe = ff, fp
	return ff, fp, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Spec describes a session to create.
type Spec struct {
	// ID of the session; "" mints a UUID v4. Must satisfy ValidSessionID.
	ID string
	// TaskID groups sessions for CloseTask.
	TaskID string
	// FileIndex is the input's file in its task, reported in Info and
	// keyed on by [Manager.Tracks].
	FileIndex int
	// InputURL is the media, read with HTTP Range requests (in the daemon:
	// its own /stream on loopback with an internal token). Never logged.
	InputURL string
	// StartSec, when > 0, starts producing segments at that position as
	// soon as the probe is done, before the player asks.
	StartSec float64
	// Sidecars are subtitle files of the same torrent that belong to the
	// input (see FindSidecars); each becomes a subtitle rendition.
	Sidecars []SidecarInput
	// Tracks picks the default renditions and asks for burnt-in subtitles.
	Tracks TrackOptions
	// Key, when set, makes Create return the open session with the same
	// Key instead of creating another (a player page reloaded).
	Key string
}

// TrackOptions are a session's choices among the input's tracks. Every
// track is offered whatever they say; they only pick DEFAULT=YES.
type TrackOptions struct {
	// AudioLanguage and SubtitleLanguage (BCP 47, ISO 639-1 or 639-2)
	// pick the default audio and subtitle renditions. Without a match the
	// source's default audio is the default and no subtitle is.
	AudioLanguage, SubtitleLanguage string
	// BurnImageSubtitles burns an image subtitle track (PGS, VobSub) into
	// the video: the one in SubtitleLanguage, else the source's default,
	// else the first. It forces transcoding. Image subtitles are never
	// burnt in without it.
	BurnImageSubtitles bool
}

// Create opens a session and starts probing its input in the background
// (see [Session.WaitReady]); ctx bounds only this call, not the session.
// It fails with ErrNoFFmpeg, ErrTooManySessions, ErrExists or ErrClosed.
func (m *Manager) Create(ctx context.Context, spec Spec) (*Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := m.Available(); err != nil {
		return nil, err
	}
	if spec.ID == "" {
		spec.ID = uuid.NewString()
	}
	if !ValidSessionID(spec.ID) {
		return nil, fmt.Errorf("create hls session: invalid id")
	}
	u, err := url.Parse(spec.InputURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("create hls session %s: input must be an http(s) url", spec.ID)
	}
	for i, sc := range spec.Sidecars {
		u, err := url.Parse(sc.InputURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("create hls session %s: sidecar %d must be an http(s) url", spec.ID, i)
		}
	}
	if spec.StartSec < 0 || spec.StartSec != spec.StartSec {
		spec.StartSec = 0
	}
	secret, err := newSecret()
	if err != nil {
		return nil, fmt.Errorf("create hls session %s: %w", spec.ID, err)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if spec.Key != "" {
		for _, o := range m.sessions {
			if o.key == spec.Key {
				return o, nil
			}
		}
	}
	if _, ok := m.sessions[spec.ID]; ok {
		return nil, fmt.Errorf("create hls session %s: %w", spec.ID, ErrExists)
	}
	if len(m.sessions) >= m.opts.MaxSessions {
		return nil, ErrTooManySessions
	}
	dir := filepath.Join(m.opts.Dir, spec.ID)
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("create hls session %s: %w", spec.ID, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create hls session %s: %w", spec.ID, err)
	}
	if err := os.WriteFile(filepath.Join(dir, markerName), nil, 0o600); err != nil {
		return nil, errors.Join(fmt.Errorf("create hls session %s: %w", spec.ID, err), os.RemoveAll(dir))
	}
	s := newSession(m, spec, dir, secret)
	m.sessions[spec.ID] = s
	s.wg.Add(1)
	go s.prepare()
	s.log.Info("hls session created", "start_sec", spec.StartSec)
	return s, nil
}

// Get returns an open session or ErrNotFound.
func (m *Manager) Get(id string) (*Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		return nil, ErrNotFound
	}
	return s, nil
}

// Sessions returns a snapshot of every open session.
func (m *Manager) Sessions() []Info {
	var out []Info
	for _, s := range m.list() {
		out = append(out, s.Info())
	}
	return out
}

func (m *Manager) list() []*Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Session, 0, len(m.sessions))
	for _, s := range m.sessions {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Session) int { return a.created.Compare(b.created) })
	return out
}

// CloseTask closes every session of a task and forgets its probed tracks.
func (m *Manager) CloseTask(taskID string) {
	defer m.probed.forgetTask(taskID)
	for _, s := range m.list() {
		if s.taskID == taskID {
			_ = s.Close()
		}
	}
}

// Run reaps idle sessions until ctx is done, then closes every session. It
// returns nil after a clean shutdown.
func (m *Manager) Run(ctx context.Context) error {
	interval := min(max(m.opts.IdleTimeout/4, 10*time.Millisecond), 10*time.Second)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return m.Close()
		case now := <-t.C:
			for _, s := range m.list() {
				if s.idleFor(now) > m.opts.IdleTimeout {
					s.log.Info("hls session idle")
					if err := s.Close(); err != nil {
						m.log.Warn("close idle hls session", "session", s.id, "err", err)
					}
				}
			}
		}
	}
}

// Close closes every session (killing their ffmpeg) and refuses new ones.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	var errs []error
	for _, s := range m.list() {
		errs = append(errs, s.Close())
	}
	errs = append(errs, m.closeProxy())
	m.client.CloseIdleConnections()
	return errors.Join(errs...)
}

func (m *Manager) remove(s *Session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sessions[s.id] == s {
		delete(m.sessions, s.id)
	}
}

// acquireSlot takes one of MaxTranscodes ffmpeg slots, waiting until ctx or
// the session ends. When none is free it first stops a paused ffmpeg of
// another session (it is ahead of its player; the player's next request
// restarts it), so a paused session never starves an active one.
func (m *Manager) acquireSlot(ctx context.Context, s *Session) error {
	for {
		select {
		case m.slots <- struct{}{}:
			return nil
		default:
		}
		// Take the signal before looking, so a pause after the look
		// is not missed.
		paused := m.pausedSignal()
		for _, o := range m.list() {
			if o != s && o.preemptPaused() {
				break
			}
		}
		select {
		case m.slots <- struct{}{}:
			return nil
		case <-paused:
		case <-ctx.Done():
			return fmt.Errorf("wait for a transcode slot: %w", ctx.Err())
		case <-s.ctx.Done():
			return ErrNotFound
		}
	}
}

// pausedSignal returns a channel closed at the next producer pause.
func (m *Manager) pausedSignal() <-chan struct{} {
	m.pauseMu.Lock()
	defer m.pauseMu.Unlock()
	return m.paused
}

// notifyPaused wakes acquireSlot waiters: a slot may be preemptible now.
func (m *Manager) notifyPaused() {
	m.pauseMu.Lock()
	defer m.pauseMu.Unlock()
	close(m.paused)
	m.paused = make(chan struct{})
}

func (m *Manager) releaseSlot() { <-m.slots }

// trySlot takes a transcode slot if one is free now.
func (m *Manager) trySlot() bool {
	select {
	case m.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (m *Manager) overDisk() bool {
	return m.opts.MaxDiskBytes > 0 && m.disk.Load() > m.opts.MaxDiskBytes
}

// enforceDisk deletes segments until the total is under MaxDiskBytes:
// least recently used first, never one in a session's playback window.
// What cannot be freed makes producers pause (see Session.shouldPause).
func (m *Manager) enforceDisk() {
	if !m.overDisk() {
		return
	}
	m.evictMu.Lock()
	defer m.evictMu.Unlock()
	type cand struct {
		s    *Session
		tr   *track
		idx  int
		used time.Time
	}
	var cands []cand
	now := time.Now()
	for _, s := range m.list() {
		s.mu.Lock()
		for _, tr := range s.tracks {
			for i, seg := range tr.segs {
				if seg.done && !s.hotLocked(tr, i, now) {
					cands = append(cands, cand{s, tr, i, seg.used})
				}
			}
		}
		s.mu.Unlock()
	}
	slices.SortFunc(cands, func(a, b cand) int { return a.used.Compare(b.used) })
	for _, c := range cands {
		if !m.overDisk() {
			return
		}
		c.s.evict(c.tr, c.idx, c.used)
	}
}
