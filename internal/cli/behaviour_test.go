package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// jsonKeys returns the sorted top-level keys of one JSON object.
func jsonKeys(t *testing.T, s string) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("output %q is not one JSON object: %v", s, err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func streamOpts(env *Env, source string) *streamOptions {
	return &streamOptions{
		Out: env.Out, Err: env.Err, Client: env.Client, StartDaemon: env.StartDaemon,
		LookPath: env.LookPath, StartPlayer: env.StartPlayer,
		PollInterval: time.Millisecond, Source: source, FileIndex: -1,
	}
}

const testMagnet = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567"

func TestStreamJSON(t *testing.T) {
	tests := []struct {
		name string
		hls  bool
		want []string
	}{
		{"plain", false, []string{"playlistUrl", "streamUrl", "taskId", "token"}},
		{"hls", true, []string{"hlsUrl", "playlistUrl", "streamUrl", "taskId", "token"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fd := newFakeDaemon()
			fd.readyAfter = 3
			env, out, errOut := testEnv(serve(t, fd))
			opts := streamOpts(env, testMagnet)
			opts.JSON, opts.HLS = true, tc.hls
			if err := runStream(t.Context(), opts); err != nil {
				t.Fatalf("runStream() = %v", err)
			}
			if got := jsonKeys(t, out.String()); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("stream --json keys = %v, want %v", got, tc.want)
			}
			if strings.Count(out.String(), "\n") != 1 {
				t.Errorf("stream --json printed %q, want one line", out)
			}
			var got streamJSON
			if err := json.Unmarshal([]byte(out.String()), &got); err != nil {
				t.Fatal(err)
			}
			if got.TaskID != "task-1" || got.Token != fd.tokens[0] || !strings.Contains(got.StreamURL, "t="+got.Token) {
				t.Errorf("stream --json = %+v, want task-1 with its token in the URLs", got)
			}
			if len(fd.adds) != 1 || fd.adds[0].Source != testMagnet || fd.adds[0].FileIndex != -1 || fd.adds[0].HLS != tc.hls {
				t.Errorf("AddTask got %+v", fd.adds)
			}
			// Without a terminal, --json keeps stderr quiet but for hints.
			if strings.Contains(errOut.String(), "downloading") {
				t.Errorf("stream --json wrote progress to a non-terminal stderr: %q", errOut)
			}
		})
	}
}

