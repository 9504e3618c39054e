package engine

import "errors"

// codedError is a sentinel that also names the fixed code the daemon reports to the web
// origin for it (origin.ErrorCode finds it through its Code method), so a hostile origin
// learns the kind of failure and nothing else: not whether a file exists, nor which host
// or port answered.
type codedError struct {
	msg, code string
	parent    error // a broader sentinel this one also matches, or nil
}

func (e *codedError) Error() string { return e.msg }

// Code returns the origin error code.
func (e *codedError) Code() string { return e.code }

func (e *codedError) Unwrap() error { return e.parent }

var (
	// ErrNotFound reports an unknown task or file.
	ErrNotFound = errors.New("not found")
	// ErrBadSource reports a source that is not a valid magnet link, infohash, .torrent file
	// or .torrent URL (or, from [ParseOriginSource], a local file), or whose metainfo is
	// malformed (see [ErrBadTorrent]).
	ErrBadSource error = &codedError{msg: "bad source", code: "invalid_source"}
	// ErrBadTorrent reports metainfo that is not a usable torrent. It matches [ErrBadSource].
	ErrBadTorrent error = &codedError{msg: "bad torrent", code: "bad_torrent", parent: ErrBadSource}
	// ErrFetch reports a .torrent URL that could not be fetched: refused, unreachable, an
	// HTTP error, too many redirects or one to another scheme, a body over 10 MiB, a timeout.
	ErrFetch error = &codedError{msg: "fetch torrent", code: "fetch_failed"}
	// ErrUnsafePath reports a torrent whose files cannot be stored safely under the download
	// directory, or a path that cannot be seeded as is.
	ErrUnsafePath error = &codedError{msg: "unsafe path", code: "bad_torrent"}
	// ErrNoPlayableFile reports a torrent without a video file to stream.
	ErrNoPlayableFile = errors.New("no playable file")
	// ErrExists reports a task ID or infohash that is already in use by another task.
	ErrExists = errors.New("task exists")
	// ErrTooManyTasks reports that [Options.MaxActive] tasks are already active.
	ErrTooManyTasks = errors.New("too many active tasks")
	// ErrClosed reports use of a closed engine.
	ErrClosed = errors.New("engine closed")
	// ErrPaused reports a read that needs data from a paused task.
	ErrPaused = errors.New("task paused")
	// ErrDiskFull reports a task stopped because the download directory is full; the error
	// names the directory and wraps syscall.ENOSPC. [Engine.Resume] retries.
	ErrDiskFull error = &codedError{msg: "disk full", code: "no_space"}
	// ErrWrite reports a task stopped because its data could not be stored for another
	// reason. [Engine.Resume] retries.
	ErrWrite = errors.New("write error")
)

// ExistsError reports that a torrent is already held by another task: TaskID is that task.
// It matches [ErrExists] with errors.Is.
type ExistsError struct {
	TaskID   string
	InfoHash string
}

func (e *ExistsError) Error() string {
	return "task exists: infohash " + e.InfoHash + " is task " + e.TaskID
}

// Is reports whether target is [ErrExists].
func (e *ExistsError) Is(target error) bool { return target == ErrExists }
