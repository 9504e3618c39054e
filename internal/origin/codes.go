package origin

import "errors"

// Error codes the daemon reports to the origin (in [TaskState.ErrorMessage]
// and session-error). They are fixed strings: the text sent to the origin
// never carries a path, a host, a port, an HTTP status or anything else that
// would tell a hostile origin whether a local file exists or which address
// answered.
const (
	// CodeInvalidID: the entry's task ID breaks the task-ID rule
	// (1–128 characters of [A-Za-z0-9._~:-]).
	CodeInvalidID = "invalid_id"
	// CodeInvalidSource: the source is not a magnet: URI, an info hash or
	// an http(s) torrent URL (a file:// URL or a local path is refused
	// before any I/O).
	CodeInvalidSource = "invalid_source"
	// CodeInvalidEntry: the entry is malformed in another way.
	CodeInvalidEntry = "invalid_entry"
	// CodeFetchFailed: the torrent URL could not be fetched (refused,
	// unreachable, an HTTP error, too many redirects, a redirect to
	// another scheme, a body over 10 MiB, a timeout).
	CodeFetchFailed = "fetch_failed"
	// CodeBadTorrent: the fetched metainfo is not a usable torrent.
	CodeBadTorrent = "bad_torrent"
	// CodeNoSpace: the download disk is full.
	CodeNoSpace = "no_space"
	// CodeInternal: anything else.
	CodeInternal = "internal"
)

// codeMessages are the fixed human texts that go with each code.
var codeMessages = map[string]string{
	CodeInvalidID:     "invalid task id",
	CodeInvalidSource: "invalid source: want a magnet link, an info hash or an http(s) torrent url",
	CodeInvalidEntry:  "invalid entry",
	CodeFetchFailed:   "the torrent url could not be fetched",
	CodeBadTorrent:    "the torrent file is not valid",
	CodeNoSpace:       "the download disk is full",
	CodeInternal:      "internal error",
}

// Coded is implemented by errors that know their origin code. Sentinel
// errors of other packages (the engine's) implement it, so origin maps
// their errors without importing them.
type Coded interface {
	error
	Code() string
}

// ErrorCode returns the fixed code and message to report to the origin for
// err: the code of the outermost [Coded] error in its chain that names a
// known code, else [CodeInternal]. The message never depends on err's text.
func ErrorCode(err error) (code, message string) {
	for e := err; e != nil; {
		var c Coded
		if !errors.As(e, &c) {
			break
		}
		if msg, ok := codeMessages[c.Code()]; ok {
			return c.Code(), msg
		}
		e = errors.Unwrap(c)
	}
	return CodeInternal, codeMessages[CodeInternal]
}

// FailedState is the state reported for a task that could not be added or
// failed: status failed and "<code>: <message>" from [ErrorCode], never
// err's own text.
func FailedState(taskID string, err error) TaskState {
	code, msg := ErrorCode(err)
	return TaskState{TaskID: taskID, Status: StatusFailed, ErrorMessage: code + ": " + msg}
}

// codeOf is the code reported for an entry that failed validation.
func codeOf(err error) string {
	switch {
	case errors.Is(err, errMissingID), errors.Is(err, errMissingTaskID):
		return CodeInvalidID
	case errors.Is(err, errMissingSource), errors.Is(err, errBadSource):
		return CodeInvalidSource
	}
	return CodeInvalidEntry
}
