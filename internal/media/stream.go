package media

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/token"
)

// authorizedTask authorizes q against tables before anything is looked up,
// then returns its task once the metainfo is known. On failure it has
// written the response: the standard 404 for every authorization failure.
//
// Every failure does the same work: verification against every table, then
// exactly one task lookup that misses (the dummy task when unauthorized, the
// requested one when a never-granted ID is allowed token-less but does not
// exist). So an unknown task costs what a known task with a wrong token
// costs, with require_stream_token on or off.
func (s *Server) authorizedTask(w http.ResponseWriter, r *http.Request, q taskQuery, tables ...*token.Table) (*engine.Task, bool) {
	task, ok := s.authorizedTaskNow(w, r, q, tables...)
	if !ok {
		return nil, false
	}
	if err := task.WaitInfo(r.Context()); err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	return task, true
}

// authorizedTaskNow is authorizedTask without the wait for the metainfo:
// the task may not know its files yet.
func (s *Server) authorizedTaskNow(w http.ResponseWriter, r *http.Request, q taskQuery, tables ...*token.Table) (*engine.Task, bool) {
	authorized := verify(q.id, q.tok, q.scope(), q.ok, tables...)
	lookup := q.id
	if !authorized {
		lookup = dummyTaskID
	}
	task, err := s.eng.Task(lookup)
	if !authorized {
		writeNotFound(w)
		return nil, false
	}
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	return task, true
}

// handleStream serves GET/HEAD /stream?id=&t=[&file=].
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	// Parse.
	q := parseTaskQuery(r.URL.RawQuery, true)
	// Authorize (the internal token too: ffmpeg reads here), then the domain.
	task, ok := s.authorizedTask(w, r, q, s.tokens, s.internal)
	if !ok {
		return
	}
	f, ok := requestedFile(task, q.file)
	if !ok {
		s.writeError(w, r, fmt.Errorf("file %d: %w", q.file, engine.ErrNotFound))
		return
	}

	// Respond. Content-Type is set so ServeContent never sniffs (which
	// would read, and so wait for, the first piece), and a strong ETag so
	// If-Range works.
	h := w.Header()
	h.Set("Content-Type", contentType(f.Path))
	h.Set("ETag", etag(task.InfoHash(), f.Index))
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Disposition", contentDisposition(f.Path))
	h.Set("Cache-Control", "private")
	dropMultiRange(r)

	if r.Method == http.MethodHead {
		http.ServeContent(w, r, "", time.Time{}, &sizeOnly{size: f.Length})
		return
	}
	// A range whose first byte cannot come (the task stopped on a full disk, or is paused)
	// gets 503 + Retry-After now, not a 206 header and then nothing.
	off, end := readSpan(r.Header.Get("Range"), r.Header.Get("If-Range"), h.Get("ETag"), f.Length)
	if off >= 0 {
		if err := task.Unavailable(f.Index, off); err != nil {
			clearContentHeaders(h)
			s.writeError(w, r, err)
			return
		}
	}
	select {
	case s.readers <- struct{}{}:
		defer func() { <-s.readers }()
	default:
		clearContentHeaders(h)
		s.writeError(w, r, errTooManyReaders)
		return
	}
	rd, err := task.OpenFile(r.Context(), f.Index)
	if err != nil {
		clearContentHeaders(h)
		s.writeError(w, r, fmt.Errorf("open file %d: %w", f.Index, err))
		return
	}
	s.readersOpened.Add(1)
	defer rd.Close()
	// A player that hangs up cancels r.Context, which ends a wait for pieces.
	rd.SetContext(r.Context())
	if off >= 0 && end < f.Length {
		// A bounded range (a prefetch's, a player's that reads in chunks): ask for all
		// of it at once.
		rd.SetSpan(off, end)
	}
	rec := &readErrRecorder{rd: rd}
	http.ServeContent(s.measureSeek(w, r), r, "", time.Time{}, rec)
	// A response cut short by the engine shows only as an early EOF at the
	// player: say why here (no token, no URL: the task, the file, where).
	if rec.err != nil {
		if r.Context().Err() != nil {
			s.log.Debug("stream read ended by the client", "task", task.ID(), "file", f.Index, "err", rec.err)
		} else {
			// ServeContent seeks once, before its first read: the reads began
			// at pos - n.
			s.log.Warn("stream cut short", "task", task.ID(), "file", f.Index,
				"offset", rec.pos-rec.n, "sent", rec.n, "err", rec.err)
		}
	}
}

// readErrRecorder passes reads and seeks to rd and keeps the position, the
// bytes the reads returned and their first error other than io.EOF.
type readErrRecorder struct {
	rd  io.ReadSeeker
	pos int64
	n   int64
	err error
}

func (e *readErrRecorder) Read(p []byte) (int, error) {
	n, err := e.rd.Read(p)
	e.n += int64(n)
	e.pos += int64(n)
	if err != nil && !errors.Is(err, io.EOF) && e.err == nil {
		e.err = err
	}
	return n, err
}

