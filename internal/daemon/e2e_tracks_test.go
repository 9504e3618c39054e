package daemon

import (
	"context"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// Subtitles of the tracks fixture.
const (
	e2eEngSRT = "1\n00:00:02,000 --> 00:00:04,000\nHello from the English track\n\n"
	e2eSpaASS = "[Script Info]\nScriptType: v4.00+\nPlayResX: 320\nPlayResY: 240\n\n[V4+ Styles]\n" +
		"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n" +
		"Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1\n\n" +
		"[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n" +
		"Dialogue: 0,0:00:03.00,0:00:05.00,Default,,0,0,0,,Hola desde la pista española\n"
	// The French sidecar has a cue in every second of the title, so a
	// player shows one wherever it is when the track is enabled.
	e2eFreCue = "Bonjour de la piste française"
)

// e2eFreSRT is the French sidecar: one cue per second for seconds s.
func e2eFreSRT(seconds int) string {
	var b strings.Builder
	for i := range seconds {
		b.WriteString(strconv.Itoa(i+1) + "\n")
		b.WriteString(e2eSRTTime(float64(i)) + " --> " + e2eSRTTime(float64(i)+0.9) + "\n")
		b.WriteString(e2eFreCue + "\n\n")
	}
	return b.String()
}

func e2eSRTTime(s float64) string {
	ms := int(math.Round(s * 1000))
	return strconv.Itoa(ms/3600000/10) + strconv.Itoa(ms/3600000%10) + ":" +
		twoDigits(ms/60000%60) + ":" + twoDigits(ms/1000%60) + "," + strconv.Itoa(1000 + ms%1000)[1:]
}

func twoDigits(n int) string { return strconv.Itoa(100 + n)[1:] }

// e2eMakeTracks writes a torrent directory dir/Film with Film.mkv (H.264,
// AAC stereo eng + AC3 5.1 spa, SRT eng + ASS spa) and the sidecar
// Film.fr.srt, and returns the directory.
func e2eMakeTracks(t testing.TB, dir string, seconds int) string {
	t.Helper()
	return e2eMakeTracksWith(t, dir, seconds, false)
}

// e2eMakeTracksWith is e2eMakeTracks; with transcode the video is MPEG-4
// Part 2, which browsers cannot play, so HLS transcodes it.
func e2eMakeTracksWith(t testing.TB, dir string, seconds int, transcode bool) string {
	t.Helper()
	video := []string{"-c:v", "libx264", "-preset", "superfast", "-b:v", "600k", "-pix_fmt", "yuv420p", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0"}
	if transcode {
		video = []string{"-c:v", "mpeg4", "-b:v", "1M", "-g", "50"}
	}
	src := t.TempDir()
	for name, body := range map[string]string{"eng.srt": e2eEngSRT, "spa.ass": e2eSpaASS} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	film := e2eFilmDir(t, dir, seconds)
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000",
		"-i", filepath.Join(src, "eng.srt"), "-i", filepath.Join(src, "spa.ass"),
		"-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:s", "-map", "4:s", "-t", strconv.Itoa(seconds)}
	args = append(args, video...)
	args = append(args,
		"-c:a:0", "aac", "-ac:a:0", "2", "-b:a:0", "96k", "-c:a:1", "ac3", "-ac:a:1", "6",
		"-c:s:0", "srt", "-c:s:1", "ass",
		"-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=spa",
		"-metadata:s:s:0", "language=eng", "-metadata:s:s:1", "language=spa",
		filepath.Join(film, "Film.mkv"))
	cmd := exec.CommandContext(t.Context(), "ffmpeg", args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg (make Film.mkv): %v: %s", err, out)
	}
	return film
}

// e2eFilmDir makes the torrent directory dir/Film holding the French sidecar Film.fr.srt
// of a title of seconds, and returns it; the caller writes Film.mkv there.
func e2eFilmDir(t testing.TB, dir string, seconds int) string {
	t.Helper()
	film := filepath.Join(dir, "Film")
	if err := os.MkdirAll(film, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(film, "Film.fr.srt"), []byte(e2eFreSRT(seconds)), 0o600); err != nil {
		t.Fatal(err)
	}
	return film
}

// e2eSeededDaemon starts a cold daemon that cuts e2eSegSeconds HLS segments and logs to
// logs, and a loopback seeder of film (a file or a directory); it returns the daemon and
// the seeder's magnet link.
func e2eSeededDaemon(t *testing.T, film string, logs *logBuffer) (*running, string) {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.HLS.SegmentSeconds = e2eSegSeconds
	r := startDaemon(t, cfg, logs)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{})
	return r, seeder.Add(t, film).Magnet
}

