package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/hls"
	"github.com/torrentclaw/cli/internal/origin"
	"github.com/torrentclaw/cli/internal/tasks"
	"github.com/torrentclaw/cli/internal/token"
)

// errRevoked aliases the origin's sentinel for doctor.
var errRevoked = origin.ErrRevoked

// reportInterval is how often task progress is pushed as status updates.
const reportInterval = 2 * time.Second

// maxSessionStarts bounds the HLS session starts in flight for the origin
// (each may wait for a torrent's metainfo), so a flood of streamSessions
// entries cannot pile up goroutines.
const maxSessionStarts = 16

// originLink translates what the origin says into task service calls and
// reports back. Nothing it does on the loop's goroutine blocks on the
// network: adds and session starts run in the background. It implements
// origin.Agent.
type originLink struct {
	d      *Daemon
	client *origin.Client
	loop   *origin.Loop
	url    string

	// starts is a semaphore of HLS session starts in flight.
	starts chan struct{}
	// wg tracks the session-start goroutines; run waits for them.
	wg sync.WaitGroup

	// mu guards runErr.
	mu     sync.Mutex
	runErr error
}

var _ origin.Agent = (*originLink)(nil)

func newOriginLink(d *Daemon) (*originLink, error) {
	cfg := d.cfg.Origin
	agentID := cfg.AgentID
	if agentID == "" {
		agentID = d.svc.AgentID()
	}
	if agentID == "" {
		agentID = uuid.NewString()
	}
	d.svc.SetAgentID(agentID)
	name := cfg.Name
	if name == "" {
		name, _ = os.Hostname()
	}
	client, err := origin.New(origin.Options{
		BaseURL: cfg.APIURL,
		APIKey:  cfg.APIKey,
		AgentID: agentID,
		Name:    name,
		Version: d.version,
		Logger:  d.log,
	})
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	l := &originLink{d: d, client: client, url: originOf(cfg.APIURL), starts: make(chan struct{}, maxSessionStarts)}
	iv := d.opts.Intervals
	l.loop, err = origin.NewLoop(origin.LoopOptions{
		Client:            client,
		Agent:             l,
		Logger:            d.log,
		SyncInterval:      iv.Sync,
		WatchingInterval:  iv.Watching,
		BackoffBase:       iv.BackoffBase,
		BackoffMax:        iv.BackoffMax,
		EventsIdleTimeout: iv.SSELiveness,
	})
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	return l, nil
}

// run drives the origin loop and the progress reporter. A revoked key stops
// the loop with one error line; local streaming goes on, so run returns nil.
func (l *originLink) run(ctx context.Context) error {
	if err := l.d.svc.Save(); err != nil { // persist the agent ID before the first register
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { l.report(rctx) })
	err := l.loop.Run(ctx)
	cancel()
	wg.Wait()
	l.wg.Wait()
	l.mu.Lock()
	l.runErr = err
	l.mu.Unlock()
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return nil
	case errors.Is(err, origin.ErrRevoked):
		l.d.log.Error("origin rejected the api key; sync stopped, local streaming continues (check origin.api_key or TORRENTCLAW_API_KEY)")
		return nil
	default:
		l.d.log.Error("origin sync stopped", "err", err)
		return nil
	}
}

// report pushes a status update for every task whose state changed.
func (l *originLink) report(ctx context.Context) {
	t := time.NewTicker(reportInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range l.taskStates() {
			key, err := json.Marshal(s)
			if err == nil && l.d.svc.SwapReported(s.TaskID, string(key)) {
				l.loop.Report(s)
			}
		}
	}
}

func (l *originLink) lastErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.runErr
}

func (l *originLink) status() control.OriginStatus {
	st := l.loop.Stats()
	out := control.OriginStatus{Configured: true, URL: l.url, LastSync: st.LastSync, LastError: st.LastError}
	switch {
	case errors.Is(l.lastErr(), origin.ErrRevoked):
		out.State = "stopped: api key rejected"
	case st.LastError != "":
		out.State = "retrying"
	case st.Registered:
		out.State = "connected"
		if st.Downlink != "" {
			out.State += " (" + st.Downlink + ")"
		}
	default:
		out.State = "connecting"
	}
	return out
}

