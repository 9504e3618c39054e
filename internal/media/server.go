package media

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/hls"
	"github.com/torrentclaw/cli/internal/token"
)

// Defaults for the zero values of [Options].
const (
	DefaultMaxReaders        = 64
	DefaultWriteStallTimeout = 60 * time.Second
	DefaultShutdownGrace     = 5 * time.Second

	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
)

// Engine is the part of the torrent engine the media server uses.
// *engine.Engine implements it.
type Engine interface {
	Task(id string) (*engine.Task, error)
}

// Options configures a [Server].
type Options struct {
	// Engine resolves task IDs to tasks. Required.
	Engine Engine
	// Tokens holds the per-task stream tokens presented by players. Required.
	Tokens *token.Table
	// Internal holds internal tokens (ffmpeg reading /stream on loopback for
	// HLS). It is consulted for /stream only; a request authorized by either
	// table passes. It must be built with RequireToken set (New refuses a
	// table that lets token-less tasks through). May be nil.
	Internal *token.Table
	// HLS serves /hls routes. Nil means HLS is unavailable (503).
	HLS *hls.Manager
	// SessionBound, when set, reports whether a presented token is the one
	// an HLS session was created with (the task service binds each session
	// to its grant). /hls answers only when the token table and SessionBound
	// both agree; SessionBound is asked on every /hls request, so a failure
	// costs the same work.
	SessionBound func(sessionID, presented string) bool
	// Session, when set, looks HLS sessions up instead of HLS.Get: the task
	// service waits for a session it promised before the torrent's
	// metainfo arrived (bounded by the request's context).
	Session func(ctx context.Context, sessionID string) (*hls.Session, error)
	// WatchSession makes the HLS session of the /watch player page. Nil:
	// the page plays only the raw file.
	WatchSession WatchSessionFunc

	// CORSOrigins lists the origins ("scheme://host[:port]") allowed to read
	// media responses from a browser.
	CORSOrigins []string
	// MaxReaders caps concurrent /stream readers; 0 means DefaultMaxReaders.
	MaxReaders int
	// MaxConns caps the connections open at once on a listener served by
	// Serve or ServeTLS, idle keep-alive connections included; 0 means
	// DefaultMaxConns. MaxConnsPerClient caps them per client IP address; 0
	// means DefaultMaxConnsPerClient. A connection beyond either cap is closed
	// when accepted, without reading from it.
	MaxConns, MaxConnsPerClient int
	// PublicHosts returns the daemon's own addresses ("host" or
	// "host:port"): listen address, LAN, Tailscale, UPnP external,
	// stream.public_host. A playlist echoes the request's Host only when it
	// is one of these. An entry without a port matches the port of the
	// listener the request arrived on. May be nil.
	PublicHosts func() []string
	// DefaultHost ("host" or "host:port") is used in playlist URLs when the
	// request's Host is not one of ours. Empty means the first PublicHosts
	// entry, else the local address the request arrived on.
	DefaultHost string

	// Version is reported by /health.
	Version string
	// Logger receives access logs (Debug) and warnings; nil discards.
	Logger *slog.Logger

	// TLSCertFile and TLSKeyFile (PEM) are served by ServeTLS and reloaded
	// when they change on disk.
	TLSCertFile, TLSKeyFile string

	// WriteStallTimeout cuts off a client that accepts no bytes for this
	// long; 0 means DefaultWriteStallTimeout. It is pushed forward on every
	// write, so a slow client is never cut off, only a stalled one.
	WriteStallTimeout time.Duration
	// ShutdownGrace bounds the graceful shutdown of Serve and ServeTLS
	// before open connections are closed; 0 means DefaultShutdownGrace.
	ShutdownGrace time.Duration

	// OnSeekFirstByte, when set, is called with the time from a /stream
	// request that seeks (a Range not starting at byte 0) to its first body
	// byte. It must not block.
	OnSeekFirstByte func(time.Duration)
}

