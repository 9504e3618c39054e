package media

// The /watch player page. Four routes:
//
//   - GET /watch?id=&t=[&file=]: the page. Authorized exactly like /stream
//     (same 404). It carries only what the URL already carried: the
//     session endpoint's URL below, with the same id, t and file.
//   - GET /watch/session?id=&t=[&file=]: JSON for the page, authorized the
//     same way. It creates the file's HLS session bound to the presented
//     token (or returns the one already open for that token and file, so a
//     reloaded page does not pile up sessions), waits for its probe, and
//     answers the raw /stream URL, the HLS master URL and the tracks, all
//     relative and carrying that same token: the page learns no other
//     secret. Creating a session costs one ffprobe; ffmpeg runs only when
//     the page asks for segments, and an unused session idles out.
//   - GET /watch/state?id=&t=[&file=]: what the task waits for, if
//     anything ("wait": "metadata", "paused", "diskFull", "writeError";
//     none when it may download) and its peers and download rate,
//     authorized the same way but answered at once, like the page itself,
//     before the metainfo is in. The page asks when playback
//     has waited for data for a while, to tell the viewer why, and goes on
//     by itself once the answer names no wait again.
//   - GET /watch/assets/{name}: the page's script, style sheet and hls.js,
//     embedded in the binary (web/; hls.js vendored by
//     .ci/vendor-hlsjs.sh). Public and identical for everyone, like
//     /health.
//
// The page's Content-Security-Policy allows scripts, styles, media and
// fetches from the daemon itself only: no inline script, no third party.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/hls"
	"github.com/torrentclaw/cli/internal/token"
)

//go:embed web
var webFS embed.FS

var watchTemplate = template.Must(template.ParseFS(webFS, "web/watch.html"))

// watchCSP is the player page's Content-Security-Policy. media-src blob:
// is Media Source Extensions (hls.js feeds the video element through a blob
// URL); hls.js runs without a worker, so workers are not allowed at all.
const watchCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"media-src 'self' blob:; connect-src 'self'; worker-src 'none'; object-src 'none'; " +
	"base-uri 'none'; frame-ancestors 'none'; form-action 'none'"

// watchAsset is one embedded file of the page.
type watchAsset struct {
	body        []byte
	contentType string
	etag        string
}