var e2eMediaLine = regexp.MustCompile(`(?m)^#EXT-X-MEDIA:TYPE=(AUDIO|SUBTITLES),.*LANGUAGE="([^"]*)".*URI="([^"]*)"$`)

var e2eCueTiming = regexp.MustCompile(`(?:\d+:)?(\d\d):(\d\d)\.(\d\d\d) --> (?:\d+:)?(\d\d):(\d\d)\.(\d\d\d)\n(.*)`)

// TestE2ETracks: a torrent with a two-audio, two-subtitle MKV and a French
// sidecar, from a loopback seeder to a cold daemon: every track is a
// rendition with its language, each subtitle's WebVTT has the right cue at
// the right time, each audio rendition decodes as AAC stereo of the
// segment's length.
func TestE2ETracks(t *testing.T) {
	e2eStart(t)
	e2eNeedFFmpeg(t)
	const seconds = 12
	logs := &logBuffer{}
	r, magnet := e2eSeededDaemon(t, e2eMakeTracks(t, t.TempDir(), seconds), logs)
	add, err := r.client.AddTask(t.Context(), control.AddRequest{Source: magnet, FileIndex: -1, HLS: true,
		AudioLanguage: "spa"})
	if err != nil {
		t.Fatalf("AddTask(HLS) error = %v", err)
	}
	code, master := get(t, add.HLSURL)
	if code != http.StatusOK {
		t.Fatalf("GET master.m3u8 = %d", code)
	}
	langs := map[string][]string{}
	uris := map[string][]string{}
	for _, m := range e2eMediaLine.FindAllStringSubmatch(string(master), -1) {
		langs[m[1]] = append(langs[m[1]], m[2])
		uris[m[1]] = append(uris[m[1]], e2eResolve(t, add.HLSURL, m[3]))
	}
	if got := strings.Join(langs["AUDIO"], ","); got != "en,es" {
		t.Errorf("audio renditions' languages = %q, want en,es:\n%s", got, master)
	}
	if got := strings.Join(langs["SUBTITLES"], ","); got != "en,es,fr" {
		t.Errorf("subtitle renditions' languages = %q, want en,es,fr:\n%s", got, master)
	}
	if !strings.Contains(string(master), `LANGUAGE="es",NAME="Spanish (5.1)",DEFAULT=YES`) {
		t.Errorf("the Spanish audio asked for is not the default:\n%s", master)
	}
	if len(uris["AUDIO"]) != 2 || len(uris["SUBTITLES"]) != 3 {
		t.FailNow()
	}

	wantCues := []struct {
		start, end float64
		text       string
	}{{2, 4, "Hello from the English track"}, {3, 5, "Hola desde la pista española"}, {0, 0.9, e2eFreCue}}
	for k, u := range uris["SUBTITLES"] {
		code, pl := get(t, u)
		vtts := e2eURIs(t, u, pl)
		// The embedded tracks come in 6 s windows, the sidecar whole.
		want := map[bool]int{true: 2, false: 1}[k < 2]
		if code != http.StatusOK || len(vtts) != want {
			t.Fatalf("subtitle playlist %d = %d, %d URIs, want %d:\n%s", k, code, len(vtts), want, pl)
		}
		code, vtt := get(t, vtts[0])
		if code != http.StatusOK || !strings.HasPrefix(string(vtt), "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n") {
			t.Fatalf("subtitle %d = %d:\n%s", k, code, vtt)
		}
		m := e2eCueTiming.FindStringSubmatch(string(vtt))
		if m == nil {
			t.Fatalf("subtitle %d has no cue:\n%s", k, vtt)
		}
		sec := func(mm, ss, ms string) float64 {
			a, _ := strconv.Atoi(mm)
			b, _ := strconv.Atoi(ss)
			c, _ := strconv.Atoi(ms)
			return float64(a*60+b) + float64(c)/1000
		}
		start, end := sec(m[1], m[2], m[3]), sec(m[4], m[5], m[6])
		w := wantCues[k]
		if m[7] != w.text || math.Abs(start-w.start) > 1.0/25 || math.Abs(end-w.end) > 1.0/25 {
			t.Errorf("subtitle %d first cue %.3f-%.3f %q, want %.3f-%.3f %q", k, start, end, m[7], w.start, w.end, w.text)
		}
	}

	for k, u := range uris["AUDIO"] {
		pl := e2eFetchMediaPlaylist(t, u)
		for i, seg := range pl.Segments {
			code, body := get(t, seg.URL)
			p := filepath.Join(t.TempDir(), "a.ts")
			if code != http.StatusOK || os.WriteFile(p, body, 0o600) != nil {
				t.Fatalf("audio %d segment %d = %d", k, i, code)
			}
			out, err := exec.CommandContext(t.Context(), "ffprobe", "-v", "error", "-count_frames", "-of", "csv=p=0",
				"-show_entries", "stream=codec_type,codec_name,channels,sample_rate,nb_read_frames", p).Output()
			if err != nil {
				t.Fatalf("ffprobe audio %d segment %d: %v", k, i, err)
			}
			// MPEG-TS lists its streams under the program too: one line
			// each is enough (a second stream would have its own values).
			lines := strings.Fields(string(out))
			if len(lines) != 2 || lines[0] != lines[1] {
				t.Errorf("audio %d segment %d: ffprobe says %q, want one stream", k, i, out)
				continue
			}
			f := strings.Split(lines[0], ",")
			if len(f) != 5 || f[0] != "aac" || f[1] != "audio" || f[3] != "2" {
				t.Errorf("audio %d segment %d: ffprobe says %q, want one aac audio stream, 2 channels", k, i, out)
				continue
			}
			rate, _ := strconv.Atoi(f[2])
			frames, _ := strconv.Atoi(f[4])
			if dur := float64(frames*1024) / float64(rate); math.Abs(dur-seg.Dur) > 0.1 {
				t.Errorf("audio %d segment %d decodes to %.3f s, EXTINF %.3f", k, i, dur, seg.Dur)
			}
		}
	}
	assertNoSecrets(t, logs.String(), add.Token.Reveal(), e2eTokenOfRaw(add.HLSURL))
}

