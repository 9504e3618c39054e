package daemon

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// originDaemonWith starts a daemon driven by f with cfg adjusted by mod.
func originDaemonWith(t *testing.T, f *fakeOrigin, logs *logBuffer, mod func(*config.Config), opts ...func(*Options)) *running {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.Origin.APIURL = f.URL()
	cfg.Origin.APIKey = testAPIKey
	cfg.Origin.Name = "test-agent"
	if mod != nil {
		mod(&cfg)
	}
	return startDaemon(t, cfg, logs, opts...)
}

// taskURL is the /stream URL of an origin task with token tok on r.
func taskURL(r *running, id, tok string) string {
	u := fmt.Sprintf("http://%s/stream?id=%s", r.d.MediaAddr(), id)
	if tok != "" {
		u += "&t=" + tok
	}
	return u
}

func TestStopStreamLocksTask(t *testing.T) {
	for _, require := range []bool{false, true} {
		t.Run(fmt.Sprintf("require_stream_token=%v", require), func(t *testing.T) {
			f := newFakeOrigin(t, testAPIKey)
			tok, _ := seededOriginTask(t, f, "t1", 1<<20, 21)
			r := originDaemonWith(t, f, nil, func(c *config.Config) { c.Stream.RequireStreamToken = require })
			eventually(t, 30*time.Second, "the origin token to open the task", func() bool {
				return statusOf(t, taskURL(r, "t1", tok)) == http.StatusOK
			})
			f.queueSync(map[string]any{"controls": []any{map[string]any{"action": "stop-stream", "taskId": "t1"}}})
			eventually(t, 30*time.Second, "stop-stream to end the token", func() bool {
				return statusOf(t, taskURL(r, "t1", tok)) == http.StatusNotFound
			})
			if code := statusOf(t, taskURL(r, "t1", "")); code != http.StatusNotFound {
				t.Errorf("GET without a token after stop-stream = %d, want 404", code)
			}
			st, err := r.client.Task(t.Context(), "t1")
			if err != nil {
				t.Fatal(err)
			}
			if !st.Token.Locked || st.Token.Set {
				t.Errorf("Task().Token = %+v, want locked with no grant", st.Token)
			}
			// A new token opens it again; the old one stays dead.
			tok2 := mintStr(t)
			f.queueSync(map[string]any{"controls": []any{map[string]any{"action": "stream", "taskId": "t1", "streamToken": tok2}}})
			eventually(t, 30*time.Second, "a new token", func() bool {
				return statusOf(t, taskURL(r, "t1", tok2)) == http.StatusOK
			})
			if code := statusOf(t, taskURL(r, "t1", tok)); code != http.StatusNotFound {
				t.Errorf("GET with the token stop-stream ended = %d, want 404", code)
			}
		})
	}
}

