package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/clienttest"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/enginetest"
)

const (
	// benchWatchSeconds is the title length: room for 20 seeks spread
	// over it.
	benchWatchSeconds = 120
	// benchWatchSeeks is how many seeks each path measures.
	benchWatchSeeks = 20
	// benchWatchSeedRate is the seeder's upload limit: 2 MB/s, one decent
	// home uplink, so the first figures are taken while downloading.
	benchWatchSeedRate = 2_000_000
)

// benchWatchJS is installed before the page loads: it records when the
// video first fires playing (capture listener: media events do not bubble).
const benchWatchJS = `window.__firstPlaying = 0;
document.addEventListener('playing', () => { if (!window.__firstPlaying) window.__firstPlaying = performance.now(); }, true);`

// benchSeekJS seeks to %f and resolves with the milliseconds until the
// video plays again: seeked, then currentTime moving past the target while
// not paused.
const benchSeekJS = `new Promise((resolve) => {
	const v = document.getElementById('video');
	const target = %f;
	const t0 = performance.now();
	const end = t0 + 120000;
	let seeked = false;
	v.addEventListener('seeked', () => { seeked = true; }, { once: true });
	v.currentTime = target;
	const check = () => {
		if (seeked && !v.paused && v.currentTime > target + 0.05 && v.readyState >= 3) { resolve(performance.now() - t0); return; }
		if (performance.now() > end) { resolve(-1); return; }
		requestAnimationFrame(check);
	};
	requestAnimationFrame(check);
})`

// benchAudioSwitchJS picks the Spanish audio track in the menu and resolves
// with the milliseconds until hls.js has switched and playback has moved
// on by 0.2 s.
const benchAudioSwitchJS = `new Promise((resolve) => {
	const v = document.getElementById('video');
	const a = document.getElementById('audio');
	const t0 = performance.now();
	const end = t0 + 120000;
	let from = -1;
	a.value = '1';
	a.dispatchEvent(new Event('change'));
	const check = () => {
		if (document.body.dataset.audio === 'es') {
			if (from < 0) from = v.currentTime;
			if (v.currentTime > from + 0.2) { resolve(performance.now() - t0); return; }
		}
		if (performance.now() > end) { resolve(-1); return; }
		requestAnimationFrame(check);
	};
	requestAnimationFrame(check);
})`

// BenchmarkWatch measures what a person feels on the /watch page in
// headless Chromium, from a cold daemon fed by a rate-limited loopback
// seeder (enginetest), for the raw path (an H.264/AAC MP4 the browser plays
// from /stream itself), the copy path (H.264 + AAC/AC3 MKV: video copied,
// audio renditions) and the transcode path (MPEG-4 Part 2):
//
//   - load-ms/op: navigation start -> first playing event (the page asks
//     for the session, ffprobe runs, hls.js loads playlists and segments).
//   - seek-p50-ms, seek-p95-ms: over 20 seeks spread over the title,
//     currentTime set -> playing again.
//   - audio-switch-ms/op: Spanish picked in the menu -> hls.js switched
//     and playback 0.2 s further (HLS paths: the MP4 has one audio track).
//
// BenchmarkWatchSwarm measures the same fed by qbittorrent-nox. Run with
// make bench; results in docs/benchmarks.md. TORRENTCLAW_BENCH_BROWSER=firefox
// drives Firefox (firefox-esr, over Marionette) instead of Chromium, inside a
// loopback-only network namespace only.
func BenchmarkWatch(b *testing.B) {
	benchWatch(b, func(b *testing.B, film string) benchWatchSource {
		return func(b *testing.B, r *running) control.AddResponse {
			seeder := enginetest.NewSeeder(b, enginetest.SeederOptions{UploadRateBytes: benchWatchSeedRate})
			add, err := r.client.AddTask(b.Context(), control.AddRequest{Source: seeder.Add(b, film).Magnet, FileIndex: -1})
			if err != nil {
				b.Fatal(err)
			}
			return add
		}
	})
}