func TestStreamHuman(t *testing.T) {
	fd := newFakeDaemon()
	fd.readyAfter = 2
	env, out, errOut := testEnv(serve(t, fd))
	torrent := filepath.Join(t.TempDir(), "sintel.torrent")
	if err := os.WriteFile(torrent, []byte("d4:infod4:name1:aee"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A relative .torrent path reaches the daemon absolute.
	t.Chdir(filepath.Dir(torrent))
	opts := streamOpts(env, "sintel.torrent")
	opts.FileIndex = 1
	if err := runStream(t.Context(), opts); err != nil {
		t.Fatalf("runStream() = %v", err)
	}
	if len(fd.adds) != 1 || fd.adds[0].Source != torrent || fd.adds[0].FileIndex != 1 {
		t.Errorf("AddTask got %+v, want source %q, file 1", fd.adds, torrent)
	}
	o := out.String()
	for _, want := range []string{"task      task-1\n", "stream    http://192.0.2.1:11818/stream?id=task-1&t=", "playlist  http://192.0.2.1:11818/playlist.m3u?id=task-1&t="} {
		if !strings.Contains(o, want) {
			t.Errorf("stdout %q lacks %q", o, want)
		}
	}
	if strings.Contains(o, "hls") || strings.Contains(o, "ready") {
		t.Errorf("stdout %q has more than the URLs", o)
	}
	e := errOut.String()
	for _, want := range []string{"downloading 1.0% of 100.0 MiB at 1.0 MiB/s", "ready: sintel.mp4 is playable", "the daemon keeps serving"} {
		if !strings.Contains(e, want) {
			t.Errorf("stderr %q lacks %q", e, want)
		}
	}
}

func TestStreamTerminalProgress(t *testing.T) {
	fd := newFakeDaemon()
	fd.readyAfter = 2
	env, _, errOut := testEnv(serve(t, fd))
	opts := streamOpts(env, testMagnet)
	opts.Terminal = true
	opts.Width = func() int { return 200 }
	// On a terminal the line keeps going after "ready" until Ctrl-C.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- runStream(ctx, opts) }()
	deadline := time.After(2 * time.Minute) // a hang guard: generous for a loaded machine
	for !strings.Contains(errOut.String(), "Ctrl-C ends this display") || strings.Count(errOut.String(), "playable 3.5%") < 2 {
		select {
		case err := <-done:
			t.Fatalf("runStream() returned %v before Ctrl-C; stderr %q", err, errOut.String())
		case <-deadline:
			t.Fatalf("no progress after ready within 2 minutes; stderr %q", errOut.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runStream() after Ctrl-C = %v, want nil", err)
	}
	e := errOut.String()
	if !strings.Contains(e, "\r\x1b[K[-----") || !strings.Contains(e, "ready: ") {
		t.Errorf("stderr %q, want a redrawn bar then ready", e)
	}
}

func TestStreamOpenVLC(t *testing.T) {
	fd := newFakeDaemon()
	env, out, _ := testEnv(serve(t, fd))
	var started []string
	env.LookPath = func(name string) (string, error) {
		if name == "cvlc" {
			return "/usr/bin/cvlc", nil
		}
		return "", errors.New("not found")
	}
	env.StartPlayer = func(path string, args ...string) error {
		started = append([]string{path}, args...)
		return nil
	}
	opts := streamOpts(env, testMagnet)
	opts.Open = "vlc"
	if err := runStream(t.Context(), opts); err != nil {
		t.Fatalf("runStream() = %v", err)
	}
	if len(started) != 2 || started[0] != "/usr/bin/cvlc" || !strings.Contains(out.String(), started[1]) || !strings.Contains(started[1], "/playlist.m3u?") {
		t.Errorf("started %q, want cvlc with the printed playlist URL", started)
	}
}

// TestStreamOpenBrowserAtOnce: --open browser opens the /watch page as soon as the task
// is added, while it still has no metadata (the page says what it waits for), not once
// the file is playable as for the other players.
func TestStreamOpenBrowserAtOnce(t *testing.T) {
	fd := newFakeDaemon()
	fd.resolving = true
	fd.readyAfter = -1
	env, out, _ := testEnv(serve(t, fd))
	env.LookPath = func(name string) (string, error) {
		if name == "xdg-open" || name == "open" || name == "rundll32" {
			return "/usr/bin/" + name, nil
		}
		return "", errors.New("not found")
	}
	started := make(chan []string, 1)
	env.StartPlayer = func(path string, args ...string) error {
		started <- append([]string{path}, args...)
		return nil
	}
	opts := streamOpts(env, testMagnet)
	opts.Open = "browser"
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- runStream(ctx, opts) }()
	var got []string
	select {
	case got = <-started:
	case err := <-done:
		t.Fatalf("runStream() = %v before it opened the browser", err)
	case <-time.After(time.Minute): // a hang guard
		t.Fatal("the browser was not opened while the task resolves")
	}
	cancel()
	<-done
	watch := got[len(got)-1]
	if !strings.Contains(watch, "/watch?") || !strings.Contains(out.String(), strings.Replace(watch, "/watch?", "/stream?", 1)) {
		t.Errorf("opened %q, want the /watch page of the printed stream URL (stdout %q)", got, out)
	}
}

func TestStreamErrors(t *testing.T) {
	tests := []struct {
		name   string
		source string
		setup  func(*fakeDaemon, *Env)
		open   bool
		want   string
		code   string // control error code, "" = not a daemon error
		adds   int
	}{
		{"malformed magnet, caught before any daemon", "magnet:?xt=bad", nil, false, "bad source: magnet link", "", 0},
		{"bad source from the daemon", "https://example.com/bad.torrent", nil, false, "is not a magnet link", "bad_source", 1},
		{"task fails", testMagnet, func(fd *fakeDaemon, _ *Env) { fd.failTask = true }, false, "failed: no peers", "", 1},
		{"no vlc", testMagnet, nil, true, "VLC not found", "", 0},
		{"missing file", "./missing.torrent", nil, false, "no such file", "", 0},
		{"directory", ".", nil, false, "is a directory", "", 0},
		{"empty", " ", nil, false, "source is empty", "", 0},
		{"vlc fails", testMagnet, func(_ *fakeDaemon, env *Env) {
			env.LookPath = func(string) (string, error) { return "/usr/bin/vlc", nil }
		}, true, "open vlc", "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fd := newFakeDaemon()
			env, out, _ := testEnv(serve(t, fd))
			if tc.setup != nil {
				tc.setup(fd, env)
			}
			opts := streamOpts(env, tc.source)
			if tc.open {
				opts.Open = "vlc"
			}
			err := runStream(t.Context(), opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("runStream(%q) = %v, want one line containing %q", tc.source, err, tc.want)
			}
			if tc.code != "" && !isCode(err, tc.code) {
				t.Errorf("runStream(%q) = %v, want code %q", tc.source, err, tc.code)
			}
			if len(fd.adds) != tc.adds {
				t.Errorf("AddTask called %d times, want %d", len(fd.adds), tc.adds)
			}
			if tc.adds == 0 && out.String() != "" {
				t.Errorf("stdout = %q, want nothing", out)
			}
		})
	}
}

// inProcess returns an Env.StartDaemon that serves fd on a fresh socket
// until its ctx is done, and a channel closed once the daemon has stopped.
func inProcess(t *testing.T, fd *fakeDaemon) (func(context.Context) (*control.Client, func() error, error), <-chan struct{}) {
	stopped := make(chan struct{})
	return func(ctx context.Context) (*control.Client, func() error, error) {
		path := filepath.Join(t.TempDir(), "inproc.sock")
		ln, err := control.Listen(path)
		if err != nil {
			return nil, nil, err
		}
		srv, err := control.New(control.Options{Backend: fd})
		if err != nil {
			return nil, nil, err
		}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, ln) }()
		client := control.NewClient(path)
		return client, func() error {
			defer close(stopped)
			return errors.Join(<-done, client.Close())
		}, nil
	}, stopped
}

