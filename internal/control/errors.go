package control

import (
	"context"
	"errors"
	"io/fs"
	"net/http"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/hls"
)

// ErrAlreadyRunning is returned by [Listen] when a daemon already answers on
// the socket path.
var ErrAlreadyRunning = errors.New("another daemon is already running")

// ErrNotRunning is returned by [Client] calls when nothing listens on the
// socket (no socket file, or a stale one).
var ErrNotRunning = errors.New("daemon is not running")

// ErrBadRequest reports a malformed or invalid request. A [Backend] wraps it
// for arguments it rejects (a file index out of range, …) to get a 400.
var ErrBadRequest = errors.New("bad request")

// errNoEndpoint is the reply to a method and path with no route.
var errNoEndpoint = errors.New("no such endpoint")

// errBrowser is the reply to any request carrying an Origin header.
var errBrowser = errors.New("browser requests are not allowed on the control socket")

// errorCode ties a sentinel to its HTTP status and wire code. The server maps
// errors to replies with it, and the client maps replies back to the same
// sentinels, so errors.Is works on both sides of the socket.
type errorCode struct {
	err    error
	status int
	code   string
}

// errorCodes is searched in order; the first sentinel errors.Is matches wins.
var errorCodes = []errorCode{
	{engine.ErrNotFound, http.StatusNotFound, "not_found"},
	{hls.ErrNotFound, http.StatusNotFound, "session_not_found"},
	{engine.ErrBadSource, http.StatusBadRequest, "bad_source"},
	{engine.ErrUnsafePath, http.StatusBadRequest, "unsafe_path"},
	{engine.ErrNoPlayableFile, http.StatusUnprocessableEntity, "no_playable_file"},
	{engine.ErrExists, http.StatusConflict, "exists"},
	{engine.ErrTooManyTasks, http.StatusTooManyRequests, "too_many_tasks"},
	{engine.ErrClosed, http.StatusServiceUnavailable, "shutting_down"},
	{hls.ErrNoFFmpeg, http.StatusServiceUnavailable, "no_ffmpeg"},
	{hls.ErrTooManySessions, http.StatusTooManyRequests, "too_many_sessions"},
	{hls.ErrExists, http.StatusConflict, "session_exists"},
	{hls.ErrClosed, http.StatusServiceUnavailable, "hls_closed"},
	{ErrBadRequest, http.StatusBadRequest, "bad_request"},
	{errBrowser, http.StatusForbidden, "forbidden"},
	{errNoEndpoint, http.StatusNotFound, "no_endpoint"},
	{fs.ErrNotExist, http.StatusBadRequest, "no_such_file"},
	{fs.ErrPermission, http.StatusBadRequest, "permission_denied"},
	{context.DeadlineExceeded, http.StatusGatewayTimeout, "timeout"},
}

const codeInternal = "internal"

// lookupError returns the entry for err, or a 500 entry.
func lookupError(err error) errorCode {
	for _, ec := range errorCodes {
		if errors.Is(err, ec.err) {
			return ec
		}
	}
	return errorCode{status: http.StatusInternalServerError, code: codeInternal}
}

// Error is an error reply from the daemon, as seen by a [Client]. Its message
// is the daemon's one-line description. errors.Is matches the sentinel the
// daemon reported (engine.ErrNotFound, engine.ErrBadSource,
// hls.ErrNoFFmpeg, [ErrBadRequest], …).
type Error struct {
	StatusCode int    // HTTP status of the reply
	Code       string // stable wire code ("not_found", "bad_source", …)
	Message    string
}

// Error returns the daemon's message.
func (e *Error) Error() string { return e.Message }

// Is reports whether target is the sentinel behind e's code.
func (e *Error) Is(target error) bool {
	for _, ec := range errorCodes {
		if ec.code == e.Code {
			return target == ec.err
		}
	}
	return false
}
