package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/enginetest"
	"github.com/torrentclaw/cli/internal/logtest"
	"github.com/torrentclaw/cli/internal/token"
)

const testAPIKey = "tck_live_0123456789abcdef0123456789abcdef"

// logBuffer collects every log line of a test so it can be searched for
// secrets; it is safe for concurrent use.
type logBuffer = logtest.Buffer

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func testConfig(t testing.TB, dir string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Stream.Listen = "127.0.0.1"
	cfg.Stream.Port = freePort(t)
	cfg.Torrent.DataDir = filepath.Join(dir, "data")
	cfg.Torrent.DownloadDir = filepath.Join(dir, "downloads")
	cfg.HLS.Dir = filepath.Join(dir, "hls")
	cfg.Torrent.ListenPort = 0
	cfg.Torrent.ListenAddr = "127.0.0.1"
	cfg.Torrent.DHT = false
	cfg.Torrent.Trackers = nil
	return cfg
}

type running struct {
	d      *Daemon
	cancel context.CancelFunc
	done   chan error
	logs   *logBuffer
	client *control.Client
	result func() error // waits for Run once and returns its result
}

// stop shuts the daemon down and returns Run's result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.result()
}

var fastIntervals = Intervals{
	Sync:        100 * time.Millisecond,
	Watching:    50 * time.Millisecond,
	BackoffBase: 20 * time.Millisecond,
	BackoffMax:  200 * time.Millisecond,
	SSELiveness: time.Second,
}

// startDaemon runs a daemon for cfg until the test ends; mods adjust its
// Options (test hooks) before New.
func startDaemon(t testing.TB, cfg config.Config, logs *logBuffer, mods ...func(*Options)) *running {
	t.Helper()
	if logs == nil {
		logs = &logBuffer{}
	}
	opts := Options{
		Config:    cfg,
		Version:   "test",
		Logger:    slog.New(slog.NewTextHandler(io.MultiWriter(logs, t.Output()), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Intervals: fastIntervals,
	}
	for _, mod := range mods {
		mod(&opts)
	}
	d, err := New(opts)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { r.done <- d.Run(ctx) }()
	select {
	case <-d.Ready():
	case err := <-r.done:
		cancel()
		t.Fatalf("Run() ended before ready: %v", err)
	case <-time.After(2 * time.Minute): // a hang guard: generous for a loaded machine
		cancel()
		t.Fatal("daemon not ready within 2 minutes")
	}
	r.client = control.NewClient(d.SocketPath())
	r.result = sync.OnceValue(func() error {
		select {
		case err := <-r.done:
			return err
		case <-time.After(2 * time.Minute): // a hang guard: generous for a loaded machine
			return errors.New("daemon did not stop within 2 minutes")
		}
	})
	t.Cleanup(func() {
		_ = r.client.Close()
		cancel()
		if err := r.result(); err != nil {
			t.Errorf("Run() = %v", err)
		}
	})
	return r
}

// eventually polls cond until it is true or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	// The deadline only turns a hang into a failure; generous so a loaded machine never
	// reaches it (tests never assert timings).
	within = max(within, 2*time.Minute)
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline, not synchronising
	}
}

func get(t testing.TB, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET body: %v", err)
	}
	return resp.StatusCode, b
}

// statusOf returns the status of a GET of url, reading at most one byte of
// the body (a task may be removed while it is read).
func statusOf(t testing.TB, url string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Range", "bytes=0-0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusPartialContent {
		return http.StatusOK
	}
	return resp.StatusCode
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkGoroutines fails the test when goroutines started during it are still
// running shortly after cleanup.
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before+2 {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:n])
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

func assertNoSecrets(t *testing.T, logs string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			t.Errorf("logs contain a secret (%d chars)", len(s))
		}
	}
}

