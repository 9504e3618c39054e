package daemon

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// The PGS fixture: a dark grey 320×240 picture and a light box in the
// subtitle area from 1 s to 5 s.
var e2ePGSBox = pgsBox{width: 320, height: 240, x: 60, y: 180, w: 200, h: 40, start: 1, end: 5,
	luma: 235, cr: 128, cb: 128}

// e2eMakePGSFilm writes a torrent directory dir/Film with Film.mkv (H.264
// dark grey, AAC stereo eng + AC3 5.1 spa, an SRT eng track and a PGS eng
// track drawn by pgsSup) and the sidecar Film.fr.srt; it returns the
// directory.
func e2eMakePGSFilm(t *testing.T, dir string, seconds int) string {
	t.Helper()
	src := t.TempDir()
	sup := filepath.Join(src, "eng.sup")
	if err := os.WriteFile(sup, pgsSup(e2ePGSBox), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "eng.srt"), []byte(e2eEngSRT), 0o600); err != nil {
		t.Fatal(err)
	}
	film := e2eFilmDir(t, dir, seconds)
	args := []string{"-hide_banner", "-nostdin", "-v", "error", "-y",
		"-f", "lavfi", "-i", "color=c=0x202020:size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000",
		"-i", filepath.Join(src, "eng.srt"), "-f", "sup", "-i", sup,
		"-map", "0:v", "-map", "1:a", "-map", "2:a", "-map", "3:s", "-map", "4:s", "-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-preset", "superfast", "-pix_fmt", "yuv420p", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
		"-c:a:0", "aac", "-ac:a:0", "2", "-b:a:0", "96k", "-c:a:1", "ac3", "-ac:a:1", "6",
		"-c:s:0", "srt", "-c:s:1", "copy",
		"-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=spa",
		"-metadata:s:s:0", "language=eng", "-metadata:s:s:1", "language=eng",
		filepath.Join(film, "Film.mkv")}
	if out, err := exec.CommandContext(t.Context(), "ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg (make Film.mkv with PGS): %v: %s", err, out)
	}
	// The PGS track must be what the test thinks it is.
	out, err := exec.CommandContext(t.Context(), "ffprobe", "-v", "error", "-select_streams", "s",
		"-show_entries", "stream=codec_name", "-of", "csv=p=0", filepath.Join(film, "Film.mkv")).Output()
	if err != nil || strings.Fields(string(out))[len(strings.Fields(string(out)))-1] != "hdmv_pgs_subtitle" {
		t.Fatalf("ffprobe Film.mkv subtitle codecs = %q, %v; want the last to be hdmv_pgs_subtitle", out, err)
	}
	return film
}

// e2eFileNamed returns the file of ti whose path ends in name.
func e2eFileNamed(t *testing.T, ti control.TaskInfo, name string) control.FileInfo {
	t.Helper()
	for _, f := range ti.Files {
		if strings.HasSuffix(f.Path, name) {
			return f
		}
	}
	t.Fatalf("task has no file %s: %+v", name, ti.Files)
	return control.FileInfo{}
}