// Server is the media listener. It is safe for concurrent use.
type Server struct {
	eng          Engine
	tokens       *token.Table
	internal     *token.Table
	hls          *hls.Manager
	bound        func(sessionID, presented string) bool
	session      func(ctx context.Context, sessionID string) (*hls.Session, error)
	watchSession WatchSessionFunc
	origins      atomic.Pointer[map[string]bool] // normalised "scheme://host[:port]"; see SetCORSOrigins
	publicHosts  func() []string
	defaultHost  string
	log          *slog.Logger
	stall        time.Duration
	grace        time.Duration
	healthBody   []byte
	certs        *certReloader // nil when no TLS files are configured
	handler      http.Handler

	// readers is a semaphore of open /stream readers (capacity MaxReaders).
	readers chan struct{}
	// readersOpened counts readers ever opened (tests check HEAD opens none).
	readersOpened atomic.Int64
	// notFound and unavailable count 404 and 503 responses (see Stats).
	notFound, unavailable atomic.Int64
	onSeekFirstByte       func(time.Duration) // nil: not measured

	maxConns, perClient int // connection caps of Serve and ServeTLS
	refusedLogged       atomic.Bool
}

var _ http.Handler = (*Server)(nil)

// ErrNoTLS is returned by ServeTLS and CertInfo when no certificate files are
// configured.
var ErrNoTLS = errors.New("no tls certificate configured")

// New checks opts and returns a Server. It starts nothing.
func New(opts Options) (*Server, error) {
	if opts.Engine == nil {
		return nil, errors.New("media: engine is required")
	}
	if opts.Tokens == nil {
		return nil, errors.New("media: token table is required")
	}
	if opts.Internal != nil && !opts.Internal.RequireToken() {
		return nil, errors.New("media: internal token table must require tokens")
	}
	if opts.MaxReaders < 0 {
		return nil, fmt.Errorf("media: max readers %d is negative", opts.MaxReaders)
	}
	if opts.MaxReaders == 0 {
		opts.MaxReaders = DefaultMaxReaders
	}
	if opts.MaxConns < 0 || opts.MaxConnsPerClient < 0 {
		return nil, fmt.Errorf("media: connection caps %d, %d: negative", opts.MaxConns, opts.MaxConnsPerClient)
	}
	if opts.MaxConns == 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.MaxConnsPerClient == 0 {
		opts.MaxConnsPerClient = DefaultMaxConnsPerClient
	}
	origins, err := originSet(opts.CORSOrigins)
	if err != nil {
		return nil, err
	}
	if (opts.TLSCertFile == "") != (opts.TLSKeyFile == "") {
		return nil, errors.New("media: tls cert file and key file must be set together")
	}
	health, err := json.Marshal(struct {
		Status  string `json:"status"`
		Version string `json:"version"`
	}{"ok", opts.Version})
	if err != nil {
		return nil, fmt.Errorf("media: health body: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "media")
	s := &Server{
		eng:          opts.Engine,
		tokens:       opts.Tokens,
		internal:     opts.Internal,
		hls:          opts.HLS,
		bound:        opts.SessionBound,
		session:      opts.Session,
		watchSession: opts.WatchSession,
		publicHosts:  opts.PublicHosts,
		defaultHost:  opts.DefaultHost,
		log:          log,
		stall:        opts.WriteStallTimeout,
		grace:        opts.ShutdownGrace,
		healthBody:   append(health, '\n'),
		readers:      make(chan struct{}, opts.MaxReaders),
		maxConns:     opts.MaxConns,
		perClient:    opts.MaxConnsPerClient,
	}
	s.origins.Store(&origins)
	s.onSeekFirstByte = opts.OnSeekFirstByte
	if s.stall <= 0 {
		s.stall = DefaultWriteStallTimeout
	}
	if s.grace <= 0 {
		s.grace = DefaultShutdownGrace
	}
	if opts.TLSCertFile != "" {
		s.certs = newCertReloader(opts.TLSCertFile, opts.TLSKeyFile, log)
	}
	s.handler = s.buildHandler()
	return s, nil
}

// Handler returns the HTTP handler of the media listener, middleware included.
func (s *Server) Handler() http.Handler { return s.handler }

// ServeHTTP serves r with [Server.Handler].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) buildHandler() http.Handler {
	mux := http.NewServeMux()
	// "GET" patterns also match HEAD.
	mux.HandleFunc("GET /stream", s.handleStream)
	mux.HandleFunc("GET /playlist.m3u", s.handlePlaylist)
	mux.HandleFunc("GET /hls/{session}/{resource}", s.handleHLS)
	mux.HandleFunc("GET /watch", s.handleWatch)
	mux.HandleFunc("GET /watch/session", s.handleWatchSession)
	mux.HandleFunc("GET /watch/state", s.handleWatchState)
	mux.HandleFunc("GET /watch/assets/{name}", s.handleWatchAsset)
	mux.HandleFunc("GET /health", s.handleHealth)
	mux.HandleFunc("OPTIONS /", s.handlePreflight)
	// Everything else gets the same 404 as a failed authorization.
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { writeNotFound(w) })

	var h http.Handler = mux
	h = canonicalPaths(h)
	h = s.cors(h)
	h = securityHeaders(h)
	h = s.writeDeadlines(h)
	h = s.accessLog(h)
	return h
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSONBody(w, r, s.healthBody)
}

