package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/hls"
	"github.com/torrentclaw/cli/internal/origin"
	"github.com/torrentclaw/cli/internal/token"
)

// errRevoked aliases the origin's sentinel for doctor.
var errRevoked = origin.ErrRevoked

// reportInterval is how often task progress is pushed as status updates.
const reportInterval = 2 * time.Second

// originLink applies what the origin says to the daemon and reports back. It
// implements origin.Agent.
type originLink struct {
	d      *Daemon
	client *origin.Client
	loop   *origin.Loop
	url    string

	// mu guards plain, last and runErr.
	mu sync.Mutex
	// plain holds the plain tokens the origin sent, in memory only, so the
	// stream URLs reported back can carry them. After a restart they are
	// unknown until the origin sends them again; the URLs then omit t=.
	plain  map[string]token.Token
	last   map[string]origin.TaskState
	runErr error
}

var _ origin.Agent = (*originLink)(nil)

func newOriginLink(d *Daemon, savedAgentID string) (*originLink, error) {
	cfg := d.cfg.Origin
	agentID := cfg.AgentID
	if agentID == "" {
		agentID = savedAgentID
	}
	if agentID == "" {
		agentID = uuid.NewString()
	}
	d.mu.Lock()
	d.agentID = agentID
	d.mu.Unlock()
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
	l := &originLink{d: d, client: client, url: originOf(cfg.APIURL), plain: map[string]token.Token{}, last: map[string]origin.TaskState{}}
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
	if err := l.d.save(); err != nil { // persist the agent ID before the first register
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { l.report(rctx) })
	err := l.loop.Run(ctx)
	cancel()
	wg.Wait()
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
			l.mu.Lock()
			prev, seen := l.last[s.TaskID]
			l.last[s.TaskID] = s
			l.mu.Unlock()
			if !seen || prev != s {
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
	}
	snap.DiskFreeBytes, snap.DiskTotalBytes = diskSpace(d.cfg.Torrent.DownloadDir)
	snap.FreeSlots = d.eng.FreeSlots()
	return snap
}

// taskStates converts the engine's tasks to wire form, with stream URLs.
func (l *originLink) taskStates() []origin.TaskState {
	d := l.d
	var out []origin.TaskState
	b := d.baseURLs("http", int(d.mediaAP.Port()))
	bs := d.baseURLs("https", d.tlsPort) // empty when TLS is off
	for _, st := range d.eng.Tasks() {
		ts := origin.TaskState{
			TaskID:          st.ID,
			Status:          wireStatus(st.State),
			Progress:        st.Progress,
			DownloadedBytes: st.DownloadedBytes,
			TotalBytes:      st.TotalBytes,
			SpeedBps:        st.SpeedBps,
			ETA:             max(st.ETASeconds, 0), // the wire says 0 when unknown; the engine, -1
			FileName:        st.FileName,
			StreamReady:     st.StreamReady,
			ErrorMessage:    st.Error,
		}
		if st.FileIndex >= 0 {
			l.mu.Lock()
			tok := l.plain[st.ID]
			l.mu.Unlock()
			ts.StreamURL = origin.StreamURLs{
				LAN:      streamURL(b.LAN, st.ID, tok, -1),
				TS:       streamURL(b.TS, st.ID, tok, -1),
				Pub:      streamURL(b.Pub, st.ID, tok, -1),
				LANHTTPS: streamURL(bs.LAN, st.ID, tok, -1),
				TSHTTPS:  streamURL(bs.TS, st.ID, tok, -1),
				PubHTTPS: streamURL(bs.Pub, st.ID, tok, -1),
			}.Encode()
		}
		out = append(out, ts)
	}
	return out
}

func wireStatus(s engine.State) string {
	switch s {
	case engine.StatePaused:
		return "downloading"
	default:
		return string(s)
	}
}

// acceptToken installs a token from any carrier; the latest wins.
func (l *originLink) acceptToken(taskID, tok string, expiresAt time.Time) {
	if tok == "" {
		return
	}
	if err := l.d.setToken(taskID, token.Token(tok), expiresAt); err != nil {
		l.d.log.Warn("origin token not accepted", "task", taskID, "err", err)
		return
	}
	l.mu.Lock()
	l.plain[taskID] = token.Token(tok)
	l.mu.Unlock()
}

func (l *originLink) dropToken(taskID string) {
	l.mu.Lock()
	delete(l.plain, taskID)
	l.mu.Unlock()
	if err := l.d.clearToken(taskID); err != nil {
		l.d.log.Warn("token not cleared", "task", taskID, "err", err)
	}
}

