package daemon

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// vlcRunSeconds is how long VLC plays (--run-time).
const vlcRunSeconds = 4

// nobodyID is the uid and gid VLC runs as when the test runs as root: VLC
// refuses to run as root ("VLC is not supposed to be run as root").
const nobodyID = 65534

// accessLine matches the media listener's debug access log line.
var accessLine = regexp.MustCompile(`msg="http request" .*\broute="([^"]*)" status=(\d+) bytes=(\d+)`)

// e2eServed sums the access log: requests and body bytes per route, for
// 2xx answers.
func e2eServed(logs string) (requests map[string]int, bytes map[string]int64) {
	requests, bytes = map[string]int{}, map[string]int64{}
	e2eScanLines(logs, func(line string) {
		m := accessLine.FindStringSubmatch(line)
		if m == nil {
			return
		}
		status, _ := strconv.Atoi(m[2])
		if status < 200 || status > 299 {
			return
		}
		n, _ := strconv.ParseInt(m[3], 10, 64)
		requests[m[1]]++
		bytes[m[1]] += n
	})
	return requests, bytes
}

// vlcHome makes a home directory VLC's user can write (its config and
// cache go there), removed when the test ends.
func vlcHome(t *testing.T, asNobody bool) string {
	t.Helper()
	// Not t.TempDir: its parent is private to root, and VLC may run as
	// nobody.
	dir, err := os.MkdirTemp("", "torrentclaw-e2e-vlc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if asNobody {
		if err := os.Chown(dir, nobodyID, nobodyID); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// vlcCommand returns headless VLC that plays url for vlcRunSeconds and exits: it runs in
// home with only the environment it needs (config and cache under home), as nobody when
// asNobody, is killed when ctx ends, and has 5 s after that to close its output. opts come
// before VLC's own (-vv for the debug log, a language).
func vlcCommand(ctx context.Context, cvlc, home string, asNobody bool, url string, opts ...string) *exec.Cmd {
	args := append(slices.Clip(opts), "--intf", "dummy", "--vout", "dummy", "--aout", "dummy",
		"--no-video-title-show", "--no-stats",
		"--play-and-exit", "--run-time", strconv.Itoa(vlcRunSeconds),
		url)
	cmd := exec.CommandContext(ctx, cvlc, args...)
	cmd.Env = []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"LANG=C.UTF-8",
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"XDG_RUNTIME_DIR=" + home,
	}
	cmd.Dir = home
	if asNobody {
		runAs(cmd, nobodyID, nobodyID) // sysproc_*_test.go
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// TestE2EVLC plays the daemon's /playlist.m3u in headless VLC for a few
// seconds, from a cold daemon whose torrent is still downloading.
func TestE2EVLC(t *testing.T) {
	e2eStart(t)
	cvlc := e2eTool(t, "cvlc")
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{UploadRateBytes: 512 << 10})
	info := seeder.Add(t, filepath.Join("..", "..", "testdata", "sample.mp4"))
	logs := &logBuffer{}
	r := startDaemon(t, testConfig(t, t.TempDir()), logs)
	add, err := r.client.AddTask(t.Context(), control.AddRequest{Source: info.Magnet, FileIndex: -1})
	if err != nil {
		t.Fatalf("AddTask() error = %v", err)
	}

	asNobody := os.Geteuid() == 0
	home := vlcHome(t, asNobody)
	// A hang guard: VLC exits by itself after vlcRunSeconds; generous for a loaded machine.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := vlcCommand(ctx, cvlc, home, asNobody, add.PlaylistURL).CombinedOutput()
	elapsed := time.Since(start)
	tok := add.Token.Reveal()
	output := redactBody(out, tok)
	if err != nil {
		t.Fatalf("cvlc exited with %v after %s\n%s", err, elapsed.Round(time.Millisecond), output)
	}
	e2eScanLines(string(out), func(line string) {
		if vlcInputError(line) {
			t.Errorf("cvlc: %s", redactBody([]byte(line), tok))
		}
	})
	// VLC exits at once when it cannot open or play the input; a run that
	// lasted --run-time played.
	if elapsed < (vlcRunSeconds-1)*time.Second {
		t.Errorf("cvlc exited after %s, want about %ds of playback\n%s", elapsed.Round(time.Millisecond), vlcRunSeconds, output)
	}

	requests, bytes := e2eServed(logs.String())
	if requests["GET /playlist.m3u"] == 0 {
		t.Errorf("the media listener served no playlist (requests: %v)", requests)
	}
	if bytes["GET /stream"] < 64<<10 {
		t.Errorf("the media listener served %d bytes of /stream to VLC, want the file's bytes (requests: %v)", bytes["GET /stream"], requests)
	}
	t.Logf("cvlc played for %s: %d /stream requests, %d bytes", elapsed.Round(time.Millisecond), requests["GET /stream"], bytes["GET /stream"])
	assertNoSecrets(t, logs.String(), tok)
}

// TestE2EVLCPlaylistSidecar opens /playlist.m3u in cvlc, from a cold daemon
// fed by a loopback seeder with a torrent holding Film.mkv and its sidecar
// Film.fr.srt, and checks in VLC's log that it loaded that sidecar from the
// path the playlist named (VLC ignores input-slave from a playlist and takes
// sub-file only as a local path; see docs/player.md). A request that came
// through a proxy gets no local path.
func TestE2EVLCPlaylistSidecar(t *testing.T) {
	e2eStart(t)
	e2eNeedFFmpeg(t)
	cvlc := e2eTool(t, "cvlc")
	const seconds = 12
	film := e2eMakeTracks(t, t.TempDir(), seconds)
	asNobody := os.Geteuid() == 0
	// VLC opens the sidecar itself, as its own user: when that is nobody,
	// the download directory must be one nobody can read (t.TempDir's
	// parent is private).
	home := vlcHome(t, asNobody)
	cfg := testConfig(t, t.TempDir())
	cfg.Torrent.DownloadDir = filepath.Join(home, "downloads")
	logs := &logBuffer{}
	r := startDaemon(t, cfg, logs)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{UploadRateBytes: 1 << 20})
	add, err := r.client.AddTask(t.Context(), control.AddRequest{Source: seeder.Add(t, film).Magnet, FileIndex: -1})
	if err != nil {
		t.Fatalf("AddTask() error = %v", err)
	}
	tok := add.Token.Reveal()
	wantPath := filepath.Join(cfg.Torrent.DownloadDir, "Film", "Film.fr.srt")

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	out, err := vlcCommand(ctx, cvlc, home, asNobody, add.PlaylistURL, "-vv").CombinedOutput()
	log := string(out)
	if err != nil {
		t.Fatalf("cvlc: %v\n%s", err, redactBody(out, tok))
	}
	var lines []string
	e2eScanLines(log, func(line string) {
		if strings.Contains(line, "subtitle") || strings.Contains(line, "spu") || strings.Contains(line, "unsafe option") {
			lines = append(lines, line)
		}
		if vlcInputError(line) {
			t.Errorf("cvlc: %s", redactBody([]byte(line), tok))
		}
	})
	t.Logf("cvlc subtitle log:\n%s", redactBody([]byte(strings.Join(lines, "\n")), tok))
	for _, want := range []string{
		"forced subtitle: " + wantPath,                 // the playlist's sub-file option
		"loading spu-es slave: file://" + wantPath,     // opened as a subtitle input
		"subtitle demux debug: detected SubRIP format", // and parsed:
		"subtitle demux debug: loaded " + strconv.Itoa(seconds) + " subtitles",
		`using spu decoder module "subsdec"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("cvlc's log lacks %q", want)
		}
	}
	requests, _ := e2eServed(logs.String())
	if requests["GET /playlist.m3u"] == 0 || requests["GET /stream"] == 0 {
		t.Errorf("the media listener served %v, want the playlist and the stream", requests)
	}

	// Through a proxy (a header a proxy adds), the same token gets the
	// plain list: no option, no local path.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, add.PlaylistURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", "192.0.2.7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET playlist via proxy: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET playlist via proxy: status %d, err %v", resp.StatusCode, err)
	}
	if strings.Contains(string(body), "#EXTVLCOPT") || strings.Contains(string(body), cfg.Torrent.DownloadDir) {
		t.Errorf("proxied playlist names a local path:\n%s", redactBody(body, tok))
	}
	if !strings.Contains(string(body), "/stream?") {
		t.Errorf("proxied playlist has no entry:\n%s", redactBody(body, tok))
	}
	assertNoSecrets(t, logs.String(), tok)
}

// vlcInputError reports whether a line of VLC's log is an input error. VLC logs its clock
// recovery ("ES_OUT_SET_(GROUP_)PCR is called too late", then a larger pts_delay) at error
// level too; that happens when a loaded machine decodes late, and playback goes on, so it
// is not one (the tests still require the full run time and the file's bytes).
func vlcInputError(line string) bool {
	return strings.Contains(line, "main input error") && !strings.Contains(line, "is called too late")
}
