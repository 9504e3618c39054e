package daemon

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// e2eMakeDenseSubs writes dir/Film/Film.<ext>: H.264, AAC and an embedded
// English text track (SRT in Matroska, mov_text in MP4, whose index is at
// the end) with a cue in every second ("English cue N" from N to N+1 s),
// and returns dir/Film.
func e2eMakeDenseSubs(t testing.TB, dir string, seconds int, ext string) string {
	t.Helper()
	film := filepath.Join(dir, "Film")
	if err := os.MkdirAll(film, 0o755); err != nil {
		t.Fatal(err)
	}
	var srt strings.Builder
	for i := range seconds {
		fmt.Fprintf(&srt, "%d\n%s --> %s\nEnglish cue %d\n\n", i+1, srtTime(i), srtTime(i+1), i)
	}
	subs := filepath.Join(dir, "eng.srt")
	if err := os.WriteFile(subs, []byte(srt.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-i", subs,
		"-map", "0:v", "-map", "1:a", "-map", "2:s", "-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-preset", "superfast", "-b:v", "600k", "-pix_fmt", "yuv420p", "-g", "50",
		"-c:a", "aac", "-ac", "2", "-b:a", "96k", "-c:s", map[string]string{"mkv": "srt", "mp4": "mov_text"}[ext],
		"-metadata:s:a:0", "language=eng", "-metadata:s:s:0", "language=eng",
		filepath.Join(film, "Film."+ext))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg (make Film.%s): %v: %s", ext, err, out)
	}
	return film
}

func srtTime(s int) string { return fmt.Sprintf("%02d:%02d:%02d,000", s/3600, s/60%60, s%60) }

// TestE2EWatchEmbeddedSubtitles: the subtitles inside the file show while
// the file is still downloading, on hls.js (an MKV) and on the raw path (an
// MP4 the browser plays itself, whose track the page loads window by
// window). The seeder sends a little faster than the title plays, so the
// download ends long after playback starts; the page picks the embedded
// English track and must show the cue of the moment before the torrent is
// complete (an embedded track is spread through the whole file: the daemon
// reads only the window around the playhead).
func TestE2EWatchEmbeddedSubtitles(t *testing.T) {
	for _, tc := range []struct {
		engine, ext string
		seconds     int
		rate        int64
	}{
		// About 87 KB/s of media: 120 KiB/s takes some two minutes for the file.
		{"hlsjs", "mkv", 180, 120 << 10},
		// The raw path stalls for tens of seconds at that rate, subtitles or
		// not (docs/player.md): a faster seeder, and a longer title so that
		// the file still takes some two minutes.
		{"raw", "mp4", 300, 250 << 10},
		// The browser's own HLS (Safari's; here Chromium's, with hls.js blocked):
		// subtitles are <track> elements there too.
		{"native", "mkv", 180, 120 << 10},
	} {
		t.Run(tc.engine, func(t *testing.T) { e2eWatchEmbeddedSubtitles(t, tc.engine, tc.ext, tc.seconds, tc.rate) })
	}
}

