package tasks

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/hls"
	"github.com/torrentclaw/cli/internal/ids"
	"github.com/torrentclaw/cli/internal/token"
)

// GrantOrigin installs a token the origin sent for a task (on any carrier): it replaces the
// task's origin grant, and every replaced grant keeps its grace. A token for a task the
// service does not hold is refused and stored nowhere. A zero expiresAt means the table's
// TTL.
func (s *Service) GrantOrigin(taskID string, tok token.Token, expiresAt time.Time) error {
	if !token.Valid(string(tok)) {
		return fmt.Errorf("task %q: %w", taskID, ErrInvalidToken)
	}
	s.mu.Lock()
	e, ok := s.entries[taskID]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("task %q: %w", taskID, ErrNotFound)
	}
	err := s.tokens.Grant(taskID, tok, token.IssuerOrigin, token.TaskScope(), expiresAt)
	if err == nil {
		e.originTok = tok
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("task %q: %w", taskID, err)
	}
	s.requestSave()
	return nil
}

// GrantCLI mints a token for the local CLI and adds it as a grant for the whole task,
// touching no other grant. It returns the plain token (for the caller only) and its expiry.
func (s *Service) GrantCLI(taskID string) (token.Token, time.Time, error) {
	tok, err := token.Mint()
	if err != nil {
		return "", time.Time{}, err
	}
	exp := time.Now().Add(s.opts.TokenTTL)
	s.mu.Lock()
	_, ok := s.entries[taskID]
	if ok {
		err = s.tokens.Grant(taskID, tok, token.IssuerCLI, token.TaskScope(), exp)
	}
	s.mu.Unlock()
	if !ok {
		return "", time.Time{}, fmt.Errorf("task %q: %w", taskID, ErrNotFound)
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("task %q: %w", taskID, err)
	}
	s.requestSave()
	return tok, exp, nil
}

// Revoke ends every grant of a task at once (no grace) and locks it: every URL of the task,
// HLS sessions and ffmpeg's input included, answers 404 until a new grant. Its HLS sessions
// close. The origin's stop-stream and cancel, and `token revoke`, come here.
func (s *Service) Revoke(taskID string) error {
	s.mu.Lock()
	e, ok := s.entries[taskID]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("task %q: %w", taskID, ErrNotFound)
	}
	e.originTok = ""
	s.tokens.Revoke(taskID)
	var sids []string
	for sid, ss := range s.sessions {
		if ss.taskID == taskID {
			sids = append(sids, sid)
			delete(s.sessions, sid)
		}
	}
	s.mu.Unlock()
	s.closeSessions(taskID, sids)
	s.requestSave()
	return nil
}

// OriginToken returns the plain token the origin sent last for a task ("" when unknown:
// after a restart, or after a revoke). It is kept in memory only, to put in the stream URLs
// reported back to the origin, which knows it already.
func (s *Service) OriginToken(taskID string) token.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[taskID]; ok {
		return e.originTok
	}
	return ""
}

// SessionSpec describes an HLS session to start.
type SessionSpec struct {
	// ID of the session; "" mints a UUID v4.
	ID        string
	TaskID    string
	FileIndex int // -1: the task's selected file
	StartSec  float64
	// Token is the grant the session is bound to: its URLs work only with it, and die with
	// it. "" binds the session to the origin's current token when the daemon knows one,
	// else to no particular grant (any grant of the task opens it).
	Token token.Token
	// Tracks picks the default audio and subtitle renditions.
	Tracks hls.TrackOptions
	// Key, when set, returns the open session with the same key instead of another one
	// (the /watch page reloaded).
	Key string
}

