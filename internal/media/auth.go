package media

import (
	"net/url"
	"strconv"

	"github.com/torrentclaw/cli/internal/ids"
	"github.com/torrentclaw/cli/internal/token"
)

// dummyTaskID stands in for a task ID that is malformed or unknown, so a
// failed request does the same verification work as a real one. The NUL byte
// keeps it from ever naming a real task.
const dummyTaskID = "\x00media-no-such-task"

const (
	maxTokenLen  = 256
	maxFileIndex = 1 << 20
)

// taskQuery is the parsed query of /stream and /playlist.m3u.
type taskQuery struct {
	id      string
	tok     string // as presented ("" when absent)
	file    int    // -1: the task's selected file
	session string // s=: the HLS session a session-bound grant was made for
	ok      bool   // false: malformed; the request must fail after the usual work
}

// scope is what the request asks a grant to cover: the file it names (-1
// when it names none, which only a task-wide grant covers) and the session
// it names.
func (q taskQuery) scope() token.Scope {
	return token.Scope{SessionID: q.session, File: q.file}
}

// parseTaskQuery parses "id=&t=[&file=][&s=]". Every parameter may appear at
// most once (a proxy and the daemon must not disagree on which one counts);
// unknown parameters (cache busters) are ignored. s names the HLS session of
// a session-bound grant (ffmpeg's input URL carries it); a task-wide grant
// covers any s.
func parseTaskQuery(rawQuery string, allowFile bool) taskQuery {
	q := taskQuery{file: -1}
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return q
	}
	id, okID := single(vals, "id")
	tok, okTok := single(vals, "t")
	sess, okSess := single(vals, "s")
	q.id, q.tok = id, tok
	if !okID || !okTok || !okSess || !ids.ValidTaskID(id) || len(tok) > maxTokenLen {
		return q
	}
	if sess != "" {
		if !allowFile || !ids.ValidSessionID(sess) {
			return q
		}
		q.session = sess
	}
	if f, present := vals["file"]; present {
		if !allowFile || len(f) != 1 {
			return q
		}
		n, err := strconv.Atoi(f[0])
		if err != nil || n < 0 || n > maxFileIndex {
			return q
		}
		q.file = n
	}
	q.ok = true
	return q
}

// single returns the only value of key; ok is false when it appears more than
// once. A missing key is ("", true).
func single(vals url.Values, key string) (string, bool) {
	v := vals[key]
	switch len(v) {
	case 0:
		return "", true
	case 1:
		return v[0], true
	default:
		return "", false
	}
}

// verify reports whether presented authorizes taskID for want in any of
// tables. When ok is false (malformed request, unknown session) it verifies
// against dummyTaskID instead and fails whatever the tables say. Every table
// is consulted whatever the outcome, so a failure costs the same work as a
// success, and the work does not depend on which table answered.
func verify(taskID, presented string, want token.Scope, ok bool, tables ...*token.Table) bool {
	if !ok {
		taskID = dummyTaskID
		want = token.TaskScope()
		if len(presented) > maxTokenLen {
			presented = presented[:maxTokenLen]
		}
	}
	authorized := false
	for _, t := range tables {
		if t == nil {
			continue
		}
		if t.Verify(taskID, presented, want) == nil {
			authorized = true
		}
	}
	return ok && authorized
}
