package daemon

// End-to-end tests of issue 4, "HLS for the browser, from a torrent that is
// still downloading": real daemons, real seeders on loopback, media made by
// ffmpeg at test time. This file holds the HLS tests and the helpers the
// browser and VLC tests share.
//
// A test whose tool (ffmpeg, chromium, cvlc, hls.js) is missing skips,
// unless TORRENTCLAW_E2E=required, which CI sets: then it fails.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/enginetest"
	"github.com/torrentclaw/cli/internal/hls"
	"github.com/torrentclaw/cli/internal/logtest"
	"github.com/torrentclaw/cli/internal/token"
)

const (
	// e2eEnv set to "required" turns every skip for a missing tool into a
	// failure.
	e2eEnv = "TORRENTCLAW_E2E"

	// Test media: e2eMediaSeconds of a 320x240 test pattern at 25 fps with
	// a tone, keyframes every 2 s (-g 50).
	e2eMediaSeconds = 12.0
	e2eFPS          = 25.0
	// e2eSegSeconds is hls.segment_seconds in these tests: one keyframe
	// interval, so a 12 s title has six segments and "70%" is a real seek.
	e2eSegSeconds = 2
	// e2eTSOffset is MPEG-TS's fixed timestamp offset (ffmpeg's default
	// muxdelay 0.7 s, twice): segment timestamps are source time + 1.4 s.
	e2eTSOffset = 1.4
	// e2eSegTolerance is how far a segment's real start or duration may be
	// from what the playlist says: the hls package's own bound.
	e2eSegTolerance = 0.1 + 1/e2eFPS
	// e2eSeedRate is the upload limit of the seeders in bytes per second:
	// each test file (1.6-2.3 MB) takes 8-12 s to download, long enough to
	// see a playlist and a seek served while the torrent is incomplete.
	e2eSeedRate = 192 << 10
)

// e2eRequired reports whether missing tools must fail the tests.
func e2eRequired() bool { return os.Getenv(e2eEnv) == "required" }

// e2eMissing skips the test because something it needs is not installed, or
// fails it when TORRENTCLAW_E2E=required.
func e2eMissing(t *testing.T, what string) {
	t.Helper()
	if e2eRequired() {
		t.Fatalf("%s=required but %s (install with: bash .ci/e2e-deps.sh)", e2eEnv, what)
	}
	t.Skipf("skipping end-to-end test: %s (install with .ci/e2e-deps.sh; %s=required makes this a failure)", what, e2eEnv)
}

// e2eStart skips end-to-end tests under -short unless they are required.
func e2eStart(t *testing.T) {
	t.Helper()
	if testing.Short() && !e2eRequired() {
		t.Skip("skipping end-to-end test in -short mode")
	}
}

// e2eTool returns the path of an installed program.
func e2eTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		e2eMissing(t, name+" is not installed")
	}
	return p
}

func e2eNeedFFmpeg(t *testing.T) {
	t.Helper()
	e2eTool(t, "ffmpeg")
	e2eTool(t, "ffprobe")
}

// e2eMedia kinds.
const (
	e2eCopyMP4      = "copy.mp4"      // H.264 High + AAC stereo, moov at the end: the copy path
	e2eTranscodeMKV = "transcode.mkv" // MPEG-4 Part 2 + AC3 5.1: the transcode path
)

// e2eMakeMedia writes a test file of the given kind into dir with ffmpeg.
func e2eMakeMedia(t *testing.T, dir, kind string) string {
	t.Helper()
	return e2eMakeMediaSeconds(t, dir, kind, e2eMediaSeconds)
}

// e2eMakeMediaSeconds is e2eMakeMedia for a title of the given length (the
// HLS benchmark uses a longer one).
func e2eMakeMediaSeconds(t testing.TB, dir, kind string, seconds float64) string {
	t.Helper()
	src := []string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.FormatFloat(seconds, 'f', -1, 64)}
	var enc []string
	switch kind {
	case e2eCopyMP4:
		enc = []string{"-c:v", "libx264", "-preset", "superfast", "-b:v", "1M", "-pix_fmt", "yuv420p",
			"-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-c:a", "aac", "-ac", "2", "-b:a", "96k"}
	case e2eTranscodeMKV:
		enc = []string{"-c:v", "mpeg4", "-b:v", "1M", "-g", "50", "-c:a", "ac3", "-ac", "6"}
	default:
		t.Fatalf("e2eMakeMedia: unknown kind %q", kind)
	}
	out := filepath.Join(dir, kind)
	args := append([]string{"-hide_banner", "-nostdin", "-v", "error", "-y"}, src...)
	args = append(append(args, enc...), out)
	cmd := exec.CommandContext(t.Context(), "ffmpeg", args...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg (make %s): %v\n%s", kind, err, msg)
	}
	return out
}