func TestStandaloneStream(t *testing.T) {
	dir := t.TempDir()
	src, sum := enginetest.WriteRandomFile(t, t.TempDir(), "movie.mp4", 3<<20, 1)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{})
	info := seeder.Add(t, src)

	r := startDaemon(t, testConfig(t, dir), nil)
	ctx := t.Context()
	add, err := r.client.AddTask(ctx, control.AddRequest{Source: info.Magnet, FileIndex: -1})
	if err != nil {
		t.Fatalf("AddTask() error = %v", err)
	}
	code, body := get(t, add.StreamURL)
	if code != http.StatusOK || sha(body) != sum {
		t.Fatalf("GET stream = %d, %d bytes (sha ok=%v); want 200 and identical bytes", code, len(body), sha(body) == sum)
	}
	// Without, or with a wrong, token: the standard 404.
	noTok := strings.Split(add.StreamURL, "&t=")[0]
	if code, _ := get(t, noTok); code != http.StatusNotFound {
		t.Errorf("GET stream without token = %d, want 404", code)
	}
	code, pl := get(t, add.PlaylistURL)
	if code != http.StatusOK || !strings.HasPrefix(string(pl), "#EXTM3U") {
		t.Errorf("GET playlist = %d %q", code, pl)
	}
	st, err := r.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(st)
	if strings.Contains(string(b), add.Token.Reveal()) {
		t.Errorf("status output contains the token")
	}
	if len(st.Tasks) != 1 || !st.Tasks[0].Token.Set {
		t.Errorf("status tasks = %+v, want one task with a token set", st.Tasks)
	}
	// Streaming the same torrent again reuses the task with a new token.
	again, err := r.client.AddTask(ctx, control.AddRequest{Source: info.Magnet, FileIndex: -1})
	if err != nil {
		t.Fatalf("AddTask(same magnet) error = %v", err)
	}
	if again.TaskID != add.TaskID || again.Token == add.Token {
		t.Errorf("AddTask(same magnet) = task %s (new token %v), want task %s with a new token", again.TaskID, again.Token != add.Token, add.TaskID)
	}
	if code, _ := get(t, again.StreamURL); code != http.StatusOK {
		t.Errorf("GET with the new token = %d, want 200", code)
	}
	// token revoke: the URL dies at once, no grace, and the task does not
	// fall back to token-less even though require_stream_token is off.
	if err := r.client.RevokeToken(ctx, add.TaskID); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{add.StreamURL, again.StreamURL} {
		if code, _ := get(t, u); code != http.StatusNotFound {
			t.Errorf("GET after revoke = %d, want 404", code)
		}
	}
	if code, _ := get(t, noTok); code != http.StatusNotFound {
		t.Errorf("GET token-less after revoke = %d, want 404", code)
	}
	// token issue opens it again with a new token.
	iss, err := r.client.IssueToken(ctx, add.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, iss.StreamURL); code != http.StatusOK {
		t.Errorf("GET with issued token = %d, want 200", code)
	}
	assertNoSecrets(t, r.logs.String(), add.Token.Reveal())
}

func TestRequireStreamToken(t *testing.T) {
	dir := t.TempDir()
	src, _ := enginetest.WriteRandomFile(t, t.TempDir(), "movie.mkv", 1<<20, 2)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{})
	info := seeder.Add(t, src)
	cfg := testConfig(t, dir)
	cfg.Stream.RequireStreamToken = true
	r := startDaemon(t, cfg, nil)
	add, err := r.client.AddTask(t.Context(), control.AddRequest{Source: info.Magnet, FileIndex: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.client.RevokeToken(t.Context(), add.TaskID); err != nil {
		t.Fatal(err)
	}
	noTok := strings.Split(add.StreamURL, "&t=")[0]
	if code, _ := get(t, noTok); code != http.StatusNotFound {
		t.Errorf("token-less task with require on = %d, want 404", code)
	}
	if code, _ := get(t, add.StreamURL); code != http.StatusNotFound {
		t.Errorf("revoked token = %d, want 404", code)
	}
}

func TestUPnPWithoutTokensRefused(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.UPnP.Enabled = true
	cfg.Stream.RequireStreamToken = false
	_, err := New(Options{Config: cfg})
	if !errors.Is(err, ErrUPnPWithoutTokens) {
		t.Fatalf("New(upnp on, tokens optional) = %v, want ErrUPnPWithoutTokens", err)
	}
	if !strings.Contains(err.Error(), "require_stream_token") {
		t.Errorf("error %q does not say what to set", err)
	}
}

func TestMediaPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t, t.TempDir())
	cfg.Stream.Port = ln.Addr().(*net.TCPAddr).Port
	d, err := New(Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Run(t.Context())
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "stream.port") {
		t.Fatalf("Run() with a busy port = %v, want ErrPortInUse naming stream.port", err)
	}
}

