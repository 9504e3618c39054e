package control

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/torrentclaw/cli/internal/ids"
)

// Backend is what the control socket drives: the daemon implements it, and
// so does [Client], so a caller can use either. Errors wrap the owning
// package's sentinels (tasks.ErrNotFound, tasks.ErrBadSource,
// tasks.ErrNoFFmpeg, [ErrBadRequest], …); [Server] maps them to statuses and
// passes their text on unchanged, so they should say what failed
// (`task "x": not found`), on one line.
type Backend interface {
	Status(ctx context.Context) (StatusResponse, error)
	// AddTask adds a task (or finds the one that holds the source), mints
	// a grant and returns its URLs.
	AddTask(ctx context.Context, req AddRequest) (AddResponse, error)
	// Task reports one task with its files.
	Task(ctx context.Context, id string) (TaskInfo, error)
	// RemoveTask removes a task everywhere, optionally deleting its files.
	RemoveTask(ctx context.Context, id string, deleteFiles bool) error
	// PauseTask stops a task's transfers; ResumeTask restarts them.
	PauseTask(ctx context.Context, id string) error
	ResumeTask(ctx context.Context, id string) error
	// IssueToken mints a new token for a task, added as a grant.
	IssueToken(ctx context.Context, id string) (TokenResponse, error)
	// RevokeToken makes every URL of the task stop working at once.
	RevokeToken(ctx context.Context, id string) error
	// CreateHLS starts an HLS session for a task's file (-1 = selected).
	CreateHLS(ctx context.Context, id string, fileIndex int) (HLSResponse, error)
	// Seed makes a torrent of path (file or directory) and seeds it.
	Seed(ctx context.Context, path string) (SeedResponse, error)
	Doctor(ctx context.Context) ([]Check, error)
}

// Limits and timeouts of the control server.
const (
	maxBodyBytes      = 1 << 20
	maxHeaderBytes    = 64 << 10
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 60 * time.Second
	shutdownGrace     = 5 * time.Second
)

// Options configure a [Server].
type Options struct {
	Backend Backend      // required
	Logger  *slog.Logger // nil discards
	// OwnerKey, when set, marks a daemon run inside one `torrentclaw
	// stream` command: only requests carrying it in the [OwnerHeader]
	// header may change anything (the daemon stops when that command
	// ends, so another terminal must not leave tasks in it). Reads are
	// open to all.
	OwnerKey string
}

// OwnerHeader carries [Options.OwnerKey].
const OwnerHeader = "X-Torrentclaw-Owner"

// Server answers the control socket. It is safe for concurrent use.
type Server struct {
	backend  Backend
	log      *slog.Logger
	ownerKey string
}

// New returns a server for opts. It starts nothing.
func New(opts Options) (*Server, error) {
	if opts.Backend == nil {
		return nil, errors.New("control: backend is required")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{backend: opts.Backend, log: log.With("component", "control"), ownerKey: opts.OwnerKey}, nil
}

// Handler returns the routes under /v1/, wrapped in the middleware that
// refuses browsers, caps bodies and logs each request at debug level.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", s.handlePing)
	mux.HandleFunc("GET /v1/status", s.handleStatus)
	mux.HandleFunc("POST /v1/tasks", s.handleAddTask)
	mux.HandleFunc("GET /v1/tasks/{id}", s.handleTask)
	mux.HandleFunc("DELETE /v1/tasks/{id}", s.handleRemoveTask)
	mux.HandleFunc("POST /v1/tasks/{id}/pause", s.handlePause)
	mux.HandleFunc("POST /v1/tasks/{id}/resume", s.handleResume)
	mux.HandleFunc("POST /v1/tasks/{id}/token", s.handleIssueToken)
	mux.HandleFunc("DELETE /v1/tasks/{id}/token", s.handleRevokeToken)
	mux.HandleFunc("POST /v1/tasks/{id}/hls", s.handleCreateHLS)
	mux.HandleFunc("POST /v1/seed", s.handleSeed)
	mux.HandleFunc("GET /v1/doctor", s.handleDoctor)
	mux.HandleFunc("/", s.handleUnknown)
	return s.middleware(mux)
}

// Serve answers requests on ln until ctx is done, then shuts down gracefully
// and closes ln (which removes the socket file when ln came from [Listen]).
// It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// Requests inherit ctx, so in-flight calls stop when the daemon does.
		BaseContext: func(net.Listener) context.Context { return ctx },
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	// errc is buffered so the serving goroutine never blocks on exit.
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("control: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("control: shutdown: %w", err), srv.Close())
	}
	<-errc // http.ErrServerClosed
	return err
}