// e2eProbe is what ffprobe says about a media file.
type e2eProbe struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		StartTime string `json:"start_time"`
		Duration  string `json:"duration"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func e2eFFprobe(t *testing.T, path string) e2eProbe {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "ffprobe", "-v", "error", "-of", "json",
		"-show_entries", "stream=codec_type,codec_name,start_time,duration:format=duration", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", filepath.Base(path), err)
	}
	var p e2eProbe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe %s: %v", filepath.Base(path), err)
	}
	return p
}

func e2eDuration(t *testing.T, path string) float64 {
	t.Helper()
	d, err := strconv.ParseFloat(e2eFFprobe(t, path).Format.Duration, 64)
	if err != nil {
		t.Fatalf("duration of %s: %v", filepath.Base(path), err)
	}
	return d
}

// e2eSegment is one entry of a media playlist.
type e2eSegment struct {
	Dur float64
	URL string // absolute
}

// e2eMediaPlaylist is a parsed index.m3u8.
type e2eMediaPlaylist struct {
	VOD, EndList bool
	Segments     []e2eSegment
}

func (p e2eMediaPlaylist) total() float64 {
	var s float64
	for _, seg := range p.Segments {
		s += seg.Dur
	}
	return s
}

func (p e2eMediaPlaylist) longest() float64 {
	var m float64
	for _, seg := range p.Segments {
		m = max(m, seg.Dur)
	}
	return m
}

// startOf is where segment i starts: the sum of the EXTINFs before it.
func (p e2eMediaPlaylist) startOf(i int) float64 {
	var s float64
	for _, seg := range p.Segments[:i] {
		s += seg.Dur
	}
	return s
}

// e2eResolve resolves ref against base.
func e2eResolve(t testing.TB, base, ref string) string {
	t.Helper()
	b, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %q: %v", redactURL(base), err)
	}
	r, err := url.Parse(ref)
	if err != nil {
		t.Fatalf("parse playlist URI: %v", err)
	}
	return b.ResolveReference(r).String()
}

// e2eURIs returns the URI lines of a playlist, resolved against its URL.
func e2eURIs(t testing.TB, plURL string, body []byte) []string {
	t.Helper()
	var out []string
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, e2eResolve(t, plURL, line))
		}
	}
	return out
}

// e2eFetchHLS fetches a master playlist and its media playlist, checking
// that every child URI carries the master's token.
func e2eFetchHLS(t testing.TB, masterURL string) e2eMediaPlaylist {
	t.Helper()
	code, body := get(t, masterURL)
	if code != http.StatusOK || !bytes.HasPrefix(body, []byte("#EXTM3U")) {
		t.Fatalf("GET master.m3u8 = %d %q", code, body)
	}
	tok := e2eTokenOf(t, masterURL)
	variants := e2eURIs(t, masterURL, body)
	if len(variants) != 1 {
		t.Fatalf("master.m3u8 has %d variants, want 1:\n%s", len(variants), redactBody(body, tok))
	}
	indexURL := variants[0]
	if e2eTokenOf(t, indexURL) != tok {
		t.Errorf("master.m3u8 variant URI does not carry the session token")
	}
	return e2eFetchMediaPlaylist(t, indexURL)
}

// e2eFetchMediaPlaylist fetches a media playlist, checking that every
// segment URI carries its token.
func e2eFetchMediaPlaylist(t testing.TB, indexURL string) e2eMediaPlaylist {
	t.Helper()
	tok := e2eTokenOf(t, indexURL)
	code, body := get(t, indexURL)
	if code != http.StatusOK {
		t.Fatalf("GET index.m3u8 = %d %q", code, body)
	}
	var pl e2eMediaPlaylist
	dur := -1.0
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		switch {
		case line == "#EXT-X-PLAYLIST-TYPE:VOD":
			pl.VOD = true
		case line == "#EXT-X-ENDLIST":
			pl.EndList = true
		case strings.HasPrefix(line, "#EXTINF:"):
			v, _, _ := strings.Cut(strings.TrimPrefix(line, "#EXTINF:"), ",")
			d, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("index.m3u8: bad %q", line)
			}
			dur = d
		case line != "" && !strings.HasPrefix(line, "#"):
			if dur < 0 {
				t.Fatalf("index.m3u8: URI without #EXTINF")
			}
			u := e2eResolve(t, indexURL, line)
			if e2eTokenOf(t, u) != tok {
				t.Errorf("index.m3u8 segment URI does not carry the session token")
			}
			pl.Segments = append(pl.Segments, e2eSegment{Dur: dur, URL: u})
			dur = -1
		}
	}
	if !pl.VOD || !pl.EndList || len(pl.Segments) == 0 {
		t.Fatalf("index.m3u8 is not a full VOD playlist (vod=%v endlist=%v segments=%d)", pl.VOD, pl.EndList, len(pl.Segments))
	}
	return pl
}

// e2eTokenOf returns the t parameter of an HLS URL.
func e2eTokenOf(t testing.TB, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse URL: %v", err)
	}
	return u.Query().Get("t")
}

// e2eWithToken returns raw with its t parameter replaced ("" removes it).
func e2eWithToken(t *testing.T, raw, tok string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse URL: %v", err)
	}
	q := u.Query()
	if tok == "" {
		q.Del("t")
	} else {
		q.Set("t", tok)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// e2eSessionOf returns the session ID in an /hls/<session>/... URL.
func e2eSessionOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("parse URL: %v", err)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) != 3 || parts[0] != "hls" {
		t.Fatalf("not an HLS URL: %s", u.Path)
	}
	return parts[1]
}

// redactURL drops the query (which carries a token) for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<url>"
	}
	u.RawQuery = ""
	return u.String()
}

func redactBody(b []byte, secrets ...string) string {
	s := string(b)
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "REDACTED")
		}
	}
	return s
}

// e2eCheckSegment downloads segment i of pl, checks that it decodes on its
// own (H.264 + AAC), lasts its EXTINF and starts where the EXTINFs before
// it end.
func e2eCheckSegment(t *testing.T, pl e2eMediaPlaylist, i int) {
	t.Helper()
	code, body := get(t, pl.Segments[i].URL)
	if code != http.StatusOK || len(body) == 0 {
		t.Errorf("GET segment %d = %d (%d bytes), want 200", i, code, len(body))
		return
	}
	p := filepath.Join(t.TempDir(), fmt.Sprintf("seg-%d.ts", i))
	if err := os.WriteFile(p, body, 0o600); err != nil {
		t.Fatal(err)
	}
	pr := e2eFFprobe(t, p)
	var video, audio bool
	for _, s := range pr.Streams {
		switch s.CodecType {
		case "video":
			video = true
			if s.CodecName != "h264" {
				t.Errorf("segment %d video codec = %q, want h264", i, s.CodecName)
			}
			start, err1 := strconv.ParseFloat(s.StartTime, 64)
			dur, err2 := strconv.ParseFloat(s.Duration, 64)
			if err1 != nil || err2 != nil {
				t.Errorf("segment %d: ffprobe start %q duration %q", i, s.StartTime, s.Duration)
				continue
			}
			if want := pl.Segments[i].Dur; math.Abs(dur-want) > e2eSegTolerance {
				t.Errorf("segment %d lasts %.3f s, EXTINF says %.3f", i, dur, want)
			}
			if want := pl.startOf(i); math.Abs(start-e2eTSOffset-want) > e2eSegTolerance {
				t.Errorf("segment %d starts at %.3f s, the EXTINFs before it sum to %.3f", i, start-e2eTSOffset, want)
			}
		case "audio":
			audio = true
		}
	}
	// Audio is a rendition of its own (audio-0.m3u8, a0-NNNNN.ts).
	if !video || audio {
		t.Errorf("segment %d: video=%v audio=%v, want video only", i, video, audio)
	}
	acode, abody := get(t, strings.Replace(pl.Segments[i].URL, "/seg-", "/a0-", 1))
	ap := filepath.Join(t.TempDir(), fmt.Sprintf("a0-%d.ts", i))
	if acode != http.StatusOK || os.WriteFile(ap, abody, 0o600) != nil {
		t.Fatalf("GET audio segment %d = %d", i, acode)
	}
	if pr := e2eFFprobe(t, ap); len(pr.Streams) != 1 || pr.Streams[0].CodecName != "aac" {
		t.Errorf("audio segment %d streams = %+v, want one aac", i, pr.Streams)
	}
	if msg, err := exec.CommandContext(t.Context(), "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", ap, "-f", "null", "-").CombinedOutput(); err != nil || len(bytes.TrimSpace(msg)) > 0 {
		t.Errorf("decode audio segment %d: %v: %s", i, err, msg)
	}
	// Decode every frame: the segment must play on its own.
	msg, err := exec.CommandContext(t.Context(), "ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", p, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(msg)) > 0 {
		t.Errorf("decode segment %d: %v: %s", i, err, msg)
	}
}

// e2eNotFound is the body and type of the media listener's one 404.
type e2eNotFound struct {
	body, contentType string
}

func e2eGetNotFound(t *testing.T, raw string) e2eNotFound {
	t.Helper()
	resp, err := http.Get(raw)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatalf("GET body: %v", err)
	}
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET %s = %d, want 404", redactURL(raw), resp.StatusCode)
	}
	return e2eNotFound{body: b.String(), contentType: resp.Header.Get("Content-Type")}
}

// e2eAssert404 checks that every URL gets exactly the reference 404.
func e2eAssert404(t *testing.T, why string, want e2eNotFound, urls ...string) {
	t.Helper()
	for _, u := range urls {
		if got := e2eGetNotFound(t, u); got != want {
			t.Errorf("%s: GET %s = %q (%s), want the standard 404 %q (%s)",
				why, redactURL(u), got.body, got.contentType, want.body, want.contentType)
		}
	}
}

func e2eMediaBase(r *running) string { return "http://" + r.d.MediaAddr().String() }

// TestE2EHLS streams two torrents that are still downloading (one for the
// copy path, one for the transcode path) through HLS sessions made over the
// control socket, from a cold daemon.
func TestE2EHLS(t *testing.T) {
	e2eStart(t)
	e2eNeedFFmpeg(t)
	mediaDir := t.TempDir()
	cases := []struct {
		name, kind, mode string
		path             string
		dur              float64
		add              control.AddResponse
		master           string // from AddTask{HLS: true}
		seekMaster       string // from CreateHLS, carrying a fresh token
		pl               e2eMediaPlaylist
	}{
		{name: "copy", kind: e2eCopyMP4, mode: hls.ModeCopy},
		{name: "transcode", kind: e2eTranscodeMKV, mode: hls.ModeTranscode},
	}
	for i := range cases {
		c := &cases[i]
		c.path = e2eMakeMedia(t, mediaDir, c.kind)
		c.dur = e2eDuration(t, c.path)
	}

	cfg := testConfig(t, t.TempDir())
	cfg.HLS.SegmentSeconds = e2eSegSeconds
	cfg.HLS.MaxSessions = 8
	// CreateHLS rotates the task's token; the first session's URLs carry
	// the old one, which must outlive the test however slow the machine.
	cfg.Stream.TokenGrace = config.Duration(time.Hour)
	// Sessions wait unused while other subtests run; on a loaded machine that took longer
	// than the 2-minute idle timeout, which closed them (their URLs then answer 404).
	cfg.HLS.IdleTimeout = config.Duration(time.Hour)
	logs := &logBuffer{}
	r := startDaemon(t, cfg, logs)
	ctx := t.Context()
	base := e2eMediaBase(r)

	// Both torrents start downloading at once, each from its own
	// rate-limited seeder.
	for i := range cases {
		c := &cases[i]
		seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{UploadRateBytes: e2eSeedRate})
		info := seeder.Add(t, c.path)
		add, err := r.client.AddTask(ctx, control.AddRequest{Source: info.Magnet, FileIndex: -1, HLS: true})
		if err != nil {
			t.Fatalf("AddTask(%s, HLS) error = %v", c.kind, err)
		}
		if add.HLSURL == "" {
			t.Fatalf("AddTask(%s, HLS) returned no HLS URL", c.kind)
		}
		c.add, c.master = add, add.HLSURL
	}

	// While both torrents download: playlists, then a seek in a second
	// session of each. The cases run in parallel so neither waits for the
	// other's download to finish.
	t.Run("downloading", func(t *testing.T) {
		for i := range cases {
			c := &cases[i]
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				c.pl = e2eFetchHLS(t, c.master)
				ti, err := r.client.Task(ctx, c.add.TaskID)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("playlist after %s, torrent %.0f%% downloaded", time.Since(start).Round(time.Millisecond), ti.Progress)
				if ti.TotalBytes == 0 || ti.DownloadedBytes >= ti.TotalBytes {
					t.Errorf("playlist served only after the download finished (%d of %d bytes); want it while downloading",
						ti.DownloadedBytes, ti.TotalBytes)
				}
				if got, want := c.pl.total(), c.dur; math.Abs(got-want) > c.pl.longest() {
					t.Errorf("EXTINFs sum to %.3f s, media lasts %.3f s: want within one segment (%.3f s)", got, want, c.pl.longest())
				}
				sess, err := r.d.hlsm.Get(e2eSessionOf(t, c.master))
				if err != nil {
					t.Fatalf("session of the AddTask HLS URL: %v", err)
				}
				if got := sess.Info().Mode; got != c.mode {
					t.Errorf("session mode = %q, want %q", got, c.mode)
				}

				// A seek: a second session (control CreateHLS) whose first
				// segment request is at ~70% of the title.
				hr, err := r.client.CreateHLS(ctx, c.add.TaskID, -1)
				if err != nil {
					t.Fatalf("CreateHLS() error = %v", err)
				}
				c.seekMaster = hr.HLSURL
				seekPL := e2eFetchHLS(t, hr.HLSURL)
				if len(seekPL.Segments) != len(c.pl.Segments) {
					t.Errorf("second session has %d segments, first %d", len(seekPL.Segments), len(c.pl.Segments))
				}
				idx := int(0.7 * float64(len(seekPL.Segments)))
				e2eCheckSegment(t, seekPL, idx)
				ti, err = r.client.Task(ctx, c.add.TaskID)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("seek to segment %d/%d (%.1f s) served %s after start, torrent %.0f%% downloaded",
					idx, len(seekPL.Segments), seekPL.startOf(idx), time.Since(start).Round(time.Millisecond), ti.Progress)
			})
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// Every segment of the first sessions, in order.
	for i := range cases {
		c := &cases[i]
		t.Run(c.name+"/segments", func(t *testing.T) {
			for i := range c.pl.Segments {
				e2eCheckSegment(t, c.pl, i)
			}
		})
	}

	// Tokens. The reference 404 is what an unknown route gets.
	ref := e2eGetNotFound(t, base+"/no-such-route")
	if ref.body == "" {
		t.Fatal("the media listener's 404 has an empty body")
	}
	cp, tr := &cases[0], &cases[1]
	cpURLs := []string{cp.master, cp.seekMaster, cp.pl.Segments[0].URL, cp.pl.Segments[len(cp.pl.Segments)-1].URL}
	cpIndex := strings.Replace(cp.master, "/master.m3u8", "/index.m3u8", 1)
	cpURLs = append(cpURLs, cpIndex)
	for _, u := range cpURLs {
		if code, _ := get(t, u); code != http.StatusOK {
			t.Fatalf("GET %s before the token checks = %d, want 200", redactURL(u), code)
		}
	}
	var noTok, otherTok, badTok []string
	wrong, err := token.Mint()
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range cpURLs {
		noTok = append(noTok, e2eWithToken(t, u, ""))
		otherTok = append(otherTok, e2eWithToken(t, u, e2eTokenOf(t, tr.master)))
		badTok = append(badTok, e2eWithToken(t, u, wrong.Reveal()))
	}
	e2eAssert404(t, "without ?t=", ref, noTok...)
	e2eAssert404(t, "with another task's token", ref, otherTok...)
	e2eAssert404(t, "with a made-up token", ref, badTok...)
	e2eAssert404(t, "unknown session", ref, base+"/hls/no-such-session/master.m3u8?t="+e2eTokenOf(t, cp.master))
	e2eAssert404(t, "/stream with a made-up token", ref, base+"/stream?id="+url.QueryEscape(cp.add.TaskID)+"&t="+wrong.Reveal())

	// Revoking the token closes the task's sessions: every URL that worked
	// a moment ago now gets the standard 404.
	if err := r.client.RevokeToken(ctx, cp.add.TaskID); err != nil {
		t.Fatal(err)
	}
	e2eAssert404(t, "after token revoke", ref, cpURLs...)

	// Removing a task closes its sessions too.
	trURLs := []string{tr.master, tr.pl.Segments[0].URL}
	for _, u := range trURLs {
		if code, _ := get(t, u); code != http.StatusOK {
			t.Fatalf("GET %s before removal = %d, want 200", redactURL(u), code)
		}
	}
	if err := r.client.RemoveTask(ctx, tr.add.TaskID, true); err != nil {
		t.Fatal(err)
	}
	e2eAssert404(t, "after task removal", ref, trURLs...)
	assertNoSecrets(t, logs.String(), cp.add.Token.Reveal(), tr.add.Token.Reveal(), e2eTokenOf(t, cp.master), e2eTokenOf(t, tr.master))
}

// TestE2EHLSOriginSessions starts HLS sessions the way the website does: a
// streamSessions entry in a sync reply. The origin is told session-ready,
// or session-error for a task the daemon does not have.
func TestE2EHLSOriginSessions(t *testing.T) {
	e2eStart(t)
	e2eNeedFFmpeg(t)
	src := e2eMakeMedia(t, t.TempDir(), e2eCopyMP4)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{UploadRateBytes: e2eSeedRate})
	info := seeder.Add(t, src)
	f := newFakeOrigin(t, testAPIKey)
	tok := mintStr(t)
	const okSession, badSession = "web-session-1", "web-session-2"
	f.queueSync(map[string]any{
		"newTasks": []any{map[string]any{
			"id": "task-hls", "infoHash": info.InfoHash, "title": "Clip", "mode": "stream", "magnet": info.Magnet,
		}},
		"streamSessions": []any{
			map[string]any{"sessionId": okSession, "taskId": "task-hls", "streamToken": tok},
			map[string]any{"sessionId": badSession, "taskId": "no-such-task"},
		},
	})
	logs := &logBuffer{}
	cfg := testConfig(t, t.TempDir())
	cfg.HLS.SegmentSeconds = e2eSegSeconds
	cfg.HLS.IdleTimeout = config.Duration(time.Hour) // no reaping on a slow machine
	cfg.Origin.APIURL = f.URL()
	cfg.Origin.APIKey = testAPIKey
	r := startDaemon(t, cfg, logs)

	sessionCall := func(name, id string) *originCall {
		for _, c := range f.callsNamed(name) {
			if c.Body["sessionId"] == id {
				return &c
			}
		}
		return nil
	}
	eventually(t, 60*time.Second, "session-ready for "+okSession, func() bool { return sessionCall("session-ready", okSession) != nil })
	eventually(t, 60*time.Second, "session-error for "+badSession, func() bool { return sessionCall("session-error", badSession) != nil })
	if c := sessionCall("session-error", okSession); c != nil {
		t.Errorf("session-error for the good session: %v", c.Body)
	}
	if c := sessionCall("session-ready", badSession); c != nil {
		t.Errorf("session-ready for a session of an unknown task: %v", c.Body)
	}
	se := sessionCall("session-error", badSession)
	if code, _ := se.Body["code"].(string); code != "unknown_task" {
		t.Errorf("session-error code = %v, want unknown_task", se.Body["code"])
	}
	if msg, _ := se.Body["message"].(string); msg == "" {
		t.Errorf("session-error has no message: %v", se.Body)
	}
	if se.Auth != "Bearer "+testAPIKey {
		t.Errorf("session-error sent without the API key")
	}

	// The session's URLs work with the token from the streamSessions entry.
	master := e2eMediaBase(r) + "/hls/" + okSession + "/master.m3u8?t=" + url.QueryEscape(tok)
	pl := e2eFetchHLS(t, master)
	if got, want := pl.total(), e2eDuration(t, src); math.Abs(got-want) > pl.longest() {
		t.Errorf("EXTINFs sum to %.3f s, media lasts %.3f s", got, want)
	}
	e2eCheckSegment(t, pl, 0)
	ref := e2eGetNotFound(t, e2eMediaBase(r)+"/no-such-route")
	e2eAssert404(t, "origin session with a made-up token", ref, e2eWithToken(t, master, mintStr(t)))
	e2eAssert404(t, "the failed session", ref, e2eMediaBase(r)+"/hls/"+badSession+"/master.m3u8?t="+url.QueryEscape(tok))
	assertNoSecrets(t, logs.String(), testAPIKey, tok)
}

// e2eRaceBuild reports whether this test binary was built with -race, so
// binaries it builds can share the build cache (and catch races too).
func e2eRaceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// e2eBuildBinary builds cmd/torrentclaw into a temporary directory.
func e2eBuildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		e2eMissing(t, "the go command is not on PATH (needed to build the daemon binary)")
	}
	bin := filepath.Join(t.TempDir(), "torrentclaw")
	args := []string{"build", "-o", bin}
	if e2eRaceBuild() {
		args = append(args, "-race")
	}
	args = append(args, "github.com/torrentclaw/cli/cmd/torrentclaw")
	start := time.Now()
	if out, err := exec.CommandContext(t.Context(), goTool, args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built the daemon binary in %s", time.Since(start).Round(time.Millisecond))
	return bin
}

// lockedBuffer collects a child's stdout and stderr; it is safe for
// concurrent writes.
type lockedBuffer = logtest.Buffer

// procInfo is what /proc says about a process.
type procInfo struct {
	pid, ppid int
	state     byte
	comm      string
	startTime string // field 22 of stat: tells a reused pid apart
	cmdline   string
}

// readProc reads /proc/<pid>; ok is false when the process is gone.
func readProc(pid int) (procInfo, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procInfo{}, false
	}
	// pid (comm) state ppid ...; comm may hold spaces and parentheses.
	s := string(b)
	lp, rp := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if lp < 0 || rp < lp {
		return procInfo{}, false
	}
	fields := strings.Fields(s[rp+1:])
	if len(fields) < 20 {
		return procInfo{}, false
	}
	p := procInfo{pid: pid, comm: s[lp+1 : rp], state: fields[0][0], startTime: fields[19]}
	p.ppid, _ = strconv.Atoi(fields[1])
	cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	p.cmdline = string(bytes.ReplaceAll(cl, []byte{0}, []byte{' '}))
	return p, true
}

// processes lists every process in /proc.
func processes() []procInfo {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procInfo
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

// alive reports whether p still runs: same pid and start time, not a zombie.
func (p procInfo) alive() bool {
	now, ok := readProc(p.pid)
	return ok && now.startTime == p.startTime && now.state != 'Z' && now.state != 'X'
}

// TestE2ENoFFmpegOrphans kills a real daemon process with SIGKILL while its
// ffmpeg runs, and checks that no ffmpeg of it survives.
func TestE2ENoFFmpegOrphans(t *testing.T) {
	e2eStart(t)
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc (Linux)")
	}
	e2eNeedFFmpeg(t)
	bin := e2eBuildBinary(t)

	dir := t.TempDir()
	src := e2eMakeMedia(t, t.TempDir(), e2eTranscodeMKV)
	// A rate-limited seeder keeps the torrent downloading while ffmpeg
	// runs, so ffmpeg reads the daemon's /stream, not a finished file.
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{UploadRateBytes: e2eSeedRate})
	info := seeder.Add(t, src)

	dataDir, hlsDir := filepath.Join(dir, "data"), filepath.Join(dir, "hls")
	cfgPath := filepath.Join(dir, "config.toml")
	cfgText := fmt.Sprintf(`[stream]