func TestSecondDaemonRefused(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	startDaemon(t, cfg, nil)
	cfg2 := cfg
	cfg2.Stream.Port = freePort(t)
	d, err := New(Options{Config: cfg2})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Run(t.Context()); !errors.Is(err, control.ErrAlreadyRunning) {
		t.Fatalf("second Run() on the same data dir = %v, want ErrAlreadyRunning", err)
	}
}

// originDaemon starts a daemon driven by a fake origin.
func originDaemon(t *testing.T, dir string, f *fakeOrigin, logs *logBuffer) *running {
	t.Helper()
	cfg := testConfig(t, dir)
	cfg.Origin.APIURL = f.URL()
	cfg.Origin.APIKey = testAPIKey
	cfg.Origin.Name = "test-agent"
	return startDaemon(t, cfg, logs)
}

func mintStr(t *testing.T) string {
	t.Helper()
	tok, err := token.Mint()
	if err != nil {
		t.Fatal(err)
	}
	return tok.Reveal()
}

// reportedStreamURL waits for the origin to be told a LAN stream URL.
func reportedStreamURL(t *testing.T, f *fakeOrigin, taskID, wantToken string) string {
	t.Helper()
	return reportedURLs(t, f, taskID, func(u map[string]string) bool {
		return u["lan"] != "" && strings.Contains(u["lan"], "t="+wantToken)
	})["lan"]
}

// seededOriginTask seeds a random file of size bytes and queues it on f as
// stream task id with a fresh token. It returns the token and the file's
// sha256.
func seededOriginTask(t *testing.T, f *fakeOrigin, id string, size, seed int64) (tok, sum string) {
	t.Helper()
	src, sum := enginetest.WriteRandomFile(t, t.TempDir(), "film.mp4", size, seed)
	info := enginetest.NewSeeder(t, enginetest.SeederOptions{}).Add(t, src)
	tok = mintStr(t)
	f.queueSync(map[string]any{"newTasks": []any{map[string]any{
		"id": id, "infoHash": info.InfoHash, "mode": "stream", "magnet": info.Magnet, "streamToken": tok,
	}}})
	return tok, sum
}

// reportedURLs waits for the origin to be told stream URLs for taskID that
// satisfy ok, and returns them.
func reportedURLs(t *testing.T, f *fakeOrigin, taskID string, ok func(map[string]string) bool) map[string]string {
	t.Helper()
	var urls map[string]string
	eventually(t, 30*time.Second, "reported stream URLs", func() bool {
		st := f.lastTaskState(taskID)
		if st == nil {
			return false
		}
		s, _ := st["streamUrl"].(string)
		urls = nil
		return json.Unmarshal([]byte(s), &urls) == nil && ok(urls)
	})
	return urls
}