func TestStreamInProcessJSONKeepsServing(t *testing.T) {
	fd := newFakeDaemon()
	env, out, errOut := testEnv("")
	env.Client = noDaemon(t)
	var stopped <-chan struct{}
	env.StartDaemon, stopped = inProcess(t, fd)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	opts := streamOpts(env, testMagnet)
	opts.JSON = true
	done := make(chan error, 1)
	go func() { done <- runStream(ctx, opts) }()

	enginetest.WaitFor(t, enginetest.EventWait, "the JSON line", func() bool { return strings.HasSuffix(out.String(), "}\n") })
	enginetest.WaitFor(t, enginetest.EventWait, "serving until Ctrl-C", func() bool { return strings.Contains(errOut.String(), "serving until Ctrl-C") })
	select {
	case err := <-done:
		t.Fatalf("runStream returned %v before Ctrl-C, want it to keep serving", err)
	default:
	}
	if got := jsonKeys(t, out.String()); !reflect.DeepEqual(got, []string{"playlistUrl", "streamUrl", "taskId", "token"}) {
		t.Errorf("keys = %v", got)
	}
	cancel() // Ctrl-C
	if err := <-done; err != nil {
		t.Errorf("runStream after Ctrl-C = %v, want nil", err)
	}
	<-stopped // the in-process daemon was stopped and waited for
	if !strings.Contains(errOut.String(), "no daemon is running: starting one in this process") {
		t.Errorf("stderr %q lacks the in-process hint", errOut)
	}
}

func TestStatus(t *testing.T) {
	fd := newFakeDaemon()
	id, tok := fd.addTask(t)
	id2, _ := fd.addTask(t)
	fd.mu.Lock()
	fd.tasks[id2].info.HLS = []control.HLSInfo{{State: "ready", Mode: "copy"}, {State: "ready", Mode: "copy"},
		{State: "probing"}, {State: "ready", Mode: "transcode", BurntSubtitles: true}}
	fd.mu.Unlock()
	sock := serve(t, fd)

	t.Run("human", func(t *testing.T) {
		env, out, _ := testEnv(sock)
		if err := runStatus(t.Context(), &statusOptions{Out: env.Out, Client: env.Client}); err != nil {
			t.Fatalf("runStatus() = %v", err)
		}
		o := out.String()
		for _, want := range []string{"v9.9.9", "pid 4242", "http://192.0.2.1:11818", "https://torrentclaw.example: connected",
			"optional: tasks without a token", id, "1 grant, next expiry", "Sintel",
			"HLS", "2× copy, probing, transcode (subtitles burnt in)"} {
			if !strings.Contains(o, want) {
				t.Errorf("status output lacks %q:\n%s", want, o)
			}
		}
		for _, tk := range fd.tokens {
			if strings.Contains(o, tk) {
				t.Errorf("status output contains a token:\n%s", o)
			}
		}
	})
	t.Run("json", func(t *testing.T) {
		env, out, _ := testEnv(sock)
		if err := runStatus(t.Context(), &statusOptions{Out: env.Out, Client: env.Client, JSON: true}); err != nil {
			t.Fatalf("runStatus() = %v", err)
		}
		if strings.Contains(out.String(), tok) {
			t.Errorf("status --json contains a token:\n%s", out)
		}
		var st control.StatusResponse
		if err := json.Unmarshal([]byte(out.String()), &st); err != nil {
			t.Fatalf("status --json: %v", err)
		}
		if len(st.Tasks) != 2 || !st.Tasks[0].Token.Set || st.Tasks[0].Token.ExpiresAt.IsZero() {
			t.Errorf("status --json tasks = %+v, want 2 with token set and expiry", st.Tasks)
		}
	})
	t.Run("no daemon", func(t *testing.T) {
		env, out, _ := testEnv("")
		err := runStatus(t.Context(), &statusOptions{Out: env.Out, Client: noDaemon(t)})
		if !errors.Is(err, control.ErrNotRunning) || !strings.Contains(err.Error(), "torrentclaw daemon") {
			t.Errorf("runStatus(no daemon) = %v, want ErrNotRunning with a hint", err)
		}
		if out.String() != "" {
			t.Errorf("stdout = %q", out)
		}
	})
}

