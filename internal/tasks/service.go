package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/hls"
	"github.com/torrentclaw/cli/internal/ids"
	"github.com/torrentclaw/cli/internal/token"
)

// State is a task's lifecycle state, as the origin protocol and the CLI name it.
type State string

// Task states.
const (
	StateQueued      State = "queued"      // waiting for a free slot (torrent.max_active)
	StateResolving   State = "resolving"   // being added, or waiting for the metainfo
	StateDownloading State = "downloading" // wanted data incomplete
	StatePaused      State = "paused"      // paused by the user or the origin
	StateSeeding     State = "seeding"     // complete, uploading
	StateCompleted   State = "completed"   // complete, not uploading
	StateFailed      State = "failed"      // see Info.Error
)

// Errors. The engine's and the HLS manager's sentinels are re-exported so the control
// socket maps every error the service returns without importing them.
var (
	ErrNotFound       = engine.ErrNotFound
	ErrExists         = engine.ErrExists
	ErrBadSource      = engine.ErrBadSource
	ErrUnsafePath     = engine.ErrUnsafePath
	ErrNoPlayableFile = engine.ErrNoPlayableFile

	ErrSessionNotFound = hls.ErrNotFound
	ErrNoFFmpeg        = hls.ErrNoFFmpeg
	ErrTooManySessions = hls.ErrTooManySessions
	ErrSessionExists   = hls.ErrExists
	ErrHLSClosed       = hls.ErrClosed

	// ErrInvalidID reports a task or session ID that breaks the one ID rule.
	ErrInvalidID = errors.New("invalid id")
	// ErrInvalidToken reports a token that is not 32-128 URL-safe characters.
	ErrInvalidToken = token.ErrInvalid
	// ErrFull reports that the service holds Options.MaxTasks tasks.
	ErrFull = errors.New("too many tasks")
	// ErrBadFile reports a file index the task does not have.
	ErrBadFile = errors.New("no such file in the task")
	// ErrClosed reports use of a closed service (or engine): the daemon is shutting down.
	ErrClosed = engine.ErrClosed
)

// Defaults of [Options].
const (
	DefaultMaxTasks  = 10000
	DefaultSaveDelay = 250 * time.Millisecond
	DefaultTokenTTL  = 6 * time.Hour
	// internalGrantTTL bounds ffmpeg's input grant; it ends with its session long before.
	internalGrantTTL = 24 * time.Hour
	scheduleInterval = time.Second
)

// Options configure a [Service].
type Options struct {
	Engine *engine.Engine // required
	Tokens *token.Table   // required
	// HLS runs sessions; nil means HLS is unavailable.
	HLS *hls.Manager
	// HLSError is why HLS is unavailable (ffmpeg missing), or nil.
	HLSError error
	// DataDir holds state.json. Required.
	DataDir string
	// MaxActive caps the tasks being added, resolving or downloading at once; the others
	// wait as [StateQueued]. 0 means no cap.
	MaxActive int
	// MaxTasks bounds the tasks the service holds (every table keyed by origin input is
	// bounded by it); 0 means DefaultMaxTasks.
	MaxTasks int
	// TokenTTL is the lifetime of a grant minted for the CLI; 0 means DefaultTokenTTL.
	TokenTTL time.Duration
	// SaveDelay debounces state saves; 0 means DefaultSaveDelay.
	SaveDelay time.Duration
	// InputURL returns the URL ffmpeg reads a task's file from for an HLS session: the
	// media listener on loopback, carrying tok (an internal grant scoped to that session and
	// file). Required for HLS.
	InputURL func(taskID, sessionID string, tok token.Token, file int) string
	Logger   *slog.Logger
}

