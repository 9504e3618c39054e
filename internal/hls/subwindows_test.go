package hls

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// windowMedia writes a 60 s title with a subtitle cue every 2 s ("cue i"
// from 2i+0.5 to 2i+1.5 s) and a keyframe every 2 s, as Matroska (SRT) or
// MP4 (mov_text, index at the end), and returns its path and the byte
// offsets of its video keyframes by second.
func windowMedia(t *testing.T, ext string) (string, map[int]int64) {
	t.Helper()
	needFFmpeg(t)
	dir := t.TempDir()
	var srt strings.Builder
	for i := range 30 {
		s := 2 * i // and half a second
		fmt.Fprintf(&srt, "%d\n00:%02d:%02d,500 --> 00:%02d:%02d,500\ncue %d\n\n", i+1, s/60, s%60, (s+1)/60, (s+1)%60, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "s.srt"), []byte(srt.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	codec := map[string]string{"mkv": "srt", "mp4": "mov_text"}[ext]
	out := filepath.Join(dir, "w."+ext)
	cmd := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-i", "s.srt",
		"-map", "0:v", "-map", "1:a", "-map", "2:s", "-t", "60",
		"-c:v", "libx264", "-preset", "superfast", "-b:v", "1M", "-pix_fmt", "yuv420p",
		"-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "64k", "-c:s", codec, "-metadata:s:s:0", "language=eng", out)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make %s: %v: %s", out, err, b)
	}
	b, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
		"packet=pts_time,pos,flags", "-of", "csv=p=0", out).Output()
	if err != nil {
		t.Fatal(err)
	}
	kf := map[int]int64{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(l, ",")
		if len(f) < 3 || !strings.HasPrefix(f[2], "K") {
			continue
		}
		ts, err1 := strconv.ParseFloat(f[0], 64)
		pos, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("ffprobe line %q", l)
		}
		kf[int(math.Round(ts))] = pos
	}
	return out, kf
}

// TestSubtitleWindows: an embedded subtitle track is served in 6 s
// windows, each made from the bytes around it. While the input past 30 s
// is not there yet (a torrent still downloading), the windows before it
// come out with the right cues at the right times; the window that needs
// the missing bytes waits for them, and one nobody waits for any more
// stops.
func TestSubtitleWindows(t *testing.T) {
	for _, ext := range []string{"mkv", "mp4"} {
		t.Run(ext, func(t *testing.T) {
			path, kf := windowMedia(t, ext)
			last := 0
			for s := range kf {
				last = max(last, s)
			}
			srv := serveMedia(t, path, serverOptions{stallFrom: kf[30], stallTo: kf[last]})
			m := newTestManager(t, Options{})
			s, err := m.Create(t.Context(), Spec{TaskID: "task", InputURL: srv.inputURL()})
			if err != nil {
				t.Fatalf("Create() = %v", err)
			}
			if err := s.WaitReady(t.Context()); err != nil {
				t.Fatalf("WaitReady() = %v", err)
			}
			b, err := s.Playlist(t.Context(), subtitlePlaylistName(0), testToken)
			if err != nil {
				t.Fatal(err)
			}
			pl, err := parseMediaPlaylist(b)
			if err != nil || len(pl.segments) != 10 {
				t.Fatalf("subs-0.m3u8 = %+v, %v; want 10 windows:\n%s", pl, err, b)
			}
			for w, seg := range pl.segments {
				if seg.uri != subtitleWindowName(0, w)+"?t="+testToken || math.Abs(seg.duration-6) > 0.1 {
					t.Errorf("window %d = %+v, want %s for 6 s", w, seg, subtitleWindowName(0, w))
				}
			}

			// check asks for window w and expects its three cues.
			check := func(ctx context.Context, w int) error {
				p, err := s.Subtitle(ctx, subtitleWindowName(0, w))
				if err != nil {
					return err
				}
				vtt, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				header, cues := parseVTT(t, vtt)
				if !strings.Contains(strings.Join(header, "\n"), timestampMap) {
					return fmt.Errorf("window %d header %q lacks the timestamp map", w, header)
				}
				if len(cues) != 3 {
					return fmt.Errorf("window %d has cues %+v, want 3", w, cues)
				}
				for j, c := range cues {
					i := 3*w + j
					want := vttCue{float64(2*i) + 0.5, float64(2*i) + 1.5, fmt.Sprintf("cue %d", i)}
					if c.text != want.text || math.Abs(c.start-want.start) > oneFrame || math.Abs(c.end-want.end) > oneFrame {
						return fmt.Errorf("window %d cue %d = %+v, want %+v", w, j, c, want)
					}
				}
				return nil
			}
			waiting := make(chan error, 1)
			go func() { waiting <- check(t.Context(), 4) }()
			for w := range 4 {
				if err := check(t.Context(), w); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-waiting:
				t.Fatalf("window 4 was made without the input past 30 s (%v)", err)
			default:
			}
			// A window nobody waits for any more (the player seeked away)
			// stops its ffmpeg (after a grace period); window 4's goes on.
			ffmpegs := func() int {
				n := 0
				for _, c := range children(t) {
					if strings.Contains(c, "(ffmpeg,") {
						n++
					}
				}
				return n
			}
			waitFor(t, "window 4's ffmpeg", time.Minute, func() bool { return ffmpegs() == 1 })
			ctx, cancel := context.WithCancel(t.Context())
			gaveUp := make(chan error, 1)
			go func() { gaveUp <- check(ctx, 7) }()
			waitFor(t, "window 7's ffmpeg", time.Minute, func() bool { return ffmpegs() == 2 })
			cancel()
			if err := <-gaveUp; !errors.Is(err, context.Canceled) {
				t.Fatalf("window 7 given up on: %v", err)
			}
			waitFor(t, "window 7's ffmpeg to end", time.Minute, func() bool { return ffmpegs() == 1 })
			srv.release()
			if err := <-waiting; err != nil {
				t.Fatal(err)
			}
			for w := 5; w < 10; w++ {
				if err := check(t.Context(), w); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Subtitle(t.Context(), subtitleWindowName(0, 10)); !errors.Is(err, ErrBadResource) {
				t.Errorf("Subtitle(%s) = %v, want ErrBadResource", subtitleWindowName(0, 10), err)
			}
		})
	}
}