// Snapshot reports the daemon's facts; addresses are refreshed first.
func (l *originLink) Snapshot(ctx context.Context) origin.Snapshot {
	d := l.d
	d.refreshAddresses()
	snap := origin.Snapshot{
		StreamPort:      int(d.mediaAP.Port()),
		HTTPSStreamPort: d.tlsPort,
		Addresses:       d.addresses(),
		DownloadDir:     d.cfg.Torrent.DownloadDir,
		Tasks:           l.taskStates(),
		FreeSlots:       d.svc.FreeSlots(),
	}
	snap.DiskFreeBytes, snap.DiskTotalBytes = diskSpace(d.cfg.Torrent.DownloadDir)
	return snap
}

// taskStates converts the service's tasks to wire form, with stream URLs
// carrying the origin's token (which the origin knows).
func (l *originLink) taskStates() []origin.TaskState {
	d := l.d
	var out []origin.TaskState
	b := d.baseURLs("http", int(d.mediaAP.Port()))
	bs := d.baseURLs("https", d.tlsPort) // empty when TLS is off
	for _, in := range d.svc.List() {
		ts := origin.TaskState{
			TaskID:          in.ID,
			Status:          string(in.State),
			Progress:        in.Progress,
			DownloadedBytes: in.DownloadedBytes,
			TotalBytes:      in.TotalBytes,
			SpeedBps:        in.SpeedBps,
			ETA:             in.ETASeconds, // 0 when unknown, as the wire says
			FileName:        in.FileName,
			StreamReady:     in.StreamReady,
		}
		if in.State == tasks.StateFailed {
			// A fixed code and text, never the error's own words (which may
			// name a local path).
			err := in.Err
			if err == nil && strings.Contains(in.Error, engine.ErrDiskFull.Error()) {
				err = engine.ErrDiskFull // the engine stopped the task for space
			}
			ts.ErrorMessage = origin.FailedState(in.ID, err).ErrorMessage
		}
		if in.FileIndex >= 0 {
			tok := d.svc.OriginToken(in.ID)
			ts.StreamURL = origin.StreamURLs{
				LAN:      streamURL(b.LAN, in.ID, tok, -1),
				TS:       streamURL(b.TS, in.ID, tok, -1),
				Pub:      streamURL(b.Pub, in.ID, tok, -1),
				LANHTTPS: streamURL(bs.LAN, in.ID, tok, -1),
				TSHTTPS:  streamURL(bs.TS, in.ID, tok, -1),
				PubHTTPS: streamURL(bs.Pub, in.ID, tok, -1),
			}.Encode()
		}
		out = append(out, ts)
	}
	return out
}

// grant installs a token from any carrier; the latest wins. Tokens for tasks
// the daemon does not hold are refused and kept nowhere.
func (l *originLink) grant(taskID, tok string, expiresAt time.Time) {
	if tok == "" {
		return
	}
	if err := l.d.svc.GrantOrigin(taskID, token.Token(tok), expiresAt); err != nil {
		l.d.log.Warn("origin token refused", "task", taskID, "err", err)
	}
}

// Apply handles one sync reply. Each entry is independent: a failure is
// logged and the next entry is applied. It returns at once: adds and HLS
// session starts run in the background.
func (l *originLink) Apply(ctx context.Context, r origin.SyncReply) {
	d := l.d
	changed := false
	for _, nt := range r.NewTasks {
		src := nt.Magnet
		if src == "" {
			src = nt.TorrentURL
		}
		if src == "" {
			src = nt.InfoHash
		}
		fi := -1
		if nt.FileIndex != nil {
			fi = *nt.FileIndex
		}
		_, existing, err := d.svc.Add(ctx, tasks.AddSpec{
			ID: nt.ID, Source: src, FileIndex: fi, Title: nt.Title, Stream: nt.Mode == "stream", FromOrigin: true,
		})
		if err != nil {
			d.log.Warn("origin task refused", "task", nt.ID, "err", err)
			// Reported under the ID the origin sent (an invalid one
			// included), with a fixed code, never the error text; nothing
			// is kept.
			l.loop.Report(origin.FailedState(nt.ID, err))
			continue
		}
		if !existing {
			d.log.Info("task added", "task", nt.ID, "mode", nt.Mode)
		}
		l.grant(nt.ID, nt.StreamToken, nt.StreamTokenExpiresAt)
		changed = true
	}
	for _, c := range r.Controls {
		if err := l.control(ctx, c); err != nil {
			d.log.Warn("origin control not applied", "action", c.Action, "task", c.TaskID, "err", err)
			continue
		}
		changed = true
	}
	for _, sr := range r.StreamRequests {
		l.grant(sr.TaskID, sr.StreamToken, sr.StreamTokenExpiresAt)
		changed = true
	}
	for _, ss := range r.StreamSessions {
		l.grant(ss.TaskID, ss.StreamToken, ss.StreamTokenExpiresAt)
		l.startSession(ss)
	}
	if changed {
		l.loop.SyncNow()
	}
}

