package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/logtest"
)

// cli may import neither engine nor token, not even in tests (see
// internal/depcheck), so the fake builds daemon errors and tokens without
// them.

// wireError is a daemon error as it looks after a trip over the socket; the
// server maps it back to the same status and code ("not_found": 404,
// "bad_source": 400), exactly as it maps the engine's sentinels.
func wireError(code, format string, a ...any) error {
	return &control.Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

// isCode reports whether err is a control error with code.
func isCode(err error, code string) bool {
	var ce *control.Error
	return errors.As(err, &ce) && ce.Code == code
}

// mintToken returns a fresh 64-hex token like token.Mint's.
func mintToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// setToken fills a token-typed field (token.Token) from a string; the type
// parameter spares importing package token.
func setToken[T ~string](dst *T, s string) { *dst = T(s) }

// fakeDaemon is a small in-memory control.Backend behind a real
// control.Server on a real Unix socket: the CLI talks to it exactly as it
// talks to a daemon (which is tested in package daemon). It mints real
// tokens so tests can check they never show up where they must not.
type fakeDaemon struct {
	mu sync.Mutex // mu guards the fields below
	// readyAfter is how many Task calls a new task answers before
	// StreamReady; -1 never.
	readyAfter  int
	failTask    bool // Task reports state "failed"
	resolving   bool // Task reports state "resolving" (no metadata yet)
	existing    bool // AddTask answers as for a source that is already a task
	requireTok  bool
	tasks       map[string]*fakeTask
	adds        []control.AddRequest
	seeds       []string
	calls       []string // pause/resume/remove calls, "<state> <id>"
	tokens      []string // every token minted, plain
	doctorCheck []control.Check
}

type fakeTask struct {
	info  control.TaskInfo
	polls int
}

func newFakeDaemon() *fakeDaemon {
	return &fakeDaemon{tasks: map[string]*fakeTask{}}
}

func (f *fakeDaemon) mint() (string, error) {
	tok, err := mintToken()
	if err != nil {
		return "", err
	}
	f.tokens = append(f.tokens, tok)
	return tok, nil
}

func (f *fakeDaemon) Status(ctx context.Context) (control.StatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := control.StatusResponse{
		Version: "v9.9.9", PID: 4242, MediaURLs: []string{"http://192.0.2.1:11818"},
		RequireStreamToken: f.requireTok, UPnP: "disabled", HLS: "available",
		Origin: control.OriginStatus{Configured: true, URL: "https://torrentclaw.example", State: "connected"},
	}
	for _, t := range f.tasks {
		st.Tasks = append(st.Tasks, t.info)
	}
	return st, nil
}

func (f *fakeDaemon) AddTask(ctx context.Context, req control.AddRequest) (control.AddResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.adds = append(f.adds, req)
	if strings.Contains(req.Source, "bad") {
		return control.AddResponse{}, wireError("bad_source", "%q is not a magnet link", req.Source)
	}
	tok, err := f.mint()
	if err != nil {
		return control.AddResponse{}, err
	}
	id := fmt.Sprintf("task-%d", len(f.tasks)+1)
	exp := time.Now().Add(6 * time.Hour).Truncate(time.Second)
	f.tasks[id] = &fakeTask{info: control.TaskInfo{
		ID: id, Name: "Sintel", State: "resolving", FileIndex: req.FileIndex, FileName: "sintel.mp4",
		Token: control.TokenInfo{Set: true, Grants: 1, NextExpiry: exp, ExpiresAt: exp, EverGranted: true},
	}}
	base := "http://192.0.2.1:11818"
	resp := control.AddResponse{
		TaskID: id, ExpiresAt: exp,
		StreamURL:   base + "/stream?id=" + id + "&t=" + tok,
		PlaylistURL: base + "/playlist.m3u?id=" + id + "&t=" + tok,
	}
	setToken(&resp.Token, tok)
	resp.Existing = f.existing
	if req.HLS {
		resp.HLSURL = base + "/hls/s1/master.m3u8?t=" + tok
	}
	return resp, nil
}

func (f *fakeDaemon) Task(ctx context.Context, id string) (control.TaskInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[id]
	if !ok {
		return control.TaskInfo{}, wireError("not_found", "task %q: not found", id)
	}
	t.polls++
	switch {
	case f.resolving:
		t.info.State, t.info.TotalBytes = "resolving", 0
	case f.failTask:
		t.info.State, t.info.Error = "failed", "no peers"
	case f.readyAfter >= 0 && t.polls > f.readyAfter:
		t.info.State, t.info.StreamReady, t.info.Progress = "downloading", true, 3.5
		t.info.TotalBytes, t.info.DownloadedBytes = 100<<20, 3<<20
	default:
		t.info.State, t.info.Progress, t.info.TotalBytes, t.info.SpeedBps = "downloading", 1, 100<<20, 1<<20
	}
	return t.info, nil
}

func (f *fakeDaemon) RemoveTask(ctx context.Context, id string, deleteFiles bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.tasks[id]; !ok {
		return wireError("not_found", "task %q: not found", id)
	}
	delete(f.tasks, id)
	f.calls = append(f.calls, fmt.Sprintf("remove %s deleteFiles=%v", id, deleteFiles))
	return nil
}

func (f *fakeDaemon) PauseTask(ctx context.Context, id string) error {
	return f.setState(id, "paused")
}

func (f *fakeDaemon) ResumeTask(ctx context.Context, id string) error {
	return f.setState(id, "downloading")
}

func (f *fakeDaemon) setState(id, state string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[id]
	if !ok {
		return wireError("not_found", "task %q: not found", id)
	}
	t.info.State = state
	f.calls = append(f.calls, state+" "+id)
	return nil
}

func (f *fakeDaemon) IssueToken(ctx context.Context, id string) (control.TokenResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[id]
	if !ok {
		return control.TokenResponse{}, wireError("not_found", "task %q: not found", id)
	}
	tok, err := f.mint()
	if err != nil {
		return control.TokenResponse{}, err
	}
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	t.info.Token = control.TokenInfo{Set: true, Grants: t.info.Token.Grants + 1, NextExpiry: exp, ExpiresAt: exp, EverGranted: true}
	resp := control.TokenResponse{TaskID: id, ExpiresAt: exp,
		StreamURL:   "http://192.0.2.1:11818/stream?id=" + id + "&t=" + tok,
		PlaylistURL: "http://192.0.2.1:11818/playlist.m3u?id=" + id + "&t=" + tok}
	setToken(&resp.Token, tok)
	return resp, nil
}

func (f *fakeDaemon) RevokeToken(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[id]
	if !ok {
		return wireError("not_found", "task %q: not found", id)
	}
	t.info.Token = control.TokenInfo{Locked: true, EverGranted: true}
	return nil
}

func (f *fakeDaemon) CreateHLS(ctx context.Context, id string, fileIndex int) (control.HLSResponse, error) {
	return control.HLSResponse{}, errors.New("not used by the cli")
}

func (f *fakeDaemon) Seed(ctx context.Context, path string) (control.SeedResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seeds = append(f.seeds, path)
	if _, err := os.Stat(path); err != nil {
		return control.SeedResponse{}, err
	}
	ih := strings.Repeat("c", 40)
	return control.SeedResponse{Magnet: "magnet:?xt=urn:btih:" + ih + "&x.pe=127.0.0.1:42069", InfoHash: ih, Peer: "127.0.0.1:42069"}, nil
}

func (f *fakeDaemon) Doctor(ctx context.Context) ([]control.Check, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.doctorCheck != nil {
		return f.doctorCheck, nil
	}
	return []control.Check{{Name: "media listener", OK: true, Level: control.LevelOK, Detail: "0.0.0.0:11818"}}, nil
}

// addTask puts a task straight into the fake, as if added earlier.
func (f *fakeDaemon) addTask(t *testing.T) (id, tok string) {
	t.Helper()
	resp, err := f.AddTask(t.Context(), control.AddRequest{Source: "magnet:?xt=urn:btih:" + strings.Repeat("a", 40), FileIndex: -1})
	if err != nil {
		t.Fatal(err)
	}
	return resp.TaskID, resp.Token.Reveal()
}

// serve runs a control server for b on a fresh socket until the test ends
// and returns the socket path.
func serve(t *testing.T, b control.Backend) string {
	t.Helper()
	return serveOpts(t, control.Options{Backend: b})
}

// serveOpts is serve with server options (an owner key).
func serveOpts(t *testing.T, opts control.Options) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "control.sock")
	ln, err := control.Listen(path)
	if err != nil {
		t.Fatalf("control.Listen(%q) = %v", path, err)
	}
	srv, err := control.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v", err)
		}
	})
	return path
}