// Apply handles one sync reply. Each entry is independent: a failure is
// logged and the next entry is applied.
func (l *originLink) Apply(ctx context.Context, r origin.SyncReply) {
	d := l.d
	changed := false
	for _, nt := range r.NewTasks {
		if _, err := d.eng.Task(nt.ID); err == nil {
			l.acceptToken(nt.ID, nt.StreamToken, nt.StreamTokenExpiresAt)
			continue
		}
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
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := d.addTask(actx, taskRecord{ID: nt.ID, Source: src, FileIndex: fi, Title: nt.Title, Stream: nt.Mode == "stream", FromOrig: true})
		cancel()
		if err != nil {
			d.log.Warn("origin task not added", "task", nt.ID, "err", err)
			l.loop.Report(origin.FailedState(nt.ID, err)) // a fixed code, never the error text
			continue
		}
		d.log.Info("task added", "task", nt.ID, "mode", nt.Mode)
		l.acceptToken(nt.ID, nt.StreamToken, nt.StreamTokenExpiresAt)
		changed = true
	}
	for _, c := range r.Controls {
		if err := l.control(c); err != nil {
			d.log.Warn("origin control not applied", "action", c.Action, "task", c.TaskID, "err", err)
			continue
		}
		changed = true
	}
	for _, sr := range r.StreamRequests {
		if _, err := d.eng.Task(sr.TaskID); err != nil {
			d.log.Warn("stream request for unknown task", "task", sr.TaskID)
			continue
		}
		l.acceptToken(sr.TaskID, sr.StreamToken, sr.StreamTokenExpiresAt)
		changed = true
	}
	for _, ss := range r.StreamSessions {
		l.acceptToken(ss.TaskID, ss.StreamToken, ss.StreamTokenExpiresAt)
		l.startSession(ctx, ss)
	}
	if err := d.save(); err != nil {
		d.log.Warn("state not saved", "err", err)
	}
	if changed {
		l.loop.SyncNow()
	}
}

func (l *originLink) control(c origin.Control) error {
	d := l.d
	switch c.Action {
	case "pause":
		return d.setPaused(c.TaskID, true)
	case "resume":
		return d.setPaused(c.TaskID, false)
	case "cancel":
		l.mu.Lock()
		delete(l.plain, c.TaskID)
		delete(l.last, c.TaskID)
		l.mu.Unlock()
		return d.removeTask(c.TaskID, c.DeleteFiles)
	case "stream":
		if _, err := d.eng.Task(c.TaskID); err != nil {
			return err
		}
		l.acceptToken(c.TaskID, c.StreamToken, c.StreamTokenExpiresAt)
		return nil
	case "stop-stream":
		if _, err := d.eng.Task(c.TaskID); err != nil {
			return err
		}
		l.dropToken(c.TaskID)
		return nil
	default:
		return fmt.Errorf("unknown action %q", c.Action)
	}
}

// startSession creates an HLS session and reports session-ready or
// session-error when the probe is done, without holding up the loop.
func (l *originLink) startSession(ctx context.Context, ss origin.StreamSession) {
	d := l.d
	fi := -1
	if ss.FileIndex != nil {
		fi = *ss.FileIndex
	}
	start := 0.0
	if ss.StartSec != nil {
		start = *ss.StartSec
	}
	d.bg.Go(func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		s, err := d.createHLSWith(cctx, ss.SessionID, ss.TaskID, fi, start, hlsOptions{tracks: hls.TrackOptions{
			AudioLanguage: ss.AudioLanguage, SubtitleLanguage: ss.SubtitleLanguage,
		}})
		if err == nil {
			err = s.WaitReady(cctx)
		}
		if err != nil {
			code := "hls_failed"
			switch {
			case errors.Is(err, hls.ErrNoFFmpeg):
				code = "ffmpeg_missing"
			case errors.Is(err, hls.ErrTooManySessions):
				code = "too_many_sessions"
			case errors.Is(err, engine.ErrNotFound):
				code = "unknown_task"
			}
			d.log.Warn("hls session failed", "session", ss.SessionID, "task", ss.TaskID, "err", err)
			if rerr := l.loop.SessionError(cctx, ss.SessionID, code, err.Error()); rerr != nil {
				d.log.Warn("session-error not delivered", "session", ss.SessionID, "err", rerr)
			}
			return
		}
		if rerr := l.loop.SessionReady(cctx, ss.SessionID); rerr != nil {
			d.log.Warn("session-ready not delivered", "session", ss.SessionID, "err", rerr)
		}
	})
}

// ApplyStatusResults handles the origin's answers to a status batch.
func (l *originLink) ApplyStatusResults(ctx context.Context, results []origin.StatusResult) {
	for _, r := range results {
		switch {
		case r.Cancelled:
			if err := l.control(origin.Control{Action: "cancel", TaskID: r.TaskID, DeleteFiles: r.DeleteFiles}); err != nil {
				l.d.log.Warn("cancel not applied", "task", r.TaskID, "err", err)
			}
			continue
		case r.Paused:
			if err := l.d.setPaused(r.TaskID, true); err != nil {
				l.d.log.Warn("pause not applied", "task", r.TaskID, "err", err)
			}
		}
		if r.StreamRequested || r.StreamToken != "" {
			l.acceptToken(r.TaskID, r.StreamToken, r.StreamTokenExpiresAt)
		}
	}
}
