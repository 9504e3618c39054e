package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/tasks"
)

// testBackend is a small in-memory Backend: the daemon that really
// implements it is tested in package daemon. It mints real tokens.
type testBackend struct {
	mu      sync.Mutex // mu guards the fields below
	tasks   map[string]*TaskInfo
	calls   []string
	removed map[string]bool // task id -> deleteFiles
}

func newTestBackend() *testBackend {
	return &testBackend{tasks: map[string]*TaskInfo{}, removed: map[string]bool{}}
}

var errDiskOnFire = errors.New("disk on fire")

func (b *testBackend) record(call string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, call)
}

func (b *testBackend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

func (b *testBackend) Status(ctx context.Context) (StatusResponse, error) {
	b.record("Status")
	b.mu.Lock()
	defer b.mu.Unlock()
	st := StatusResponse{Version: "test", PID: 42, MediaURLs: []string{"http://127.0.0.1:11818"}, UPnP: "disabled"}
	for _, t := range b.tasks {
		st.Tasks = append(st.Tasks, *t)
	}
	return st, nil
}

func (b *testBackend) AddTask(ctx context.Context, req AddRequest) (AddResponse, error) {
	b.record("AddTask")
	switch req.Source {
	case "bad":
		return AddResponse{}, fmt.Errorf("parse source: %w: not a magnet link", tasks.ErrBadSource)
	case "boom":
		return AddResponse{}, errDiskOnFire
	}
	tok, err := mintToken()
	if err != nil {
		return AddResponse{}, err
	}
	id := fmt.Sprintf("task-%d", len(b.tasks)+1)
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	b.mu.Lock()
	b.tasks[id] = &TaskInfo{ID: id, Name: req.Title, State: "downloading", FileIndex: req.FileIndex,
		StreamReady: true, Token: TokenInfo{Set: true, ExpiresAt: exp}}
	b.mu.Unlock()
	resp := AddResponse{TaskID: id, Token: tok, ExpiresAt: exp,
		StreamURL:   "http://127.0.0.1:11818/stream?id=" + id + "&t=" + tok.Reveal(),
		PlaylistURL: "http://127.0.0.1:11818/playlist.m3u?id=" + id + "&t=" + tok.Reveal()}
	if req.HLS {
		resp.HLSURL = "http://127.0.0.1:11818/hls/s1/master.m3u8?t=" + tok.Reveal()
	}
	return resp, nil
}

func (b *testBackend) task(id string) (*TaskInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.tasks[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", tasks.ErrNotFound, id)
	}
	return t, nil
}

func (b *testBackend) Task(ctx context.Context, id string) (TaskInfo, error) {
	b.record("Task")
	t, err := b.task(id)
	if err != nil {
		return TaskInfo{}, err
	}
	return *t, nil
}

func (b *testBackend) RemoveTask(ctx context.Context, id string, deleteFiles bool) error {
	b.record("RemoveTask")
	if id == "boom" {
		return errDiskOnFire
	}
	if _, err := b.task(id); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.tasks, id)
	b.removed[id] = deleteFiles
	return nil
}

func (b *testBackend) IssueToken(ctx context.Context, id string) (TokenResponse, error) {
	b.record("IssueToken")
	if _, err := b.task(id); err != nil {
		return TokenResponse{}, err
	}
	tok, err := mintToken()
	if err != nil {
		return TokenResponse{}, err
	}
	return TokenResponse{TaskID: id, Token: tok, ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		StreamURL: "http://h/stream?id=" + id + "&t=" + tok.Reveal()}, nil
}

func (b *testBackend) RevokeToken(ctx context.Context, id string) error {
	b.record("RevokeToken")
	t, err := b.task(id)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t.Token = TokenInfo{}
	return nil
}

func (b *testBackend) PauseTask(ctx context.Context, id string) error {
	b.record("PauseTask")
	t, err := b.task(id)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t.State = "paused"
	return nil
}

