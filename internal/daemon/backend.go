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
	"github.com/torrentclaw/cli/internal/hls"
	"github.com/torrentclaw/cli/internal/tasks"
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
		InProcess:          d.opts.OwnerKey != "",
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
	for _, in := range d.svc.List() {
		ti := taskInfo(in)
		d.withHLS(&ti)
		resp.Tasks = append(resp.Tasks, ti)
	}
	return resp, nil
}

// taskInfo is a task as the control socket shows it: no token, ever.
func taskInfo(in tasks.Info) control.TaskInfo {
	ti := control.TaskInfo{
		ID:              in.ID,
		InfoHash:        in.InfoHash,
		Name:            in.Name,
		State:           string(in.State),
		Progress:        in.Progress,
		DownloadedBytes: in.DownloadedBytes,
		TotalBytes:      in.TotalBytes,
		SpeedBps:        in.SpeedBps,
		UploadSpeedBps:  in.UploadSpeedBps,
		UploadedBytes:   in.UploadedBytes,
		Peers:           in.Peers,
		KnownPeers:      in.KnownPeers,
		BufferedBytes:   in.BufferedBytes,
		BufferedSeconds: in.BufferedSeconds,
		ETASeconds:      in.ETASeconds,
		BytesFromPeers:  in.BytesFromPeers,
		FileName:        in.FileName,
		FileIndex:       in.FileIndex,
		StreamReady:     in.StreamReady,
		Error:           in.Error,
		Notice:          in.Notice,
		FromOrigin:      in.FromOrigin,
		Seeded:          in.Seeded,
		HLSSessions:     in.Sessions,
		AddedAt:         in.AddedAt,
		Token: control.TokenInfo{
			Set:         in.Grants.Grants > 0,
			Grants:      in.Grants.Grants,
			NextExpiry:  in.Grants.NextExpiry,
			ExpiresAt:   in.Grants.LastExpiry,
			Locked:      in.Grants.Locked,
			EverGranted: in.Grants.EverGranted,
		},
	}
	for _, f := range in.Files {
		ti.Files = append(ti.Files, control.FileInfo{Index: f.Index, Path: f.Path, Length: f.Length, Playable: f.Playable})
	}
	return ti
}

// AddTask adds a task for the CLI, or finds the task that already holds the
// source, and adds a CLI grant for it (touching no other grant). With HLS,
// the session is created as soon as the metainfo is known; its URL is in
// the reply at once.
func (d *Daemon) AddTask(ctx context.Context, req control.AddRequest) (control.AddResponse, error) {
	in, existing, err := d.svc.Add(ctx, tasks.AddSpec{
		Source: req.Source, FileIndex: req.FileIndex, Title: req.Title, Stream: true, Wait: true,
	})
	if err != nil {
		return control.AddResponse{}, err
	}
	tok, exp, err := d.svc.GrantCLI(in.ID)
	if err != nil {
		return control.AddResponse{}, err
	}
	base := d.mediaBase()
	resp := control.AddResponse{
		TaskID:      in.ID,
		Existing:    existing,
		State:       string(in.State),
		Token:       tok,
		StreamURL:   streamURL(base, in.ID, tok, req.FileIndex),
		PlaylistURL: playlistURL(base, in.ID, tok),
		ExpiresAt:   exp,
	}
	if req.HLS {
		sid, err := d.svc.StartSessionWhenReady(tasks.SessionSpec{TaskID: in.ID, FileIndex: req.FileIndex, Token: tok,
			Tracks: hls.TrackOptions{AudioLanguage: req.AudioLanguage, SubtitleLanguage: req.SubtitleLanguage, BurnImageSubtitles: req.BurnSubtitles}})
		if err != nil {
			return resp, fmt.Errorf("start hls: %w", err)
		}
		resp.HLSURL = hlsURL(base, sid, tok)
	}
	return resp, nil
}

// Task reports one task with its files.
func (d *Daemon) Task(ctx context.Context, id string) (control.TaskInfo, error) {
	in, err := d.svc.Get(id)
	if err != nil {
		return control.TaskInfo{}, err
	}
	ti := taskInfo(in)
	d.withHLS(&ti)
	return ti, nil
}

// RemoveTask removes a task everywhere, optionally deleting its files.
func (d *Daemon) RemoveTask(ctx context.Context, id string, deleteFiles bool) error {
	return d.svc.Remove(ctx, id, deleteFiles)
}

// PauseTask stops a task's transfers.
func (d *Daemon) PauseTask(ctx context.Context, id string) error { return d.svc.Pause(id) }

// ResumeTask restarts a paused task's transfers.
func (d *Daemon) ResumeTask(ctx context.Context, id string) error { return d.svc.Resume(id) }

// IssueToken adds a CLI grant to an existing task and returns its URLs.
func (d *Daemon) IssueToken(ctx context.Context, id string) (control.TokenResponse, error) {
	tok, exp, err := d.svc.GrantCLI(id)
	if err != nil {
		return control.TokenResponse{}, err
	}
	base := d.mediaBase()
	return control.TokenResponse{
		TaskID:      id,
		Token:       tok,
		ExpiresAt:   exp,
		StreamURL:   streamURL(base, id, tok, -1),
		PlaylistURL: playlistURL(base, id, tok),
	}, nil
}

// RevokeToken ends every grant of the task at once, with no grace, and
// locks it: every URL answers 404, token-less included, until a new grant
// (token issue, or the origin's next token).
func (d *Daemon) RevokeToken(ctx context.Context, id string) error {
	return d.svc.Revoke(id)
}

// CreateHLS starts an HLS session bound to a new CLI grant, whose token the
// returned URL carries (the daemon keeps only the hashes of older ones).
func (d *Daemon) CreateHLS(ctx context.Context, id string, fileIndex int) (control.HLSResponse, error) {
	tok, _, err := d.svc.GrantCLI(id)
	if err != nil {
		return control.HLSResponse{}, err
	}
	s, err := d.svc.StartSession(ctx, tasks.SessionSpec{TaskID: id, FileIndex: fileIndex, Token: tok})
	if err != nil {
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
	si, err := d.svc.Seed(ctx, abs)
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
	// Peers reach the BitTorrent listener unless it is bound to loopback.
	proto := "TCP"
	if d.cfg.Torrent.UTP {
		proto = "TCP and uTP"
	}
	if bt := d.eng.ListenAddr(); bt.Addr().IsLoopback() {
		add("bittorrent listener", control.LevelWarn, fmt.Sprintf("listening on %s (%s): peers on other machines cannot connect; set torrent.listen_address to \"\" (all interfaces) or a LAN address", bt, proto))
	} else {
		add("bittorrent listener", control.LevelOK, fmt.Sprintf("listening on %s (%s)", bt, proto))
	}
	if rc := d.svc.Recovery(); rc.MovedTo != "" {
		add("state file", control.LevelWarn, fmt.Sprintf("was unreadable (%s) at start %s: moved to %s; tasks were rebuilt from the saved metainfo",
			rc.Reason, rc.At.Format(time.RFC3339), rc.MovedTo))
	} else {
		add("state file", control.LevelOK, "read at start")
	}
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
