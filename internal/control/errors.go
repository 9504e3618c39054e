package control

import (
	"context"
	"errors"
	"io/fs"
	"net/http"

	"github.com/torrentclaw/cli/internal/tasks"
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

// ErrInProcess is the reply of a daemon that runs inside another terminal's
// `torrentclaw stream` to a request that would leave something in it: it
// stops when that command ends.
var ErrInProcess = errors.New("the running daemon belongs to another terminal's 'torrentclaw stream' and stops when it ends; " +
	"start a shared one with 'torrentclaw daemon' (or stop that stream first)")

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
	{tasks.ErrNotFound, http.StatusNotFound, "not_found"},
	{tasks.ErrSessionNotFound, http.StatusNotFound, "session_not_found"},
	{tasks.ErrBadSource, http.StatusBadRequest, "bad_source"},
	{tasks.ErrUnsafePath, http.StatusBadRequest, "unsafe_path"},
	{tasks.ErrInvalidID, http.StatusBadRequest, "invalid_id"},
	{tasks.ErrInvalidToken, http.StatusBadRequest, "invalid_token"},
	{tasks.ErrBadFile, http.StatusBadRequest, "bad_file"},
	{tasks.ErrNoPlayableFile, http.StatusUnprocessableEntity, "no_playable_file"},
	{tasks.ErrExists, http.StatusConflict, "exists"},
	{tasks.ErrFull, http.StatusTooManyRequests, "too_many_tasks"},
	{tasks.ErrClosed, http.StatusServiceUnavailable, "shutting_down"},
	{tasks.ErrNoFFmpeg, http.StatusServiceUnavailable, "no_ffmpeg"},
	{tasks.ErrTooManySessions, http.StatusTooManyRequests, "too_many_sessions"},
	{tasks.ErrSessionExists, http.StatusConflict, "session_exists"},
	{tasks.ErrHLSClosed, http.StatusServiceUnavailable, "hls_closed"},
	{ErrInProcess, http.StatusConflict, "in_process"},
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
// daemon reported (tasks.ErrNotFound, tasks.ErrBadSource,
// tasks.ErrNoFFmpeg, [ErrBadRequest], …).
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