func TestOriginTaskWithToken(t *testing.T) {
	checkGoroutines(t)
	src, sum := enginetest.WriteRandomFile(t, t.TempDir(), "film.mp4", 2<<20, 3)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{})
	info := seeder.Add(t, src)
	f := newFakeOrigin(t, testAPIKey)
	tok := mintStr(t)
	f.queueSync(map[string]any{"newTasks": []any{map[string]any{
		"id": "task-1", "infoHash": info.InfoHash, "title": "Film", "mode": "stream",
		"magnet": info.Magnet, "streamToken": tok, "unknownField": 42,
	}}})
	logs := &logBuffer{}
	r := originDaemon(t, t.TempDir(), f, logs)

	// register carries the bound media port and the identity.
	eventually(t, 10*time.Second, "register", func() bool { return len(f.callsNamed("register")) > 0 })
	reg := f.callsNamed("register")[0]
	if got := int(reg.Body["streamPort"].(float64)); got != int(r.d.MediaAddr().Port()) {
		t.Errorf("register streamPort = %d, want %d", got, r.d.MediaAddr().Port())
	}
	if reg.Auth != "Bearer "+testAPIKey || !strings.HasPrefix(reg.UA, "torrentclaw/") {
		t.Errorf("register headers: auth ok=%v ua=%q", reg.Auth == "Bearer "+testAPIKey, reg.UA)
	}

	lan := reportedStreamURL(t, f, "task-1", tok)
	code, body := get(t, lan)
	if code != http.StatusOK || sha(body) != sum {
		t.Fatalf("GET reported stream URL = %d, identical=%v", code, sha(body) == sum)
	}
	if code, _ := get(t, strings.Replace(lan, tok, mintStr(t), 1)); code != http.StatusNotFound {
		t.Errorf("GET with another token = %d, want 404", code)
	}
	eventually(t, 30*time.Second, "streamReady reported", func() bool {
		st := f.lastTaskState("task-1")
		return st != nil && st["streamReady"] == true
	})
	for _, c := range append(f.callsNamed("sync"), f.callsNamed("status")...) {
		for _, key := range []string{"tasks", "updates"} {
			list, _ := c.Body[key].([]any)
			for _, e := range list {
				if m, ok := e.(map[string]any); ok && m["eta"].(float64) < 0 {
					t.Errorf("%s reported eta %v; the wire says 0 when unknown", c.Name, m["eta"])
				}
			}
		}
	}
	r.stop(t)
	if n := len(f.callsNamed("deregister")); n != 1 {
		t.Errorf("deregister calls = %d, want 1", n)
	}
	assertNoSecrets(t, logs.String(), testAPIKey, tok)
}

func TestOriginTokenCarriers(t *testing.T) {
	f := newFakeOrigin(t, testAPIKey)
	tok0, _ := seededOriginTask(t, f, "t1", 1<<20, 4)
	logs := &logBuffer{}
	originDaemon(t, t.TempDir(), f, logs)
	lan := reportedStreamURL(t, f, "t1", tok0)
	base := strings.Split(lan, "&t=")[0]
	url := func(tok string) string { return base + "&t=" + tok }

	carriers := []struct {
		name  string
		queue func(tok string)
	}{
		{"controls stream", func(tok string) {
			f.queueSync(map[string]any{"controls": []any{map[string]any{"action": "stream", "taskId": "t1", "streamToken": tok}}})
		}},
		{"streamRequests", func(tok string) {
			f.queueSync(map[string]any{"streamRequests": []any{map[string]any{"taskId": "t1", "streamToken": tok}}})
		}},
		{"status result", func(tok string) {
			f.queueStatusResult(map[string]any{"taskId": "t1", "streamRequested": true, "streamToken": tok})
		}},
	}
	prev := tok0
	for _, c := range carriers {
		tok := mintStr(t)
		c.queue(tok)
		eventually(t, 30*time.Second, c.name+" token accepted", func() bool {
			code, _ := get(t, url(tok)+"&file=0")
			return code == http.StatusOK || code == http.StatusPartialContent
		})
		// The previous token stays valid within the grace period.
		if code, _ := get(t, url(prev)); code != http.StatusOK {
			t.Errorf("%s: previous token within grace = %d, want 200", c.name, code)
		}
		prev = tok
	}

	// stop-stream ends every grant at once and locks the task: with
	// require_stream_token off, neither the old token nor no token opens it.
	f.queueSync(map[string]any{"controls": []any{map[string]any{"action": "stop-stream", "taskId": "t1"}}})
	eventually(t, 30*time.Second, "stop-stream applied", func() bool {
		return statusOf(t, url(prev)) == http.StatusNotFound
	})
	if code := statusOf(t, base); code != http.StatusNotFound {
		t.Errorf("GET without a token after stop-stream = %d, want 404", code)
	}
	// A malformed entry is skipped; the valid one next to it applies.
	tok := mintStr(t)
	f.queueSync(map[string]any{"controls": []any{
		map[string]any{"action": 12, "taskId": []int{1}},
		map[string]any{"action": "stream", "taskId": "t1", "streamToken": tok},
	}})
	wrong := mintStr(t)
	eventually(t, 30*time.Second, "token after a malformed entry", func() bool {
		return statusOf(t, url(tok)) == http.StatusOK && statusOf(t, url(wrong)) == http.StatusNotFound
	})
	// cancel removes the task and its token.
	f.queueSync(map[string]any{"controls": []any{map[string]any{"action": "cancel", "taskId": "t1", "deleteFiles": true}}})
	eventually(t, 30*time.Second, "cancel applied", func() bool {
		return statusOf(t, url(tok)) == http.StatusNotFound
	})
	assertNoSecrets(t, logs.String(), testAPIKey, tok0, tok, prev)
}

