package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/hls"
	"github.com/torrentclaw/cli/internal/token"
)

// This file implements control.Backend: what the local CLI may ask of the
// daemon over the control socket.

// Status reports the daemon, its addresses and every task, without tokens.
func (d *Daemon) Status(ctx context.Context) (control.StatusResponse, error) {
	a := d.addresses()
	b := d.baseURLs("http", int(d.mediaAP.Port()))
	resp := control.StatusResponse{
		Version:            d.version,
		PID:                os.Getpid(),
		StartedAt:          d.startedAt,
		RequireStreamToken: d.cfg.Stream.RequireStreamToken,
		Addresses: control.Addresses{
			Listen:      d.mediaLn.Addr().String(),
			MediaPort:   int(d.mediaAP.Port()),
			TLSPort:     d.tlsPort,
			TorrentPort: int(d.eng.ListenAddr().Port()),
		},
		UPnP: "disabled",
		HLS:  "available",
	}
	if a.LAN.IsValid() {
		resp.Addresses.LAN = a.LAN.String()
	}
	if a.Tailscale.IsValid() {
		resp.Addresses.Tailscale = a.Tailscale.String()
	}
	resp.MediaURLs = append(b.all(), d.baseURLs("https", d.tlsPort).all()...)
	if d.hlsError != nil {
		resp.HLS = d.hlsError.Error()
	}
	if d.upnp != nil {
		resp.UPnP = d.upnp.summary()
		if ip := d.upnp.externalIP(); ip.IsValid() {
			resp.Addresses.Public = ip.String()
		}
	}
	if d.cfg.Stream.PublicHost != "" {
		resp.Addresses.Public = d.cfg.Stream.PublicHost
	}
	if d.origin != nil {
		resp.Origin = d.origin.status()
	}
	for _, st := range d.eng.Tasks() {
		resp.Tasks = append(resp.Tasks, d.taskInfo(st, nil))
	}
	return resp, nil
}

func (d *Daemon) taskInfo(st engine.Status, files []engine.File) control.TaskInfo {
	ti := control.TaskInfo{
		ID:              st.ID,
		InfoHash:        st.InfoHash,
		Name:            st.Name,
		State:           string(st.State),
		Progress:        st.Progress,
		DownloadedBytes: st.DownloadedBytes,
		TotalBytes:      st.TotalBytes,
		SpeedBps:        st.SpeedBps,
		UploadSpeedBps:  st.UploadSpeedBps,
		UploadedBytes:   st.UploadedBytes,
		Peers:           st.Peers,
		KnownPeers:      st.KnownPeers,
		BufferedBytes:   st.BufferedBytes,
		BufferedSeconds: st.BufferedSeconds,
		ETASeconds:      max(st.ETASeconds, 0), // 0 when unknown, as TaskInfo documents
		FileName:        st.FileName,
		FileIndex:       st.FileIndex,
		StreamReady:     st.StreamReady,
		Error:           st.Error,
		Notice:          st.Notice,
	}
	if info := d.tokens.Info(st.ID); info.Grants > 0 {
		ti.Token = control.TokenInfo{Set: true, ExpiresAt: info.LastExpiry}
	}
	for _, f := range files {
		ti.Files = append(ti.Files, control.FileInfo{Index: f.Index, Path: f.Path, Length: f.Length, Playable: f.Playable})
	}
	return ti
}