func (b *testBackend) ResumeTask(ctx context.Context, id string) error {
	b.record("ResumeTask")
	t, err := b.task(id)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t.State = "downloading"
	return nil
}

func (b *testBackend) CreateHLS(ctx context.Context, id string, fileIndex int) (HLSResponse, error) {
	b.record("CreateHLS")
	switch id {
	case "noffmpeg":
		return HLSResponse{}, fmt.Errorf("hls: %w", tasks.ErrNoFFmpeg)
	case "busy":
		return HLSResponse{}, tasks.ErrTooManySessions
	case "nofile":
		return HLSResponse{}, tasks.ErrNoPlayableFile
	}
	if _, err := b.task(id); err != nil {
		return HLSResponse{}, err
	}
	return HLSResponse{SessionID: fmt.Sprintf("s-%d", fileIndex), HLSURL: "http://h/hls/s/master.m3u8"}, nil
}

func (b *testBackend) Seed(ctx context.Context, path string) (SeedResponse, error) {
	b.record("Seed")
	if _, err := os.Stat(path); err != nil {
		return SeedResponse{}, err
	}
	return SeedResponse{Magnet: "magnet:?xt=urn:btih:" + strings.Repeat("a", 40), InfoHash: strings.Repeat("a", 40), Peer: "127.0.0.1:42069"}, nil
}

func (b *testBackend) Doctor(ctx context.Context) ([]Check, error) {
	b.record("Doctor")
	return []Check{{Name: "media listener", OK: true, Level: LevelOK, Detail: "0.0.0.0:11818"}}, nil
}

// checkGoroutines fails the test if goroutines started during it are still
// running shortly after it ends. Call it first, so its cleanup runs last.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines: %d before, %d after the test\n%s", before, n, buf)
				return
			}
			runtime.Gosched()
		}
	})
}

// startServer serves b on a fresh socket until the test ends, and returns
// the socket path and a client for it.
func startServer(t *testing.T, b Backend) (string, *Client) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "control.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen(%q) = %v", path, err)
	}
	srv, err := New(Options{Backend: b, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	c := NewClient(path)
	t.Cleanup(func() {
		c.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v, want nil", err)
		}
	})
	return path, c
}

func TestListenSocketMode(t *testing.T) {
	checkGoroutines(t)
	// A permissive umask must not leak into the socket's mode.
	setUmask(t, 0)

	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "control.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen(%q) = %v", path, err)
	}
	defer ln.Close()

	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want socket with 0600", fi.Mode())
	}
	if got := ln.Addr().String(); got != path {
		t.Errorf("Addr() = %q, want %q", got, path)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "control.sock" {
		t.Errorf("data dir holds %v, want only control.sock (no temporary leftovers)", entries)
	}
	dfi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if dfi.Mode().Perm() != 0o700 {
		t.Errorf("created data dir mode = %v, want 0700", dfi.Mode().Perm())
	}
}

func TestListenRemovesStaleSocket(t *testing.T) {
	checkGoroutines(t)
	path := filepath.Join(t.TempDir(), "control.sock")
	// A crashed daemon leaves its socket file behind.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}

	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket = %v, want nil", err)
	}
	defer ln.Close()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial the new socket: %v", err)
	}
	conn.Close()
}

func TestListenRefusesSecondDaemon(t *testing.T) {
	checkGoroutines(t)
	path, c := startServer(t, newTestBackend())
	ln, err := Listen(path)
	if err == nil {
		ln.Close()
		t.Fatal("second Listen = nil error, want ErrAlreadyRunning")
	}
	if !errors.Is(err, ErrAlreadyRunning) {
		t.Errorf("second Listen = %v, want ErrAlreadyRunning", err)
	}
	if err := c.Ping(t.Context()); err != nil {
		t.Errorf("first daemon after a refused second: Ping() = %v", err)
	}
}

func TestListenRefusesNonSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ln, err := Listen(path); err == nil {
		ln.Close()
		t.Fatal("Listen over a regular file = nil error")
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
		t.Errorf("regular file changed: %q, %v", b, err)
	}
}

func TestListenPathTooLong(t *testing.T) {
	path := "/tmp/" + strings.Repeat("d", 120) + "/control.sock"
	if ln, err := Listen(path); err == nil {
		ln.Close()
		t.Fatalf("Listen(%d-byte path) = nil error", len(path))
	}
}

func TestListenerCloseRemovesOnlyItsSocket(t *testing.T) {
	checkGoroutines(t)
	path := filepath.Join(t.TempDir(), "control.sock")
	a, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Close, Lstat = %v, want not exist", err)
	}

	// Someone removed a's socket and a successor bound the path: closing a
	// must leave the successor's socket alone.
	a, err = Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	b, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("closing the old listener removed the new socket: %v", err)
	}
}

func TestServeShutdown(t *testing.T) {
	checkGoroutines(t)
	path := filepath.Join(t.TempDir(), "control.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(Options{Backend: newTestBackend()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	c := NewClient(path)
	defer c.Close()
	if err := c.Ping(t.Context()); err != nil {
		t.Fatalf("Ping() = %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve() after cancel = %v, want nil", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket after shutdown: Lstat = %v, want not exist", err)
	}
	if err := c.Ping(t.Context()); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Ping() after shutdown = %v, want ErrNotRunning", err)
	}
}

func TestNewRequiresBackend(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New(Options{}) = nil error, want one")
	}
}

func TestOriginHeaderRejected(t *testing.T) {
	b := newTestBackend()
	srv, err := New(Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	for _, origin := range []string{"http://evil.example", "null"} {
		for _, route := range []struct{ method, path string }{{"GET", "/v1/status"}, {"POST", "/v1/tasks"}, {"DELETE", "/v1/tasks/x/token"}} {
			req := httptest.NewRequest(route.method, route.path, strings.NewReader(`{"source":"magnet:?xt=urn:btih:aa"}`))
			req.Header.Set("Origin", origin)
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusForbidden {
				t.Errorf("%s %s with Origin %q: status %d, want 403", route.method, route.path, origin, rec.Code)
			}
		}
	}
	if calls := b.Calls(); len(calls) != 0 {
		t.Errorf("backend called for browser requests: %v", calls)
	}
}

func TestHandlerErrors(t *testing.T) {
	srv, err := New(Options{Backend: newTestBackend()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"task not found", "GET", "/v1/tasks/nope", "", 404, "not_found"},
		{"remove not found", "DELETE", "/v1/tasks/nope", "", 404, "not_found"},
		{"remove bad flag", "DELETE", "/v1/tasks/x?deleteFiles=maybe", "", 400, "bad_request"},
		{"remove internal", "DELETE", "/v1/tasks/boom", "", 500, "internal"},
		{"issue not found", "POST", "/v1/tasks/nope/token", "", 404, "not_found"},
		{"revoke not found", "DELETE", "/v1/tasks/nope/token", "", 404, "not_found"},
		{"add bad source", "POST", "/v1/tasks", `{"source":"bad"}`, 400, "bad_source"},
		{"add empty source", "POST", "/v1/tasks", `{"source":"  "}`, 400, "bad_request"},
		{"add no body", "POST", "/v1/tasks", ``, 400, "bad_request"},
		{"add bad json", "POST", "/v1/tasks", `{"source":`, 400, "bad_request"},
		{"add bad file index", "POST", "/v1/tasks", `{"source":"x","fileIndex":-2}`, 400, "bad_request"},
		{"add internal", "POST", "/v1/tasks", `{"source":"boom"}`, 500, "internal"},
		{"add huge body", "POST", "/v1/tasks", `{"source":"` + strings.Repeat("a", maxBodyBytes) + `"}`, 400, "bad_request"},
		{"hls no ffmpeg", "POST", "/v1/tasks/noffmpeg/hls", `{}`, 503, "no_ffmpeg"},
		{"hls busy", "POST", "/v1/tasks/busy/hls", `{}`, 429, "too_many_sessions"},
		{"hls no playable", "POST", "/v1/tasks/nofile/hls", `{}`, 422, "no_playable_file"},
		{"seed missing file", "POST", "/v1/seed", `{"path":"/nonexistent/x"}`, 400, "no_such_file"},
		{"seed no path", "POST", "/v1/seed", `{}`, 400, "bad_request"},
		{"unknown endpoint", "GET", "/v2/status", "", 404, "no_endpoint"},
		{"wrong method", "PUT", "/v1/status", "", 404, "no_endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, rec.Code, tc.status)
			}
			var eb errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil {
				t.Fatalf("error body %q: %v", rec.Body, err)
			}
			if eb.Code != tc.code || eb.Error == "" || strings.Contains(eb.Error, "\n") {
				t.Errorf("error body = %+v, want code %q and a one-line message", eb, tc.code)
			}
		})
	}
}