// BenchmarkWatchSwarm is BenchmarkWatch fed by a real client: one
// qbittorrent-nox (libtorrent 2.0, TCP and uTP) seeding the title at the
// same 2 MB/s, the peer the cold daemon is handed (no tracker, no DHT).
// qBittorrent must run in a loopback-only network namespace: the benchmark
// skips outside one, and make bench runs it under unshare -n.
func BenchmarkWatchSwarm(b *testing.B) {
	if !benchInLoopbackNetns() {
		b.Skip("skipping: run inside a loopback-only network namespace (make bench uses unshare -n)")
	}
	clienttest.Need(b, "qbittorrent-nox")
	benchWatch(b, func(b *testing.B, film string) benchWatchSource {
		torrentPath, ih := enginetest.WriteTorrentFile(b, b.TempDir(), film, 256<<10)
		qb := clienttest.StartQBittorrent(b, clienttest.Options{UploadRateBytes: benchWatchSeedRate})
		qb.AddTorrent(b, torrentPath, filepath.Dir(film))
		clienttest.WaitSeeding(b, qb, ih, 2*time.Minute)
		return func(b *testing.B, r *running) control.AddResponse {
			add, err := r.client.AddTask(b.Context(), control.AddRequest{Source: torrentPath, FileIndex: -1})
			if err != nil {
				b.Fatal(err)
			}
			task, err := r.d.eng.Task(add.TaskID)
			if err != nil {
				b.Fatal(err)
			}
			// For about 2 s after it reports the torrent as seeding,
			// qBittorrent closes incoming connections before the handshake
			// (docs/benchmarks.md); hand the peer again until it is
			// connected, so the figures are the player's, not that start's.
			t0, last := time.Now(), time.Time{}
			enginetest.WaitFor(b, 2*time.Minute, "a connection to qBittorrent", func() bool {
				if task.Status().Peers > 0 {
					return true
				}
				if time.Since(last) > 2*time.Second {
					if err := task.AddPeers(qb.PeerAddr().String()); err != nil {
						b.Fatal(err)
					}
					last = time.Now()
				}
				return false
			})
			b.Logf("connected to qBittorrent after %v", time.Since(t0).Round(time.Millisecond))
			return add
		}
	})
}

// benchInLoopbackNetns reports whether this process's network namespace
// has only lo (/proc/net/dev is per namespace).
func benchInLoopbackNetns() bool {
	raw, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		return false
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) < 3 {
		return false
	}
	for _, l := range lines[2:] {
		if name, _, _ := strings.Cut(l, ":"); strings.TrimSpace(name) != "lo" {
			return false
		}
	}
	return true
}

// benchWatchSource adds the title to a cold daemon, with its seeder.
type benchWatchSource func(b *testing.B, r *running) control.AddResponse

func benchWatch(b *testing.B, source func(b *testing.B, film string) benchWatchSource) {
	browser := benchBrowserName(b)
	for _, tool := range []string{"ffmpeg", "ffprobe", browser} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("skipping: %s is not installed", tool)
		}
	}
	browserPath, _ := exec.LookPath(browser)
	if browser != "chromium" && !benchInLoopbackNetns() {
		// Firefox looks up hosts at start-up (e2e_watchfirefox_test.go).
		b.Skip("skipping: Firefox runs only inside a loopback-only network namespace (unshare -n)")
	}
	for _, c := range []struct {
		name           string
		raw, transcode bool
	}{{"raw", true, false}, {"copy", false, false}, {"transcode", false, true}} {
		var film string
		if c.raw {
			film = e2eMakeMP4(b, b.TempDir(), benchWatchSeconds)
		} else {
			film = e2eMakeTracksWith(b, b.TempDir(), benchWatchSeconds, c.transcode)
		}
		if size := os.Getenv("TORRENTCLAW_BENCH_SIZE"); size != "" && c.transcode {
			benchWatchResize(b, filepath.Join(film, "Film.mkv"), size)
		}
		add := source(b, film)
		b.Run(c.name, func(b *testing.B) {
			var loads, switches []float64
			var seeks []float64
			for b.Loop() {
				load, sk, sw := benchWatchOnce(b, browserPath, add, !c.raw)
				loads, seeks = append(loads, load), append(seeks, sk...)
				if sw >= 0 {
					switches = append(switches, sw)
				}
			}
			b.ReportMetric(mean(loads), "load-ms/op")
			slices.Sort(seeks)
			b.ReportMetric(percentile(seeks, 0.5), "seek-p50-ms")
			b.ReportMetric(percentile(seeks, 0.95), "seek-p95-ms")
			if len(switches) > 0 {
				b.ReportMetric(mean(switches), "audio-switch-ms/op")
			}
		})
	}
}

