package media

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/torrentclaw/cli/internal/hls"
	"github.com/torrentclaw/cli/internal/ids"
	"github.com/torrentclaw/cli/internal/token"
)

const maxResourceLen = 128

// handleHLS serves GET /hls/{session}/{resource}?t=.
func (s *Server) handleHLS(w http.ResponseWriter, r *http.Request) {
	// Parse.
	sessionID := r.PathValue("session")
	resource := r.PathValue("resource")
	tok, okTok := hlsToken(r.URL.RawQuery)
	ok := okTok && ids.ValidSessionID(sessionID) && validResource(resource)

	// Authorize: session -> task -> token. An unknown or closed session
	// verifies against the dummy task, so it costs the same work.
	unavailable := s.hlsUnavailable()
	var sess *hls.Session
	taskID := dummyTaskID
	if ok && unavailable == nil {
		get := func(id string) (*hls.Session, error) { return s.hls.Get(id) }
		if s.session != nil {
			get = func(id string) (*hls.Session, error) { return s.session(r.Context(), id) }
		}
		if got, err := get(sessionID); err == nil {
			sess, taskID = got, got.TaskID()
		}
	}
	// A session's URLs need a grant for the whole task, or one bound to
	// this session; a file-scoped grant (ffmpeg's input) never opens them.
	authorized := verify(taskID, tok, token.Scope{SessionID: sessionID, File: -1}, ok && sess != nil, s.tokens)
	if s.bound != nil {
		// The session's own grant, checked whatever the outcome above.
		authorized = s.bound(sessionID, tok) && authorized
	}
	if unavailable != nil {
		// No session can exist, so there is nothing to check the token
		// against. A well-formed request (session ID and token shapes) learns
		// that this daemon has no HLS, a daemon-wide fact that says nothing
		// about what streams; anything else gets the usual 404.
		if ok && token.Valid(tok) {
			s.writeError(w, r, unavailable)
			return
		}
		writeNotFound(w)
		return
	}
	if !authorized {
		writeNotFound(w)
		return
	}

	// Domain and response.
	switch {
	case strings.HasSuffix(resource, ".m3u8"):
		body, err := sess.Playlist(r.Context(), resource, tok)
		if err != nil {
			s.writeError(w, r, fmt.Errorf("hls playlist: %w", err))
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/vnd.apple.mpegurl")
		h.Set("Cache-Control", "no-store")
		h.Set("Vary", "Accept-Encoding")
		if len(body) >= gzipMinPlaylist && acceptsGzip(r.Header.Values("Accept-Encoding")) {
			body = gzipBytes(body)
			h.Set("Content-Encoding", "gzip")
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	default:
		var p string
		var err error
		if hls.IsSubtitleWindow(resource) && r.Method == http.MethodGet {
			var done bool
			if p, done, err = s.awaitSubtitleWindow(w, r, sess, resource); done {
				return
			}
		} else if strings.HasSuffix(resource, ".vtt") {
			p, err = sess.Subtitle(r.Context(), resource)
		} else {
			p, err = sess.SegmentFor(r.Context(), resource, playerName(r.URL.RawQuery))
		}
		if err != nil {
			s.writeError(w, r, fmt.Errorf("hls segment: %w", err))
			return
		}
		f, err := os.Open(p)
		if err != nil {
			// Deleted by Close or the disk cap between Segment and Open.
			if errors.Is(err, os.ErrNotExist) {
				err = fmt.Errorf("%w: %w", hls.ErrNotFound, err)
			}
			s.writeError(w, r, fmt.Errorf("hls segment: %w", err))
			return
		}
		defer f.Close()
		h := w.Header()
		h.Set("Content-Type", segmentContentType(resource))
		h.Set("Cache-Control", "private, max-age=3600")
		http.ServeContent(w, r, "", time.Time{}, f)
	}
}

// playerName returns the p= of a segment URL: the /watch page names its player so
// that two pages of one session far apart get ffmpeg runs of their own
// (hls.Session.SegmentFor). Anything but 1-32 letters, digits or '-' is no name.
func playerName(rawQuery string) string {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return ""
	}
	p := q.Get("p")
	if len(p) > 32 {
		return ""
	}
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return ""
		}
	}
	return p
}