// AddTask adds a standalone task, mints its token and returns its URLs.
func (d *Daemon) AddTask(ctx context.Context, req control.AddRequest) (control.AddResponse, error) {
	t, err := d.addTask(ctx, taskRecord{Source: req.Source, FileIndex: req.FileIndex, Title: req.Title, Stream: true})
	if errors.Is(err, engine.ErrExists) {
		// Streaming what the daemon already has (seeded, or streamed
		// before) reuses that task with a new token; the old one stays
		// valid for the grace period.
		t, err = d.existingTask(req.Source)
	}
	if err != nil {
		return control.AddResponse{}, err
	}
	tok, err := token.Mint()
	if err != nil {
		return control.AddResponse{}, err
	}
	if err := d.setToken(t.ID(), tok, time.Time{}); err != nil {
		return control.AddResponse{}, err
	}
	info := d.tokens.Info(t.ID())
	base := d.mediaBase()
	resp := control.AddResponse{
		TaskID:      t.ID(),
		Token:       tok,
		StreamURL:   streamURL(base, t.ID(), tok, req.FileIndex),
		PlaylistURL: playlistURL(base, t.ID(), tok),
		ExpiresAt:   info.LastExpiry,
	}
	if req.HLS {
		s, err := d.createHLSWith(ctx, "", t.ID(), req.FileIndex, 0, hlsOptions{tracks: hls.TrackOptions{
			AudioLanguage: req.AudioLanguage, SubtitleLanguage: req.SubtitleLanguage, BurnImageSubtitles: req.BurnSubtitles,
		}})
		if err != nil {
			return resp, fmt.Errorf("start hls: %w", err)
		}
		resp.HLSURL = hlsURL(base, s.ID(), tok)
	}
	return resp, nil
}

// Task reports one task with its files.
func (d *Daemon) Task(ctx context.Context, id string) (control.TaskInfo, error) {
	t, err := d.eng.Task(id)
	if err != nil {
		return control.TaskInfo{}, err
	}
	return d.taskInfo(t.Status(), t.Files()), nil
}

// RemoveTask removes a task, optionally deleting its files.
func (d *Daemon) RemoveTask(ctx context.Context, id string, deleteFiles bool) error {
	return d.removeTask(id, deleteFiles)
}

// IssueToken mints a new token for an existing task.
func (d *Daemon) IssueToken(ctx context.Context, id string) (control.TokenResponse, error) {
	if _, err := d.eng.Task(id); err != nil {
		return control.TokenResponse{}, err
	}
	tok, err := token.Mint()
	if err != nil {
		return control.TokenResponse{}, err
	}
	if err := d.setToken(id, tok, time.Time{}); err != nil {
		return control.TokenResponse{}, err
	}
	info := d.tokens.Info(id)
	base := d.mediaBase()
	return control.TokenResponse{
		TaskID:      id,
		Token:       tok,
		ExpiresAt:   info.LastExpiry,
		StreamURL:   streamURL(base, id, tok, -1),
		PlaylistURL: playlistURL(base, id, tok),
	}, nil
}

// RevokeToken makes every URL of the task stop working at once, with no
// grace period. The task keeps a fresh token that nobody knows, so it stays
// locked even when token-less tasks are allowed; `token issue` opens it again.
func (d *Daemon) RevokeToken(ctx context.Context, id string) error {
	if _, err := d.eng.Task(id); err != nil {
		return err
	}
	lock, err := token.Mint()
	if err != nil {
		return err
	}
	d.tokens.Revoke(id)
	d.hlsm.CloseTask(id)
	return d.setToken(id, lock, time.Time{})
}

// CreateHLS starts an HLS session. The returned URL carries a token only
// the caller knows: the control socket cannot return the task's current
// token (the daemon keeps only its hash), so it mints a fresh one, which
// replaces the old one after the grace period.
func (d *Daemon) CreateHLS(ctx context.Context, id string, fileIndex int) (control.HLSResponse, error) {
	s, err := d.createHLS(ctx, "", id, fileIndex, 0)
	if err != nil {
		return control.HLSResponse{}, err
	}
	tok, err := token.Mint()
	if err != nil {
		return control.HLSResponse{}, err
	}
	if err := d.setToken(id, tok, time.Time{}); err != nil {
		return control.HLSResponse{}, err
	}
	return control.HLSResponse{SessionID: s.ID(), HLSURL: hlsURL(d.mediaBase(), s.ID(), tok)}, nil
}