// Service owns every task. It is safe for concurrent use.
type Service struct {
	eng       *engine.Engine
	tokens    *token.Table
	hls       *hls.Manager
	hlsErr    error
	opts      Options
	log       *slog.Logger
	statePath string

	// base is the lifetime of the service's own goroutines (adds, seeds, saves); Close
	// cancels it and waits for wg. It is kept in the struct because those goroutines
	// outlive the request that started them.
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	saveCh chan struct{} // buffered 1: save requests coalesce
	kickCh chan struct{} // buffered 1: scheduling requests coalesce

	// saveMu serialises state file writes.
	saveMu sync.Mutex

	// mu guards the fields below, and every entry's fields.
	mu       sync.Mutex
	entries  map[string]*entry
	order    []*entry // arrival order
	sessions map[string]*session
	// pending holds the sessions StartSessionWhenReady promised and has not
	// started yet; each channel is closed when the start ends (bounded by
	// maxPending).
	pending  map[string]chan struct{}
	agentID  string
	recovery Recovery
	closed   bool
}

// entry is one task.
type entry struct {
	rec  Record
	task *engine.Task // nil until the engine has it

	queued    bool
	adding    bool
	addDone   chan struct{} // closed when the add (or seed) attempt ends
	cancelAdd context.CancelFunc
	addErr    error // the add failed: the task is failed

	removed     bool
	deleteFiles bool

	// originTok is the plain token the origin sent last, in memory only, so the stream
	// URLs reported back can carry it. Cleared by Revoke.
	originTok token.Token
	// reported is the state last reported to the origin (see [Service.SwapReported]).
	reported string
}

// session is an HLS session the service started.
type session struct {
	id, taskID string
	file       int
	// bound is the hash of the token the session was created with; its URLs need that
	// token. hasBound is false when the session was created without one (a task that never
	// had a grant, or an origin session whose token the daemon does not know).
	bound    [32]byte
	hasBound bool
}

// New checks opts and returns a service. It starts nothing; see [Service.Restore] and
// [Service.Run].
func New(opts Options) (*Service, error) {
	if opts.Engine == nil || opts.Tokens == nil {
		return nil, errors.New("tasks: engine and token table are required")
	}
	if opts.DataDir == "" {
		return nil, errors.New("tasks: data dir is required")
	}
	if opts.MaxActive < 0 {
		return nil, errors.New("tasks: negative max active")
	}
	if opts.MaxTasks <= 0 {
		opts.MaxTasks = DefaultMaxTasks
	}
	if opts.TokenTTL <= 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	if opts.SaveDelay <= 0 {
		opts.SaveDelay = DefaultSaveDelay
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, cancel := context.WithCancel(context.Background())
	return &Service{
		eng:       opts.Engine,
		tokens:    opts.Tokens,
		hls:       opts.HLS,
		hlsErr:    opts.HLSError,
		opts:      opts,
		log:       log.With("component", "tasks"),
		statePath: filepath.Join(opts.DataDir, stateName),
		base:      base,
		cancel:    cancel,
		saveCh:    make(chan struct{}, 1),
		kickCh:    make(chan struct{}, 1),
		entries:   map[string]*entry{},
		sessions:  map[string]*session{},
		pending:   map[string]chan struct{}{},
	}, nil
}

// Run saves the state when asked (debounced) and starts queued tasks when slots free up,
// until ctx is done. It returns nil.
func (s *Service) Run(ctx context.Context) error {
	tick := time.NewTicker(scheduleInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.kickCh:
			s.schedule()
		case <-tick.C:
			s.schedule()
		case <-s.saveCh:
			// Debounce: a burst of changes (fifty new tasks in one sync) is one write.
			t := time.NewTimer(s.opts.SaveDelay)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			_ = s.Save()
		}
	}
}

// Close stops every add in flight, waits for the service's goroutines and writes the state
// file a last time. The engine and the HLS manager are closed by their owner afterwards.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return s.Save()
}

// requestSave asks the saver for a write; it never blocks.
func (s *Service) requestSave() { signal(s.saveCh) }

// kick asks for a scheduling pass; it never blocks.
func (s *Service) kick() { signal(s.kickCh) }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Save writes the state file now: the tasks and their grants' hashes.
func (s *Service) Save() error {
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	st := state{AgentID: s.agentID, Tasks: make([]Record, 0, len(s.order))}
	for _, e := range s.order {
		st.Tasks = append(st.Tasks, e.rec)
	}
	s.mu.Unlock()
	st.Tokens = s.tokens.Export()
	if err := saveState(s.statePath, st); err != nil {
		s.log.Error("state not saved", "err", err)
		return err
	}
	return nil
}