// windowFirstByteAfter is how long a subtitle window may take before its
// response begins anyway. A window waits for the torrent's bytes around
// it; hls.js gives up on a fragment without a first byte after 10 s, and
// its retries count towards a fatal error for the whole stream.
const windowFirstByteAfter = 2 * time.Second

// awaitSubtitleWindow waits for a subtitle window. Ready soon, it returns
// its path for the usual response. Otherwise it answers 200 with the
// header every window begins with, sends the rest when the window is
// made, and reports done; a window that fails then cuts the connection,
// so the player sees an error, never a short file.
func (s *Server) awaitSubtitleWindow(w http.ResponseWriter, r *http.Request, sess *hls.Session, resource string) (path string, done bool, err error) {
	type result struct {
		path string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		p, err := sess.Subtitle(r.Context(), resource)
		ch <- result{p, err}
	}()
	timer := time.NewTimer(windowFirstByteAfter)
	defer timer.Stop()
	select {
	case res := <-ch:
		return res.path, false, res.err
	case <-timer.C:
	}
	prefix := hls.SubtitleWindowPrefix()
	h := w.Header()
	h.Set("Content-Type", segmentContentType(resource))
	h.Set("Cache-Control", "private, max-age=3600")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(prefix)
	_ = http.NewResponseController(w).Flush()
	res := <-ch
	var body []byte
	if res.err == nil {
		body, res.err = os.ReadFile(res.path)
	}
	if res.err == nil && !bytes.HasPrefix(body, prefix) {
		res.err = errors.New("window file without the WebVTT header")
	}
	if res.err != nil {
		s.log.Debug("hls subtitle window failed after its first bytes", "session", sess.ID(), "resource", resource, "err", res.err)
		panic(http.ErrAbortHandler)
	}
	_, _ = w.Write(body[len(prefix):])
	return "", true, nil
}

// hlsUnavailable returns why HLS cannot be served, or nil.
func (s *Server) hlsUnavailable() error {
	if s.hls == nil {
		return errHLSUnavailable
	}
	if err := s.hls.Available(); err != nil {
		return fmt.Errorf("%w: %w", errHLSUnavailable, err)
	}
	return nil
}

// hlsToken returns the t parameter of an HLS URL. ok is false when the query
// is malformed or repeats t.
func hlsToken(rawQuery string) (string, bool) {
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return "", false
	}
	tok, ok := single(vals, "t")
	return tok, ok && len(tok) <= maxTokenLen
}

// validResource accepts a file name of a session: [A-Za-z0-9_.-], not
// starting with a dot. The hls package decides which names exist.
func validResource(s string) bool {
	if s == "" || len(s) > maxResourceLen || s[0] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// segmentContentType returns the type of an HLS segment: fMP4 or MPEG-TS.
func segmentContentType(name string) string {
	if ct := hls.ContentType(name); ct != "" {
		return ct
	}
	switch strings.ToLower(path.Ext(name)) {
	case ".m4s", ".mp4":
		return "video/mp4"
	case ".vtt":
		return "text/vtt; charset=utf-8"
	default:
		return "video/mp2t"
	}
}

// gzipMinPlaylist is the size from which a playlist is sent gzipped to a
// client that accepts it. A film's media playlist repeats the token on every
// segment line: about 100 bytes a segment, 350 KB for two hours of 2 s
// segments, which gzip brings to a few KB (docs/player.md).
const gzipMinPlaylist = 256

// acceptsGzip reports whether Accept-Encoding values accept gzip: a gzip
// coding (or *) whose q is not 0. A missing or malformed header means no.
func acceptsGzip(values []string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, v := range values {
		for _, item := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(item, ";")
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "gzip" && name != "x-gzip" && name != "*" {
				continue
			}
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				k, val, ok := strings.Cut(p, "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
					continue
				}
				f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
				if err != nil || f < 0 || f > 1 {
					return false
				}
				q = f
			}
			if name == "*" {
				starQ = max(starQ, q)
			} else {
				gzipQ = max(gzipQ, q)
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}

// gzipBytes compresses b at gzip's fastest level: a playlist is made per
// request, and its repeated lines compress well at any level.
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // a valid level never fails
	_, _ = zw.Write(b)                                 // writes to a bytes.Buffer do not fail
	_ = zw.Close()
	return buf.Bytes()
}
