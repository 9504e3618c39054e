package origin

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodHash = "c9e15763f722f23e98a29decdfae341b98d53056"

// localPaths returns, for one temp dir, an existing regular file, a missing
// file and a FIFO: the three a hostile origin might name.
func localPaths(t *testing.T) (existing, missing, fifo string) {
	t.Helper()
	dir := t.TempDir()
	existing = filepath.Join(dir, "secret.torrent")
	if err := os.WriteFile(existing, []byte("d4:infod4:name1:xee"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing = filepath.Join(dir, "missing.torrent")
	fifo = filepath.Join(dir, "fifo.torrent")
	if err := mkfifo(fifo); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	return existing, missing, fifo
}

type sourceCase struct {
	name                         string
	infoHash, magnet, torrentURL string
	ok                           bool
}

func sourceCases(existing, missing, fifo string) []sourceCase {
	cases := []sourceCase{
		{name: "magnet", magnet: "magnet:?xt=urn:btih:" + goodHash, ok: true},
		{name: "magnet upper", magnet: "MAGNET:?xt=urn:btih:" + goodHash, ok: true},
		{name: "v1 hex", infoHash: goodHash, ok: true},
		{name: "v1 base32", infoHash: "ZHQVOY7XELZD5GFCTXWN7LRUDOMNKMCW", ok: true},
		{name: "v2 hex", infoHash: strings.Repeat("ab", 32), ok: true},
		{name: "http url", torrentURL: "http://tracker.example/t.torrent", ok: true},
		{name: "https url with port and query", torrentURL: "HTTPS://tracker.example:8443/get?id=1", ok: true},
		{name: "all three", infoHash: goodHash, magnet: "magnet:?xt=urn:btih:" + goodHash, torrentURL: "https://x.example/t", ok: true},
		{name: "short hash", infoHash: "abc"},
		{name: "zero hash", infoHash: strings.Repeat("0", 40)},
		{name: "magnet without query", magnet: "magnet:"},
		{name: "magnet with leading space", magnet: " magnet:?xt=urn:btih:" + goodHash},
		{name: "magnet field holds a url", magnet: "https://x.example/t.torrent"},
		{name: "ftp url", torrentURL: "ftp://x.example/t.torrent"},
		{name: "url without host", torrentURL: "http:///t.torrent"},
		{name: "url with user info", torrentURL: "http://user:pw@x.example/t"},
		{name: "javascript url", torrentURL: "javascript:alert(1)"},
		{name: "data url", torrentURL: "data:application/x-bittorrent;base64,ZA=="},
		{name: "relative url", torrentURL: "//x.example/t.torrent"},
	}
	for _, p := range []struct{ kind, path string }{{"existing file", existing}, {"missing file", missing}, {"fifo", fifo}} {
		for _, s := range []string{p.path, "file://" + p.path, "file://localhost" + p.path} {
			cases = append(cases,
				sourceCase{name: p.kind + " as torrentUrl " + s[:4], torrentURL: s},
				sourceCase{name: p.kind + " as magnet " + s[:4], magnet: s},
				sourceCase{name: p.kind + " as infoHash " + s[:4], infoHash: s},
			)
		}
	}
	cases = append(cases,
		sourceCase{name: "etc passwd url", torrentURL: "file:///etc/passwd"},
		sourceCase{name: "etc passwd path", torrentURL: "/etc/passwd"},
		sourceCase{name: "etc passwd magnet", magnet: "/etc/passwd"},
		sourceCase{name: "dot torrent name", torrentURL: "x.torrent"},
	)
	return cases
}

func newTaskJSON(id string, c sourceCase) string {
	m := map[string]any{"id": id}
	if c.infoHash != "" {
		m["infoHash"] = c.infoHash
	}
	if c.magnet != "" {
		m["magnet"] = c.magnet
	}
	if c.torrentURL != "" {
		m["torrentUrl"] = c.torrentURL
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestNewTaskSources checks the source rules: only magnet: URIs, info hashes
// and http(s) URLs pass; local paths, file:// URLs and FIFOs are refused with
// the same code and the same log text whether the file exists or not.
func TestNewTaskSources(t *testing.T) {
	existing, missing, fifo := localPaths(t)
	for _, tc := range sourceCases(existing, missing, fifo) {
		t.Run(tc.name, func(t *testing.T) {
			logs := newLogBuffer()
			r, err := DecodeSyncReply(logs.logger(), []byte(`{"newTasks":[`+newTaskJSON("t1", tc)+`]}`))
			if err != nil {
				t.Fatal(err)
			}
			if got := len(r.NewTasks) == 1; got != tc.ok {
				t.Fatalf("accepted = %v, want %v (rejected %+v)", got, tc.ok, r.Rejected)
			}
			if tc.ok {
				return
			}
			if want := []Rejected{{TaskID: "t1", Code: CodeInvalidSource}}; fmt.Sprint(r.Rejected) != fmt.Sprint(want) {
				t.Errorf("Rejected = %+v, want %+v", r.Rejected, want)
			}
			// The log says what was wrong, never the value, so it cannot
			// tell an existing file from a missing one.
			if want := "reason=\"invalid infoHash, magnet or torrentUrl\""; !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %s:\n%s", want, logs.String())
			}
			for _, p := range []string{existing, missing, fifo, "passwd"} {
				if strings.Contains(logs.String(), p) {
					t.Errorf("log names the source %q:\n%s", p, logs.String())
				}
			}
		})
	}
}

func TestInvalidTaskIDsRejected(t *testing.T) {
	body := `{"newTasks":[
		{"id":"my task","magnet":"magnet:?xt=urn:btih:` + goodHash + `"},
		{"id":"a/b","infoHash":"` + goodHash + `"},
		{"id":"` + strings.Repeat("x", 129) + `","infoHash":"` + goodHash + `"},
		{"id":"ok:1.a~b_c-d","infoHash":"` + goodHash + `"},
		{"id":"good-src-bad","torrentUrl":"file:///etc/passwd"},
		{"id":"` + strings.Repeat("y", 300) + `","infoHash":"` + goodHash + `"},
		{"id":"nul\u0000","infoHash":"` + goodHash + `"}],
		"controls":[{"action":"pause","taskId":"my task"},{"action":"nuke","taskId":"healthy"}],
		"streamSessions":[{"sessionId":"s1","taskId":"bad id"}]}`
	r, err := DecodeSyncReply(nil, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.NewTasks) != 1 || r.NewTasks[0].ID != "ok:1.a~b_c-d" {
		t.Errorf("NewTasks = %+v, want only ok:1.a~b_c-d", r.NewTasks)
	}
	want := []Rejected{
		{"my task", CodeInvalidID}, {"a/b", CodeInvalidID}, {strings.Repeat("x", 129), CodeInvalidID},
		{"good-src-bad", CodeInvalidSource}, {"bad id", CodeInvalidID},
	}
	// A 300-byte ID and one with a NUL are not echoed back; a malformed
	// control of a healthy task does not mark it failed; "my task" is
	// reported once.
	if fmt.Sprint(r.Rejected) != fmt.Sprint(want) {
		t.Errorf("Rejected =\n%+v\nwant\n%+v", r.Rejected, want)
	}
}

func TestReplyEntriesBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"newTasks":[`)
	for i := range maxEntries + 100 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":"t%d","infoHash":"%s"}`, i, goodHash)
	}
	b.WriteString(`],"controls":[`)
	for i := range maxEntries + 100 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"action":"pause","taskId":"bad id %d"}`, i)
	}
	b.WriteString(`]}`)
	logs := newLogBuffer()
	r, err := DecodeSyncReply(logs.logger(), []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.NewTasks) != maxEntries || len(r.Rejected) != maxEntries {
		t.Errorf("decoded %d new tasks, %d rejected; want %d each", len(r.NewTasks), len(r.Rejected), maxEntries)
	}
	if !strings.Contains(logs.String(), "origin reply entries dropped") {
		t.Errorf("no log line for the dropped entries:\n%s", logs.String())
	}
}

func TestReportBounded(t *testing.T) {
	l, err := NewLoop(LoopOptions{Client: &Client{}, Agent: newTestAgent()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxPendingTasks + 500 {
		l.Report(StatusUpdate{TaskID: fmt.Sprint("t", i), Status: StatusFailed})
	}
	l.Report(StatusUpdate{TaskID: "t0", Status: StatusSeeding}) // a queued task still updates
	l.mu.Lock()
	n, order, first := len(l.pending), len(l.order), l.pending["t0"].Status
	l.mu.Unlock()
	if n != maxPendingTasks || order != maxPendingTasks || first != StatusSeeding {
		t.Errorf("pending = %d, order = %d, t0 = %s; want %d, %d, seeding", n, order, first, maxPendingTasks, maxPendingTasks)
	}
}

type codedErr struct{ code string }

func (e codedErr) Error() string { return "engine detail: dial tcp 10.0.0.1:8080: connection refused" }
func (e codedErr) Code() string  { return e.code }

type wrapCoded struct {
	codedErr
	inner error
}

func (e wrapCoded) Unwrap() error { return e.inner }

func TestErrorCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code string
	}{
		{"nil", nil, CodeInternal},
		{"plain", errors.New("open /etc/passwd: no such file or directory"), CodeInternal},
		{"coded", codedErr{CodeFetchFailed}, CodeFetchFailed},
		{"wrapped", fmt.Errorf("add task: %w", codedErr{CodeBadTorrent}), CodeBadTorrent},
		{"joined", errors.Join(errors.New("x"), codedErr{CodeNoSpace}), CodeNoSpace},
		{"unknown code falls through", wrapCoded{codedErr{"bogus"}, codedErr{CodeInvalidSource}}, CodeInvalidSource},
		{"unknown code alone", codedErr{"bogus"}, CodeInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := ErrorCode(tc.err)
			if code != tc.code || msg != codeMessages[tc.code] {
				t.Errorf("ErrorCode(%v) = %q, %q; want %q, %q", tc.err, code, msg, tc.code, codeMessages[tc.code])
			}
			st := FailedState("t1", tc.err)
			if st.Status != StatusFailed || st.ErrorMessage != tc.code+": "+codeMessages[tc.code] {
				t.Errorf("FailedState = %+v", st)
			}
			if tc.err != nil && strings.Contains(st.ErrorMessage, "10.0.0.1") {
				t.Errorf("FailedState leaks the error text: %q", st.ErrorMessage)
			}
		})
	}
}

// TestLoopRefusesLocalSources runs the loop against a fake origin that
// sends local paths, file:// URLs and a FIFO: nothing reaches the agent but
// the valid task, every refused one is reported failed with the same text,
// and the loop keeps syncing.
func TestLoopRefusesLocalSources(t *testing.T) {
	checkGoroutines(t)
	existing, missing, fifo := localPaths(t)
	var entries []string
	ids := map[string]string{} // task ID -> case
	for i, c := range sourceCases(existing, missing, fifo) {
		if c.ok {
			continue
		}
		id := fmt.Sprint("bad", i)
		ids[id] = c.name
		entries = append(entries, newTaskJSON(id, c))
	}
	entries = append(entries, `{"id":"good","magnet":"magnet:?xt=urn:btih:`+goodHash+`"}`)
	f := newFakeOrigin(t)
	f.handle("sync", seqReply(`{"newTasks":[`+strings.Join(entries, ",")+`]}`, `{}`))
	f.handle("status", jsonReply(200, `{}`))
	h := startLoop(t, f, harnessOpts{})
	waitUntil(t, "apply", func() bool { return len(h.agent.applied()) == 1 })
	got := h.agent.applied()[0]
	if len(got.NewTasks) != 1 || got.NewTasks[0].ID != "good" {
		t.Errorf("applied %+v, want only the good task", got.NewTasks)
	}

	reported := func() map[string]string {
		out := map[string]string{}
		for _, c := range f.callsNamed("status") {
			var req StatusRequest
			if err := json.Unmarshal(c.Body, &req); err != nil {
				t.Fatal(err)
			}
			for _, u := range req.Updates {
				out[u.TaskID] = u.Status + " " + u.ErrorMessage
			}
		}
		return out
	}
	waitUntil(t, "every refused task reported", func() bool { return len(reported()) == len(ids) })
	want := StatusFailed + " " + CodeInvalidSource + ": " + codeMessages[CodeInvalidSource]
	for id, msg := range reported() {
		if msg != want {
			t.Errorf("%s (%s) reported %q, want %q", id, ids[id], msg, want)
		}
	}

	// The loop is not stuck: a wake brings another sync.
	n := f.count("sync")
	h.loop.SyncNow()
	waitUntil(t, "next sync", func() bool { return f.count("sync") > n })
	if err := h.stop(t); err != nil {
		t.Fatal(err)
	}
}

// FuzzCheckSources checks that no accepted source can name a local file: an
// accepted infoHash is a hash, an accepted magnet starts with magnet:?, an
// accepted torrentUrl is http(s) with a host.
func FuzzCheckSources(f *testing.F) {
	for _, c := range sourceCases("/tmp/e.torrent", "/tmp/m.torrent", "/tmp/fifo") {
		f.Add(c.infoHash, c.magnet, c.torrentURL)
	}
	f.Fuzz(func(t *testing.T, infoHash, magnet, torrentURL string) {
		if checkSources(infoHash, magnet, torrentURL) != nil {
			return
		}
		if infoHash != "" && (len(infoHash) != 32 && len(infoHash) != 40 && len(infoHash) != 64 || strings.ContainsAny(infoHash, "/\\.:")) {
			t.Errorf("accepted infoHash %q", infoHash)
		}
		if magnet != "" && !strings.HasPrefix(strings.ToLower(magnet), "magnet:?") {
			t.Errorf("accepted magnet %q", magnet)
		}
		if torrentURL != "" {
			low := strings.ToLower(torrentURL)
			if !strings.HasPrefix(low, "http://") && !strings.HasPrefix(low, "https://") {
				t.Errorf("accepted torrentUrl %q", torrentURL)
			}
		}
		for _, s := range []string{infoHash, magnet, torrentURL} {
			if strings.ContainsAny(s, "\x00\r\n") {
				t.Errorf("accepted a control character in %q", s)
			}
		}
	})
}