// AgentID returns the agent ID saved in the state file.
func (s *Service) AgentID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.agentID
}

// SetAgentID records the origin agent ID and saves it.
func (s *Service) SetAgentID(id string) {
	s.mu.Lock()
	s.agentID = id
	s.mu.Unlock()
	s.requestSave()
}

// Recovery reports what was done at start about an unreadable state file.
func (s *Service) Recovery() Recovery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recovery
}

// Restore adds the tasks of a previous run again and restores their grants. It returns at
// once: the adds run on the service's goroutines (a .torrent URL is never fetched again; a
// task whose metainfo was saved is added from it). A record with a bad ID is dropped.
func (s *Service) Restore(ld Loaded) {
	if skipped := s.tokens.Import(ld.Tokens); skipped > 0 {
		s.log.Warn("token records skipped", "count", skipped)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.agentID = ld.AgentID
	s.recovery = ld.Recovery
	for _, rec := range ld.Records {
		if !ids.ValidTaskID(rec.ID) {
			s.log.Warn("saved task dropped: invalid id")
			continue
		}
		if _, dup := s.entries[rec.ID]; dup {
			continue
		}
		e := &entry{rec: rec}
		s.entries[rec.ID] = e
		s.order = append(s.order, e)
		if rec.SeedPath != "" {
			s.startSeedLocked(e)
			continue
		}
		s.admitLocked(e)
	}
	s.kick()
}

// AddSpec describes a task to add.
type AddSpec struct {
	// ID names the task; "" mints a UUID. It must satisfy the task ID rule.
	ID        string
	Source    string
	FileIndex int // -1: the largest video file
	Title     string
	Stream    bool // download the selected file first (origin mode "stream", the CLI)
	// FromOrigin marks an origin task: a local .torrent path is refused before any I/O.
	FromOrigin bool
	// Wait makes Add wait (bounded by ctx) for the engine to take the task, so the caller
	// learns at once about a bad source or a torrent another task already holds. Without
	// it Add returns at once and the add runs in the background.
	Wait bool
}

// Add adds a task, or returns the task that already holds the same ID or torrent (existing
// is then true). Without spec.Wait it returns at once; the task is [StateQueued] when
// Options.MaxActive tasks are active.
func (s *Service) Add(ctx context.Context, spec AddSpec) (info Info, existing bool, err error) {
	if spec.ID == "" {
		spec.ID = uuid.NewString()
	}
	if !ids.ValidTaskID(spec.ID) {
		return Info{}, false, fmt.Errorf("add task: %w: task ids are 1-128 characters of [A-Za-z0-9._~:-]", ErrInvalidID)
	}
	if spec.FileIndex < -1 {
		return Info{}, false, fmt.Errorf("add task: %w: file index %d", ErrBadFile, spec.FileIndex)
	}
	parse := engine.ParseSource
	if spec.FromOrigin {
		// Decided on the text alone: nothing is opened, so the answer says nothing
		// about the local file system.
		parse = engine.ParseOriginSource
	}
	src, err := parse(spec.Source)
	if err != nil {
		return Info{}, false, fmt.Errorf("add task: %w", err)
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return Info{}, false, ErrClosed
	}
	if e, ok := s.entries[spec.ID]; ok {
		s.mu.Unlock()
		return s.existingInfo(e, spec.FileIndex)
	}
	key := src.Key()
	for _, e := range s.order {
		sameKey := key != "" && (e.rec.InfoHash == key || (e.task != nil && e.task.InfoHash() == key))
		if sameKey || sameSource(e.rec.Source, src) {
			s.mu.Unlock()
			return s.existingInfo(e, spec.FileIndex)
		}
	}
	if len(s.entries) >= s.opts.MaxTasks {
		s.mu.Unlock()
		return Info{}, false, fmt.Errorf("add task: %w (max %d)", ErrFull, s.opts.MaxTasks)
	}
	e := &entry{rec: Record{
		ID: spec.ID, Source: src.String(), InfoHash: src.Key(), FileIndex: spec.FileIndex, Title: spec.Title,
		Stream: spec.Stream, FromOrig: spec.FromOrigin, AddedAt: time.Now().UTC(),
	}}
	s.entries[e.rec.ID] = e
	s.order = append(s.order, e)
	s.admitLocked(e)
	done := e.addDone
	s.mu.Unlock()
	s.requestSave()

	if !spec.Wait || done == nil {
		return s.infoOf(e, false), false, nil
	}
	select {
	case <-done:
	case <-ctx.Done():
		return s.infoOf(e, false), false, nil // it goes on in the background
	}
	s.mu.Lock()
	addErr := e.addErr
	s.mu.Unlock()
	if addErr == nil {
		return s.infoOf(e, false), false, nil
	}
	// The caller is told at once; nothing half-added stays behind.
	_ = s.Remove(context.WithoutCancel(ctx), e.rec.ID, false)
	var ee *engine.ExistsError
	if errors.As(addErr, &ee) {
		s.mu.Lock()
		other, ok := s.entries[ee.TaskID]
		s.mu.Unlock()
		if ok {
			return s.existingInfo(other, spec.FileIndex)
		}
	}
	return Info{}, false, addErr
}

// existingInfo returns an existing task for an add of it, checking the file index against
// its files when they are known.
func (s *Service) existingInfo(e *entry, fileIndex int) (Info, bool, error) {
	info := s.infoOf(e, true)
	if fileIndex >= 0 && len(info.Files) > 0 && fileIndex >= len(info.Files) {
		return Info{}, false, fmt.Errorf("task %s: %w: file %d (the torrent has %d files)", info.ID, ErrBadFile, fileIndex, len(info.Files))
	}
	info.Files = nil
	return info, true, nil
}

// sameSource reports whether a saved source is the same .torrent URL or path as pb.
func sameSource(a string, pb engine.Source) bool {
	if pb.Kind != engine.SourceURL && pb.Kind != engine.SourceFile {
		return false
	}
	pa, err := engine.ParseSource(a)
	if err != nil || pa.Kind != pb.Kind {
		return false
	}
	switch pa.Kind {
	case engine.SourceURL:
		return pa.URL == pb.URL
	case engine.SourceFile:
		return pa.Path == pb.Path
	}
	return false
}

// admitLocked starts e's add, or queues it when no slot is free. A paused task takes no
// slot: it is added and paused.
func (s *Service) admitLocked(e *entry) {
	if !e.rec.Paused && s.opts.MaxActive > 0 && s.activeLocked() >= s.opts.MaxActive {
		e.queued = true
		return
	}
	s.startAddLocked(e)
}

// activeLocked counts the tasks that take a slot: being added, resolving or downloading.
func (s *Service) activeLocked() int {
	n := 0
	for _, e := range s.order {
		if e.queued || e.rec.Paused || e.removed || e.addErr != nil {
			continue
		}
		if e.adding {
			n++
			continue
		}
		if e.task != nil {
			switch e.task.Status().State {
			case engine.StateResolving, engine.StateDownloading:
				n++
			}
		}
	}
	return n
}

// schedule starts queued tasks while slots are free: stream tasks first, then in arrival
// order.
func (s *Service) schedule() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.opts.MaxActive == 0 {
		return
	}
	for s.activeLocked() < s.opts.MaxActive {
		next := s.nextQueuedLocked()
		if next == nil {
			return
		}
		next.queued = false
		s.startAddLocked(next)
	}
}