func TestClientRoundTrips(t *testing.T) {
	checkGoroutines(t)
	b := newTestBackend()
	_, c := startServer(t, b)
	ctx := t.Context()

	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping() = %v", err)
	}
	added, err := c.AddTask(ctx, AddRequest{Source: "magnet:?xt=urn:btih:" + strings.Repeat("b", 40), FileIndex: 2, HLS: true, Title: "Sintel"})
	if err != nil {
		t.Fatalf("AddTask() = %v", err)
	}
	if added.TaskID == "" || !validToken(added.Token.Reveal()) || !strings.Contains(added.StreamURL, added.Token.Reveal()) || added.HLSURL == "" {
		t.Errorf("AddTask() = %+v, want an id, a valid token and URLs carrying it", added)
	}
	info, err := c.Task(ctx, added.TaskID)
	if err != nil {
		t.Fatalf("Task() = %v", err)
	}
	want := TaskInfo{ID: added.TaskID, Name: "Sintel", State: "downloading", FileIndex: 2, StreamReady: true,
		Token: TokenInfo{Set: true, ExpiresAt: added.ExpiresAt}}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("Task() = %+v, want %+v", info, want)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("Status() = %v", err)
	}
	if st.Version != "test" || st.PID != 42 || len(st.Tasks) != 1 {
		t.Errorf("Status() = %+v, want version test, pid 42, 1 task", st)
	}
	issued, err := c.IssueToken(ctx, added.TaskID)
	if err != nil {
		t.Fatalf("IssueToken() = %v", err)
	}
	if issued.TaskID != added.TaskID || !validToken(issued.Token.Reveal()) || issued.Token == added.Token {
		t.Errorf("IssueToken() = %+v, want a new valid token", issued)
	}
	if err := c.RevokeToken(ctx, added.TaskID); err != nil {
		t.Fatalf("RevokeToken() = %v", err)
	}
	if info, _ := c.Task(ctx, added.TaskID); info.Token.Set {
		t.Errorf("after RevokeToken, Task().Token = %+v, want unset", info.Token)
	}
	h, err := c.CreateHLS(ctx, added.TaskID, 3)
	if err != nil || h.SessionID != "s-3" {
		t.Errorf("CreateHLS(3) = %+v, %v, want session s-3", h, err)
	}
	seeded, err := c.Seed(ctx, t.TempDir())
	if err != nil || seeded.InfoHash == "" || !strings.HasPrefix(seeded.Magnet, "magnet:") {
		t.Errorf("Seed() = %+v, %v", seeded, err)
	}
	checks, err := c.Doctor(ctx)
	if err != nil || len(checks) != 1 || checks[0].Level != LevelOK {
		t.Errorf("Doctor() = %+v, %v", checks, err)
	}
	if err := c.RemoveTask(ctx, added.TaskID, true); err != nil {
		t.Fatalf("RemoveTask() = %v", err)
	}
	b.mu.Lock()
	deleted, ok := b.removed[added.TaskID]
	b.mu.Unlock()
	if !ok || !deleted {
		t.Errorf("RemoveTask(deleteFiles=true) reached the backend as %v, %v", deleted, ok)
	}
	// Every character the task-ID rule allows survives the trip; an ID
	// outside the rule (ids.ValidTaskID) is a bad request.
	if _, err := c.Task(ctx, "a:b~c.d_e-f"); !errors.Is(err, tasks.ErrNotFound) || !strings.Contains(err.Error(), "a:b~c.d_e-f") {
		t.Errorf("Task(odd id) = %v, want not found naming the id", err)
	}
	if _, err := c.Task(ctx, "a/b c?d"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("Task(invalid id) = %v, want ErrBadRequest", err)
	}
}