func TestStatusEmpty(t *testing.T) {
	env, out, _ := testEnv(serve(t, newFakeDaemon()))
	if err := runStatus(t.Context(), &statusOptions{Out: env.Out, Client: env.Client}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "no tasks") {
		t.Errorf("status = %q, want \"no tasks\"", out)
	}
}

func TestTokenIssueRevoke(t *testing.T) {
	fd := newFakeDaemon()
	id, oldTok := fd.addTask(t)
	sock := serve(t, fd)

	t.Run("issue human", func(t *testing.T) {
		env, out, _ := testEnv(sock)
		if err := runTokenIssue(t.Context(), &tokenIssueOptions{Out: env.Out, Client: env.Client, TaskID: id}); err != nil {
			t.Fatalf("runTokenIssue() = %v", err)
		}
		newTok := fd.tokens[len(fd.tokens)-1]
		o := out.String()
		if newTok == oldTok || !strings.Contains(o, "token     "+newTok+"\n") || !strings.Contains(o, "stream    http://192.0.2.1:11818/stream?id="+id+"&t="+newTok) {
			t.Errorf("token issue printed:\n%s\nwant the new token and URLs carrying it", o)
		}
	})
	t.Run("issue json", func(t *testing.T) {
		env, out, _ := testEnv(sock)
		if err := runTokenIssue(t.Context(), &tokenIssueOptions{Out: env.Out, Client: env.Client, TaskID: id, JSON: true}); err != nil {
			t.Fatalf("runTokenIssue() = %v", err)
		}
		want := []string{"expiresAt", "playlistUrl", "streamUrl", "taskId", "token"}
		if got := jsonKeys(t, out.String()); !reflect.DeepEqual(got, want) {
			t.Errorf("token issue --json keys = %v, want %v", got, want)
		}
		if !strings.Contains(out.String(), fd.tokens[len(fd.tokens)-1]) {
			t.Errorf("token issue --json lacks the token: %s", out)
		}
	})
	t.Run("issue unknown task", func(t *testing.T) {
		env, out, _ := testEnv(sock)
		err := runTokenIssue(t.Context(), &tokenIssueOptions{Out: env.Out, Client: env.Client, TaskID: "nope"})
		if !isCode(err, "not_found") || !strings.Contains(err.Error(), "nope") {
			t.Errorf("runTokenIssue(nope) = %v, want not found naming the task", err)
		}
		if out.String() != "" {
			t.Errorf("stdout = %q", out)
		}
	})
	t.Run("revoke", func(t *testing.T) {
		env, out, errOut := testEnv(sock)
		if err := runTokenRevoke(t.Context(), &tokenRevokeOptions{Err: env.Err, Client: env.Client, TaskID: id}); err != nil {
			t.Fatalf("runTokenRevoke() = %v", err)
		}
		info, err := fd.Task(t.Context(), id)
		if err != nil || info.Token.Set || !info.Token.Locked {
			t.Errorf("after revoke, token = %+v, %v, want locked with no grant", info.Token, err)
		}
		if got := tokenSummary(info.Token); !strings.Contains(got, "locked") {
			t.Errorf("status after revoke says %q, want locked", got)
		}
		if out.String() != "" || !strings.Contains(errOut.String(), "revoked") || !strings.Contains(errOut.String(), "token issue "+id) {
			t.Errorf("stdout %q, stderr %q", out, errOut)
		}
	})
	t.Run("revoke unknown task", func(t *testing.T) {
		env, _, _ := testEnv(sock)
		err := runTokenRevoke(t.Context(), &tokenRevokeOptions{Err: env.Err, Client: env.Client, TaskID: "nope"})
		if !isCode(err, "not_found") || !strings.HasPrefix(err.Error(), "revoke token: ") {
			t.Errorf("runTokenRevoke(nope) = %v, want \"revoke token: …\" not found", err)
		}
	})
	t.Run("revoke unknown task exits 1 with one line", func(t *testing.T) {
		isolate(t)
		env, _, errOut := testEnv(sock)
		if code := run(t.Context(), env, []string{"token", "revoke", "nope"}); code != exitError {
			t.Errorf("exit code %d, want 1", code)
		}
		assertOneErrorLine(t, errOut.String())
	})
}

