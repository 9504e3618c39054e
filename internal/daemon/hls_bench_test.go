package daemon

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/enginetest"
)

const (
	// benchHLSSeconds is the length of the benchmark's title: long enough
	// that the segment at 70% is well past what the first playlist request
	// made the daemon fetch.
	benchHLSSeconds = 30.0
	// benchHLSSeedRate is the seeder's upload limit in bytes per second,
	// 2 MB/s (16 Mbit/s): one decent home uplink, about 2.5 s for the
	// whole 30 s title (4-6 MB), so every figure is measured while the
	// torrent is still downloading.
	benchHLSSeedRate = 2_000_000
	// benchHLSSeekAt is where the cold seek lands, as a fraction of the
	// segments.
	benchHLSSeekAt = 0.7
)

// BenchmarkHLSFromSeeder measures HLS the way a browser sees it, against a
// real daemon downloading from a rate-limited seeder on loopback. Every
// iteration is cold: a new daemon (new temp dirs, default HLS settings, so
// 2 s segments) and a new seeder, once for play and once for the seek.
//
//   - playlist-ms/op: AddTask{HLS: true} sent -> index.m3u8 received (master
//     then index, as hls.js requests them).
//   - first-seg-ms/op: the same start -> first byte of segment 0.
//   - seek-seg-ms/op: on another cold daemon and session, with its playlist
//     loaded, GET of the segment at 70% -> its first byte.
//
// Run with make bench (-benchtime 1x); results in docs/benchmarks.md.
func BenchmarkHLSFromSeeder(b *testing.B) {
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("skipping HLS benchmark: %s is not installed", tool)
		}
	}
	mediaDir := b.TempDir()
	for _, c := range []struct{ name, kind string }{
		{name: "copy", kind: e2eCopyMP4},
		{name: "transcode", kind: e2eTranscodeMKV},
	} {
		path := e2eMakeMediaSeconds(b, mediaDir, c.kind, benchHLSSeconds)
		if fi, err := os.Stat(path); err == nil {
			b.Logf("%s: %.1f MB", c.kind, float64(fi.Size())/1e6)
		}
		b.Run(c.name, func(b *testing.B) {
			var n int
			var playlist, firstSeg, seek time.Duration
			for b.Loop() {
				p, f := benchHLSPlay(b, path)
				playlist += p
				firstSeg += f
				seek += benchHLSSeek(b, path)
				n++
			}
			b.ReportMetric(benchMS(playlist, n), "playlist-ms/op")
			b.ReportMetric(benchMS(firstSeg, n), "first-seg-ms/op")
			b.ReportMetric(benchMS(seek, n), "seek-seg-ms/op")
		})
	}
}

func benchMS(d time.Duration, n int) float64 {
	return d.Seconds() * 1000 / float64(max(n, 1))
}

// benchHLSDaemon starts a cold daemon and a seeder of path; it returns the
// daemon and the seeder's magnet. Both stop when the benchmark ends; the
// caller stops the daemon earlier.
func benchHLSDaemon(b *testing.B, path string) (*running, string) {
	b.Helper()
	seeder := enginetest.NewSeeder(b, enginetest.SeederOptions{UploadRateBytes: benchHLSSeedRate})
	info := seeder.Add(b, path)
	cfg := testConfig(b, b.TempDir())
	r := startDaemon(b, cfg, nil, func(o *Options) { o.Logger = slog.New(slog.DiscardHandler) })
	return r, info.Magnet
}

// benchHLSAdd adds the torrent with an HLS session and loads its playlists.
func benchHLSAdd(b *testing.B, r *running, magnet string) (string, e2eMediaPlaylist) {
	b.Helper()
	add, err := r.client.AddTask(b.Context(), control.AddRequest{Source: magnet, FileIndex: -1, HLS: true})
	if err != nil {
		b.Fatalf("AddTask(HLS) error = %v", err)
	}
	if add.HLSURL == "" {
		b.Fatal("AddTask(HLS) returned no HLS URL")
	}
	return add.TaskID, e2eFetchHLS(b, add.HLSURL)
}

// benchProgress is how much of the task is downloaded, in percent.
func benchProgress(b *testing.B, r *running, id string) float64 {
	b.Helper()
	ti, err := r.client.Task(b.Context(), id)
	if err != nil {
		b.Fatalf("Task() error = %v", err)
	}
	return ti.Progress
}

// benchHLSPlay is pressing play: session creation to the playlist, and to
// the first byte of segment 0.
func benchHLSPlay(b *testing.B, path string) (playlist, firstSeg time.Duration) {
	b.Helper()
	r, magnet := benchHLSDaemon(b, path)
	start := time.Now()
	id, pl := benchHLSAdd(b, r, magnet)
	playlist = time.Since(start)
	firstSeg = benchFirstByte(b, pl.Segments[0].URL).Sub(start)
	b.Logf("play: %d segments, playlist %s, segment 0 %s, torrent %.0f%% downloaded",
		len(pl.Segments), playlist.Round(time.Millisecond), firstSeg.Round(time.Millisecond), benchProgress(b, r, id))
	r.cancel()
	if err := r.result(); err != nil {
		b.Fatalf("Run() = %v", err)
	}
	return playlist, firstSeg
}

// benchHLSSeek is a seek before anything played: a fresh session whose
// first segment request is at 70% of the title.
func benchHLSSeek(b *testing.B, path string) time.Duration {
	b.Helper()
	r, magnet := benchHLSDaemon(b, path)
	id, pl := benchHLSAdd(b, r, magnet)
	i := int(benchHLSSeekAt * float64(len(pl.Segments)))
	before := benchProgress(b, r, id)
	start := time.Now()
	d := benchFirstByte(b, pl.Segments[i].URL).Sub(start)
	b.Logf("seek: segment %d of %d (%.0f s), first byte %s, torrent %.0f%% downloaded before, %.0f%% after the segment",
		i, len(pl.Segments), pl.startOf(i), d.Round(time.Millisecond), before, benchProgress(b, r, id))
	r.cancel()
	if err := r.result(); err != nil {
		b.Fatalf("Run() = %v", err)
	}
	return d
}

// benchFirstByte GETs url on a new connection and returns when its first
// body byte arrived. It reads the whole body before returning, so the
// daemon finishes the segment before the next step.
func benchFirstByte(b *testing.B, url string) time.Time {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		b.Fatalf("GET segment: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("GET segment = %d, want 200", resp.StatusCode)
	}
	var one [1]byte
	if _, err := io.ReadFull(resp.Body, one[:]); err != nil {
		b.Fatalf("GET segment: first byte: %v", err)
	}
	first := time.Now()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		b.Fatalf("GET segment: body: %v", err)
	}
	return first
}