// clientFor returns an Env.Client for the socket at path.
func clientFor(path string) func() (*control.Client, error) {
	return func() (*control.Client, error) { return control.NewClient(path), nil }
}

// noDaemon is an Env.Client whose socket does not exist.
func noDaemon(t *testing.T) func() (*control.Client, error) {
	return clientFor(filepath.Join(t.TempDir(), "none.sock"))
}

// isolate points every config and data location at fresh temp dirs and
// clears the variables the CLI reads.
func isolate(t *testing.T) (configHome, dataHome string) {
	t.Helper()
	configHome, dataHome = t.TempDir(), t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", configHome)
	t.Setenv("XDG_DATA_HOME", dataHome)
	t.Setenv("HOME", t.TempDir())
	t.Setenv(config.EnvConfig, "")
	t.Setenv(config.EnvAPIKey, "")
	return configHome, dataHome
}

// testEnv returns an Env with buffers, no terminal, no VLC and a client
// for socket.
func testEnv(socket string) (*Env, *logtest.Buffer, *logtest.Buffer) {
	out, errOut := &logtest.Buffer{}, &logtest.Buffer{}
	env := &Env{
		In:          strings.NewReader(""),
		Out:         out,
		Err:         errOut,
		Version:     "v1.2.3",
		LookPath:    func(string) (string, error) { return "", errors.New("not found") },
		StartPlayer: func(string, ...string) error { return errors.New("no player in tests") },
		IsTerminal:  func(io.Writer) bool { return false },
		Client:      clientFor(socket),
	}
	env.LoadConfig = func() (config.Config, string, error) { return loadConfig(env.ConfigPath) }
	env.StartDaemon = func(context.Context) (*control.Client, func() error, error) {
		return nil, nil, errors.New("no in-process daemon in this test")
	}
	return env, out, errOut
}

// writeConfig writes a config file with mode perm and returns its path.
func writeConfig(t *testing.T, body string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(body), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}