func TestGraceSurvivesTwoReplacements(t *testing.T) {
	f := newFakeOrigin(t, testAPIKey)
	tok0, _ := seededOriginTask(t, f, "t1", 1<<20, 22)
	r := originDaemonWith(t, f, nil, nil)
	eventually(t, 30*time.Second, "the first token", func() bool {
		return statusOf(t, taskURL(r, "t1", tok0)) == http.StatusOK
	})
	tok1, tok2 := mintStr(t), mintStr(t)
	f.queueSync(map[string]any{"streamRequests": []any{map[string]any{"taskId": "t1", "streamToken": tok1}}})
	eventually(t, 30*time.Second, "the second token", func() bool {
		return statusOf(t, taskURL(r, "t1", tok1)) == http.StatusOK
	})
	f.queueSync(map[string]any{"streamRequests": []any{map[string]any{"taskId": "t1", "streamToken": tok2}}})
	eventually(t, 30*time.Second, "the third token", func() bool {
		return statusOf(t, taskURL(r, "t1", tok2)) == http.StatusOK
	})
	// Both replaced tokens keep their grace (60 s by default).
	for i, tok := range []string{tok0, tok1} {
		if code := statusOf(t, taskURL(r, "t1", tok)); code != http.StatusOK {
			t.Errorf("replaced token %d within grace = %d, want 200", i, code)
		}
	}

	// The CLI adds grants and touches none: every stream keeps its URLs.
	var urls []string
	for range 3 {
		tr, err := r.client.IssueToken(t.Context(), "t1")
		if err != nil {
			t.Fatal(err)
		}
		urls = append(urls, tr.StreamURL)
	}
	for i, u := range urls {
		if code := statusOf(t, u); code != http.StatusOK {
			t.Errorf("CLI grant %d after later ones = %d, want 200", i, code)
		}
	}
	ti, err := r.client.Task(t.Context(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	if ti.Token.Grants < 4 || ti.Token.NextExpiry.IsZero() {
		t.Errorf("Task().Token = %+v, want at least 4 live grants with a next expiry", ti.Token)
	}
}

func TestRevokeEndsFFmpegGrant(t *testing.T) {
	e2eNeedFFmpeg(t)
	checkGoroutines(t)
	src := e2eMakeMediaSeconds(t, t.TempDir(), e2eCopyMP4, 8)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{})
	info := seeder.Add(t, src)
	var mu sync.Mutex
	var inputs []string
	r := startDaemon(t, testConfig(t, t.TempDir()), nil, func(o *Options) {
		o.inputHook = func(u string) {
			mu.Lock()
			inputs = append(inputs, u)
			mu.Unlock()
		}
	})
	ctx := t.Context()
	add, err := r.client.AddTask(ctx, control.AddRequest{Source: info.Magnet, FileIndex: -1})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := r.client.CreateHLS(ctx, add.TaskID, -1)
	if err != nil {
		t.Fatalf("CreateHLS() = %v", err)
	}
	mu.Lock()
	if len(inputs) != 1 {
		mu.Unlock()
		t.Fatalf("ffmpeg inputs = %d, want 1", len(inputs))
	}
	in := inputs[0]
	mu.Unlock()
	eventually(t, 60*time.Second, "the master playlist", func() bool {
		return statusOf(t, hs.HLSURL) == http.StatusOK
	})
	if code := statusOf(t, in); code != http.StatusOK {
		t.Fatalf("GET ffmpeg's input = %d, want 200", code)
	}
	// The input grant is scoped to its session and file: not the task.
	if code := statusOf(t, strings.Split(in, "&s=")[0]); code != http.StatusNotFound {
		t.Errorf("ffmpeg's token without its session = %d, want 404", code)
	}
	if code := statusOf(t, strings.Replace(in, "/stream?", "/playlist.m3u?", 1)); code != http.StatusNotFound {
		t.Errorf("ffmpeg's token on the playlist = %d, want 404", code)
	}
	// The session is bound to the grant it was made with: another grant of
	// the same task does not open it.
	other, err := r.client.IssueToken(ctx, add.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	otherTok := strings.Split(strings.Split(other.StreamURL, "&t=")[1], "&")[0]
	if code := statusOf(t, strings.Split(hs.HLSURL, "?t=")[0]+"?t="+otherTok); code != http.StatusNotFound {
		t.Errorf("HLS with another grant's token = %d, want 404", code)
	}

	if err := r.client.RevokeToken(ctx, add.TaskID); err != nil {
		t.Fatal(err)
	}
	for name, u := range map[string]string{"ffmpeg input": in, "hls": hs.HLSURL, "stream": add.StreamURL} {
		if code := statusOf(t, u); code != http.StatusNotFound {
			t.Errorf("GET %s after revoke = %d, want 404", name, code)
		}
	}
	ti, err := r.client.Task(ctx, add.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if !ti.Token.Locked || ti.HLSSessions != 0 {
		t.Errorf("after revoke: token %+v, %d hls sessions; want locked and none", ti.Token, ti.HLSSessions)
	}
}

func TestTokensForUnknownTasksNotStored(t *testing.T) {
	f := newFakeOrigin(t, testAPIKey)
	var sessions, requests []any
	for i := range 500 {
		id := fmt.Sprintf("ghost-%d", i)
		sessions = append(sessions, map[string]any{"sessionId": fmt.Sprintf("s-%d", i), "taskId": id, "streamToken": mintStr(t)})
		requests = append(requests, map[string]any{"taskId": id, "streamToken": mintStr(t)})
	}
	f.queueSync(map[string]any{"streamSessions": sessions, "streamRequests": requests})
	r := originDaemonWith(t, f, nil, nil)
	n := len(f.callsNamed("sync"))
	eventually(t, 30*time.Second, "two more syncs", func() bool { return len(f.callsNamed("sync")) > n+2 })
	if recs := r.d.tokens.Export(); len(recs) != 0 {
		t.Errorf("token table holds %d records for tasks that do not exist, want 0", len(recs))
	}
	if err := r.d.svc.Save(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(r.d.cfg.Torrent.DataDir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "ghost-") {
		t.Errorf("state file mentions unknown tasks")
	}
}

func TestHangingTorrentURLsDoNotStallSync(t *testing.T) {
	checkGoroutines(t)
	// release is closed at the end so the hanging handlers return.
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) })
	f := newFakeOrigin(t, testAPIKey)
	var nts []any
	for i := range 50 {
		nts = append(nts, map[string]any{"id": fmt.Sprintf("h%d", i), "mode": "download", "torrentUrl": fmt.Sprintf("%s/t%d.torrent", hang.URL, i)})
	}
	f.queueSync(map[string]any{"newTasks": nts})
	r := originDaemonWith(t, f, nil, nil)
	// The reply with 50 hanging fetches is applied at once: syncs go on at
	// their interval (100 ms here), long before a single fetch times out.
	eventually(t, 30*time.Second, "the reply applied", func() bool {
		st, err := r.client.Status(t.Context())
		return err == nil && len(st.Tasks) == 50
	})
	n := len(f.callsNamed("sync"))
	eventually(t, 15*time.Second, "syncs after the reply with hanging fetches", func() bool {
		return len(f.callsNamed("sync")) >= n+3
	})
	st, err := r.client.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range st.Tasks {
		if ti.State != "resolving" && ti.State != "queued" {
			t.Errorf("task %s state = %q, want resolving (or queued) while the .torrent URLs hang", ti.ID, ti.State)
			break
		}
	}
}

func TestRestartNeverRefetchesTorrentURL(t *testing.T) {
	src, sum := enginetest.WriteRandomFile(t, t.TempDir(), "film.mp4", 1<<20, 23)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{PieceLength: 64 << 10})
	info := seeder.Add(t, src)
	tpath, ih := enginetest.WriteTorrentFile(t, t.TempDir(), src, 64<<10)
	if ih != info.InfoHash {
		t.Fatalf("the .torrent (%s) is not the seeded torrent (%s)", ih, info.InfoHash)
	}
	body, err := os.ReadFile(tpath)
	if err != nil {
		t.Fatal(err)
	}
	var fetches atomic.Int32
	var down atomic.Bool
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if down.Load() {
			<-r.Context().Done() // a host that hangs is worse than one that is down
			return
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(ts.Close)

	f := newFakeOrigin(t, testAPIKey)
	tok := mintStr(t)
	f.queueSync(map[string]any{"newTasks": []any{map[string]any{
		"id": "u1", "mode": "stream", "torrentUrl": ts.URL + "/film.torrent", "streamToken": tok,
	}}})
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Origin.APIURL, cfg.Origin.APIKey = f.URL(), testAPIKey
	r := startDaemon(t, cfg, nil)
	// The task needs the seeder as a peer: the .torrent names no tracker.
	eventually(t, 30*time.Second, "the task added", func() bool {
		task, err := r.d.svc.Task("u1")
		if err != nil {
			return false
		}
		_ = task.AddPeers(info.Peer.String())
		return true
	})
	u := taskURL(r, "u1", tok)
	code, got := get(t, u)
	if code != http.StatusOK || sha(got) != sum {
		t.Fatalf("first run GET = %d, identical=%v", code, sha(got) == sum)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	before := fetches.Load()
	r2 := startDaemon(t, cfg, nil)
	code, got = get(t, taskURL(r2, "u1", tok))
	if code != http.StatusOK || sha(got) != sum {
		t.Fatalf("GET after restart with the .torrent host down = %d, identical=%v", code, sha(got) == sum)
	}
	if n := fetches.Load() - before; n != 0 {
		t.Errorf("the .torrent URL was fetched %d more times after the restart, want 0", n)
	}
}

func TestOriginLocalSourcesRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.torrent")
	if err := mkfifo(fifo); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"file-exists":  "file:///etc/passwd",
		"file-missing": "file:///no/such/file.torrent",
		"path-exists":  "/etc/passwd",
		"path-missing": "/no/such/file.torrent",
		"fifo":         fifo,
		"fifo-url":     "file://" + fifo,
	}
	f := newFakeOrigin(t, testAPIKey)
	var nts []any
	for id, src := range cases {
		nts = append(nts, map[string]any{"id": id, "mode": "download", "torrentUrl": src})
	}
	f.queueSync(map[string]any{"newTasks": nts})
	logs := &logBuffer{}
	r := originDaemonWith(t, f, logs, nil)
	n := len(f.callsNamed("sync"))
	eventually(t, 30*time.Second, "syncs after the reply", func() bool { return len(f.callsNamed("sync")) > n+3 })
	st, err := r.client.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Tasks) != 0 {
		t.Errorf("status has %d tasks, want none: local sources are refused", len(st.Tasks))
	}
	// Whatever the origin learns is the same for every case.
	msgs := map[string]bool{}
	for id := range cases {
		if s := f.lastTaskState(id); s != nil {
			msgs[fmt.Sprint(s["status"], s["errorMessage"])] = true
		} else {
			msgs["<none>"] = true
		}
	}
	if len(msgs) != 1 {
		t.Errorf("origin told different things for local sources: %v", msgs)
	}
	if strings.Contains(logs.String(), "root:") {
		t.Errorf("logs show the content of a local file")
	}
}

