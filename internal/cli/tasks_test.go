package cli

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/daemon"
	"github.com/torrentclaw/cli/internal/enginetest"
)

func TestTaskVerbs(t *testing.T) {
	fd := newFakeDaemon()
	env, _, errOut := testEnv(serve(t, fd))
	id, _ := fd.addTask(t)
	opts := &taskOptions{Err: env.Err, Client: env.Client, TaskID: id}
	if err := runSetPaused(t.Context(), opts, true); err != nil {
		t.Fatalf("pause = %v", err)
	}
	if err := runSetPaused(t.Context(), opts, false); err != nil {
		t.Fatalf("resume = %v", err)
	}
	opts.DeleteFiles = true
	if err := runRm(t.Context(), opts); err != nil {
		t.Fatalf("rm = %v", err)
	}
	want := []string{"paused " + id, "downloading " + id, "remove " + id + " deleteFiles=true"}
	if !slices.Equal(fd.calls, want) {
		t.Errorf("daemon calls = %q, want %q", fd.calls, want)
	}
	for _, w := range []string{"paused task " + id, "resumed task " + id, "removed task " + id + "; its files were deleted"} {
		if !strings.Contains(errOut.String(), w) {
			t.Errorf("stderr %q lacks %q", errOut, w)
		}
	}
	// An unknown task is one clear error.
	err := runRm(t.Context(), opts)
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("rm of a removed task = %v, want not found", err)
	}
}

func TestFiles(t *testing.T) {
	fd := newFakeDaemon()
	env, out, _ := testEnv(serve(t, fd))
	id, _ := fd.addTask(t)
	opts := &filesOptions{Out: env.Out, Client: env.Client, TaskID: id}
	if err := runFiles(t.Context(), opts); err == nil || !strings.Contains(err.Error(), "no metadata yet") {
		t.Errorf("files before metadata = %v, want a 'no metadata yet' error", err)
	}
	fd.mu.Lock()
	fd.tasks[id].info.FileIndex = 1
	fd.tasks[id].info.Files = []control.FileInfo{
		{Index: 0, Path: "Show/sample.txt", Length: 1024},
		{Index: 1, Path: "Show/episode.mkv", Length: 700 << 20, Playable: true, Probed: true, Mode: "copy-video", Tracks: []control.TrackInfo{
			{Index: 0, Kind: "audio", Language: "en", Codec: "aac", Channels: 2, Copy: true, Default: true},
			{Index: 1, Kind: "audio", Language: "fr", Codec: "ac3", Channels: 2},
			{Index: 0, Kind: "subtitle", Language: "en", Codec: "subrip"},
			{Index: 1, Kind: "subtitle", Language: "en", Codec: "hdmv_pgs_subtitle", Image: true},
			{Index: 2, Kind: "subtitle", Language: "fr", Codec: "srt", Sidecar: true, File: 2}}},
		{Index: 2, Path: "Show/episode.fr.srt", Length: 2048},
		{Index: 3, Path: "Show/bonus.mp4", Length: 9 << 20, Playable: true, Tracks: []control.TrackInfo{
			{Index: 0, Kind: "subtitle", Language: "fr", Codec: "srt", Sidecar: true, File: 4}}},
		{Index: 4, Path: "Show/bonus.fr.srt", Length: 2048},
	}
	fd.tasks[id].info.HLS = []control.HLSInfo{{FileIndex: 1, State: "ready", Mode: "transcode", BurntSubtitles: true}}
	fd.mu.Unlock()
	if err := runFiles(t.Context(), opts); err != nil {
		t.Fatalf("files = %v", err)
	}
	o := out.String()
	for _, w := range []string{"INDEX", "HLS", "Show/sample.txt", "700.0 MiB",
		"2 audio (en, fr), 3 subtitle (en, en image, fr)", "Show/episode.mkv (selected)",
		"transcode (subtitles burnt in) (1 open)", // the live session's mode
		"audio 0     en  aac                2 ch, copied, default",
		"audio 1     fr  ac3                re-encoded to AAC 2 ch",
		"subtitle 0  en  subrip             text",
		"subtitle 1  en  hdmv_pgs_subtitle  image: burn-in only (stream --hls --burn-subs)",
		"subtitle 2  fr  srt                text, sidecar file 2",
		"3 Show/bonus.mp4\n  audio and embedded subtitles: not probed yet",
	} {
		if !strings.Contains(o, w) {
			t.Errorf("files output lacks %q:\n%s", w, o)
		}
	}
}

func TestStreamExistingTask(t *testing.T) {
	fd := newFakeDaemon()
	fd.readyAfter = 0
	fd.existing = true
	env, _, errOut := testEnv(serve(t, fd))
	if err := runStream(t.Context(), streamOpts(env, testMagnet)); err != nil {
		t.Fatalf("runStream() = %v", err)
	}
	if !strings.Contains(errOut.String(), "already a task (task-1)") {
		t.Errorf("stderr %q does not say the source is already a task", errOut)
	}
}

func TestStreamResolveTimeout(t *testing.T) {
	fd := newFakeDaemon()
	fd.resolving = true
	env, _, _ := testEnv(serve(t, fd))
	opts := streamOpts(env, testMagnet)
	opts.ResolveTimeout = 50 * time.Millisecond
	err := runStream(t.Context(), opts)
	if err == nil || !strings.Contains(err.Error(), "no metadata after") || !strings.Contains(err.Error(), "torrentclaw rm task-1") {
		t.Errorf("runStream(never resolves) = %v, want a metadata timeout naming rm", err)
	}
}

