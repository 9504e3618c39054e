package tasks

import (
	"fmt"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/token"
)

// Info is a snapshot of one task. It never holds a token.
type Info struct {
	ID       string
	InfoHash string
	Name     string
	Title    string
	State    State
	Stream   bool
	// FromOrigin marks a task the origin asked for.
	FromOrigin bool
	// Seeded marks a task made by Seed (served from where its files are).
	Seeded bool

	Progress        float64 // 0-100
	DownloadedBytes int64
	TotalBytes      int64
	SpeedBps        int64
	// UploadSpeedBps, UploadedBytes, Peers, KnownPeers, BufferedBytes and
	// BufferedSeconds are the engine's (see engine.Status).
	UploadSpeedBps  int64
	UploadedBytes   int64
	Peers           int
	KnownPeers      int
	BufferedBytes   int64
	BufferedSeconds float64
	ETASeconds      int64 // 0 when unknown or complete
	BytesFromPeers  int64
	FileName        string
	FileIndex       int // -1 before the metainfo
	StreamReady     bool

	// Error says why the task failed; Err is the error itself (for fixed codes).
	Error  string
	Err    error
	Notice string

	// Grants describes the task's grants (counts and expiry only).
	Grants token.Info
	// Sessions counts the task's open HLS sessions.
	Sessions int
	AddedAt  time.Time

	// Files is set by [Service.Get] once the metainfo is known.
	Files []engine.File
}

// List returns every task, in arrival order.
func (s *Service) List() []Info {
	s.mu.Lock()
	es := make([]*entry, len(s.order))
	copy(es, s.order)
	s.mu.Unlock()
	out := make([]Info, 0, len(es))
	for _, e := range es {
		out = append(out, s.infoOf(e, false))
	}
	return out
}

// Get returns one task with its files.
func (s *Service) Get(id string) (Info, error) {
	s.mu.Lock()
	e, ok := s.entries[id]
	s.mu.Unlock()
	if !ok {
		return Info{}, fmt.Errorf("task %q: %w", id, ErrNotFound)
	}
	return s.infoOf(e, true), nil
}

// infoOf builds e's snapshot; the engine is asked without s.mu held.
func (s *Service) infoOf(e *entry, files bool) Info {
	s.mu.Lock()
	rec, t := e.rec, e.task
	queued, adding, addErr := e.queued, e.adding, e.addErr
	n := 0
	for _, ss := range s.sessions {
		if ss.taskID == rec.ID {
			n++
		}
	}
	s.mu.Unlock()

	in := Info{
		ID: rec.ID, InfoHash: rec.InfoHash, Title: rec.Title, Name: rec.Title, Stream: rec.Stream,
		FromOrigin: rec.FromOrig, Seeded: rec.SeedPath != "", FileIndex: -1, AddedAt: rec.AddedAt,
		Grants: s.tokens.Info(rec.ID), Sessions: n,
	}
	if t != nil {
		st := t.Status()
		in.InfoHash = st.InfoHash
		if st.Name != "" {
			in.Name = st.Name
		}
		in.State = State(st.State)
		in.Progress, in.DownloadedBytes, in.TotalBytes = st.Progress, st.DownloadedBytes, st.TotalBytes
		in.SpeedBps, in.ETASeconds, in.BytesFromPeers = st.SpeedBps, max(st.ETASeconds, 0), st.BytesFromPeers
		in.UploadSpeedBps, in.UploadedBytes, in.Peers, in.KnownPeers = st.UploadSpeedBps, st.UploadedBytes, st.Peers, st.KnownPeers
		in.BufferedBytes, in.BufferedSeconds = st.BufferedBytes, st.BufferedSeconds
		in.FileName, in.FileIndex, in.StreamReady = st.FileName, st.FileIndex, st.StreamReady
		in.Error, in.Notice = st.Error, st.Notice
		if files {
			in.Files = t.Files()
		}
	}
	switch {
	case addErr != nil:
		in.State, in.Err, in.Error = StateFailed, addErr, addErr.Error()
	case rec.Paused:
		in.State = StatePaused
	case queued:
		in.State = StateQueued
	case adding || t == nil:
		in.State = StateResolving
	}
	return in
}