func TestOriginOutageKeepsStreaming(t *testing.T) {
	f := newFakeOrigin(t, testAPIKey)
	tok, sum := seededOriginTask(t, f, "t1", 1<<20, 5)
	r := originDaemon(t, t.TempDir(), f, nil)
	lan := reportedStreamURL(t, f, "t1", tok)

	f.setFail(http.StatusInternalServerError)
	n := len(f.callsNamed("sync"))
	eventually(t, 10*time.Second, "failed syncs", func() bool { return len(f.callsNamed("sync")) > n+3 })
	if code, body := get(t, lan); code != http.StatusOK || sha(body) != sum {
		t.Errorf("stream during 500s = %d", code)
	}
	f.setFail(0)
	f.setHang(true)
	if code, _ := get(t, lan); code != http.StatusOK {
		t.Errorf("stream while origin hangs = %d", code)
	}
	f.setHang(false)
	n = len(f.callsNamed("sync"))
	eventually(t, 10*time.Second, "sync after recovery", func() bool {
		calls := f.callsNamed("sync")
		return len(calls) > n && calls[len(calls)-1].Status == 0
	})
	st, err := r.client.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Origin.Configured {
		t.Errorf("status origin = %+v", st.Origin)
	}
}

func TestOriginRevokedKey(t *testing.T) {
	f := newFakeOrigin(t, testAPIKey)
	tok, sum := seededOriginTask(t, f, "t1", 1<<20, 6)
	logs := &logBuffer{}
	r := originDaemon(t, t.TempDir(), f, logs)
	lan := reportedStreamURL(t, f, "t1", tok)
	f.setFail(http.StatusUnauthorized)
	eventually(t, 10*time.Second, "the loop to stop on 401", func() bool {
		return strings.Contains(logs.String(), "origin rejected the api key")
	})
	n := len(f.callsNamed("sync"))
	if code, body := get(t, lan); code != http.StatusOK || sha(body) != sum {
		t.Errorf("stream after revocation = %d", code)
	}
	checks, err := r.client.Doctor(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	found, foundBT := false, false
	for _, c := range checks {
		if c.Name == "origin" {
			found = true
			if c.OK {
				t.Errorf("doctor origin check = %+v, want failed", c)
			}
		}
		// The test daemon binds BitTorrent to loopback (torrent.listen_address), which
		// peers on other machines cannot reach.
		if c.Name == "bittorrent listener" {
			foundBT = true
			if c.Level != control.LevelWarn || !strings.Contains(c.Detail, "torrent.listen_address") {
				t.Errorf("doctor bittorrent listener check = %+v, want a warning naming torrent.listen_address", c)
			}
		}
	}
	if !found || !foundBT {
		t.Errorf("doctor lacks the origin or bittorrent listener check: %+v", checks)
	}
	if got := len(f.callsNamed("sync")); got > n+1 {
		t.Errorf("syncs after 401: %d more, want the loop stopped", got-n)
	}
	assertNoSecrets(t, logs.String(), testAPIKey, tok)
}

func TestRestartKeepsTasksAndTokens(t *testing.T) {
	src, sum := enginetest.WriteRandomFile(t, t.TempDir(), "film.mp4", 2<<20, 7)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{})
	info := seeder.Add(t, src)
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	r := startDaemon(t, cfg, nil)
	add, err := r.client.AddTask(t.Context(), control.AddRequest{Source: info.Magnet, FileIndex: -1})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, add.StreamURL); code != http.StatusOK || sha(body) != sum {
		t.Fatalf("first run GET = %d", code)
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("Run() = %v, want nil on clean shutdown", err)
	}
	b, err := os.ReadFile(filepath.Join(cfg.Torrent.DataDir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), add.Token.Reveal()) {
		t.Fatal("state file contains a plain token")
	}
	// Restart without the seeder: everything must come from disk.
	if err := seeder.Engine().Close(); err != nil {
		t.Fatal(err)
	}
	r2 := startDaemon(t, cfg, nil)
	ti, err := r2.client.Task(t.Context(), add.TaskID)
	if err != nil {
		t.Fatalf("Task(%s) after restart = %v", add.TaskID, err)
	}
	if !ti.Token.Set {
		t.Errorf("token lost across restart")
	}
	code, body := get(t, add.StreamURL)
	if code != http.StatusOK || sha(body) != sum {
		t.Fatalf("GET after restart (no peers) = %d, identical=%v", code, sha(body) == sum)
	}
	if code, _ := get(t, strings.Replace(add.StreamURL, add.Token.Reveal(), mintStr(t), 1)); code != http.StatusNotFound {
		t.Errorf("wrong token after restart = %d, want 404", code)
	}
}