// writeJSONBody answers 200 with body, JSON, not cached (no body to a HEAD).
func writeJSONBody(w http.ResponseWriter, r *http.Request, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// notFoundBody is the body of every 404 the server writes.
const notFoundBody = "404 page not found\n"

// writeNotFound writes the one 404 every failure gets. Its headers and body
// depend on nothing but the request's Origin (CORS, set by middleware).
func writeNotFound(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", fmt.Sprint(len(notFoundBody)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(notFoundBody))
}

// writeError maps an error met after authorization to a status and a short
// fixed message; the detail goes to the log.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var (
		code int
		msg  string
	)
	switch {
	case errors.Is(err, engine.ErrNotFound), errors.Is(err, hls.ErrNotFound),
		errors.Is(err, hls.ErrBadResource), errors.Is(err, engine.ErrNoPlayableFile):
		writeNotFound(w)
		return
	case errors.Is(err, errTooManyReaders):
		w.Header().Set("Retry-After", "1")
		code, msg = http.StatusServiceUnavailable, "too many readers, retry shortly"
	case errors.Is(err, hls.ErrNoFFmpeg):
		code, msg = http.StatusServiceUnavailable, "hls unavailable: ffmpeg and ffprobe are not installed on the daemon host (see torrentclaw doctor)"
	case errors.Is(err, errHLSUnavailable):
		code, msg = http.StatusServiceUnavailable, "hls unavailable: hls is disabled on this daemon"
	case errors.Is(err, engine.ErrPaused):
		w.Header().Set("Retry-After", "10")
		code, msg = http.StatusServiceUnavailable, "task paused"
	case errors.Is(err, engine.ErrDiskFull):
		// The task retries by itself once space is freed.
		w.Header().Set("Retry-After", "30")
		code, msg = http.StatusServiceUnavailable, "the daemon's download disk is full, retry later"
	case errors.Is(err, engine.ErrWrite):
		w.Header().Set("Retry-After", "30")
		code, msg = http.StatusServiceUnavailable, "the daemon cannot store data, retry later"
	case errors.Is(err, engine.ErrClosed), errors.Is(err, hls.ErrClosed):
		code, msg = http.StatusServiceUnavailable, "shutting down"
	case errors.Is(err, hls.ErrTooManySessions):
		w.Header().Set("Retry-After", "5")
		code, msg = http.StatusServiceUnavailable, "too many hls sessions, retry shortly"
	case r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		s.log.Debug("request cancelled", "route", r.Pattern, "err", err)
		return
	default:
		code, msg = http.StatusInternalServerError, "internal error"
	}
	if code == http.StatusInternalServerError {
		s.log.Warn("media request failed", "route", r.Pattern, "err", err)
	} else {
		s.log.Debug("media request refused", "route", r.Pattern, "status", code, "err", err)
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	http.Error(w, msg, code)
}

var (
	errTooManyReaders = errors.New("too many concurrent readers")
	errHLSUnavailable = errors.New("hls unavailable")
)
