package engine

import "errors"

var (
	// ErrNotFound reports an unknown task or file.
	ErrNotFound = errors.New("not found")
	// ErrBadSource reports a source that is not a valid magnet link, infohash, .torrent file
	// or .torrent URL, or whose metainfo is malformed.
	ErrBadSource = errors.New("bad source")
	// ErrUnsafePath reports a torrent whose files cannot be stored safely under the download
	// directory, or a path that cannot be seeded as is.
	ErrUnsafePath = errors.New("unsafe path")
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
	ErrDiskFull = errors.New("disk full")
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