// StartSession starts an HLS session once the task has its metainfo (ctx bounds the wait).
// ffmpeg reads the file through the media listener with an internal grant scoped to this
// session and file, which ends when the session closes (idle timeout, stop, task removal,
// revoke).
func (s *Service) StartSession(ctx context.Context, spec SessionSpec) (*hls.Session, error) {
	if s.hls == nil || s.hlsErr != nil {
		if s.hlsErr != nil {
			return nil, s.hlsErr
		}
		return nil, ErrNoFFmpeg
	}
	if spec.ID == "" {
		spec.ID = uuid.NewString()
	}
	if !ids.ValidSessionID(spec.ID) {
		return nil, fmt.Errorf("start hls session: %w", ErrInvalidID)
	}
	if spec.Token != "" && !token.Valid(string(spec.Token)) {
		return nil, fmt.Errorf("start hls session: %w", ErrInvalidToken)
	}
	t, err := s.WaitTask(ctx, spec.TaskID)
	if err != nil {
		return nil, err
	}
	if err := t.WaitInfo(ctx); err != nil {
		return nil, err
	}
	fi := spec.FileIndex
	if fi < 0 {
		fi = t.SelectedFile()
	}
	files := t.Files()
	if n := len(files); fi < 0 || fi >= n {
		return nil, fmt.Errorf("task %s: %w: file %d (the torrent has %d files)", spec.TaskID, ErrBadFile, fi, n)
	}
	sidecars := sidecarsOf(files, fi)
	in, err := token.Mint()
	if err != nil {
		return nil, err
	}

	s.mu.Lock()
	e, ok := s.entries[spec.TaskID]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("task %q: %w", spec.TaskID, ErrNotFound)
	}
	if _, dup := s.sessions[spec.ID]; dup {
		s.mu.Unlock()
		return nil, fmt.Errorf("start hls session %s: %w", spec.ID, ErrSessionExists)
	}
	ss := &session{id: spec.ID, taskID: spec.TaskID, file: fi}
	bind := spec.Token
	if bind == "" {
		bind = e.originTok
	}
	if bind != "" {
		ss.bound, ss.hasBound = token.Hash(string(bind)), true
	}
	// ffmpeg's grant opens the file and its sidecar subtitle files, for this session only.
	for _, f := range append([]int{fi}, sidecarIndexes(sidecars)...) {
		if err := s.tokens.Grant(spec.TaskID, in, token.IssuerInternal, token.Scope{SessionID: spec.ID, File: f}, time.Now().Add(internalGrantTTL)); err != nil {
			s.tokens.EndSession(spec.TaskID, spec.ID)
			s.mu.Unlock()
			return nil, fmt.Errorf("start hls session: %w", err)
		}
	}
	s.sessions[spec.ID] = ss
	s.mu.Unlock()

	var inputs []hls.SidecarInput
	for _, sc := range sidecars {
		inputs = append(inputs, hls.SidecarInput{
			InputURL: s.opts.InputURL(spec.TaskID, spec.ID, in, sc.Index),
			Language: sc.Language, Label: sc.Label, Format: sc.Format,
		})
	}
	sess, err := s.hls.Create(ctx, hls.Spec{
		ID: spec.ID, TaskID: spec.TaskID, FileIndex: fi, StartSec: spec.StartSec,
		InputURL: s.opts.InputURL(spec.TaskID, spec.ID, in, fi),
		Sidecars: inputs, Tracks: spec.Tracks, Key: spec.Key,
	})
	if err != nil {
		s.forgetSession(spec.ID)
		return nil, err
	}
	if sess.ID() != spec.ID {
		// An open session with the same key: the new grant is not needed.
		s.forgetSession(spec.ID)
		return sess, nil
	}
	s.mu.Lock()
	_, still := s.sessions[spec.ID]
	s.mu.Unlock()
	if !still {
		// The task was removed or revoked while the session started.
		_ = sess.Close()
		return nil, fmt.Errorf("task %q: %w", spec.TaskID, ErrNotFound)
	}
	if fi == t.SelectedFile() {
		s.mu.Lock()
		if !s.closed { // wg.Go must not race Close's Wait
			s.wg.Go(func() { s.hintBitrate(t, sess, fi) })
		}
		s.mu.Unlock()
	}
	return sess, nil
}

// SessionClosed ends the internal grant of a session that closed. The HLS manager calls it
// (its OnClose hook) for every session, whoever closed it.
func (s *Service) SessionClosed(sessionID string) { s.forgetSession(sessionID) }

func (s *Service) forgetSession(sessionID string) {
	s.mu.Lock()
	ss, ok := s.sessions[sessionID]
	if ok {
		delete(s.sessions, sessionID)
	}
	s.mu.Unlock()
	if ok {
		s.tokens.EndSession(ss.taskID, sessionID)
	}
}

// dummyBound is compared against for an unknown session, so a failed check does the same
// work.
var dummyBound = token.Hash("torrentclaw-no-such-session")

// SessionBound reports whether presented is the token HLS session sessionID was created with
// (or the session is bound to no particular token). The media listener asks it after the
// token table has verified presented for the session's task, so a session's URLs die with
// the grant it was created with. It does the same work (one hash, one constant-time compare)
// whether or not the session exists.
func (s *Service) SessionBound(sessionID, presented string) bool {
	s.mu.Lock()
	ss, known := s.sessions[sessionID]
	s.mu.Unlock()
	bound, hasBound := dummyBound, true
	if known {
		bound, hasBound = ss.bound, ss.hasBound
	}
	h := token.Hash(presented)
	same := subtle.ConstantTimeCompare(h[:], bound[:]) == 1
	return known && (same || !hasBound)
}