func TestOriginInvalidTaskIDSkipped(t *testing.T) {
	src, _ := enginetest.WriteRandomFile(t, t.TempDir(), "film.mp4", 1<<20, 24)
	info := enginetest.NewSeeder(t, enginetest.SeederOptions{}).Add(t, src)
	f := newFakeOrigin(t, testAPIKey)
	f.queueSync(map[string]any{"newTasks": []any{
		map[string]any{"id": "my task", "mode": "stream", "magnet": info.Magnet},
		map[string]any{"id": "ok-task", "mode": "stream", "magnet": info.Magnet},
	}})
	logs := &logBuffer{}
	r := originDaemonWith(t, f, logs, nil)
	eventually(t, 30*time.Second, "the valid task", func() bool {
		_, err := r.client.Task(t.Context(), "ok-task")
		return err == nil
	})
	st, err := r.client.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range st.Tasks {
		if ti.ID == "my task" {
			t.Errorf("task %q was added", ti.ID)
		}
	}
	eventually(t, 30*time.Second, "the invalid id reported or logged", func() bool {
		s := f.lastTaskState("my task")
		return (s != nil && s["status"] == "failed") || strings.Contains(logs.String(), "invalid")
	})
}

func TestRemovePauseResume(t *testing.T) {
	checkGoroutines(t)
	const size = 8 << 20
	src, sum := enginetest.WriteRandomFile(t, t.TempDir(), "film.mp4", size, 25)
	// A slow seeder, so the download is still going when it is paused.
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{UploadRateBytes: 1 << 20})
	info := seeder.Add(t, src)
	cfg := testConfig(t, t.TempDir())
	r := startDaemon(t, cfg, nil)
	ctx := t.Context()
	add, err := r.client.AddTask(ctx, control.AddRequest{Source: info.Magnet, FileIndex: -1})
	if err != nil {
		t.Fatal(err)
	}
	task := func() control.TaskInfo {
		ti, err := r.client.Task(ctx, add.TaskID)
		if err != nil {
			t.Fatal(err)
		}
		return ti
	}
	eventually(t, 60*time.Second, "some bytes", func() bool { return task().BytesFromPeers > 0 })
	if err := r.client.PauseTask(ctx, add.TaskID); err != nil {
		t.Fatal(err)
	}
	// Requests in flight when it paused may still land; then nothing moves.
	var settled int64
	eventually(t, 30*time.Second, "the transfer to settle", func() bool {
		a := task().BytesFromPeers
		time.Sleep(500 * time.Millisecond) // a window with no bytes, not synchronisation
		b := task().BytesFromPeers
		settled = b
		return a == b
	})
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		ti := task()
		if ti.State != "paused" {
			t.Fatalf("state while paused = %q", ti.State)
		}
		if ti.BytesFromPeers != settled {
			t.Fatalf("bytes from peers moved while paused: %d -> %d", settled, ti.BytesFromPeers)
		}
		time.Sleep(100 * time.Millisecond) // sampling a window, not synchronisation
	}
	if settled >= size {
		t.Fatalf("the download finished before it was paused (%d bytes); the seeder is too fast for this test", settled)
	}
	if err := r.client.ResumeTask(ctx, add.TaskID); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, add.StreamURL)
	if code != http.StatusOK || sha(body) != sum {
		t.Fatalf("GET after resume = %d, identical=%v", code, sha(body) == sum)
	}
	eventually(t, 60*time.Second, "the download complete", func() bool { return task().Progress >= 100 })
	// Nothing was fetched twice: the useful bytes received are the file.
	if got := task().BytesFromPeers; got > size {
		t.Errorf("bytes from peers = %d for a %d-byte file: data was downloaded twice", got, size)
	}

	// rm --delete-files: the URLs end and the files go.
	path := filepath.Join(cfg.Torrent.DownloadDir, task().Files[0].Path)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("downloaded file: %v", err)
	}
	if err := r.client.RemoveTask(ctx, add.TaskID, true); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{add.StreamURL, add.PlaylistURL} {
		if code := statusOf(t, u); code != http.StatusNotFound {
			t.Errorf("GET after rm = %d, want 404", code)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("file after rm --delete-files: stat = %v, want not exist", err)
	}
	if _, err := r.client.Task(ctx, add.TaskID); err == nil {
		t.Errorf("Task() after rm succeeded")
	}
}