func TestClientErrors(t *testing.T) {
	checkGoroutines(t)
	_, c := startServer(t, newTestBackend())
	ctx := t.Context()
	tests := []struct {
		name   string
		call   func() error
		target error
		status int
	}{
		{"not found", func() error { _, err := c.Task(ctx, "nope"); return err }, tasks.ErrNotFound, 404},
		{"bad source", func() error { _, err := c.AddTask(ctx, AddRequest{Source: "bad"}); return err }, tasks.ErrBadSource, 400},
		{"bad request", func() error { _, err := c.AddTask(ctx, AddRequest{Source: ""}); return err }, ErrBadRequest, 400},
		{"no ffmpeg", func() error { _, err := c.CreateHLS(ctx, "noffmpeg", -1); return err }, tasks.ErrNoFFmpeg, 503},
		{"too many sessions", func() error { _, err := c.CreateHLS(ctx, "busy", -1); return err }, tasks.ErrTooManySessions, 429},
		{"no playable file", func() error { _, err := c.CreateHLS(ctx, "nofile", -1); return err }, tasks.ErrNoPlayableFile, 422},
		{"seed missing", func() error { _, err := c.Seed(ctx, "/nonexistent/x"); return err }, fs.ErrNotExist, 400},
		{"internal", func() error { return c.RemoveTask(ctx, "boom", false) }, nil, 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error = %v (%T), want *control.Error", err, err)
			}
			if ce.StatusCode != tc.status {
				t.Errorf("status = %d, want %d", ce.StatusCode, tc.status)
			}
			if tc.target != nil && !errors.Is(err, tc.target) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.target)
			}
			if strings.Contains(err.Error(), "\n") || err.Error() == "" {
				t.Errorf("error %q is not one line", err)
			}
			if errors.Is(err, errDiskOnFire) && tc.target == nil {
				t.Errorf("a server-side sentinel leaked through the client")
			}
		})
	}
	// The daemon's message reaches the client.
	_, err := c.AddTask(ctx, AddRequest{Source: "bad"})
	if err == nil || !strings.Contains(err.Error(), "not a magnet link") {
		t.Errorf("AddTask(bad) = %v, want the daemon's message", err)
	}
}

func TestClientNotRunning(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	missing := NewClient(filepath.Join(dir, "none.sock"))
	defer missing.Close()
	if err := missing.Ping(t.Context()); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Ping(no socket) = %v, want ErrNotRunning", err)
	}

	path := filepath.Join(dir, "stale.sock")
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	c := NewClient(path)
	defer c.Close()
	_, err = c.Status(t.Context())
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("Status(stale socket) = %v, want ErrNotRunning", err)
	}
	if err != nil && strings.Contains(err.Error(), "http://") {
		t.Errorf("error %q shows the made-up URL", err)
	}
}

