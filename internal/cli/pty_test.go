package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/enginetest"
	"github.com/torrentclaw/cli/internal/logtest"
)

// bufferedSeconds matches the compact line's buffered-ahead figure in seconds or minutes.
var bufferedSeconds = regexp.MustCompile(`buf [0-9]+(s|m[0-9]{2}s|h[0-9]{2}m)`)

// ansi matches the escape sequences the progress line uses.
var ansi = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

// The real binary, in a pseudo-terminal 40 columns wide, streaming from a
// loopback seeder: every redraw of the progress line fits in one line, it
// shows the peers, and it goes on after "ready".
func TestStreamProgressInPTY(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) not found: no pseudo-terminal to test in")
	}
	bin := installBinary(t)
	// 1 MB/s: the 2.6 MB sample takes a few seconds, so the line is drawn
	// while the seeder is a connected peer.
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{UploadRateBytes: 1 << 20})
	info := seeder.Add(t, filepath.Join("..", "..", "testdata", "sample.mp4"))

	dir := t.TempDir()
	// script runs the command in a new pseudo-terminal; stty sets its size.
	cmd := exec.Command(script, "-qfec", "stty cols 40 rows 20; exec "+bin+" stream '"+info.Magnet+"'", "/dev/null")
	cmd.Env = append(os.Environ(),
		"XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir, "TORRENTCLAW_CONFIG=",
		"TORRENTCLAW_STREAM_LISTEN=127.0.0.1", "TORRENTCLAW_STREAM_PORT="+strconv.Itoa(freePort(t)),
		"TORRENTCLAW_TORRENT_LISTEN_PORT=0", "TORRENTCLAW_TORRENT_DHT=false")
	var out logtest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // closing the terminal hangs up the stream command
		<-exited
	})

	// Wait for at least two redraws after "ready" (the line keeps going) and the buffer in
	// seconds.
	deadline := time.After(2 * time.Minute)
	for {
		o := out.String()
		if i := strings.Index(o, "ready: "); i >= 0 && strings.Count(o[i:], "\x1b[K") >= 3 && bufferedSeconds.MatchString(o) {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("stream exited (%v) before reporting after ready:\n%q", err, o)
		case <-deadline:
			t.Fatalf("no progress after ready, or no buffer in seconds, within 2 minutes:\n%q", o)
		case <-time.After(20 * time.Millisecond):
		}
	}
	o := out.String()
	// Every redraw ("\r\x1b[K" then text) must fit in 39 columns, so the
	// terminal never wraps it into a second line.
	redraws := 0
	for _, seg := range strings.Split(o, "\x1b[K")[1:] {
		line, _, _ := strings.Cut(seg, "\r")
		line, _, _ = strings.Cut(line, "\n")
		line = ansi.ReplaceAllString(line, "")
		if line == "" {
			continue
		}
		redraws++
		if n := len([]rune(line)); n > 39 && !strings.HasPrefix(line, "ready: ") && !strings.HasPrefix(line, "hint: ") {
			t.Errorf("progress redraw %q is %d columns, wider than the 40-column terminal allows", line, n)
		}
	}
	if redraws < 3 {
		t.Errorf("%d redraws, want several:\n%q", redraws, o)
	}
	if !strings.Contains(o, "peers 1/") {
		t.Errorf("no redraw shows the peer:\n%q", o)
	}
	// The engine knows the sample's duration from its container, so the buffered figure is in
	// seconds of playback ("buf 30s"), not bytes ("buf 2.6M").
	if !bufferedSeconds.MatchString(ansi.ReplaceAllString(o, "")) {
		t.Errorf("no redraw shows the buffer in seconds:\n%q", o)
	}
}
