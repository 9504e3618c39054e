package daemon

import (
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/hls"
)

// withHLS adds to ti what HLS knows about the task: its open sessions (file,
// state, mode) and, for each of ti.Files, the tracks the last probe of it
// found, or before any probe the sidecar subtitle files named after it.
func (d *Daemon) withHLS(ti *control.TaskInfo) {
	if d.hlsm != nil {
		for _, s := range d.hlsm.Sessions() {
			if s.TaskID != ti.ID {
				continue
			}
			hi := control.HLSInfo{FileIndex: s.FileIndex, State: "probing", Running: s.Running}
			switch {
			case s.Ready && s.Err != nil:
				hi.State = "failed"
			case s.Ready:
				hi.State, hi.Mode = "ready", s.Mode
			}
			for _, sub := range s.Subtitles {
				hi.BurntSubtitles = hi.BurntSubtitles || sub.Burnt
			}
			ti.HLS = append(ti.HLS, hi)
		}
	}
	if len(ti.Files) == 0 {
		return
	}
	paths := make([]string, len(ti.Files))
	for i, f := range ti.Files {
		paths[i] = f.Path
	}
	for i := range ti.Files {
		f := &ti.Files[i]
		if !f.Playable {
			continue
		}
		if d.hlsm != nil {
			if ft, ok := d.hlsm.Tracks(ti.ID, f.Index); ok {
				f.Probed, f.Mode = true, ft.Mode
				f.Tracks = probedTracks(ft, hls.FindSidecars(f.Path, paths))
				continue
			}
		}
		for k, sc := range hls.FindSidecars(f.Path, paths) {
			f.Tracks = append(f.Tracks, control.TrackInfo{Index: k, Kind: "subtitle", Codec: sc.Format,
				Language: sc.Language, Title: sc.Label, Sidecar: true, File: sc.Index})
		}
	}
}

// probedTracks converts a probe's tracks. A session lists sidecars after the
// embedded subtitles, in FindSidecars' order: scs gives their file indexes.
func probedTracks(ft hls.FileTracks, scs []hls.Sidecar) []control.TrackInfo {
	var out []control.TrackInfo
	for k, a := range ft.Audio {
		out = append(out, control.TrackInfo{Index: k, Kind: "audio", Codec: a.Codec, Language: a.Language,
			Title: a.Name, Default: a.Default, Channels: a.Channels, Copy: a.Copy})
	}
	sc := 0
	for k, s := range ft.Subtitles {
		tr := control.TrackInfo{Index: k, Kind: "subtitle", Codec: s.Codec, Language: s.Language,
			Title: s.Name, Default: s.Default, Sidecar: s.Sidecar, Image: s.Image, Burnt: s.Burnt}
		if s.Sidecar && sc < len(scs) {
			tr.File = scs[sc].Index
			sc++
		}
		out = append(out, tr)
	}
	return out
}