// TestE2EVLCSubtitles plays the tracks torrent's HLS session in headless
// VLC with French as its subtitle language: VLC's HLS module lists every
// subtitle rendition, loads the French sidecar's WebVTT and decodes it,
// and leaves the others off.
//
// VLC 3 cannot take a sidecar from /playlist.m3u: it refuses
// #EXTVLCOPT:input-slave from a playlist ("unsafe option") and reads
// #EXTVLCOPT:sub-file only as a local path. Subtitles reach VLC through
// the HLS session instead (docs/player.md).
func TestE2EVLCSubtitles(t *testing.T) {
	e2eStart(t)
	e2eNeedFFmpeg(t)
	cvlc := e2eTool(t, "cvlc")
	logs := &logBuffer{}
	r, magnet := e2eSeededDaemon(t, e2eMakeTracks(t, t.TempDir(), 12), logs)
	add, err := r.client.AddTask(t.Context(), control.AddRequest{Source: magnet, FileIndex: -1, HLS: true,
		SubtitleLanguage: "fr"})
	if err != nil {
		t.Fatalf("AddTask(HLS) error = %v", err)
	}
	asNobody := os.Geteuid() == 0
	home := vlcHome(t, asNobody)
	// Generous: VLC fetches the playlists, probes segments and renders for
	// vlcRunSeconds on a busy machine.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, err := vlcCommand(ctx, cvlc, home, asNobody, add.HLSURL, "-vv", "--sub-language=fr").CombinedOutput()
	tok := e2eTokenOfRaw(add.HLSURL)
	log := string(out)
	if err != nil {
		t.Fatalf("cvlc: %v\n%s", err, redactBody(out, tok))
	}
	var lines []string
	e2eScanLines(log, func(line string) {
		if strings.Contains(line, "BaseAdaptationSet subs") || strings.Contains(line, "WebVTT stream") ||
			strings.Contains(line, `spu decoder module "webvtt"`) {
			lines = append(lines, line)
		}
	})
	t.Logf("cvlc subtitle log:\n%s", redactBody([]byte(strings.Join(lines, "\n")), tok))
	for _, want := range []string{
		"BaseAdaptationSet subs English", "BaseAdaptationSet subs Spanish", "BaseAdaptationSet subs French",
		`using spu decoder module "webvtt"`, "deactivating WebVTT stream subs English",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("cvlc's log lacks %q", want)
		}
	}
	// When --run-time ends VLC tears the input down and may deactivate every stream on the
	// way out (seen on a loaded machine); only a deactivation before that counts.
	playing := log
	for _, end := range []string{"main input debug: EOF reached", "killing decoder", "main playlist debug: dead input"} {
		if i := strings.Index(playing, end); i >= 0 {
			playing = playing[:i]
		}
	}
	if strings.Contains(playing, "deactivating WebVTT stream subs French") {
		t.Error("cvlc turned the French subtitles off while playing")
	}
	assertNoSecrets(t, logs.String(), add.Token.Reveal(), tok)
}