// watchAssets are the files /watch/assets serves, by name.
var watchAssets = func() map[string]watchAsset {
	types := map[string]string{
		"player.js":      "text/javascript; charset=utf-8",
		"player.css":     "text/css; charset=utf-8",
		"hls.min.js":     "text/javascript; charset=utf-8",
		"hls.js.LICENSE": "text/plain; charset=utf-8",
	}
	out := make(map[string]watchAsset, len(types))
	for name, ct := range types {
		b, err := webFS.ReadFile("web/" + name)
		if err != nil {
			panic(fmt.Sprintf("media: embedded %s: %v", name, err)) // a build without web/ is a bug
		}
		sum := sha256.Sum256(b)
		out[name] = watchAsset{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
	}
	return out
}()

// WatchSessionFunc returns the HLS session the player page plays for a
// task's file, bound to tok: created on first use, the open one after.
type WatchSessionFunc func(ctx context.Context, taskID string, fileIndex int, tok token.Token) (*hls.Session, error)

// watchQuery parses the query of /watch and /watch/session: id, t and
// file, nothing session-bound.
func watchQuery(raw string) taskQuery {
	q := parseTaskQuery(raw, true)
	if q.session != "" {
		q.ok = false
	}
	return q
}

// encodeTaskQuery writes id, t and file (when not negative) back as a
// query string.
func encodeTaskQuery(q taskQuery, file int) string {
	v := url.Values{"id": {q.id}}
	if file >= 0 {
		v.Set("file", strconv.Itoa(file))
	}
	if q.tok != "" {
		v.Set("t", q.tok)
	}
	return v.Encode()
}

// handleWatch serves GET /watch?id=&t=[&file=].
func (s *Server) handleWatch(w http.ResponseWriter, r *http.Request) {
	q := watchQuery(r.URL.RawQuery)
	// Not authorizedTask: a magnet added a moment ago has no metainfo yet,
	// and a page that waited for it would be a blank tab meanwhile. The
	// page says what it waits for (/watch/state) while its session request
	// waits for the metainfo.
	task, ok := s.authorizedTaskNow(w, r, q, s.tokens)
	if !ok {
		return
	}
	// A healthy swarm sends it within a moment: wait that long for it, for
	// the file's title and the session started ahead below.
	infoCtx, cancelInfo := context.WithTimeout(r.Context(), watchInfoWait)
	_ = task.WaitInfo(infoCtx)
	cancelInfo()
	idx := q.file
	var title string
	if task.HasInfo() {
		f, ok := requestedFile(task, idx)
		if !ok {
			s.writeError(w, r, fmt.Errorf("watch file %d: %w", idx, engine.ErrNotFound))
			return
		}
		idx, title = f.Index, playlistTitle(f.Path)
	} else {
		title = playlistTitle(task.Status().Name) // the magnet's display name, if any
	}
	var body bytes.Buffer
	err := watchTemplate.Execute(&body, struct{ Title, SessionURL, StateURL string }{
		Title:      title,
		SessionURL: "/watch/session?" + encodeTaskQuery(q, idx),
		StateURL:   "/watch/state?" + encodeTaskQuery(q, idx),
	})
	if err != nil {
		s.writeError(w, r, fmt.Errorf("render watch page: %w", err))
		return
	}
	if r.Method == http.MethodGet && s.watchSession != nil && s.hlsUnavailable() == nil {
		// The page asks for its session first thing: start it now, so the
		// probe runs while the browser loads the page and its script. The
		// page's request finds it by its key (same task, file and token).
		// Without the metainfo yet, as soon as it is in.
		tok := token.Token(q.tok)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), watchSessionTimeout)
			defer cancel()
			idx := idx
			if idx < 0 {
				if err := task.WaitInfo(ctx); err != nil {
					s.log.Debug("watch session not started ahead", "err", err)
					return
				}
				idx = task.SelectedFile()
			}
			if _, err := s.watchSession(ctx, q.id, idx, tok); err != nil {
				s.log.Debug("watch session not started ahead", "err", err)
			}
		}()
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", watchCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(body.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body.Bytes())
	}
}

// watchInfo is the reply of /watch/session.
type watchInfo struct {
	Raw        string          `json:"raw"`
	HLS        string          `json:"hls,omitempty"`
	SourceType string          `json:"sourceType,omitempty"`
	Mode       string          `json:"mode,omitempty"`
	Duration   float64         `json:"duration,omitempty"`
	Audio      []hls.TrackInfo `json:"audio,omitempty"`
	Subtitles  []watchSubtitle `json:"subtitles,omitempty"`
	// File is the index of the file the page plays; Files the task's
	// playable files the page's token opens, by name, when there are two or
	// more (a season pack): the page's file menu, and what plays next.
	File  int         `json:"file"`
	Files []watchFile `json:"files,omitempty"`
}

// watchFile is one entry of the page's file menu.
type watchFile struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
}

// watchFiles lists the playable files of task that tok opens (a task-wide
// grant opens all, a file grant its own), sorted by path; nil when fewer
// than two.
func (s *Server) watchFiles(task *engine.Task, q taskQuery) []watchFile {
	files := task.Files()
	slices.SortStableFunc(files, func(a, b engine.File) int { return strings.Compare(a.Path, b.Path) })
	var out []watchFile
	for _, f := range files {
		if !f.Playable || !verify(q.id, q.tok, token.Scope{File: f.Index}, true, s.tokens) {
			continue
		}
		out = append(out, watchFile{Index: f.Index, Name: playlistTitle(f.Path)})
	}
	if len(out) < 2 {
		return nil
	}
	return out
}

type watchSubtitle struct {
	hls.TrackInfo
	VTT string `json:"vtt,omitempty"` // the WebVTT file, for a raw <video>'s <track>
	// Windows is the URL of the track's windows (an embedded track), with
	// "{w}" for the window number: the page loads the ones around the
	// playhead while the file downloads: WindowCount of WindowSeconds each.
	Windows       string  `json:"windows,omitempty"`
	WindowCount   int     `json:"windowCount,omitempty"`
	WindowSeconds float64 `json:"windowSeconds,omitempty"`
}

// watchSessionTimeout bounds the wait for the session's probe (the file's
// head must arrive from the swarm first).
const watchSessionTimeout = 2 * time.Minute