// StartSessionWhenReady starts an HLS session in the background, as soon as the task has
// its metainfo, and returns the session's ID at once (minted here when spec.ID is empty).
// The wait ends when the task goes away or the service closes; a failure is logged, and the
// session's URLs answer 404.
func (s *Service) StartSessionWhenReady(spec SessionSpec) (string, error) {
	if s.hls == nil || s.hlsErr != nil {
		if s.hlsErr != nil {
			return "", s.hlsErr
		}
		return "", ErrNoFFmpeg
	}
	if spec.ID == "" {
		spec.ID = uuid.NewString()
	}
	if !ids.ValidSessionID(spec.ID) {
		return "", fmt.Errorf("start hls session: %w", ErrInvalidID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", ErrClosed
	}
	if _, ok := s.entries[spec.TaskID]; !ok {
		return "", fmt.Errorf("task %q: %w", spec.TaskID, ErrNotFound)
	}
	if len(s.pending) >= maxPending {
		return "", ErrTooManySessions
	}
	if _, dup := s.pending[spec.ID]; dup {
		return "", fmt.Errorf("start hls session %s: %w", spec.ID, ErrSessionExists)
	}
	done := make(chan struct{})
	s.pending[spec.ID] = done
	s.wg.Go(func() {
		defer func() {
			s.mu.Lock()
			delete(s.pending, spec.ID)
			s.mu.Unlock()
			close(done)
		}()
		if _, err := s.StartSession(s.base, spec); err != nil && s.base.Err() == nil {
			s.log.Warn("hls session not started", "session", spec.ID, "task", spec.TaskID, "err", err)
		}
	})
	return spec.ID, nil
}

// maxPending bounds the sessions waiting for their task's metainfo.
const maxPending = 64

// Session returns the open HLS session id. When the session was promised by
// [Service.StartSessionWhenReady] and is not started yet, it waits (bounded by ctx) until
// the start ends, so a URL handed out before the metainfo arrived works once it does.
func (s *Service) Session(ctx context.Context, id string) (*hls.Session, error) {
	if s.hls == nil {
		return nil, ErrSessionNotFound
	}
	s.mu.Lock()
	done := s.pending[id]
	s.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.hls.Get(id)
}

// hintBitrate tells the engine the file's bitrate once the HLS probe knows its duration, so
// stream readers size their readahead to the playback rate instead of a fixed default. The
// wait ends when the session is ready or closed, or the service closes.
func (s *Service) hintBitrate(t *engine.Task, sess *hls.Session, fileIndex int) {
	if err := sess.WaitReady(s.base); err != nil {
		return
	}
	dur := sess.Info().Duration
	for _, f := range t.Files() {
		if f.Index == fileIndex && dur > 0 {
			t.SetBitrate(int64(float64(f.Length*8) / dur))
		}
	}
}

// sidecarsOf returns the subtitle files of the torrent that belong to file fi, indexed by
// file index (see hls.FindSidecars).
func sidecarsOf(files []engine.File, fi int) []hls.Sidecar {
	paths := make([]string, len(files))
	video := ""
	for i, f := range files {
		paths[i] = f.Path
		if f.Index == fi {
			video = f.Path
		}
	}
	found := hls.FindSidecars(video, paths)
	for i := range found {
		found[i].Index = files[found[i].Index].Index
	}
	return found
}

func sidecarIndexes(scs []hls.Sidecar) []int {
	out := make([]int, 0, len(scs))
	for _, sc := range scs {
		out = append(out, sc.Index)
	}
	return out
}

// WatchSession returns the HLS session of the /watch page for a task's file, bound to the
// token the page was opened with: one per (task, file, token), reused while open, so
// reloading the page adds no session.
func (s *Service) WatchSession(ctx context.Context, taskID string, fileIndex int, tok token.Token) (*hls.Session, error) {
	sum := sha256.Sum256([]byte(tok.Reveal()))
	key := "watch/" + taskID + "/" + strconv.Itoa(fileIndex) + "/" + hex.EncodeToString(sum[:16])
	return s.StartSession(ctx, SessionSpec{TaskID: taskID, FileIndex: fileIndex, Token: tok, Key: key})
}
