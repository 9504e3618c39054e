package media

import (
	"net/url"
	"strconv"

	"github.com/torrentclaw/cli/internal/token"
)

// dummyTaskID stands in for a task ID that is malformed or unknown, so a
// failed request does the same verification work as a real one. The NUL byte
// keeps it from ever naming a real task.
const dummyTaskID = "\x00media-no-such-task"

const (
	maxTaskIDLen = 256
	maxTokenLen  = 256
	maxFileIndex = 1 << 20
)

// taskQuery is the parsed query of /stream and /playlist.m3u.
type taskQuery struct {
	id   string
	tok  string // as presented ("" when absent)
	file int    // -1: the task's selected file
	ok   bool   // false: malformed; the request must fail after the usual work
}

// parseTaskQuery parses "id=&t=[&file=]". Every parameter may appear at most
// once (a proxy and the daemon must not disagree on which one counts);
// unknown parameters (cache busters) are ignored.
func parseTaskQuery(rawQuery string, allowFile bool) taskQuery {
	q := taskQuery{file: -1}
	vals, err := url.ParseQuery(rawQuery)
	if err != nil {
		return q
	}
	id, okID := single(vals, "id")
	tok, okTok := single(vals, "t")
	q.id, q.tok = id, tok
	if !okID || !okTok || !validTaskID(id) || len(tok) > maxTokenLen {
		return q
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

// validTaskID accepts the IDs an origin or the daemon may issue: 1..256
// printable ASCII characters without spaces.
func validTaskID(id string) bool {
	if id == "" || len(id) > maxTaskIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// verify reports whether presented authorizes taskID in any of tables. When
// ok is false (malformed request, unknown session) it verifies against
// dummyTaskID instead and fails whatever the tables say, so a failure costs
// the same work as a success. Every table is consulted on failure.
func verify(taskID, presented string, ok bool, tables ...*token.Table) bool {
	if !ok {
		taskID = dummyTaskID
		if len(presented) > maxTokenLen {
			presented = presented[:maxTokenLen]
		}
	}
	authorized := false
	for _, t := range tables {
		if t == nil {
			continue
		}
		if t.Verify(taskID, presented) == nil {
			authorized = true
			break
		}
	}
	return ok && authorized
}