func TestCheckOrigin(t *testing.T) {
	f := newFakeOrigin(t, testAPIKey)
	tests := []struct {
		name   string
		url    string
		key    string
		wantOK bool
	}{
		{"accepted", f.URL(), testAPIKey, true},
		{"rejected key", f.URL(), "tck_wrong_key_0000000000000000", false},
		{"unreachable", "http://127.0.0.1:1", testAPIKey, false},
		{"standalone", "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			cfg.Origin.APIURL, cfg.Origin.APIKey = tc.url, tc.key
			c := CheckOrigin(t.Context(), cfg)
			if c.OK != tc.wantOK {
				t.Errorf("CheckOrigin() = %+v, want ok=%v", c, tc.wantOK)
			}
			if tc.key != "" && strings.Contains(c.Detail, tc.key) {
				t.Errorf("CheckOrigin() detail shows the api key")
			}
		})
	}
}

func TestRestartKeepsSeeds(t *testing.T) {
	src, _ := enginetest.WriteRandomFile(t, t.TempDir(), "clip.mp4", 1<<20, 12)
	cfg := testConfig(t, t.TempDir())
	r := startDaemon(t, cfg, nil)
	si, err := r.client.Seed(t.Context(), src)
	if err != nil {
		t.Fatalf("Seed() error = %v", err)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	r2 := startDaemon(t, cfg, nil)
	eventually(t, 30*time.Second, "the seed restored", func() bool {
		st, err := r2.client.Status(t.Context())
		if err != nil {
			return false
		}
		for _, ti := range st.Tasks {
			if ti.InfoHash == si.InfoHash && ti.State == "seeding" {
				return true
			}
		}
		return false
	})
}

func TestUnsafeNamesReported(t *testing.T) {
	r := startDaemon(t, testConfig(t, t.TempDir()), nil)
	src := enginetest.WriteUnsafeTorrent(t, t.TempDir())
	add, err := r.client.AddTask(t.Context(), control.AddRequest{Source: src, FileIndex: -1})
	if err != nil {
		t.Fatalf("AddTask(unsafe torrent) error = %v", err)
	}
	var ti control.TaskInfo
	eventually(t, 10*time.Second, "the task's notice", func() bool {
		ti, err = r.client.Task(t.Context(), add.TaskID)
		return err == nil && ti.Notice != ""
	})
	if !strings.Contains(ti.Notice, "renamed") {
		t.Errorf("Task().Notice = %q, want it to say names were renamed", ti.Notice)
	}
	for _, f := range ti.Files {
		if strings.Contains(f.Path, "..") || filepath.IsAbs(f.Path) || strings.ContainsRune(f.Path, 0) {
			t.Errorf("file path %q escapes or is unsafe", f.Path)
		}
	}
	st, err := r.client.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(st)
	if !strings.Contains(string(b), `"notice"`) {
		t.Errorf("status lacks the notice: %s", b)
	}
}