// benchWatchOnce runs one cold daemon and page. It returns the load time,
// every seek time and, with switchAudio, the audio switch time (else -1),
// in ms.
func benchWatchOnce(b *testing.B, browser string, source benchWatchSource, switchAudio bool) (load float64, seeks []float64, audioSwitch float64) {
	b.Helper()
	cfg := testConfig(b, b.TempDir())
	// TORRENTCLAW_BENCH_SEGSEC sets hls.segment_seconds (default 2), to
	// measure what shorter segments change.
	if v := os.Getenv("TORRENTCLAW_BENCH_SEGSEC"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("TORRENTCLAW_BENCH_SEGSEC=%q: %v", v, err)
		}
		cfg.HLS.SegmentSeconds = n
	}
	// TORRENTCLAW_BENCH_LOG names a file the daemon's debug log is
	// appended to (when each ffmpeg started, each segment was ready), to
	// see where a slow seek's time went.
	var logTo io.Writer = io.Discard
	level := slog.LevelInfo
	if path := os.Getenv("TORRENTCLAW_BENCH_LOG"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = f.Close() })
		logTo, level = f, slog.LevelDebug
		fmt.Fprintf(f, "=== %s\n", b.Name())
	}
	r := startDaemon(b, cfg, nil, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: level}))
	})
	add := source(b, r)
	q := url.Values{"id": {add.TaskID}, "t": {add.Token.Reveal()}}
	page := openBenchPage(b, browser, e2eMediaBase(r)+"/watch?"+q.Encode())
	page.eval(`new Promise((resolve) => {
		const end = Date.now() + 180000;
		const check = () => (window.__firstPlaying > 0 || Date.now() > end) ? resolve(true) : setTimeout(check, 20);
		check();
	})`, 4*time.Minute, nil)
	page.eval(`window.__firstPlaying`, 30*time.Second, &load)
	if load <= 0 {
		b.Fatal("the page did not play within 3 min")
	}
	if testing.Verbose() {
		// Where the load time went, without the tokened queries.
		var timing []string
		page.eval(`performance.getEntriesByType('resource').map(e => e.name.split('?')[0].replace(/^.*\//, '') + ' ' +
			Math.round(e.startTime) + '-' + Math.round(e.responseEnd) + ' ms')`, 30*time.Second, &timing)
		b.Logf("page resources until playing at %.0f ms:\n%s", load, strings.Join(timing, "\n"))
	}
	for i := range benchWatchSeeks {
		// Spread over the title, not in order, never the last 10 s.
		pos := 5 + float64((i*37)%(benchWatchSeconds-15))
		var ms float64
		page.eval(fmt.Sprintf(benchSeekJS, pos), 3*time.Minute, &ms)
		if ms < 0 {
			b.Fatalf("seek to %.0f s: no playback within 2 min", pos)
		}
		seeks = append(seeks, ms)
		if testing.Verbose() {
			b.Logf("seek to %3.0f s: %4.0f ms", pos, ms)
		}
	}
	if !switchAudio {
		return load, seeks, -1
	}
	page.eval(benchAudioSwitchJS, 3*time.Minute, &audioSwitch)
	if testing.Verbose() {
		b.Logf("audio switch: %.0f ms", audioSwitch)
	}
	return load, seeks, audioSwitch
}

// benchBrowserName is the browser the /watch benchmarks drive: chromium, or firefox-esr
// with TORRENTCLAW_BENCH_BROWSER=firefox.
func benchBrowserName(b *testing.B) string {
	switch v := os.Getenv("TORRENTCLAW_BENCH_BROWSER"); v {
	case "", "chromium":
		return "chromium"
	case "firefox":
		return "firefox-esr"
	default:
		b.Fatalf("TORRENTCLAW_BENCH_BROWSER=%q: want chromium or firefox", v)
		return ""
	}
}

// openBenchPage starts the browser and opens pageURL in it, with benchWatchJS recording
// the first playing event from the navigation on.
func openBenchPage(b *testing.B, browser, pageURL string) browserPage {
	b.Helper()
	if strings.Contains(filepath.Base(browser), "firefox") {
		m := startFirefox(b, browser, "none")
		// With the "none" load strategy Navigate returns as the navigation starts; the
		// recorder goes in as soon as the new document is there, long before the page
		// can have fetched its session, hls.js and a segment.
		m.call("WebDriver:Navigate", map[string]any{"url": pageURL}, time.Minute, nil)
		deadline := time.Now().Add(time.Minute)
		for {
			var path string
			// A script may fail while the old document unloads.
			if m.try("WebDriver:ExecuteScript", map[string]any{"script": "return location.pathname;", "args": []any{}}, 10*time.Second, &struct {
				Value *string `json:"value"`
			}{&path}) == nil && path == "/watch" {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("the /watch page did not open within 1 min")
			}
			time.Sleep(5 * time.Millisecond)
		}
		page := firefoxPage{m}
		page.eval("(() => { "+benchWatchJS+"; return true; })()", time.Minute, nil)
		return page
	}
	c := startCDP(b, browser)
	s := c.newPage()
	c.call(s, "Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": benchWatchJS}, 30*time.Second)
	c.call(s, "Page.navigate", map[string]any{"url": pageURL}, 60*time.Second)
	return chromiumPage{c, s}
}

// benchWatchResize re-encodes the transcode title's video at size (WxH,
// TORRENTCLAW_BENCH_SIZE), same codec, bitrate and GOP, every other track
// copied: the encoder's share of a seek grows with the picture, and the
// default 320x240 hides it behind ffmpeg's start.
func benchWatchResize(b *testing.B, mkv, size string) {
	b.Helper()
	tmp := mkv + ".resized.mkv"
	cmd := exec.CommandContext(b.Context(), "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", "-i", mkv,
		"-map", "0", "-c", "copy", "-c:v", "mpeg4", "-b:v", "1M", "-g", "50", "-s", size, tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("ffmpeg (resize to %s): %v: %s", size, err, out)
	}
	if err := os.Rename(tmp, mkv); err != nil {
		b.Fatal(err)
	}
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// percentile of sorted v (nearest rank).
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	i := int(p*float64(len(v))+0.5) - 1
	return v[min(max(i, 0), len(v)-1)]
}