// watchInfoWait is how long the page waits for a task's metainfo before it
// is served without it (titled with the magnet's name, saying it looks for
// peers).
const watchInfoWait = time.Second

// handleWatchSession serves GET /watch/session?id=&t=[&file=].
func (s *Server) handleWatchSession(w http.ResponseWriter, r *http.Request) {
	q := watchQuery(r.URL.RawQuery)
	task, ok := s.authorizedTask(w, r, q, s.tokens)
	if !ok {
		return
	}
	f, ok := requestedFile(task, q.file)
	if !ok {
		s.writeError(w, r, fmt.Errorf("watch file %d: %w", q.file, engine.ErrNotFound))
		return
	}
	idx := f.Index
	info := watchInfo{Raw: "/stream?" + encodeTaskQuery(q, idx), File: idx, Files: s.watchFiles(task, q)}
	if s.watchSession != nil && s.hlsUnavailable() == nil {
		ctx, cancel := context.WithTimeout(r.Context(), watchSessionTimeout)
		defer cancel()
		sess, err := s.watchSession(ctx, q.id, idx, token.Token(q.tok))
		if err == nil {
			err = sess.WaitReady(ctx)
		}
		switch {
		case err == nil:
			in := sess.Info()
			tq := ""
			if q.tok != "" {
				tq = "?t=" + url.QueryEscape(q.tok)
			}
			base := "/hls/" + sess.ID() + "/"
			info.HLS = base + "master.m3u8" + tq
			info.SourceType, info.Mode, info.Duration, info.Audio = in.SourceType, in.Mode, in.Duration, in.Audio
			for _, sub := range in.Subtitles {
				ws := watchSubtitle{TrackInfo: sub}
				if sub.URI != "" {
					stem := base + strings.TrimSuffix(sub.URI, ".m3u8")
					ws.VTT = stem + ".vtt" + tq
					if n, sec := sess.SubtitleWindows(sub.URI); n > 0 {
						ws.Windows = stem + "-{w}.vtt" + tq
						ws.WindowCount, ws.WindowSeconds = n, sec
					}
				}
				info.Subtitles = append(info.Subtitles, ws)
			}
		case r.Context().Err() != nil:
			return
		default:
			// The page can still try the raw file.
			s.log.Info("watch page without hls", "err", err)
		}
	}
	s.writeJSON(w, r, "watch session", info)
}

// watchState is the reply of /watch/state.
type watchState struct {
	// Wait is what playback waits for beyond the swarm's pace: "metadata"
	// (the torrent's info, from peers), or why the task downloads nothing
	// now: "paused", "diskFull" or "writeError". Empty otherwise.
	Wait string `json:"wait,omitempty"`
	// Peers is how many peers the task is connected to, and SpeedBps its
	// download rate (bytes a second): what a viewer sees beside
	// "Buffering…".
	Peers    int   `json:"peers"`
	SpeedBps int64 `json:"speedBps"`
}

// handleWatchState serves GET /watch/state?id=&t=[&file=].
func (s *Server) handleWatchState(w http.ResponseWriter, r *http.Request) {
	q := watchQuery(r.URL.RawQuery)
	task, ok := s.authorizedTaskNow(w, r, q, s.tokens)
	if !ok {
		return
	}
	ts := task.Status()
	st := watchState{Peers: ts.Peers, SpeedBps: ts.SpeedBps}
	switch err := task.Held(); {
	case err == nil && !task.HasInfo():
		st.Wait = "metadata"
	case err == nil:
	case errors.Is(err, engine.ErrDiskFull):
		st.Wait = "diskFull"
	case errors.Is(err, engine.ErrWrite):
		st.Wait = "writeError"
	default:
		st.Wait = "paused"
	}
	s.writeJSON(w, r, "watch state", st)
}

// writeJSON answers 200 with v as JSON, not cached; what names the answer
// in an error.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, what string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.writeError(w, r, fmt.Errorf("%s: %w", what, err))
		return
	}
	writeJSONBody(w, r, body)
}

// handleWatchAsset serves GET /watch/assets/{name}.
func (s *Server) handleWatchAsset(w http.ResponseWriter, r *http.Request) {
	a, ok := watchAssets[r.PathValue("name")]
	if !ok {
		writeNotFound(w)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}