// middleware applies the checks every request gets.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		// A browser can be tricked into talking to local sockets through
		// proxies or tunnels; it always sends Origin on such requests, the
		// CLI never does.
		switch {
		case r.Header.Get("Origin") != "":
			s.writeError(rec, r, errBrowser)
		case s.ownerKey != "" && r.Method != http.MethodGet &&
			subtle.ConstantTimeCompare([]byte(r.Header.Get(OwnerHeader)), []byte(s.ownerKey)) != 1:
			s.writeError(rec, r, ErrInProcess)
		default:
			r.Body = http.MaxBytesReader(rec, r.Body, maxBodyBytes)
			next.ServeHTTP(rec, r)
		}
		s.log.Debug("control request", "method", r.Method, "route", r.Pattern,
			"status", rec.status, "dur_ms", float64(time.Since(start).Microseconds())/1000)
	})
}

// statusRecorder remembers the status written, for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) handlePing(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, PingResponse{OK: true, PID: os.Getpid(), InProcess: s.ownerKey != ""})
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	st, err := s.backend.Status(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if st.Tasks == nil {
		st.Tasks = []TaskInfo{}
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleAddTask(w http.ResponseWriter, r *http.Request) {
	req := AddRequest{FileIndex: -1}
	if err := decodeBody(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	req.Source = strings.TrimSpace(req.Source)
	if req.Source == "" {
		s.writeError(w, r, fmt.Errorf("%w: source is required", ErrBadRequest))
		return
	}
	if req.FileIndex < -1 {
		s.writeError(w, r, fmt.Errorf("%w: file index must be -1 or more", ErrBadRequest))
		return
	}
	resp, err := s.backend.AddTask(r.Context(), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) handleTask(w http.ResponseWriter, r *http.Request) {
	id, err := taskID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	info, err := s.backend.Task(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (s *Server) handleRemoveTask(w http.ResponseWriter, r *http.Request) {
	id, err := taskID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	deleteFiles := false
	if v := r.URL.Query().Get("deleteFiles"); v != "" {
		deleteFiles, err = strconv.ParseBool(v)
		if err != nil {
			s.writeError(w, r, fmt.Errorf("%w: deleteFiles must be true or false", ErrBadRequest))
			return
		}
	}
	if err := s.backend.RemoveTask(r.Context(), id, deleteFiles); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handlePause(w http.ResponseWriter, r *http.Request) {
	s.handleSetPaused(w, r, s.backend.PauseTask)
}

func (s *Server) handleResume(w http.ResponseWriter, r *http.Request) {
	s.handleSetPaused(w, r, s.backend.ResumeTask)
}

func (s *Server) handleSetPaused(w http.ResponseWriter, r *http.Request, f func(context.Context, string) error) {
	id, err := taskID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := f(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleIssueToken(w http.ResponseWriter, r *http.Request) {
	id, err := taskID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp, err := s.backend.IssueToken(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	id, err := taskID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.backend.RevokeToken(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleCreateHLS(w http.ResponseWriter, r *http.Request) {
	id, err := taskID(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req := HLSRequest{FileIndex: -1}
	if err := decodeBody(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.FileIndex < -1 {
		s.writeError(w, r, fmt.Errorf("%w: file index must be -1 or more", ErrBadRequest))
		return
	}
	resp, err := s.backend.CreateHLS(r.Context(), id, req.FileIndex)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) handleSeed(w http.ResponseWriter, r *http.Request) {
	var req SeedRequest
	if err := decodeBody(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Path == "" {
		s.writeError(w, r, fmt.Errorf("%w: path is required", ErrBadRequest))
		return
	}
	resp, err := s.backend.Seed(r.Context(), req.Path)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleDoctor(w http.ResponseWriter, r *http.Request) {
	checks, err := s.backend.Doctor(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if checks == nil {
		checks = []Check{}
	}
	writeJSON(w, http.StatusOK, DoctorResponse{Checks: checks})
}

func (s *Server) handleUnknown(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, fmt.Errorf("%w: %s %s", errNoEndpoint, r.Method, r.URL.Path))
}

// writeError is the one place errors become replies. The socket is
// owner-only and is where full diagnostics live, so the message is the
// error's own text, on one line.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ec := lookupError(err)
	if ec.code == codeInternal {
		s.log.Error("control request failed", "method", r.Method, "route", r.Pattern, "err", err)
	}
	msg := strings.Join(strings.Fields(err.Error()), " ")
	writeJSON(w, ec.status, errorBody{Error: msg, Code: ec.code})
}

// writeJSON writes v with status. An encoding failure after the header is
// out can only be a broken connection, which nobody can be told about.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decodeBody decodes a JSON body into v. An empty body leaves v as is.
func decodeBody(r *http.Request, v any) error {
	err := json.NewDecoder(r.Body).Decode(v)
	switch {
	case err == nil, errors.Is(err, io.EOF):
		return nil
	default:
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("%w: body larger than %d bytes", ErrBadRequest, mbe.Limit)
		}
		return fmt.Errorf("%w: invalid json body: %v", ErrBadRequest, err)
	}
}

// taskID returns the {id} path value, checked for shape only.
func taskID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !ids.ValidTaskID(id) {
		return "", fmt.Errorf("%w: invalid task id", ErrBadRequest)
	}
	return id, nil
}