func TestSeed(t *testing.T) {
	file := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(file, []byte("video"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("json", func(t *testing.T) {
		fd := newFakeDaemon()
		env, out, _ := testEnv(serve(t, fd))
		if err := runSeed(t.Context(), &seedOptions{Out: env.Out, Err: env.Err, Client: env.Client, StartDaemon: env.StartDaemon, Path: file, JSON: true}); err != nil {
			t.Fatalf("runSeed() = %v", err)
		}
		if got := jsonKeys(t, out.String()); !reflect.DeepEqual(got, []string{"infoHash", "magnet", "peer"}) {
			t.Errorf("seed --json keys = %v", got)
		}
		if len(fd.seeds) != 1 || fd.seeds[0] != file {
			t.Errorf("Seed got %q, want %q", fd.seeds, file)
		}
	})
	t.Run("human relative path", func(t *testing.T) {
		fd := newFakeDaemon()
		env, out, errOut := testEnv(serve(t, fd))
		t.Chdir(filepath.Dir(file))
		if err := runSeed(t.Context(), &seedOptions{Out: env.Out, Err: env.Err, Client: env.Client, Path: "clip.mp4"}); err != nil {
			t.Fatalf("runSeed() = %v", err)
		}
		if !strings.HasPrefix(out.String(), "magnet:?xt=urn:btih:") || strings.Count(out.String(), "\n") != 1 {
			t.Errorf("stdout = %q, want the magnet alone", out)
		}
		if fd.seeds[0] != file || !strings.Contains(errOut.String(), "the daemon seeds") {
			t.Errorf("seeds %q, stderr %q", fd.seeds, errOut)
		}
	})
	t.Run("in process until ctrl-c", func(t *testing.T) {
		fd := newFakeDaemon()
		env, out, errOut := testEnv("")
		start, stopped := inProcess(t, fd)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			done <- runSeed(ctx, &seedOptions{Out: env.Out, Err: env.Err, Client: noDaemon(t), StartDaemon: start, Path: file, JSON: true})
		}()
		enginetest.WaitFor(t, enginetest.EventWait, "seeding until Ctrl-C", func() bool { return strings.Contains(errOut.String(), "until Ctrl-C") })
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runSeed after Ctrl-C = %v", err)
		}
		<-stopped
		if got := jsonKeys(t, out.String()); !reflect.DeepEqual(got, []string{"infoHash", "magnet", "peer"}) {
			t.Errorf("seed --json keys = %v", got)
		}
	})
	t.Run("missing path", func(t *testing.T) {
		env, _, _ := testEnv("")
		err := runSeed(t.Context(), &seedOptions{Out: env.Out, Err: env.Err, Client: noDaemon(t), Path: "/nonexistent/x"})
		if err == nil || !strings.Contains(err.Error(), "no such file") {
			t.Errorf("runSeed(missing) = %v", err)
		}
	})
}