func e2eWatchEmbeddedSubtitles(t *testing.T, engine, ext string, seconds int, rate int64) {
	chromium := e2eWatchStart(t)
	film := e2eMakeDenseSubs(t, t.TempDir(), seconds, ext)
	cfg := testConfig(t, t.TempDir())
	cfg.HLS.SegmentSeconds = e2eSegSeconds
	logs := &logBuffer{}
	r := startDaemon(t, cfg, logs)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{UploadRateBytes: rate})
	add, err := r.client.AddTask(t.Context(), control.AddRequest{Source: seeder.Add(t, film).Magnet, FileIndex: -1})
	if err != nil {
		t.Fatalf("AddTask() error = %v", err)
	}

	var c *cdp
	var s string
	if engine == "native" {
		c, s = e2eNativeHLSPage(t, chromium)
	} else {
		c = startCDP(t, chromium)
		s = c.newPage()
	}
	c.call(s, "Page.navigate", map[string]any{"url": e2eWatchURL(r, add)}, 60*time.Second)
	const slow = 3 * time.Minute
	c.waitJS(s, `document.getElementById('video').currentTime > 1`, slow, "play past 1 s")
	var st pageState
	c.eval(s, pageStateJS, 30*time.Second, &st)
	if st.Engine != engine || len(st.SubOptions) != 2 || !strings.HasPrefix(st.SubOptions[1], "English") {
		t.Fatalf("page state %+v, want %s with Off and the English track", st, engine)
	}
	c.eval(s, e2ePickSubsJS("English"), 30*time.Second, nil)
	picked := time.Now()
	c.waitJS(s, e2eCueShowingJS("English cue"), slow, "an English cue becomes active")
	c.eval(s, pageStateJS, 30*time.Second, &st)
	ti, err := r.client.Task(t.Context(), add.TaskID)
	if err != nil {
		t.Fatalf("Task() error = %v", err)
	}
	t.Logf("English cue %q at %.2f s, %s after the pick, with %.1f%% downloaded", st.Cues, st.Time,
		time.Since(picked).Round(time.Millisecond), ti.Progress)
	if ti.Progress >= 100 {
		t.Errorf("the cue showed only once the file was complete (%.1f%%)", ti.Progress)
	}
	if len(st.Cues) != 1 {
		t.Fatalf("active cues %q, want one", st.Cues)
	}
	n, err := strconv.Atoi(strings.TrimPrefix(st.Cues[0], "English cue "))
	if err != nil || float64(n) > st.Time+0.5 || float64(n) < st.Time-1.5 {
		t.Errorf("cue %q at %.2f s: not the cue of that moment", st.Cues[0], st.Time)
	}

	// A seek ahead, still inside what has been downloaded or soon will be,
	// shows the cue there.
	target := st.Time + 25
	c.eval(s, fmt.Sprintf(`(() => { document.getElementById('video').currentTime = %f; return true; })()`, target), 30*time.Second, nil)
	c.waitJS(s, fmt.Sprintf(`document.getElementById('video').currentTime > %f && %s`, target+0.5, e2eCueShowingJS("English cue")), slow,
		"an English cue after the seek")
	c.eval(s, pageStateJS, 30*time.Second, &st)
	if len(st.Cues) != 1 {
		t.Fatalf("active cues %q after the seek, want one", st.Cues)
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(st.Cues[0], "English cue ")); err != nil || float64(n) > st.Time+0.5 || float64(n) < st.Time-1.5 {
		t.Errorf("cue %q at %.2f s after the seek: not the cue of that moment", st.Cues[0], st.Time)
	}
	assertNoSecrets(t, logs.String(), add.Token.Reveal())
}

// TestE2ESubtitleWindowFirstByte: a subtitle window that waits for the
// torrent answers at once with the WebVTT header (hls.js gives up on a
// fragment without a first byte after 10 s, and enough such failures end
// the stream), and if the window then fails the connection is cut: the
// player sees an error, not a short file that looks complete.
func TestE2ESubtitleWindowFirstByte(t *testing.T) {
	e2eStart(t)
	e2eNeedFFmpeg(t)
	film := e2eMakeDenseSubs(t, t.TempDir(), 180, "mkv")
	cfg := testConfig(t, t.TempDir())
	logs := &logBuffer{}
	r := startDaemon(t, cfg, logs)
	// Slow enough that the window at 2 min takes minutes to arrive.
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{UploadRateBytes: 30 << 10})
	add, err := r.client.AddTask(t.Context(), control.AddRequest{Source: seeder.Add(t, film).Magnet, FileIndex: -1, HLS: true})
	if err != nil {
		t.Fatalf("AddTask(HLS) error = %v", err)
	}
	code, master := get(t, add.HLSURL)
	if code != http.StatusOK {
		t.Fatalf("GET master.m3u8 = %d", code)
	}
	var subsURL string
	for _, m := range e2eMediaLine.FindAllStringSubmatch(string(master), -1) {
		if m[1] == "SUBTITLES" {
			subsURL = e2eResolve(t, add.HLSURL, m[3])
		}
	}
	code, pl := get(t, subsURL)
	windows := e2eURIs(t, subsURL, pl)
	if code != http.StatusOK || len(windows) < 25 {
		t.Fatalf("GET subtitle playlist = %d, %d windows:\n%s", code, len(windows), redactBody(pl, add.Token.Reveal()))
	}
	resp, err := http.Get(windows[20]) // 120-126 s
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	want := "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n"
	head := make([]byte, len(want))
	if _, err := io.ReadFull(resp.Body, head); resp.StatusCode != http.StatusOK || err != nil || string(head) != want {
		t.Fatalf("window 20: %d, first bytes %q, %v; want 200 and %q", resp.StatusCode, head, err, want)
	}
	ti, err := r.client.Task(t.Context(), add.TaskID)
	if err != nil {
		t.Fatalf("Task() error = %v", err)
	}
	t.Logf("window 20 began with %.1f%% of the file downloaded", ti.Progress)
	if err := r.client.RemoveTask(t.Context(), add.TaskID, false); err != nil {
		t.Fatalf("RemoveTask() error = %v", err)
	}
	if rest, err := io.ReadAll(resp.Body); err == nil {
		t.Errorf("window 20 ended cleanly after its task was removed (%q): a player would take it for complete", rest)
	}
	assertNoSecrets(t, logs.String(), add.Token.Reveal())
}