func (s *Service) nextQueuedLocked() *entry {
	var first *entry
	for _, e := range s.order {
		if !e.queued {
			continue
		}
		if e.rec.Stream {
			return e
		}
		if first == nil {
			first = e
		}
	}
	return first
}

// addSource is what a task is added from: a task whose torrent is known is added by its
// info hash, from the metainfo the engine saved, so a .torrent URL or file is read once.
func addSource(rec Record) string {
	if rec.InfoHash == "" {
		return rec.Source
	}
	if src, err := engine.ParseSource(rec.Source); err == nil && (src.Kind == engine.SourceURL || src.Kind == engine.SourceFile) {
		return rec.InfoHash
	}
	return rec.Source
}

// startAddLocked runs e's engine add on a service goroutine.
func (s *Service) startAddLocked(e *entry) {
	if s.closed { // wg.Go must not race Close's Wait
		e.addErr = ErrClosed
		return
	}
	ctx, cancel := context.WithCancel(s.base)
	e.adding, e.cancelAdd, e.addErr = true, cancel, nil
	e.addDone = make(chan struct{})
	rec := e.rec
	s.wg.Go(func() {
		defer cancel()
		t, err := s.eng.Add(ctx, engine.AddSpec{
			ID: rec.ID, Source: addSource(rec), FileIndex: rec.FileIndex, Title: rec.Title, Stream: rec.Stream,
			Remote: rec.FromOrig, // the origin may not name local files
		})
		s.finishAdd(e, t, err)
	})
}

