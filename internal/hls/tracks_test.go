package hls

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestNormalizeLanguage(t *testing.T) {
	for in, want := range map[string]string{
		"en": "en", "eng": "en", "ENG": "en", "English": "en", "en-us": "en-US", "en_GB": "en-GB",
		"spa": "es", "es-419": "es-419", "fre": "fr", "fra": "fr", "ger": "de", "deu": "de",
		"pt-br": "pt-BR", "zh-hant": "zh-Hant", "chi": "zh", "Español": "es", "castellano": "es",
		"und": "", "": "", "x": "", "1234": "", "tlh": "tlh", "qaa": "qaa", "en-!!": "en",
	} {
		if got := NormalizeLanguage(in); got != want {
			t.Errorf("NormalizeLanguage(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSameLanguage(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"spa", "es", true}, {"es-ES", "spa", true}, {"en", "eng", true}, {"en", "English", true},
		{"fr", "fre", true}, {"en", "es", false}, {"", "", false}, {"und", "und", false}, {"pt-BR", "pt", true},
	}
	for _, tc := range tests {
		if got := SameLanguage(tc.a, tc.b); got != tc.want {
			t.Errorf("SameLanguage(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestFindSidecars(t *testing.T) {
	paths := []string{
		"Film (2020)/Film.mkv",              // 0: the video
		"Film (2020)/Film.en.srt",           // 1
		"Film (2020)/Film.spa.ass",          // 2
		"Film (2020)/Film.srt",              // 3: no language
		"Film (2020)/Subs/2_English.srt",    // 4
		"Film (2020)/Subs/Film/3_fre.srt",   // 5
		"Film (2020)/Other.en.srt",          // 6: another video's
		"Film (2020)/Film.en.idx",           // 7: not a text format
		"Film (2020)/Film.pt-BR.forced.vtt", // 8
		"Film (2020)/Subs/Other/1_en.srt",   // 9: another video's folder
		"Film (2020)/Filmography.en.srt",    // 10: a longer name, not ours
		"Film (2020)/sample/Film.en.srt",    // 11: another folder
		"Film (2020)/Film.EN.SRT",           // 12
	}
	got := FindSidecars(paths[0], paths)
	want := []Sidecar{
		{Index: 1, Language: "en", Label: "en", Format: "srt"},
		{Index: 2, Language: "es", Label: "spa", Format: "ass"},
		{Index: 3, Format: "srt"},
		{Index: 4, Language: "en", Label: "English", Format: "srt"},
		{Index: 5, Language: "fr", Label: "fre", Format: "srt"},
		{Index: 8, Language: "pt-BR", Label: "pt-BR.forced", Format: "vtt"},
		{Index: 12, Language: "en", Label: "EN", Format: "srt"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("FindSidecars() =\n%+v\nwant\n%+v", got, want)
	}
	if got := FindSidecars("Film.mkv", []string{"Film.mkv", "Film.fr.srt"}); len(got) != 1 || got[0].Language != "fr" {
		t.Errorf("FindSidecars at the torrent root = %+v", got)
	}
}

func TestRenditionResources(t *testing.T) {
	for _, tc := range []struct {
		name         string
		kind         resourceKind
		track, index int
	}{
		{"audio-0.m3u8", kindAudioPlaylist, 0, 0},
		{"audio-12.m3u8", kindAudioPlaylist, 12, 0},
		{"a1-00042.ts", kindAudioSegment, 1, 42},
		{"subs-2.m3u8", kindSubPlaylist, 2, 0},
		{"subs-2.vtt", kindSubtitle, 2, 0},
		{"subs-2-0.vtt", kindSubWindow, 2, 0},
		{"subs-0-361.vtt", kindSubWindow, 0, 361},
	} {
		r, err := parseResource(tc.name)
		if err != nil || r.kind != tc.kind || r.track != tc.track || r.index != tc.index {
			t.Errorf("parseResource(%q) = %+v, %v; want kind %d track %d index %d", tc.name, r, err, tc.kind, tc.track, tc.index)
		}
	}
	for _, bad := range []string{"audio-01.m3u8", "audio--1.m3u8", "audio-1000.m3u8", "a01-00000.ts", "a1-0001.ts",
		"a1-00001.m3u8", "subs-1.srt", "subs-.vtt", "subs-+1.vtt", "audio-1.ts", "a-00001.ts", "a1_00001.ts",
		"subs-1-01.vtt", "subs-1-.vtt", "subs--1.vtt", "subs-1-2.m3u8", "subs-1-2-3.vtt", "subs-01-2.vtt", "subs-1-+2.vtt"} {
		if r, err := parseResource(bad); err == nil {
			t.Errorf("parseResource(%q) = %+v, want an error", bad, r)
		}
	}
}

func FuzzNormalizeLanguage(f *testing.F) {
	for _, s := range []string{"en", "eng", "pt-BR", "zh-hant", "English", "und", "", "x-y-z", "es-419"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := NormalizeLanguage(s)
		if again := NormalizeLanguage(n); again != n {
			t.Errorf("NormalizeLanguage(%q) = %q, but NormalizeLanguage(%q) = %q", s, n, n, again)
		}
		if n != "" && !SameLanguage(s, n) {
			t.Errorf("SameLanguage(%q, %q) = false", s, n)
		}
		if strings.ContainsAny(n, "\"\r\n,") {
			t.Errorf("NormalizeLanguage(%q) = %q: not safe in a playlist attribute", s, n)
		}
	})
}

func FuzzFindSidecars(f *testing.F) {
	f.Add("Film/Film.mkv", "Film/Film.en.srt\nFilm/Subs/2_English.srt\nFilm/x.ass")
	f.Add("a.mp4", "a..srt\na.srt\nA.SRT")
	f.Fuzz(func(t *testing.T, video, list string) {
		paths := strings.Split(list, "\n")
		for _, sc := range FindSidecars(video, paths) {
			if sc.Index < 0 || sc.Index >= len(paths) || paths[sc.Index] == video {
				t.Fatalf("FindSidecars(%q) gave index %d of %d", video, sc.Index, len(paths))
			}
			if sidecarExts[strings.ToLower(filepath.Ext(paths[sc.Index]))] != sc.Format {
				t.Errorf("format %q for %q", sc.Format, paths[sc.Index])
			}
		}
	})
}

// Tracks media, made once: 12 s of H.264 with AAC stereo (eng) and AC3
// 5.1 (spa), an SRT (eng) and an ASS (spa) track, and a French sidecar.
var (
	tracksOnce sync.Once
	tracksDir  string
	tracksErr  error
)

const (
	engSRT = "1\n00:00:02,000 --> 00:00:04,000\nHello from the English track\n\n2\n00:00:08,000 --> 00:00:09,500\nEnglish again\n\n"
	spaASS = "[Script Info]\nScriptType: v4.00+\nPlayResX: 320\nPlayResY: 240\n\n[V4+ Styles]\n" +
		"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n" +
		"Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1\n\n" +
		"[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n" +
		"Dialogue: 0,0:00:03.00,0:00:05.00,Default,,0,0,0,,Hola desde la pista española\n"
	freSRT = "1\n00:00:05,000 --> 00:00:07,000\nBonjour de la piste française\n\n"
)

// tracksMedia returns the paths of the tracks MKV and its French sidecar.
func tracksMedia(t testing.TB) (mkv, sidecar string) {
	t.Helper()
	needFFmpeg(t)
	tracksOnce.Do(func() {
		tracksDir, tracksErr = os.MkdirTemp("", "hls-tracks-")
		if tracksErr != nil {
			return
		}
		tracksErr = makeTracksMedia(tracksDir, 12)
	})
	if tracksErr != nil {
		t.Fatal(tracksErr)
	}
	return filepath.Join(tracksDir, "Film.mkv"), filepath.Join(tracksDir, "Film.fr.srt")
}

// makeTracksMedia writes Film.mkv (seconds long) and Film.fr.srt into dir.
func makeTracksMedia(dir string, seconds int) error {
	for name, body := range map[string]string{"eng.srt": engSRT, "spa.ass": spaASS, "Film.fr.srt": freSRT} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			return err
		}
	}
	args := []string{"-hide_banner", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000",
		"-i", "eng.srt", "-i", "spa.ass",
		"-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:s", "-map", "4:s", "-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-preset", "superfast", "-b:v", "600k", "-pix_fmt", "yuv420p", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
		"-c:a:0", "aac", "-ac:a:0", "2", "-b:a:0", "96k", "-c:a:1", "ac3", "-ac:a:1", "6",
		"-c:s:0", "srt", "-c:s:1", "ass",
		"-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=spa",
		"-metadata:s:s:0", "language=eng", "-metadata:s:s:1", "language=spa",
		"Film.mkv"}
	cmd := exec.Command("ffmpeg", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("make Film.mkv: %v: %s", err, out)
	}
	return nil
}

// vttCue is one cue of a WebVTT file.
type vttCue struct {
	start, end float64
	text       string
}

var cueTiming = regexp.MustCompile(`^(?:(\d+):)?(\d\d):(\d\d)\.(\d\d\d) --> (?:(\d+):)?(\d\d):(\d\d)\.(\d\d\d)`)

func parseVTT(t testing.TB, b []byte) (header []string, cues []vttCue) {
	t.Helper()
	blocks := strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n\n")
	header = strings.Split(blocks[0], "\n")
	if header[0] != "WEBVTT" {
		t.Fatalf("no WEBVTT header:\n%s", b)
	}
	secs := func(m []string) float64 {
		h, _ := strconv.Atoi(m[0])
		mi, _ := strconv.Atoi(m[1])
		s, _ := strconv.Atoi(m[2])
		ms, _ := strconv.Atoi(m[3])
		return float64(h*3600+mi*60+s) + float64(ms)/1000
	}
	for _, blk := range blocks[1:] {
		lines := strings.Split(strings.TrimSpace(blk), "\n")
		for i, l := range lines {
			if m := cueTiming.FindStringSubmatch(l); m != nil {
				cues = append(cues, vttCue{secs(m[1:5]), secs(m[5:9]), strings.Join(lines[i+1:], "\n")})
				break
			}
		}
	}
	return header, cues
}

// oneFrame is the allowed cue timing error.
const oneFrame = 1 / mediaFPS

// TestTracks: every audio track is a rendition with its own ffmpeg and the
// video's segment boundaries; every text subtitle (embedded SRT and ASS, a
// sidecar SRT) a WebVTT rendition with the right cues at the right times;
// the languages asked for are the defaults.
func TestTracks(t *testing.T) {
	mkv, sidecar := tracksMedia(t)
	srv := serveMedia(t, mkv, serverOptions{})
	side := serveMedia(t, sidecar, serverOptions{})
	m := newTestManager(t, Options{})
	s, err := m.Create(t.Context(), Spec{TaskID: "task", InputURL: srv.inputURL(),
		Sidecars: []SidecarInput{{InputURL: side.inputURL(), Language: "fr", Label: "fr", Format: "srt"}},
		Tracks:   TrackOptions{AudioLanguage: "spa", SubtitleLanguage: "fre"}})
	if err != nil {
		t.Fatalf("Create() = %v", err)
	}
	if err := s.WaitReady(t.Context()); err != nil {
		t.Fatalf("WaitReady() = %v", err)
	}
	master, err := s.Playlist(t.Context(), "master.m3u8", testToken)
	if err != nil {
		t.Fatal(err)
	}
	q := "?t=" + testToken
	for _, want := range []string{
		`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",LANGUAGE="en",NAME="English",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",URI="audio-0.m3u8` + q + `"`,
		`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",LANGUAGE="es",NAME="Spanish (5.1)",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio-1.m3u8` + q + `"`,
		`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="subs-0.m3u8` + q + `"`,
		`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="es",NAME="Spanish",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI="subs-1.m3u8` + q + `"`,
		`#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="fr",NAME="French",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="subs-2.m3u8` + q + `"`,
		`CODECS="avc1.640014,mp4a.40.2"`, `AUDIO="audio",SUBTITLES="subs"`,
	} {
		if !strings.Contains(string(master), want) {
			t.Errorf("master.m3u8 lacks %s:\n%s", want, master)
		}
	}
	in := s.Info()
	if len(in.Audio) != 2 || len(in.Subtitles) != 3 || in.Mode != ModeCopyVideo {
		t.Errorf("Info() = mode %s, audio %+v, subtitles %+v; want copy-video, 2 and 3", in.Mode, in.Audio, in.Subtitles)
	}

	// Audio: rendition 1 (AC3 5.1) is re-encoded to AAC stereo, on the
	// video's boundaries; no audio ffmpeg runs before a player asks.
	if got := m.audioStarts.Load(); got != 0 {
		t.Errorf("%d audio ffmpeg started before any audio request", got)
	}
	vpl := fetchPlaylist(t, s)
	for k := range 2 {
		b, err := s.Playlist(t.Context(), audioPlaylistName(k), testToken)
		if err != nil {
			t.Fatal(err)
		}
		apl, err := parseMediaPlaylist(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(apl.segments) != len(vpl.segments) {
			t.Fatalf("audio-%d has %d segments, video %d", k, len(apl.segments), len(vpl.segments))
		}
		for i, seg := range apl.segments {
			if seg.duration != vpl.segments[i].duration || seg.uri != audioSegmentName(k, i)+q {
				t.Errorf("audio-%d segment %d = %+v, video's EXTINF %.6f", k, i, seg, vpl.segments[i].duration)
			}
		}
		before := 0.0
		for i := range apl.segments {
			p, err := s.Segment(t.Context(), audioSegmentName(k, i))
			if err != nil {
				t.Fatalf("Segment(%s) = %v", audioSegmentName(k, i), err)
			}
			ap := probeSegment(t, p)
			if ap.audioCodec != "aac" || ap.audioChannels != 2 || ap.codec != "" {
				t.Errorf("%s = video %q audio %s/%d, want aac/2 only", audioSegmentName(k, i), ap.codec, ap.audioCodec, ap.audioChannels)
			}
			if math.Abs(ap.audioStart-tsOffset-before) > audioTolerance || math.Abs(ap.audioDur-apl.segments[i].duration) > audioTolerance {
				t.Errorf("%s at %.3f for %.3f s, want %.3f for %.3f", audioSegmentName(k, i), ap.audioStart-tsOffset, ap.audioDur, before, apl.segments[i].duration)
			}
			before += apl.segments[i].duration
		}
	}
	if got := m.audioStarts.Load(); got != 2 {
		t.Errorf("audio ffmpeg started %d times for two renditions played through, want 2", got)
	}
	if got := m.starts.Load(); got != 0 {
		t.Errorf("video ffmpeg started %d times, but only audio was asked for", got)
	}

	// Subtitles.
	wantCues := [][]vttCue{
		{{2, 4, "Hello from the English track"}, {8, 9.5, "English again"}},
		{{3, 5, "Hola desde la pista española"}},
		{{5, 7, "Bonjour de la piste française"}},
	}
	for k, want := range wantCues {
		b, err := s.Playlist(t.Context(), subtitlePlaylistName(k), testToken)
		if err != nil {
			t.Fatal(err)
		}
		// Embedded tracks come in 6 s windows (TestSubtitleWindows), the
		// sidecar as one file.
		wantFiles := []playlistEntry{{duration: vpl.total(), uri: subtitleFileName(k)}}
		if k < 2 {
			wantFiles = []playlistEntry{{duration: 6, uri: subtitleWindowName(k, 0)}, {duration: vpl.total() - 6, uri: subtitleWindowName(k, 1)}}
		}
		pl, err := parseMediaPlaylist(b)
		if err != nil || len(pl.segments) != len(wantFiles) {
			t.Fatalf("subs-%d.m3u8 = %+v, %v; want %+v:\n%s", k, pl, err, wantFiles, b)
		}
		var files []string
		for i, seg := range pl.segments {
			if seg.uri != wantFiles[i].uri+q || math.Abs(seg.duration-wantFiles[i].duration) > 0.001 {
				t.Errorf("subs-%d.m3u8 entry %d = %+v, want %+v", k, i, seg, wantFiles[i])
			}
			files = append(files, wantFiles[i].uri)
		}
		// The whole track is there too (the raw path's <track>).
		if k < 2 {
			files = append(files, subtitleFileName(k))
		}
		for _, name := range files {
			p, err := s.Subtitle(t.Context(), name)
			if err != nil {
				t.Fatalf("Subtitle(%s) = %v", name, err)
			}
			vtt, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			header, cues := parseVTT(t, vtt)
			if !slices.Contains(header, "X-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000") {
				t.Errorf("%s header %q lacks the timestamp map", name, header)
			}
			var w []vttCue
			for _, c := range want {
				if name == subtitleWindowName(k, 1) && c.end <= 6 || name == subtitleWindowName(k, 0) && c.start >= 6 {
					continue
				}
				w = append(w, c)
			}
			if len(cues) != len(w) {
				t.Fatalf("%s has cues %+v, want %+v", name, cues, w)
			}
			for i, c := range cues {
				if c.text != w[i].text || math.Abs(c.start-w[i].start) > oneFrame || math.Abs(c.end-w[i].end) > oneFrame {
					t.Errorf("%s cue %d = %+v, want %+v", name, i, c, w[i])
				}
			}
		}
	}
	if _, err := s.Subtitle(t.Context(), "subs-3.vtt"); err == nil {
		t.Error("Subtitle(subs-3.vtt) of a session with 3 subtitles succeeded")
	}
}

func (p *mediaPlaylist) total() float64 {
	sum := 0.0
	for _, s := range p.segments {
		sum += s.duration
	}
	return sum
}

// TestNoTokenInArguments: the input URL carries a token, and a process's
// arguments are readable by every local user; ffmpeg gets it through the
// input proxy instead, with credentials in its environment.
func TestNoTokenInArguments(t *testing.T) {
	srv := stalledServer(t)
	m := newTestManager(t, Options{})
	s := runningSession(t, m, srv, "task")
	pid := producerPID(s)
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	args := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
	if len(args) < 5 || !strings.HasSuffix(args[0], "ffmpeg") {
		t.Fatalf("pid %d is not the ffmpeg: %q", pid, args)
	}
	if strings.Contains(string(cmdline), testToken) || strings.Contains(string(cmdline), "t=") || strings.Contains(string(cmdline), s.secret) {
		t.Errorf("ffmpeg's arguments carry a secret: %q", args)
	}
	if !slices.Contains(args, s.ffInput(0)) {
		t.Errorf("ffmpeg's arguments %q lack the proxy input %s", args, s.ffInput(0))
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(env), testToken) {
		t.Error("ffmpeg's environment carries the stream token")
	}
	if fi, err := os.Stat(fmt.Sprintf("/proc/%d/environ", pid)); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("ffmpeg's environment is readable by others: %v %v", fi.Mode(), err)
	}
}

// TestInputProxyRefuses: the proxy answers only a session's own
// credentials, for its own inputs.
func TestInputProxyRefuses(t *testing.T) {
	srv := serveMedia(t, media(t, mediaCopy), serverOptions{})
	m := newTestManager(t, Options{})
	a, err := m.Create(t.Context(), Spec{TaskID: "a", InputURL: srv.inputURL()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Create(t.Context(), Spec{TaskID: "b", InputURL: srv.inputURL()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	addr, err := m.proxyAddr()
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(user, pass, path, rng string) (int, string) {
		t.Helper()
		proxy := &url.URL{Scheme: "http", Host: addr, User: url.UserPassword(user, pass)}
		c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}}
		defer c.CloseIdleConnections()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+proxyHost+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Range", rng)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET through the proxy: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Content-Range")
	}
	get := func(user, pass, path string) int {
		t.Helper()
		code, _ := fetch(user, pass, path, "bytes=0-99")
		return code
	}
	if got := get(a.id, a.secret, "/"+a.id+"/0"); got != 206 {
		t.Errorf("own credentials, own input: status %d, want 206", got)
	}
	for _, tc := range []struct{ name, user, pass, path string }{
		{"wrong secret", a.id, b.secret, "/" + a.id + "/0"},
		{"other session's input", a.id, a.secret, "/" + b.id + "/0"},
		{"no such input", a.id, a.secret, "/" + a.id + "/1"},
		{"non-canonical input", a.id, a.secret, "/" + a.id + "/00"},
	} {
		if got := get(tc.user, tc.pass, tc.path); got == 206 || got == 200 {
			t.Errorf("%s: status %d, want a refusal", tc.name, got)
		}
	}
	// A bounded input (subtitle windows): reads end at the bound, the
	// bytes between the bound and the tail are not there, the tail is.
	size := strconv.FormatInt(srv.size, 10)
	bounded := "/" + a.id + "/0/1000-5000"
	if err := b.WaitReady(t.Context()); err != nil { // no probe of b's in flight below
		t.Fatal(err)
	}
	// Upstream, a read cut at the bound stays open-ended: the daemon asks
	// the swarm for a bounded range all at once, ahead of the player.
	for _, tc := range []struct {
		rng      string
		code     int
		cr       string
		upstream string
	}{
		{"bytes=0-", 206, "bytes 0-999/" + size, "bytes=0-"},
		{"bytes=10-99", 206, "bytes 10-99/" + size, "bytes=10-99"},
		{"bytes=900-2000", 206, "bytes 900-999/" + size, "bytes=900-"},
		{"bytes=1000-", 416, "", ""},
		{"bytes=4999-", 416, "", ""},
		{"bytes=5000-", 206, "bytes 5000-" + strconv.FormatInt(srv.size-1, 10) + "/" + size, "bytes=5000-"},
		{"bytes=-500", 400, "", ""},
		{"bytes=0-10,20-30", 400, "", ""},
	} {
		srv.range_.Store("")
		code, cr := fetch(a.id, a.secret, bounded, tc.rng)
		if up, _ := srv.range_.Load().(string); code != tc.code || cr != tc.cr || up != tc.upstream {
			t.Errorf("bounded %s: %d %q, upstream %q; want %d %q, upstream %q", tc.rng, code, cr, up, tc.code, tc.cr, tc.upstream)
		}
	}
	for _, bad := range []string{"/0/5000-1000", "/0/0-10", "/0/01-10", "/0/1-", "/0/x", "/0/1-2/3"} {
		if got := get(a.id, a.secret, "/"+a.id+bad); got != 404 {
			t.Errorf("bound %s: status %d, want 404", bad, got)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := get(a.id, a.secret, "/"+a.id+"/0"); got != 403 {
		t.Errorf("closed session's credentials: status %d, want 403", got)
	}
}

// TestPlanTracksImageSubtitles: bitmap subtitles (PGS, VobSub) are listed,
// never a WebVTT rendition, and burnt in only when asked: then the one in
// the subtitle language, else the source's default, else the first.
// (ffmpeg cannot make a bitmap subtitle track from text, so this is planned
// from a probe result rather than played.)
func TestPlanTracksImageSubtitles(t *testing.T) {
	mi := &mediaInfo{subs: []*probeStream{
		{Index: 2, CodecName: "hdmv_pgs_subtitle", Tags: map[string]string{"language": "eng"}},
		{Index: 3, CodecName: "subrip", Tags: map[string]string{"language": "eng"}},
		{Index: 4, CodecName: "dvd_subtitle", Tags: map[string]string{"language": "spa"}, Disposition: map[string]int{"default": 1}},
		{Index: 5, CodecName: "eia_608"},
	}}
	_, subs := planTracks(mi, nil, "", "en")
	if len(subs) != 3 || !subs[0].info.Image || subs[1].info.Image || !subs[2].info.Image ||
		subs[1].info.URI != "subs-0.m3u8" || subs[0].info.URI != "" || !subs[1].info.Default || subs[0].info.Default {
		t.Fatalf("planTracks() subtitles = %+v %+v %+v", subs[0].info, subs[1].info, subs[2].info)
	}
	for _, tc := range []struct {
		lang string
		want int
	}{{"en", 2}, {"spa", 4}, {"de", 4}, {"", 4}} {
		if got := burnTarget(subs, mi, tc.lang); got == nil || got.streamIndex != tc.want {
			t.Errorf("burnTarget(%q) = %+v, want stream %d", tc.lang, got, tc.want)
		}
	}
	if got := string(renderMaster(variant{videoCodec: "avc1.640028"}, nil, subs, "")); strings.Count(got, "TYPE=SUBTITLES") != 1 {
		t.Errorf("master lists image subtitles as renditions:\n%s", got)
	}
	args := strings.Join(ffmpegArgs(runSpec{plan: gridPlan(10, 4), variant: variant{width: 640, height: 360, maxrate: 1e6, x264Level: "4.1"},
		videoIndex: 0, audioIndex: -1, burnIndex: 4, segSec: 4, end: 3, input: "http://x/", pattern: "p-%05d.ts"}), " ")
	if !strings.Contains(args, "-filter_complex [0:0][0:4]overlay=eof_action=pass,scale=640:360[v] -map [v]") || strings.Contains(args, "-vf") {
		t.Errorf("burn-in arguments: %s", args)
	}
}

// TestLegacySidecarCharsets: sidecar SRTs written in the legacy encoding of their language
// (Windows-1251 for Russian, GB18030 for Chinese…) come out as the right UTF-8 text in
// WebVTT. Before, every such file was read as Windows-1252: "Ïðèâåò" for "Привет".
func TestLegacySidecarCharsets(t *testing.T) {
	for _, tc := range []struct {
		lang, text, charset string
		encoded             string // text in charset, hex
	}{
		{"ru", "Привет, мир", "windows-1251", "cff0e8e2e5f22c20ece8f0"},
		{"es", "¿Dónde está?", "windows-1252", "bf44f36e646520657374e13f"},
		{"pl", "Zażółć gęślą jaźń", "windows-1250", "5a61bff3b3e62067ea9c6cb9206a619ff1"},
		{"el", "Καλημέρα κόσμε", "windows-1253", "cae1ebe7ecddf1e120eafcf3ece5"},
		{"zh", "你好，世界", "gb18030", "c4e3bac3a3accac0bde7"},
		{"ja", "こんにちは", "shift_jis", "82b182f182c982bf82cd"},
		{"", "Ça va très bien", "windows-1252", "c761207661207472e873206269656e"}, // no language: Western
	} {
		t.Run(tc.charset+"-"+tc.lang, func(t *testing.T) {
			text, err := hex.DecodeString(tc.encoded)
			if err != nil {
				t.Fatal(err)
			}
			if utf8.Valid(text) {
				t.Fatalf("the %s test text is valid UTF-8: it tests nothing", tc.charset)
			}
			srt := append(append([]byte("1\r\n00:00:01,000 --> 00:00:03,000\r\n"), text...), "\r\n\r\n"...)
			path := filepath.Join(t.TempDir(), "Film.srt")
			if err := os.WriteFile(path, srt, 0o600); err != nil {
				t.Fatal(err)
			}
			side := serveMedia(t, path, serverOptions{})
			srv := serveMedia(t, media(t, mediaCopy), serverOptions{})
			m := newTestManager(t, Options{})
			s, err := m.Create(t.Context(), Spec{TaskID: "task", InputURL: srv.inputURL(),
				Sidecars: []SidecarInput{{InputURL: side.inputURL(), Language: tc.lang, Label: tc.lang, Format: "srt"}}})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.WaitReady(t.Context()); err != nil {
				t.Fatal(err)
			}
			p, err := s.Subtitle(t.Context(), "subs-0.vtt")
			if err != nil {
				t.Fatalf("Subtitle(subs-0.vtt) = %v", err)
			}
			vtt, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, cues := parseVTT(t, vtt); len(cues) != 1 || cues[0].text != tc.text {
				t.Errorf("cues %+v, want one with %q", cues, tc.text)
			}
		})
	}
}

func TestLegacyCharset(t *testing.T) {
	for lang, want := range map[string]string{
		"": "CP1252", "en": "CP1252", "fr-CA": "CP1252", "ru": "CP1251", "uk": "CP1251", "sr": "CP1250",
		"sr-Cyrl": "CP1251", "sr-Latn": "CP1250", "pl": "CP1250", "el": "CP1253", "tr": "CP1254",
		"he": "CP1255", "ar": "CP1256", "lt": "CP1257", "vi": "CP1258", "th": "CP874",
		"zh": "GB18030", "zh-Hans": "GB18030", "zh-Hant": "BIG5", "zh-TW": "BIG5", "ja": "CP932", "ko": "CP949",
	} {
		if got := legacyCharset(lang); got != want {
			t.Errorf("legacyCharset(%q) = %s, want %s", lang, got, want)
		}
	}
}