listen = "127.0.0.1"
port = %d

[torrent]
listen_port = 0
listen_address = "127.0.0.1"
data_dir = %q
download_dir = %q
dht = false

[hls]
dir = %q
segment_seconds = %d
# One byte: once a segment is on disk, ffmpeg is paused (SIGSTOP) one
# segment ahead of the player. A stopped ffmpeg never notices that its
# input died with the daemon, so only the kill-on-parent-death can end it.
max_disk = 1

[log]
level = "debug"
`, freePort(t), dataDir, filepath.Join(dir, "downloads"), hlsDir, e2eSegSeconds)
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}

	out := &lockedBuffer{}
	cmd := exec.Command(bin, "--config", cfgPath, "daemon")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "TORRENTCLAW_CONFIG=", "TORRENTCLAW_API_KEY=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("daemon output:\n%s", out.String())
		}
	})
	daemonPID := cmd.Process.Pid

	client := control.NewClient(filepath.Join(dataDir, "control.sock"))
	t.Cleanup(func() { _ = client.Close() })
	ctx := t.Context()
	eventually(t, 30*time.Second, "the daemon's control socket", func() bool {
		select {
		case err := <-exited:
			killed = true
			t.Fatalf("daemon exited early: %v\n%s", err, out.String())
		default:
		}
		return client.Ping(ctx) == nil
	})
	add, err := client.AddTask(ctx, control.AddRequest{Source: info.Magnet, FileIndex: -1})
	if err != nil {
		t.Fatal(err)
	}
	hr, err := client.CreateHLS(ctx, add.TaskID, -1)
	if err != nil {
		t.Fatal(err)
	}
	pl := e2eFetchHLS(t, hr.HLSURL)
	sessionDir := filepath.Join(hlsDir, e2eSessionOf(t, hr.HLSURL))

	// Ask for the first segment without waiting for the answer; ffmpeg
	// makes it, then one more, then pauses on the disk cap.
	reqCtx, cancelReq := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, pl.Segments[0].URL, nil)
		if err != nil {
			return
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
		}
	})
	defer func() { cancelReq(); wg.Wait() }()

	// Wait for an ffmpeg child of the daemon, ideally a stopped one (the
	// hardest case). If the daemon never pauses it, kill the daemon while
	// ffmpeg runs: still a valid test, only an easier one.
	var ffmpegs []procInfo
	stopped := false
	pauseDeadline := time.Now().Add(20 * time.Second)
	eventually(t, 40*time.Second, "an ffmpeg child of the daemon", func() bool {
		ffmpegs = ffmpegs[:0]
		for _, p := range processes() {
			if p.ppid == daemonPID && p.comm == "ffmpeg" && p.state != 'Z' {
				ffmpegs = append(ffmpegs, p)
				stopped = stopped || p.state == 'T'
			}
		}
		return stopped || (len(ffmpegs) > 0 && time.Now().After(pauseDeadline))
	})
	if !strings.Contains(ffmpegs[0].cmdline, sessionDir) {
		t.Errorf("the daemon's ffmpeg does not write into the session dir %s", sessionDir)
	}
	if !stopped {
		t.Logf("ffmpeg was not paused by the disk cap within 20s; killing the daemon while it runs")
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	<-exited
	killedAt := time.Now()

	// Within a few seconds: no ffmpeg of that daemon, and no process at all
	// that references its HLS dir.
	leftover := func() []string {
		var left []string
		for _, p := range ffmpegs {
			if p.alive() {
				left = append(left, fmt.Sprintf("pid %d (%s, state %c)", p.pid, p.comm, p.state))
			}
		}
		for _, p := range processes() {
			if p.state != 'Z' && p.pid != daemonPID && strings.Contains(p.cmdline, hlsDir) {
				left = append(left, fmt.Sprintf("pid %d (%s) references the HLS dir", p.pid, p.comm))
			}
		}
		return left
	}
	deadline := killedAt.Add(5 * time.Second)
	for {
		left := leftover()
		if len(left) == 0 {
			t.Logf("%d ffmpeg process(es) (stopped: %v) gone %s after SIGKILL of the daemon",
				len(ffmpegs), stopped, time.Since(killedAt).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ffmpeg orphans 5s after the daemon was killed: %s", strings.Join(left, "; "))
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

// e2eScanLines calls fn for each line of s.
func e2eScanLines(s string, fn func(string)) {
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fn(sc.Text())
	}
}