func (l *originLink) control(ctx context.Context, c origin.Control) error {
	svc := l.d.svc
	switch c.Action {
	case "pause":
		return svc.Pause(c.TaskID)
	case "resume":
		return svc.Resume(c.TaskID)
	case "cancel":
		return svc.Remove(ctx, c.TaskID, c.DeleteFiles)
	case "stream":
		if c.StreamToken == "" {
			return nil
		}
		return svc.GrantOrigin(c.TaskID, token.Token(c.StreamToken), c.StreamTokenExpiresAt)
	case "stop-stream":
		// Every grant ends at once and the task is locked: never open.
		return svc.Revoke(c.TaskID)
	default:
		return fmt.Errorf("unknown action %q", c.Action)
	}
}

// startSession creates an HLS session bound to the session's token (or the
// task's origin token) and reports session-ready or session-error when the
// probe is done, without holding up the loop.
func (l *originLink) startSession(ss origin.StreamSession) {
	d := l.d
	select {
	case l.starts <- struct{}{}:
	default:
		d.log.Warn("hls session refused: too many session starts in flight", "session", ss.SessionID)
		return
	}
	fi := -1
	if ss.FileIndex != nil {
		fi = *ss.FileIndex
	}
	start := 0.0
	if ss.StartSec != nil {
		start = *ss.StartSec
	}
	l.wg.Go(func() {
		defer func() { <-l.starts }()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		s, err := d.svc.StartSession(ctx, tasks.SessionSpec{
			ID: ss.SessionID, TaskID: ss.TaskID, FileIndex: fi, StartSec: start, Token: token.Token(ss.StreamToken),
			Tracks: hls.TrackOptions{AudioLanguage: ss.AudioLanguage, SubtitleLanguage: ss.SubtitleLanguage},
		})
		if err == nil {
			err = s.WaitReady(ctx)
		}
		if err != nil {
			code := "hls_failed"
			switch {
			case errors.Is(err, tasks.ErrNoFFmpeg):
				code = "ffmpeg_missing"
			case errors.Is(err, tasks.ErrTooManySessions):
				code = "too_many_sessions"
			case errors.Is(err, tasks.ErrNotFound):
				code = "unknown_task"
			case errors.Is(err, tasks.ErrBadFile):
				code = "bad_file"
			}
			d.log.Warn("hls session failed", "session", ss.SessionID, "task", ss.TaskID, "err", err)
			if rerr := l.loop.SessionError(ctx, ss.SessionID, code, code); rerr != nil {
				d.log.Warn("session-error not delivered", "session", ss.SessionID, "err", rerr)
			}
			return
		}
		if rerr := l.loop.SessionReady(ctx, ss.SessionID); rerr != nil {
			d.log.Warn("session-ready not delivered", "session", ss.SessionID, "err", rerr)
		}
	})
}

// ApplyStatusResults handles the origin's answers to a status batch.
func (l *originLink) ApplyStatusResults(ctx context.Context, results []origin.StatusResult) {
	svc := l.d.svc
	for _, r := range results {
		switch {
		case r.Cancelled:
			if err := svc.Remove(ctx, r.TaskID, r.DeleteFiles); err != nil {
				l.d.log.Warn("cancel not applied", "task", r.TaskID, "err", err)
			}
			continue
		case r.Paused:
			if err := svc.Pause(r.TaskID); err != nil {
				l.d.log.Warn("pause not applied", "task", r.TaskID, "err", err)
			}
		}
		if r.StreamRequested || r.StreamToken != "" {
			l.grant(r.TaskID, r.StreamToken, r.StreamTokenExpiresAt)
		}
	}
}