func TestConfigInit(t *testing.T) {
	isolate(t)
	path := filepath.Join(t.TempDir(), "sub", "config.toml")
	env, _, errOut := testEnv("")
	opts := &configInitOptions{Err: env.Err, Path: path}
	if err := runConfigInit(opts); err != nil {
		t.Fatalf("runConfigInit() = %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != string(config.Example()) {
		t.Errorf("config file = %q, %v; want the example", b, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	if !strings.Contains(errOut.String(), path) {
		t.Errorf("stderr %q does not name the file", errOut)
	}

	if err := os.WriteFile(path, []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := runConfigInit(opts); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("runConfigInit over a file = %v, want a refusal mentioning --force", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "# mine\n" {
		t.Errorf("refused init changed the file: %q", b)
	}
	opts.Force = true
	if err := runConfigInit(opts); err != nil {
		t.Fatalf("runConfigInit(--force) = %v", err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("forced config file mode = %v, want 0600", fi.Mode())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("config dir holds %v, want only config.toml", entries)
	}
}

func TestConfigShowAndCheck(t *testing.T) {
	isolate(t)
	const key = "s3cret-api-key-value"
	body := "[origin]\napi_url = \"https://torrentclaw.example\"\napi_key = \"" + key + "\"\n"

	t.Run("show redacts", func(t *testing.T) {
		env, out, _ := testEnv("")
		env.ConfigPath = writeConfig(t, body, 0o600)
		if err := runConfigShow(&configShowOptions{Out: env.Out, Err: env.Err, LoadConfig: env.LoadConfig}); err != nil {
			t.Fatalf("runConfigShow() = %v", err)
		}
		if strings.Contains(out.String(), key) || !strings.Contains(out.String(), "torrentclaw.example") {
			t.Errorf("config show:\n%s\nwant the URL and no API key", out)
		}
	})
	t.Run("show defaults", func(t *testing.T) {
		env, out, errOut := testEnv("")
		if err := runConfigShow(&configShowOptions{Out: env.Out, Err: env.Err, LoadConfig: env.LoadConfig}); err != nil {
			t.Fatalf("runConfigShow() = %v", err)
		}
		if !strings.Contains(out.String(), "11818") || !strings.Contains(errOut.String(), "showing the defaults") {
			t.Errorf("stdout %q, stderr %q", out, errOut)
		}
	})
	tests := []struct {
		name    string
		perm    os.FileMode
		strict  bool
		wantErr bool
		warn    bool
	}{
		{"private", 0o600, false, false, false},
		{"private strict", 0o600, true, false, false},
		{"group readable warns", 0o640, false, false, true},
		{"world readable strict fails", 0o644, true, true, false},
	}
	for _, tc := range tests {
		t.Run("check "+tc.name, func(t *testing.T) {
			env, out, errOut := testEnv("")
			env.ConfigPath = writeConfig(t, body, tc.perm)
			err := runConfigCheck(&configCheckOptions{Out: env.Out, Err: env.Err, LoadConfig: env.LoadConfig, Strict: tc.strict})
			if (err != nil) != tc.wantErr {
				t.Fatalf("runConfigCheck() = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr && !errors.Is(err, config.ErrInsecurePermissions) {
				t.Errorf("runConfigCheck() = %v, want ErrInsecurePermissions", err)
			}
			if gotWarn := strings.Contains(errOut.String(), "warning:"); gotWarn != tc.warn {
				t.Errorf("stderr %q, want warning %v", errOut, tc.warn)
			}
			if !tc.wantErr && !strings.HasSuffix(out.String(), ": ok\n") {
				t.Errorf("stdout %q, want \"…: ok\"", out)
			}
		})
	}
	t.Run("check invalid", func(t *testing.T) {
		env, _, _ := testEnv("")
		env.ConfigPath = writeConfig(t, "[stream]\nprot = 1\n", 0o600)
		err := runConfigCheck(&configCheckOptions{Out: env.Out, Err: env.Err, LoadConfig: env.LoadConfig})
		if err == nil || !strings.Contains(err.Error(), "prot") {
			t.Errorf("runConfigCheck(unknown key) = %v, want an error naming it", err)
		}
	})
}

func TestDoctor(t *testing.T) {
	_, dataHome := isolate(t)
	fd := newFakeDaemon()
	sock := serve(t, fd)
	lookPath := func(name string) (string, error) {
		if name == "ffmpeg" || name == "ffprobe" {
			return "/usr/bin/" + name, nil
		}
		return "", errors.New("not found")
	}

	t.Run("daemon running", func(t *testing.T) {
		env, out, _ := testEnv(sock)
		opts := &doctorOptions{Out: env.Out, LoadConfig: env.LoadConfig, Client: env.Client, LookPath: lookPath}
		if err := runDoctor(t.Context(), opts); err != nil {
			t.Fatalf("runDoctor() = %v\n%s", err, out)
		}
		o := out.String()
		for _, want := range []string{"ok    config", "data dir", filepath.Join(dataHome, "torrentclaw"), "ok    ffmpeg", "warn  vlc", "ok    daemon", "daemon: media listener"} {
			if !strings.Contains(o, want) {
				t.Errorf("doctor output lacks %q:\n%s", want, o)
			}
		}
	})
	t.Run("daemon check fails", func(t *testing.T) {
		fd.mu.Lock()
		fd.doctorCheck = []control.Check{{Name: "media listener", Level: control.LevelFail, Detail: "port 11818 busy"}}
		fd.mu.Unlock()
		t.Cleanup(func() { fd.mu.Lock(); fd.doctorCheck = nil; fd.mu.Unlock() })
		env, out, _ := testEnv(sock)
		err := runDoctor(t.Context(), &doctorOptions{Out: env.Out, LoadConfig: env.LoadConfig, Client: env.Client, LookPath: lookPath, JSON: true})
		if err == nil || err.Error() != "doctor: 1 check failed" {
			t.Errorf("runDoctor() = %v, want 1 failed check", err)
		}
		var resp control.DoctorResponse
		if jerr := json.Unmarshal([]byte(out.String()), &resp); jerr != nil {
			t.Fatalf("doctor --json: %v", jerr)
		}
		last := resp.Checks[len(resp.Checks)-1]
		if last.Name != "daemon: media listener" || last.OK || last.Level != control.LevelFail {
			t.Errorf("last check = %+v", last)
		}
	})
	t.Run("no daemon no ffmpeg", func(t *testing.T) {
		env, out, _ := testEnv("")
		none := func(string) (string, error) { return "", errors.New("not found") }
		if err := runDoctor(t.Context(), &doctorOptions{Out: env.Out, LoadConfig: env.LoadConfig, Client: noDaemon(t), LookPath: none}); err != nil {
			t.Fatalf("runDoctor() = %v, want warnings only", err)
		}
		o := out.String()
		for _, want := range []string{"warn  ffmpeg", "install it", "warn  daemon", "not running"} {
			if !strings.Contains(o, want) {
				t.Errorf("doctor output lacks %q:\n%s", want, o)
			}
		}
	})
	t.Run("no daemon asks the origin", func(t *testing.T) {
		env, out, _ := testEnv("")
		env.ConfigPath = writeConfig(t, "[origin]\napi_url = \"https://origin.example\"\napi_key = \"k_secret_0123456789\"\n", 0o600)
		var asked bool
		probe := func(_ context.Context, cfg config.Config) control.Check {
			asked = cfg.Origin.APIURL == "https://origin.example"
			return control.Check{Name: "origin", Level: control.LevelFail, Detail: "https://origin.example: the api key was rejected"}
		}
		err := runDoctor(t.Context(), &doctorOptions{Out: env.Out, LoadConfig: env.LoadConfig, Client: noDaemon(t), LookPath: lookPath, CheckOrigin: probe})
		if !asked || err == nil {
			t.Errorf("runDoctor(origin configured, no daemon): asked=%v err=%v; want the origin asked and a failed check", asked, err)
		}
		if strings.Contains(out.String(), "k_secret_0123456789") || !strings.Contains(out.String(), "api key was rejected") {
			t.Errorf("doctor output:\n%s", out)
		}
	})
	t.Run("bad config fails", func(t *testing.T) {
		env, _, _ := testEnv(sock)
		env.ConfigPath = writeConfig(t, "[stream]\nport = 0\n", 0o600)
		err := runDoctor(t.Context(), &doctorOptions{Out: env.Out, LoadConfig: env.LoadConfig, Client: env.Client, LookPath: lookPath})
		if err == nil {
			t.Error("runDoctor(bad config) = nil, want a failed check")
		}
	})
	t.Run("unwritable data dir fails", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes anywhere")
		}
		dir := filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		if c := checkDir("data dir", dir); c.Level != control.LevelFail {
			t.Errorf("checkDir(read-only) = %+v, want fail", c)
		}
	})
}

func TestCheckDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir string
		want      control.Level
	}{
		{"writable", dir, control.LevelOK},
		{"to be created", filepath.Join(dir, "a", "b"), control.LevelOK},
		{"a file", file, control.LevelFail},
		{"under a file", filepath.Join(file, "x"), control.LevelFail},
		{"unset", "", control.LevelFail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkDir("data dir", tc.dir); got.Level != tc.want {
				t.Errorf("checkDir(%q) = %+v, want level %s", tc.dir, got, tc.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	env, out, _ := testEnv("")
	if err := runVersion(&versionOptions{Out: env.Out, Version: "v1.2.3", JSON: true}); err != nil {
		t.Fatal(err)
	}
	if got := jsonKeys(t, out.String()); !reflect.DeepEqual(got, []string{"arch", "go", "os", "version"}) {
		t.Errorf("version --json keys = %v", got)
	}
	env, out, _ = testEnv("")
	if code := run(t.Context(), env, []string{"version"}); code != 0 || !strings.HasPrefix(out.String(), "torrentclaw v1.2.3 (go") {
		t.Errorf("version = %d, %q", code, out)
	}
}

func TestNormalizeSource(t *testing.T) {
	dir := t.TempDir()
	torrent := filepath.Join(dir, "a.torrent")
	if err := os.WriteFile(torrent, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	hash := strings.Repeat("Ab", 20)
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{testMagnet, testMagnet, false},
		{"  " + testMagnet + "\n", testMagnet, false},
		{"MAGNET:?xt=urn:btih:" + hash, "MAGNET:?xt=urn:btih:" + hash, false},
		{"magnet:?xt=urn:btih:x", "", true}, // rejected before a daemon starts
		{"https://example.com/a.torrent", "https://example.com/a.torrent", false},
		{"http://example.com/a.torrent", "http://example.com/a.torrent", false},
		{hash, hash, false},
		{strings.Repeat("f", 64), strings.Repeat("f", 64), false},
		{torrent, torrent, false},
		{strings.Repeat("g", 40), "", true},
		{"", "", true},
		{dir, "", true},
		{filepath.Join(dir, "missing.torrent"), "", true},
	}
	for _, tc := range tests {
		got, err := normalizeSource(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("normalizeSource(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// FuzzNormalizeSource checks that classifying a source never panics, that
// accepted local paths come back absolute, and that errors are one line.
func FuzzNormalizeSource(f *testing.F) {
	for _, s := range []string{testMagnet, "https://example.com/a.torrent", strings.Repeat("a", 40), "a.torrent", "", ".", "\x00", "magnet:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := normalizeSource(in)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("normalizeSource(%q) error %q is not one line", in, err)
			}
			return
		}
		lower := strings.ToLower(got)
		remote := strings.HasPrefix(lower, "magnet:") || strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") || isInfoHash(got)
		if !remote && !filepath.IsAbs(got) {
			t.Errorf("normalizeSource(%q) = %q, neither remote nor absolute", in, got)
		}
	})
}

func TestFormatting(t *testing.T) {
	bytesTests := []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {100 << 20, "100.0 MiB"}, {3 << 30, "3.0 GiB"}}
	for _, tc := range bytesTests {
		if got := formatBytes(tc.n); got != tc.want {
			t.Errorf("formatBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
	etaTests := []struct {
		secs int64
		want string
	}{{0, "-"}, {-1, "-"}, {45, "45s"}, {200, "3m20s"}, {3720, "1h02m"}}
	for _, tc := range etaTests {
		if got := formatETA(tc.secs); got != tc.want {
			t.Errorf("formatETA(%d) = %q, want %q", tc.secs, got, tc.want)
		}
	}
	if got := oneLine("a\nb\r\n c"); got != "a; b; c" {
		t.Errorf("oneLine = %q", got)
	}
	if got := truncate("héllo wörld", 6); got != "héllo…" {
		t.Errorf("truncate = %q", got)
	}
}

func TestDaemonConfigPermissions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	body := "[origin]\napi_url = \"https://origin.example\"\napi_key = \"k_0123456789abcdef\"\n[torrent]\ndata_dir = \"" + dir + "\"\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		strict   bool
		wantErr  bool
		wantWarn bool
	}{
		{"warns", false, false, true},
		{"strict refuses", true, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errOut bytes.Buffer
			_, err := daemonConfig(&daemonOptions{Err: &errOut, ConfigPath: path, Strict: tc.strict})
			if (err != nil) != tc.wantErr {
				t.Fatalf("daemonConfig(strict=%v) error = %v, wantErr %v", tc.strict, err, tc.wantErr)
			}
			if got := strings.Contains(errOut.String(), "warning:"); got != tc.wantWarn {
				t.Errorf("daemonConfig(strict=%v) warned = %v (%q), want %v", tc.strict, got, errOut.String(), tc.wantWarn)
			}
			if strings.Contains(errOut.String()+fmt.Sprint(err), "k_0123456789abcdef") {
				t.Errorf("the API key leaked into output")
			}
		})
	}
}
