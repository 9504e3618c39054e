package media

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// accessLog logs one Debug line per request: route pattern, status, bytes,
// duration in milliseconds and remote address. Never the URL: its query carries the token.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		status := sw.status
		switch {
		case status == 0 && r.Context().Err() != nil:
			// The client went away before any answer (a player's
			// seek or timeout): nothing was sent, so not a 200.
			// 499 is nginx's name for it.
			status = statusClientClosed
		case status == 0:
			status = http.StatusOK
		}
		s.count(status)
		// The mux sets r.Pattern on the request it was handed: this one.
		s.log.DebugContext(r.Context(), "http request",
			"method", r.Method,
			"route", r.Pattern,
			"status", status,
			"bytes", sw.bytes,
			"dur_ms", float64(time.Since(start).Microseconds())/1000,
			"remote_addr", r.RemoteAddr)
	})
}

// statusClientClosed is the access log's status of a request whose client
// hung up before it was answered.
const statusClientClosed = 499

// statusWriter records the status and the body bytes of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// writeDeadlines replaces a hard WriteTimeout: every write pushes the
// connection's write deadline forward by the stall timeout, so a client that
// stops reading is cut off while a slow one streams a two-hour movie.
func (s *Server) writeDeadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// Clear the deadline the previous request on this keep-alive
		// connection left behind: this handler may wait long (for metadata
		// or pieces) before its first write.
		if err := rc.SetWriteDeadline(time.Time{}); err != nil {
			// Not a connection that supports deadlines (a recorder).
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&deadlineWriter{ResponseWriter: w, rc: rc, stall: s.stall}, r)
		// Bound the flush of what is still buffered after the handler.
		_ = rc.SetWriteDeadline(time.Now().Add(s.stall))
	})
}

type deadlineWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.stall))
	return w.ResponseWriter.Write(p)
}

func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// securityHeaders sets the headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

const (
	corsAllowMethods  = "GET, HEAD, OPTIONS"
	corsAllowHeaders  = "Range"
	corsExposeHeaders = "Content-Length, Content-Range, Accept-Ranges"
)

// cors echoes an allowed Origin. Unmatched origins get no CORS headers; every
// response varies on Origin.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		if origin := r.Header.Get("Origin"); s.originAllowed(origin) {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		next.ServeHTTP(w, r)
	})
}

// handlePreflight answers OPTIONS for any path, including Chrome's Private
// Network Access preflight.
func (s *Server) handlePreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Allow", corsAllowMethods)
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Add("Vary", "Access-Control-Request-Private-Network")
	if s.originAllowed(r.Header.Get("Origin")) && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", corsAllowMethods)
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", "600")
		if strings.EqualFold(r.Header.Get("Access-Control-Request-Private-Network"), "true") {
			h.Set("Access-Control-Allow-Private-Network", "true")
		}
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) originAllowed(origin string) bool {
	origins := *s.origins.Load()
	if origin == "" || len(origins) == 0 {
		return false
	}
	n, err := normalizeOrigin(origin)
	return err == nil && origins[n]
}

// normalizeOrigin returns "scheme://host[:port]" in lower case without a
// default port. A trailing "/" is accepted; any other path, a query, a
// fragment or user info is not.
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(o)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", errors.New("scheme must be http or https")
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", errors.New("missing host")
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", errors.New("want scheme://host[:port] only")
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		return u.Scheme + "://" + net.JoinHostPort(host, port), nil
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return u.Scheme + "://" + host, nil
}