func TestMaxActiveQueues(t *testing.T) {
	f := newFakeOrigin(t, testAPIKey)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{})
	var nts []any
	for i, mode := range []string{"download", "download", "stream"} {
		src, _ := enginetest.WriteRandomFile(t, t.TempDir(), fmt.Sprintf("f%d.mp4", i), 1<<20, int64(30+i))
		info := seeder.Add(t, src)
		nts = append(nts, map[string]any{"id": fmt.Sprintf("q%d", i), "mode": mode, "magnet": info.Magnet})
	}
	f.queueSync(map[string]any{"newTasks": nts})
	r := originDaemonWith(t, f, nil, func(c *config.Config) { c.Torrent.MaxActive = 1; c.Torrent.Seed = false })
	eventually(t, 30*time.Second, "the later tasks reported queued", func() bool {
		a, b := f.lastTaskState("q1"), f.lastTaskState("q2")
		return a != nil && b != nil && a["status"] == "queued" && b["status"] == "queued"
	})
	// Every task completes, one slot at a time; the stream task goes first.
	eventually(t, 60*time.Second, "every task complete", func() bool {
		st, err := r.client.Status(t.Context())
		if err != nil || len(st.Tasks) != 3 {
			return false
		}
		for _, ti := range st.Tasks {
			if ti.State != "completed" {
				return false
			}
		}
		return true
	})
	started := map[string]int{}
	for i, c := range f.callsNamed("status") {
		list, _ := c.Body["updates"].([]any)
		for _, e := range list {
			if m, ok := e.(map[string]any); ok && m["status"] != "queued" {
				if _, seen := started[m["taskId"].(string)]; !seen {
					started[m["taskId"].(string)] = i
				}
			}
		}
	}
	if started["q2"] > started["q1"] {
		t.Errorf("the stream task started after a download task queued before it: %v", started)
	}
}