// startSeedLocked seeds e's path again on a service goroutine: hashing a large file takes a
// while, and the listeners must not wait for it.
func (s *Service) startSeedLocked(e *entry) {
	if s.closed {
		e.addErr = ErrClosed
		return
	}
	ctx, cancel := context.WithCancel(s.base)
	e.adding, e.cancelAdd = true, cancel
	e.addDone = make(chan struct{})
	path := e.rec.SeedPath
	s.wg.Go(func() {
		defer cancel()
		si, err := s.eng.Seed(ctx, path)
		var t *engine.Task
		if err == nil {
			t, err = s.eng.Task(si.TaskID)
		}
		if err != nil {
			s.log.Warn("seed not restored", "task", e.rec.ID, "err", err)
		}
		s.finishAdd(e, t, err)
	})
}

// finishAdd records the outcome of an add.
func (s *Service) finishAdd(e *entry, t *engine.Task, err error) {
	s.mu.Lock()
	e.adding, e.cancelAdd = false, nil
	removed, deleteFiles, paused := e.removed, e.deleteFiles, e.rec.Paused
	if err == nil && !removed {
		e.task = t
		e.rec.InfoHash = t.InfoHash()
	} else if err != nil {
		e.addErr = err
	}
	close(e.addDone)
	s.mu.Unlock()

	switch {
	case err != nil:
		if !removed {
			s.log.Warn("task not added", "task", e.rec.ID, "err", err)
		}
	case removed:
		// Removed while it was being added: the engine's task goes too.
		if rerr := s.eng.Remove(t.ID(), deleteFiles); rerr != nil && !errors.Is(rerr, engine.ErrNotFound) {
			s.log.Warn("task not removed", "task", e.rec.ID, "err", rerr)
		}
	case paused:
		if perr := s.eng.Pause(t.ID()); perr != nil {
			s.log.Warn("task not paused", "task", e.rec.ID, "err", perr)
		}
	}
	s.requestSave()
	s.kick()
}

// Seed makes a torrent of path and seeds it from where it is, as a task that survives a
// restart.
func (s *Service) Seed(ctx context.Context, path string) (engine.SeedInfo, error) {
	si, err := s.eng.Seed(ctx, path)
	if err != nil {
		return si, err
	}
	t, err := s.eng.Task(si.TaskID)
	if err != nil {
		return si, err
	}
	s.mu.Lock()
	if _, ok := s.entries[si.TaskID]; !ok {
		e := &entry{rec: Record{ID: si.TaskID, Source: si.InfoHash, SeedPath: path, InfoHash: si.InfoHash, FileIndex: -1, AddedAt: time.Now().UTC()}, task: t}
		s.entries[e.rec.ID] = e
		s.order = append(s.order, e)
	}
	s.mu.Unlock()
	s.requestSave()
	return si, nil
}

// Remove removes a task everywhere, through one path: an add in flight is cancelled, its
// HLS sessions close, its grants and plain tokens are forgotten, the engine drops it (with
// deleteFiles, its files too) and the state file forgets it.
func (s *Service) Remove(ctx context.Context, id string, deleteFiles bool) error {
	s.mu.Lock()
	e, ok := s.entries[id]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("task %q: %w", id, ErrNotFound)
	}
	delete(s.entries, id)
	s.order = slices.DeleteFunc(s.order, func(x *entry) bool { return x == e })
	e.removed, e.deleteFiles = true, deleteFiles
	e.originTok = ""
	if e.cancelAdd != nil {
		e.cancelAdd()
	}
	t := e.task
	var sids []string
	for sid, ss := range s.sessions {
		if ss.taskID == id {
			sids = append(sids, sid)
			delete(s.sessions, sid)
		}
	}
	s.tokens.Forget(id)
	s.mu.Unlock()

	s.closeSessions(id, sids)
	var err error
	if t != nil {
		if err = s.eng.Remove(id, deleteFiles); errors.Is(err, engine.ErrNotFound) {
			err = nil
		}
	}
	s.requestSave()
	s.kick()
	return err
}