func (e *readErrRecorder) Seek(off int64, whence int) (int64, error) {
	pos, err := e.rd.Seek(off, whence)
	if err == nil {
		e.pos = pos
	}
	return pos, err
}

// fileAt returns the file with the given index.
// requestedFile is the file a request names by index (file=), or the task's
// selected file when it names none (idx < 0).
func requestedFile(task *engine.Task, idx int) (engine.File, bool) {
	if idx < 0 {
		idx = task.SelectedFile()
	}
	return fileAt(task.Files(), idx)
}

func fileAt(files []engine.File, idx int) (engine.File, bool) {
	for _, f := range files {
		if f.Index == idx {
			return f, true
		}
	}
	return engine.File{}, false
}

func clearContentHeaders(h http.Header) {
	for _, k := range []string{"Content-Type", "ETag", "Accept-Ranges", "Content-Disposition", "Cache-Control"} {
		h.Del(k)
	}
}

// dropMultiRange makes a multi-range request a plain one. Players never ask
// for several ranges, and ServeContent would read them from a goroutine that
// can outlive the handler (and so the reader it reads from).
func dropMultiRange(r *http.Request) {
	if strings.Contains(r.Header.Get("Range"), ",") {
		r.Header.Del("Range")
	}
}

// etag is the strong validator of one file of one torrent: its bytes never
// change.
func etag(infoHash string, fileIndex int) string {
	return `"` + infoHash + "-" + strconv.Itoa(fileIndex) + `"`
}

// sizeOnly is the content of a HEAD response: it knows its size but has no
// bytes, so answering HEAD opens no reader.
type sizeOnly struct {
	size, off int64
}

var errNoContent = errors.New("head content has no bytes")

func (s *sizeOnly) Read([]byte) (int, error) { return 0, errNoContent }

func (s *sizeOnly) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = s.off + offset
	case io.SeekEnd:
		abs = s.size + offset
	default:
		return 0, errors.New("seek: invalid whence")
	}
	if abs < 0 {
		return 0, errors.New("seek: negative position")
	}
	s.off = abs
	return abs, nil
}

// contentTypes maps extensions to media types. A fixed table, not
// mime.TypeByExtension, so the answer does not depend on the host's
// /etc/mime.types.
var contentTypes = map[string]string{
	".mp4":  "video/mp4",
	".m4v":  "video/mp4",
	".mkv":  "video/x-matroska",
	".mk3d": "video/x-matroska",
	".webm": "video/webm",
	".ts":   "video/mp2t",
	".m2ts": "video/mp2t",
	".mts":  "video/mp2t",
	".avi":  "video/x-msvideo",
	".mov":  "video/quicktime",
	".mpg":  "video/mpeg",
	".mpeg": "video/mpeg",
	".ogv":  "video/ogg",
	".flv":  "video/x-flv",
	".wmv":  "video/x-ms-wmv",
	".3gp":  "video/3gpp",
	".mka":  "audio/x-matroska",
	".mp3":  "audio/mpeg",
	".m4a":  "audio/mp4",
	".aac":  "audio/aac",
	".flac": "audio/flac",
	".ogg":  "audio/ogg",
	".oga":  "audio/ogg",
	".opus": "audio/ogg",
	".wav":  "audio/wav",
	".srt":  "application/x-subrip",
	".vtt":  "text/vtt; charset=utf-8",
	".ass":  "text/x-ssa",
	".ssa":  "text/x-ssa",
	".m4s":  "video/mp4",
}

// contentType returns the media type for a file name by its extension,
// application/octet-stream when unknown.
func contentType(name string) string {
	if ct, ok := contentTypes[strings.ToLower(path.Ext(name))]; ok {
		return ct
	}
	return "application/octet-stream"
}

const maxFileNameBytes = 200

// safeFileName reduces a torrent path to a file name fit for a header: the
// last element, valid UTF-8, without control or formatting characters
// (bidi overrides), quotes, backslashes or leading dots.
func safeFileName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		p = p[i+1:]
	}
	p = strings.ToValidUTF8(p, "_")
	var b strings.Builder
	for _, c := range p {
		switch {
		case unicode.IsSpace(c):
			c = ' '
		case unicode.IsControl(c), unicode.Is(unicode.Cf, c), c == '"', c == '\\', c == utf8.RuneError:
			continue
		}
		if b.Len()+utf8.RuneLen(c) > maxFileNameBytes {
			break
		}
		b.WriteRune(c)
	}
	name := strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(b.String()), "."))
	if name == "" {
		return "video"
	}
	return name
}

// contentDisposition returns an inline disposition for a file path with an
// ASCII filename and the exact one as RFC 6266 / RFC 8187 filename*.
func contentDisposition(p string) string {
	name := safeFileName(p)
	var ascii strings.Builder
	for _, c := range name {
		if c < 0x20 || c >= 0x7f {
			c = '_'
		}
		ascii.WriteRune(c)
	}
	return `inline; filename="` + ascii.String() + `"; filename*=UTF-8''` + encodeExtValue(name)
}

// encodeExtValue percent-encodes s as an RFC 8187 value-chars.
func encodeExtValue(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAttrChar(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func isAttrChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}