func TestCorruptStateFileRecovered(t *testing.T) {
	for name, content := range map[string][]byte{
		"truncated": nil, // filled below from a real state file
		"empty":     {},
		"garbage":   []byte("\x00\x01not json at all"),
	} {
		t.Run(name, func(t *testing.T) {
			src, sum := enginetest.WriteRandomFile(t, t.TempDir(), "film.mp4", 1<<20, 26)
			seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{})
			info := seeder.Add(t, src)
			cfg := testConfig(t, t.TempDir())
			r := startDaemon(t, cfg, nil)
			add, err := r.client.AddTask(t.Context(), control.AddRequest{Source: info.Magnet, FileIndex: -1})
			if err != nil {
				t.Fatal(err)
			}
			if code, body := get(t, add.StreamURL); code != http.StatusOK || sha(body) != sum {
				t.Fatalf("first run GET = %d", code)
			}
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			if err := seeder.Engine().Close(); err != nil {
				t.Fatal(err)
			}
			statePath := filepath.Join(cfg.Torrent.DataDir, "state.json")
			if content == nil {
				b, err := os.ReadFile(statePath)
				if err != nil {
					t.Fatal(err)
				}
				content = b[:len(b)/2]
			}
			if err := os.WriteFile(statePath, content, 0o600); err != nil {
				t.Fatal(err)
			}
			stray := filepath.Join(cfg.Torrent.DataDir, ".state-123.json")
			if err := os.WriteFile(stray, []byte("{"), 0o600); err != nil {
				t.Fatal(err)
			}

			logs := &logBuffer{}
			r2 := startDaemon(t, cfg, logs)
			if !strings.Contains(logs.String(), "state file unreadable") {
				t.Errorf("no log line about the corrupt state file")
			}
			moved, _ := filepath.Glob(statePath + ".corrupt-*")
			if len(moved) != 1 {
				t.Errorf("corrupt state files moved aside = %v, want one", moved)
			}
			if _, err := os.Stat(stray); !os.IsNotExist(err) {
				t.Errorf("stray temp file still there: %v", err)
			}
			// The task is rebuilt from its saved metainfo, under its info hash.
			iss, err := r2.client.IssueToken(t.Context(), info.InfoHash)
			if err != nil {
				t.Fatalf("IssueToken(rebuilt task) = %v", err)
			}
			if code, body := get(t, iss.StreamURL); code != http.StatusOK || sha(body) != sum {
				t.Fatalf("GET the rebuilt task (no peers) = %d, identical=%v", code, sha(body) == sum)
			}
			checks, err := r2.client.Doctor(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, c := range checks {
				if c.Name == "state file" && c.Level == control.LevelWarn && strings.Contains(c.Detail, "moved to") {
					found = true
				}
			}
			if !found {
				t.Errorf("doctor does not report the corrupt state file: %+v", checks)
			}
			// doctor with no daemon running finds it too.
			if c := CheckState(cfg); c.Level != control.LevelWarn || !strings.Contains(c.Detail, ".corrupt-") {
				t.Errorf("CheckState() = %+v, want a warning naming the moved file", c)
			}
		})
	}
}