func TestStreamRefusesInProcessDaemon(t *testing.T) {
	fd := newFakeDaemon()
	sock := serveOpts(t, control.Options{Backend: fd, OwnerKey: "the-other-terminal"})
	env, _, _ := testEnv(sock)
	err := runStream(t.Context(), streamOpts(env, testMagnet))
	if err == nil || !strings.Contains(err.Error(), "another terminal") {
		t.Fatalf("runStream(in-process daemon of another terminal) = %v, want a plain refusal", err)
	}
	if len(fd.adds) != 0 {
		t.Errorf("the task was added to the other terminal's daemon: %+v", fd.adds)
	}
	// The server refuses changes without the owner key too.
	c := control.NewClient(sock)
	defer c.Close()
	if _, err := c.AddTask(t.Context(), control.AddRequest{Source: testMagnet, FileIndex: -1}); err == nil || !strings.Contains(err.Error(), "another terminal") {
		t.Errorf("AddTask without the owner key = %v, want refused", err)
	}
	if _, err := c.WithOwnerKey("the-other-terminal").AddTask(t.Context(), control.AddRequest{Source: testMagnet, FileIndex: -1}); err != nil {
		t.Errorf("AddTask with the owner key = %v", err)
	}
	// Reading is open to all.
	if _, err := c.Status(t.Context()); err != nil {
		t.Errorf("Status() = %v", err)
	}
}

func TestTokenSummary(t *testing.T) {
	next := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		in   control.TokenInfo
		want string
	}{
		{"none", control.TokenInfo{}, "none"},
		{"two", control.TokenInfo{Set: true, Grants: 2, NextExpiry: next}, "2 grants, next expiry " + formatTime(next)},
		{"one", control.TokenInfo{Set: true, Grants: 1, NextExpiry: next}, "1 grant, next expiry"},
		{"locked", control.TokenInfo{Locked: true, EverGranted: true}, "locked (revoked)"},
		{"expired", control.TokenInfo{EverGranted: true}, "expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tokenSummary(tc.in); !strings.HasPrefix(got, tc.want) {
				t.Errorf("tokenSummary(%+v) = %q, want prefix %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestVerbsAgainstRealDaemon drives a real daemon (real engine, real media
// listener, a real seeder on loopback) through the command line.
func TestVerbsAgainstRealDaemon(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Stream.Listen, cfg.Stream.Port = "127.0.0.1", port
	cfg.Torrent.DataDir, cfg.Torrent.DownloadDir = filepath.Join(dir, "data"), filepath.Join(dir, "downloads")
	cfg.HLS.Dir = filepath.Join(dir, "hls")
	cfg.Torrent.ListenPort, cfg.Torrent.DHT, cfg.Torrent.Trackers = 0, false, nil
	d, err := daemon.New(daemon.Options{Config: cfg, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon Run() = %v", err)
		}
	})
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatalf("daemon stopped before ready: %v", err)
	}

	src, _ := enginetest.WriteRandomFile(t, t.TempDir(), "film.mp4", 1<<20, 50)
	info := enginetest.NewSeeder(t, enginetest.SeederOptions{}).Add(t, src)
	cli := func(args ...string) string {
		t.Helper()
		env, out, errOut := testEnv(d.SocketPath())
		if code := run(t.Context(), env, args); code != 0 {
			t.Fatalf("torrentclaw %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		return out.String()
	}
	var added streamJSON
	if err := json.Unmarshal([]byte(cli("stream", info.Magnet, "--json")), &added); err != nil {
		t.Fatal(err)
	}
	get := func(u string) int {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(added.StreamURL); code != http.StatusOK {
		t.Fatalf("GET stream = %d", code)
	}
	// A second stream of the same magnet is the same task, with a new grant;
	// the first URL keeps working.
	var again streamJSON
	if err := json.Unmarshal([]byte(cli("stream", info.Magnet, "--json")), &again); err != nil {
		t.Fatal(err)
	}
	if again.TaskID != added.TaskID || get(added.StreamURL) != http.StatusOK || get(again.StreamURL) != http.StatusOK {
		t.Errorf("second stream: task %s (want %s), or a URL stopped working", again.TaskID, added.TaskID)
	}
	cli("pause", added.TaskID)
	if st := cli("status"); !strings.Contains(st, "paused") || !strings.Contains(st, "2 grants") {
		t.Errorf("status after pause:\n%s\nwant paused and 2 grants", st)
	}
	cli("resume", added.TaskID)
	if files := cli("files", added.TaskID); !strings.Contains(files, "film.mp4 (selected)") {
		t.Errorf("files = %q", files)
	}
	cli("token", "revoke", added.TaskID)
	if st := cli("status"); !strings.Contains(st, "locked") {
		t.Errorf("status after token revoke:\n%s\nwant locked", st)
	}
	path := filepath.Join(cfg.Torrent.DownloadDir, "film.mp4")
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	cli("rm", added.TaskID, "--delete-files")
	if code := get(again.StreamURL); code != http.StatusNotFound {
		t.Errorf("GET after rm = %d, want 404", code)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("file after rm --delete-files: %v", err)
	}
}