// Seed makes a torrent of path and seeds it from where it is.
func (d *Daemon) Seed(ctx context.Context, path string) (control.SeedResponse, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return control.SeedResponse{}, err
	}
	si, err := d.seed(ctx, abs)
	if err != nil {
		return control.SeedResponse{}, err
	}
	return control.SeedResponse{Magnet: si.Magnet, InfoHash: si.InfoHash, Peer: si.Peer.String()}, nil
}

// Doctor checks what the running daemon can see about itself.
func (d *Daemon) Doctor(ctx context.Context) ([]control.Check, error) {
	var checks []control.Check
	add := func(name string, level control.Level, detail string) {
		checks = append(checks, control.Check{Name: name, OK: level != control.LevelFail, Level: level, Detail: detail})
	}
	b := d.baseURLs("http", int(d.mediaAP.Port()))
	detail := "listening on " + d.mediaLn.Addr().String() + "; reachable at " + b.LAN
	if b.TS != "" {
		detail += ", " + b.TS + " (tailscale)"
	}
	if b.Pub != "" {
		detail += ", " + b.Pub + " (public)"
	}
	add("media listener", control.LevelOK, detail)
	for _, r := range d.eng.Recoveries() { // what the engine repaired at start (issue 9)
		add("recovery", control.LevelWarn, r.What+strings.TrimSuffix(" (moved to "+r.MovedTo+")", " (moved to )"))
	}
	if d.cfg.Stream.RequireStreamToken {
		add("stream tokens", control.LevelOK, "required for every task")
	} else {
		add("stream tokens", control.LevelWarn, "tasks without a token are served token-less; set stream.require_stream_token = true")
	}
	if d.hlsError != nil {
		add("hls", control.LevelWarn, d.hlsError.Error())
	} else {
		add("hls", control.LevelOK, "ffmpeg and ffprobe found")
	}
	if d.tlsPort != 0 {
		notAfter, names, err := d.media.CertInfo()
		switch {
		case err != nil:
			add("tls certificate", control.LevelFail, err.Error())
		case time.Until(notAfter) < 0:
			add("tls certificate", control.LevelFail, fmt.Sprintf("expired %s (%v)", notAfter.Format(time.RFC3339), names))
		case time.Until(notAfter) < 14*24*time.Hour:
			add("tls certificate", control.LevelWarn, fmt.Sprintf("expires %s (%v)", notAfter.Format(time.RFC3339), names))
		default:
			add("tls certificate", control.LevelOK, fmt.Sprintf("valid until %s for %v on port %d", notAfter.Format(time.RFC3339), names, d.tlsPort))
		}
	}
	if d.upnp != nil {
		lvl := control.LevelOK
		if !d.upnp.ok() {
			lvl = control.LevelWarn
		}
		add("upnp", lvl, d.upnp.summary())
	} else {
		add("upnp", control.LevelOK, "disabled (opt-in: upnp.enabled or --upnp)")
	}
	if d.origin != nil {
		st := d.origin.status()
		lvl := control.LevelOK
		detail := st.URL + ": " + st.State
		if st.LastError != "" {
			lvl = control.LevelWarn
			detail += " (" + st.LastError + ")"
			if errors.Is(d.origin.lastErr(), errRevoked) {
				lvl = control.LevelFail
			}
		}
		add("origin", lvl, detail)
	} else {
		add("origin", control.LevelOK, "not configured (standalone)")
	}
	return checks, nil
}

// existingTask finds the task that already holds the torrent named by source.
func (d *Daemon) existingTask(source string) (*engine.Task, error) {
	src, err := engine.ParseSource(source)
	if err != nil {
		return nil, err
	}
	for _, st := range d.eng.Tasks() {
		if (src.InfoHash != "" && st.InfoHash == src.InfoHash) || (src.InfoHashV2 != "" && st.InfoHash == src.InfoHashV2) {
			return d.eng.Task(st.ID)
		}
	}
	return nil, fmt.Errorf("add task: %w", engine.ErrExists)
}