func TestTaskServiceRace(t *testing.T) {
	checkGoroutines(t)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{})
	var magnets []string
	for i := range 4 {
		src, _ := enginetest.WriteRandomFile(t, t.TempDir(), fmt.Sprintf("r%d.mp4", i), 512<<10, int64(40+i))
		magnets = append(magnets, seeder.Add(t, src).Magnet)
	}
	r := startDaemon(t, testConfig(t, t.TempDir()), nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < 40 && ctx.Err() == nil; i++ {
				m := magnets[rng.IntN(len(magnets))]
				add, err := r.client.AddTask(ctx, control.AddRequest{Source: m, FileIndex: -1})
				if err != nil {
					continue // removed by another worker while being added
				}
				switch rng.IntN(5) {
				case 0:
					_ = r.client.RemoveTask(ctx, add.TaskID, rng.IntN(2) == 0)
				case 1:
					_ = r.client.RevokeToken(ctx, add.TaskID)
				case 2:
					_, _ = r.client.IssueToken(ctx, add.TaskID)
				case 3:
					_ = r.client.PauseTask(ctx, add.TaskID)
					_ = r.client.ResumeTask(ctx, add.TaskID)
				case 4:
					_ = statusOf(t, add.StreamURL)
				}
				_, _ = r.client.Status(ctx)
			}
		})
	}
	wg.Wait()
	st, err := r.client.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Every task left is whole: in the service, the engine, and streamable.
	for _, ti := range st.Tasks {
		iss, err := r.client.IssueToken(t.Context(), ti.ID)
		if err != nil {
			t.Fatalf("IssueToken(%s) = %v", ti.ID, err)
		}
		if err := r.client.ResumeTask(t.Context(), ti.ID); err != nil {
			t.Fatalf("ResumeTask(%s) = %v", ti.ID, err)
		}
		if code := statusOf(t, iss.StreamURL); code != http.StatusOK {
			t.Errorf("task %s left unusable (state %s): GET = %d", ti.ID, ti.State, code)
		}
	}
}
