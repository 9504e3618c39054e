package media

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// Stats are the media listener's figures for metrics.
type Stats struct {
	Readers     int   // /stream responses reading now
	NotFound    int64 // responses with the standard 404 (unauthorized, unknown, malformed), in total
	Unavailable int64 // responses with 503, in total
}

// Stats returns the listener's figures.
func (s *Server) Stats() Stats {
	return Stats{Readers: len(s.readers), NotFound: s.notFound.Load(), Unavailable: s.unavailable.Load()}
}

// count records a response status for Stats.
func (s *Server) count(status int) {
	switch status {
	case http.StatusNotFound:
		s.notFound.Add(1)
	case http.StatusServiceUnavailable:
		s.unavailable.Add(1)
	}
}

// measureSeek wraps w so that, for a request that seeks, the time to its
// first body byte reaches Options.OnSeekFirstByte. A seek is a Range that does
// not start at byte 0; Range itself is still parsed only by ServeContent.
func (s *Server) measureSeek(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	rng := r.Header.Get("Range")
	if s.onSeekFirstByte == nil || rng == "" || strings.HasPrefix(strings.TrimSpace(rng), "bytes=0-") {
		return w
	}
	return &firstByteWriter{ResponseWriter: w, start: time.Now(), observe: s.onSeekFirstByte}
}

// firstByteWriter reports the time to the first non-empty Write once.
type firstByteWriter struct {
	http.ResponseWriter
	start   time.Time
	observe func(time.Duration)
	once    sync.Once
}

func (w *firstByteWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		w.once.Do(func() { w.observe(time.Since(w.start)) })
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *firstByteWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