// closeSessions closes a task's HLS sessions (ffmpeg is killed, their URLs die).
func (s *Service) closeSessions(taskID string, sids []string) {
	if s.hls == nil {
		return
	}
	for _, sid := range sids {
		if sess, err := s.hls.Get(sid); err == nil {
			_ = sess.Close()
		}
	}
	s.hls.CloseTask(taskID)
}

// Pause stops a task's transfers (a queued task leaves the queue); it survives a restart.
func (s *Service) Pause(id string) error { return s.setPaused(id, true) }

// Resume undoes Pause, and retries a task stopped by a storage error.
func (s *Service) Resume(id string) error { return s.setPaused(id, false) }

func (s *Service) setPaused(id string, paused bool) error {
	s.mu.Lock()
	e, ok := s.entries[id]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("task %q: %w", id, ErrNotFound)
	}
	e.rec.Paused = paused
	t := e.task
	switch {
	case paused && e.queued:
		e.queued = false
	case !paused && t == nil && !e.adding:
		// Paused while queued, or an add that failed: it goes through admission again.
		s.admitLocked(e)
	}
	s.mu.Unlock()
	var err error
	if t != nil {
		if paused {
			err = s.eng.Pause(id)
		} else {
			err = s.eng.Resume(id)
		}
	}
	s.requestSave()
	s.kick()
	return err
}

// taskWait bounds how long [Service.Task] waits for an add in flight (a task restored at
// start is added from its saved metainfo in moments).
const taskWait = 10 * time.Second

// Task returns the engine task of id; the media listener resolves tasks with it. When the
// task is being added (just restored at start) it waits for the add, up to taskWait.
func (s *Service) Task(id string) (*engine.Task, error) {
	s.mu.Lock()
	e, ok := s.entries[id]
	var done chan struct{}
	if ok && e.task == nil && e.adding {
		done = e.addDone
	}
	s.mu.Unlock()
	if done != nil {
		t := time.NewTimer(taskWait)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok || e.removed || e.task == nil {
		return nil, fmt.Errorf("task %q: %w", id, ErrNotFound)
	}
	return e.task, nil
}

// WaitTask waits until the engine has task id, or its add failed, or ctx is done.
func (s *Service) WaitTask(ctx context.Context, id string) (*engine.Task, error) {
	s.mu.Lock()
	e, ok := s.entries[id]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("task %q: %w", id, ErrNotFound)
	}
	for e.task == nil {
		done := e.addDone
		if e.addErr != nil {
			err := e.addErr
			s.mu.Unlock()
			return nil, err
		}
		s.mu.Unlock()
		if done == nil { // queued or paused: wait for admission
			t := time.NewTimer(scheduleInterval)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		} else {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-done:
			}
		}
		s.mu.Lock()
		if e.removed {
			s.mu.Unlock()
			return nil, fmt.Errorf("task %q: %w", id, ErrNotFound)
		}
	}
	t := e.task
	s.mu.Unlock()
	return t, nil
}

// FreeSlots is how many more tasks would start at once, or -1 without a cap.
func (s *Service) FreeSlots() int {
	if s.opts.MaxActive == 0 {
		return -1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	queued := 0
	for _, e := range s.order {
		if e.queued {
			queued++
		}
	}
	return max(0, s.opts.MaxActive-s.activeLocked()-queued)
}

// SwapReported records key as the state last reported to the origin for task id and
// reports whether it differs from the previous one.
func (s *Service) SwapReported(id, key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[id]
	if !ok {
		return false
	}
	changed := e.reported != key
	e.reported = key
	return changed
}

// Token is a plain stream token (it redacts itself when printed); the control socket's
// replies carry the tokens minted for the CLI.
type Token = token.Token