// FuzzHandler sends arbitrary requests through the handler: it must never
// panic, and every reply is JSON (or empty for 204).
func FuzzHandler(f *testing.F) {
	for _, s := range []struct{ method, path, body string }{
		{"GET", "/v1/status", ""},
		{"POST", "/v1/tasks", `{"source":"magnet:?xt=urn:btih:aa","fileIndex":-1}`},
		{"POST", "/v1/tasks", `{"source":"bad"}`},
		{"GET", "/v1/tasks/task-1", ""},
		{"DELETE", "/v1/tasks/x?deleteFiles=1", ""},
		{"POST", "/v1/tasks/x/hls", `{"fileIndex":"x"}`},
		{"POST", "/v1/seed", `{"path":"/"}`},
		{"GET", "/v1/tasks/%00", ""},
	} {
		f.Add(s.method, s.path, s.body)
	}
	srv, err := New(Options{Backend: newTestBackend()})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, method, path, body string) {
		req, err := http.NewRequest(method, "http://torrentclaw"+path, strings.NewReader(body))
		if err != nil || req.URL.Path == "" || req.URL.Path[0] != '/' {
			return
		}
		req.RequestURI = req.URL.RequestURI()
		if method == "POST" && strings.HasPrefix(path, "/v1/seed") {
			return // Seed stats real paths
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusNoContent || rec.Code == http.StatusMovedPermanently || rec.Code == http.StatusTemporaryRedirect {
			return
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Errorf("%s %q: status %d, body %q is not JSON", method, path, rec.Code, rec.Body)
		}
	})
}

// TestErrorCodesRoundTrip checks that every sentinel the server maps comes
// back as the same sentinel on the client side, and that codes are unique.
func TestErrorCodesRoundTrip(t *testing.T) {
	srv, err := New(Options{Backend: newTestBackend()})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ec := range errorCodes {
		if seen[ec.code] {
			t.Errorf("code %q used twice", ec.code)
		}
		seen[ec.code] = true
		rec := httptest.NewRecorder()
		srv.writeError(rec, httptest.NewRequest("GET", "/v1/x", nil), fmt.Errorf("doing it: %w", ec.err))
		got := replyError(rec.Result())
		var ce *Error
		if !errors.As(got, &ce) || ce.StatusCode != ec.status || ce.Code != ec.code {
			t.Errorf("writeError(%v) -> %#v, want status %d code %q", ec.err, got, ec.status, ec.code)
		}
		if !errors.Is(got, ec.err) {
			t.Errorf("client error for %v: errors.Is = false", ec.err)
		}
		if want := "doing it: " + ec.err.Error(); got.Error() != want {
			t.Errorf("client message = %q, want %q", got.Error(), want)
		}
	}
	rec := httptest.NewRecorder()
	srv.writeError(rec, httptest.NewRequest("GET", "/v1/x", nil), errors.New("multi\nline"))
	if got := replyError(rec.Result()); got.Error() != "multi line" || errors.Is(got, tasks.ErrNotFound) {
		t.Errorf("internal error reply = %q, want one line matching no sentinel", got)
	}
}

func TestListenConcurrentOnlyOneWins(t *testing.T) {
	checkGoroutines(t)
	path := filepath.Join(t.TempDir(), "control.sock")
	const n = 4
	type result struct {
		ln  net.Listener
		err error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			ln, err := Listen(path)
			results <- result{ln, err}
		})
	}
	wg.Wait()
	close(results)
	won := 0
	for r := range results {
		switch {
		case r.err == nil:
			won++
			t.Cleanup(func() { r.ln.Close() })
		case !errors.Is(r.err, ErrAlreadyRunning):
			t.Errorf("Listen() = %v, want nil or ErrAlreadyRunning", r.err)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d concurrent Listen calls won, want exactly 1", won, n)
	}
}

// mintToken returns a fresh 64-hex token (control may not import token, not
// even in tests: see internal/depcheck).
func mintToken() (tasks.Token, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return tasks.Token(hex.EncodeToString(b[:])), nil
}

// validToken reports whether s has a token's shape: 32-128 URL-safe characters.
func validToken(s string) bool {
	return len(s) >= 32 && len(s) <= 128 && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~-") == ""
}