// TestE2EFilesTracks: the control socket's task (what `files` and `status`
// print) lists a file's sidecar subtitles at once, and after an HLS probe
// every audio and subtitle track with language, codec, text or image
// (burn-in only) and sidecar, the file's HLS mode, and the open session's
// mode in the task list.
func TestE2EFilesTracks(t *testing.T) {
	e2eStart(t)
	e2eNeedFFmpeg(t)
	r, magnet := e2eSeededDaemon(t, e2eMakePGSFilm(t, t.TempDir(), 8), &logBuffer{})
	add, err := r.client.AddTask(t.Context(), control.AddRequest{Source: magnet, FileIndex: -1})
	if err != nil {
		t.Fatalf("AddTask() error = %v", err)
	}
	var ti control.TaskInfo
	// The magnet's metadata arrives from the seeder: await it.
	enginetest.WaitFor(t, enginetest.EventWait, "the task's metadata", func() bool {
		ti, err = r.client.Task(t.Context(), add.TaskID)
		if err != nil {
			t.Fatalf("Task() error = %v", err)
		}
		return len(ti.Files) > 0
	})
	mkv := e2eFileNamed(t, ti, "Film.mkv")
	srt := e2eFileNamed(t, ti, "Film.fr.srt")
	// Before any probe: only the sidecar, known by its name.
	if mkv.Probed || mkv.Mode != "" || len(mkv.Tracks) != 1 ||
		mkv.Tracks[0] != (control.TrackInfo{Kind: "subtitle", Codec: "srt", Language: "fr", Title: "fr", Sidecar: true, File: srt.Index}) {
		t.Errorf("before a probe, Film.mkv = %+v, want only the French sidecar (file %d)", mkv, srt.Index)
	}
	if len(ti.HLS) != 0 {
		t.Errorf("before a session, task HLS = %+v, want none", ti.HLS)
	}

	hs, err := r.client.CreateHLS(t.Context(), add.TaskID, mkv.Index)
	if err != nil {
		t.Fatalf("CreateHLS() error = %v", err)
	}
	if code, body := get(t, hs.HLSURL); code != http.StatusOK { // answered once the probe is done
		t.Fatalf("GET master.m3u8 = %d %q", code, body)
	}
	ti, err = r.client.Task(t.Context(), add.TaskID)
	if err != nil {
		t.Fatalf("Task() error = %v", err)
	}
	mkv = e2eFileNamed(t, ti, "Film.mkv")
	if !mkv.Probed || mkv.Mode != "copy" {
		t.Errorf("after a probe, Film.mkv probed %v mode %q, want probed, copy (H.264 and AAC)", mkv.Probed, mkv.Mode)
	}
	type track struct {
		kind, lang, codec    string
		copied, image, side  bool
		channels, sideFileIx int
	}
	var got []track
	for _, tr := range mkv.Tracks {
		got = append(got, track{tr.Kind, tr.Language, tr.Codec, tr.Copy, tr.Image, tr.Sidecar, tr.Channels, tr.File})
	}
	want := []track{
		{"audio", "en", "aac", true, false, false, 2, 0},
		{"audio", "es", "ac3", false, false, false, 2, 0}, // re-encoded to AAC stereo
		{"subtitle", "en", "subrip", false, false, false, 0, 0},
		{"subtitle", "en", "hdmv_pgs_subtitle", false, true, false, 0, 0}, // image: listed, burn-in only
		{"subtitle", "fr", "srt", false, false, true, 0, srt.Index},
	}
	if len(got) != len(want) {
		t.Fatalf("Film.mkv tracks = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Film.mkv track %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(ti.HLS) != 1 || ti.HLS[0] != (control.HLSInfo{FileIndex: mkv.Index, State: "ready", Mode: "copy", Running: ti.HLS[0].Running}) {
		t.Errorf("task HLS = %+v, want one ready copy session of file %d", ti.HLS, mkv.Index)
	}
	st, err := r.client.Status(t.Context())
	if err != nil {
		t.Fatalf("Status() error = %v", err)
	}
	if len(st.Tasks) != 1 || len(st.Tasks[0].HLS) != 1 || st.Tasks[0].HLS[0].Mode != "copy" {
		t.Errorf("status tasks = %+v, want the task with its copy session", st.Tasks)
	}
}

// e2eRegionLuma decodes one frame of an HLS segment (the frame at offset
// sec into it) and returns the mean luma (0-255) of the rectangle given as
// fractions of the picture (x, y, w, h).
func e2eRegionLuma(t *testing.T, segURL string, sec float64, x, y, w, h float64) float64 {
	t.Helper()
	code, body := get(t, segURL)
	if code != http.StatusOK {
		t.Fatalf("GET segment = %d", code)
	}
	seg := filepath.Join(t.TempDir(), "seg.ts")
	if err := os.WriteFile(seg, body, 0o600); err != nil {
		t.Fatal(err)
	}
	crop := "crop=iw*" + ftoaTest(w) + ":ih*" + ftoaTest(h) + ":iw*" + ftoaTest(x) + ":ih*" + ftoaTest(y)
	out, err := exec.CommandContext(t.Context(), "ffmpeg", "-hide_banner", "-nostdin", "-v", "error",
		"-i", seg, "-vf", "select=gte(t-start_t\\,"+ftoaTest(sec)+"),"+crop+",format=gray",
		"-frames:v", "1", "-f", "rawvideo", "-").Output()
	if err != nil || len(out) == 0 {
		t.Fatalf("ffmpeg (decode a frame of the segment): %v, %d bytes", err, len(out))
	}
	var sum int
	for _, b := range out {
		sum += int(b)
	}
	return float64(sum) / float64(len(out))
}

func ftoaTest(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// e2eSegmentAt returns the index of the segment of pl that holds time sec
// and the offset of sec into it.
func e2eSegmentAt(t *testing.T, pl e2eMediaPlaylist, sec float64) (int, float64) {
	t.Helper()
	for i, seg := range pl.Segments {
		if start := pl.startOf(i); sec >= start && sec < start+seg.Dur {
			return i, sec - start
		}
	}
	t.Fatalf("no segment holds %.1f s (playlist of %.1f s)", sec, pl.total())
	return 0, 0
}

// TestE2EBurnIn: from a cold daemon fed by a loopback seeder, a session
// asked to burn subtitles draws the file's PGS track into the video — the
// subtitle area is bright while the PGS box is shown and dark after it is
// cleared — while a session on the same file without the option leaves the
// picture alone, offers the image track as no rendition, and the task lists
// it as an image track (never dropped silently).
func TestE2EBurnIn(t *testing.T) {
	e2eStart(t)
	e2eNeedFFmpeg(t)
	logs := &logBuffer{}
	r, magnet := e2eSeededDaemon(t, e2eMakePGSFilm(t, t.TempDir(), 8), logs)
	burnt, err := r.client.AddTask(t.Context(), control.AddRequest{Source: magnet, FileIndex: -1,
		HLS: true, BurnSubtitles: true})
	if err != nil {
		t.Fatalf("AddTask(HLS, burn) error = %v", err)
	}
	plain, err := r.client.CreateHLS(t.Context(), burnt.TaskID, -1)
	if err != nil {
		t.Fatalf("CreateHLS() error = %v", err)
	}

	// The subtitle box, well inside: x 60-260, y 180-220 of 320×240.
	box := func(segURL string, off float64) float64 {
		l := e2eRegionLuma(t, segURL, off, 0.25, 0.78, 0.5, 0.1)
		t.Logf("subtitle area luma %.1f", l)
		return l
	}
	top := func(segURL string, off float64) float64 { return e2eRegionLuma(t, segURL, off, 0.25, 0.1, 0.5, 0.1) }
	const bright, dark = 150, 80 // the box is luma 235, the picture 0x20 grey (luma about 43)

	bpl := e2eFetchHLS(t, burnt.HLSURL)
	ppl := e2eFetchHLS(t, plain.HLSURL)
	i, off := e2eSegmentAt(t, bpl, 3)
	if l := box(bpl.Segments[i].URL, off); l < bright {
		t.Errorf("burn-in session at 3 s: subtitle area luma %.0f, want > %d (the PGS box burnt in)", l, bright)
	}
	if l := top(bpl.Segments[i].URL, off); l > dark {
		t.Errorf("burn-in session at 3 s: top area luma %.0f, want < %d (untouched)", l, dark)
	}
	i, off = e2eSegmentAt(t, bpl, 6.5)
	if l := box(bpl.Segments[i].URL, off); l > dark {
		t.Errorf("burn-in session at 6.5 s: subtitle area luma %.0f, want < %d (the PGS box was cleared at 5 s)", l, dark)
	}
	i, off = e2eSegmentAt(t, ppl, 3)
	if l := box(ppl.Segments[i].URL, off); l > dark {
		t.Errorf("session without burn-in at 3 s: subtitle area luma %.0f, want < %d (nothing burnt)", l, dark)
	}

	// Without burn-in the image track is no rendition (HLS cannot carry
	// it) but is listed, and the sessions say what they do.
	_, master := get(t, plain.HLSURL)
	if n := strings.Count(string(master), "TYPE=SUBTITLES"); n != 2 {
		t.Errorf("master.m3u8 without burn-in has %d subtitle renditions, want 2 (SRT, sidecar):\n%s", n, redactBody(master, e2eTokenOfRaw(plain.HLSURL)))
	}
	ti, err := r.client.Task(t.Context(), burnt.TaskID)
	if err != nil {
		t.Fatalf("Task() error = %v", err)
	}
	var image int
	for _, tr := range e2eFileNamed(t, ti, "Film.mkv").Tracks {
		if tr.Image && tr.Codec == "hdmv_pgs_subtitle" {
			image++
		}
	}
	if image != 1 {
		t.Errorf("Film.mkv tracks = %+v, want the PGS track listed as an image subtitle", e2eFileNamed(t, ti, "Film.mkv").Tracks)
	}
	modes := map[string]bool{}
	for _, h := range ti.HLS {
		modes[h.Mode+strconv.FormatBool(h.BurntSubtitles)] = true
	}
	if len(ti.HLS) != 2 || !modes["transcodetrue"] || !modes["copyfalse"] {
		t.Errorf("task HLS = %+v, want a transcode session burning subtitles and a copy session", ti.HLS)
	}
	assertNoSecrets(t, logs.String(), burnt.Token.Reveal())
}
