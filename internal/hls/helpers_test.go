package hls

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testToken is the token the fake media server requires; it must never
// show up in logs.
const testToken = "s3cr3t-t0ken-do-not-log_0123456789abcdef"

// tsOffset is MPEG-TS's fixed timestamp offset (ffmpeg -muxdelay 0.7 x 2).
const tsOffset = 1.4

var (
	mediaOnce sync.Once
	mediaDir  string
	mediaErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if mediaDir != "" {
		_ = os.RemoveAll(mediaDir)
	}
	if tracksDir != "" {
		_ = os.RemoveAll(tracksDir)
	}
	os.Exit(code)
}

// Test media, made once per test binary by ffmpeg: ~12 s, 320x240 at 25 fps.
const (
	mediaCopy      = "copy.mp4"      // H.264 High + AAC stereo, keyframes every 2 s, moov at the end
	mediaFaststart = "faststart.mp4" // the same, moov at the head
	mediaIrregular = "irregular.mkv" // H.264 with irregular keyframes + AC3 5.1
	mediaTranscode = "transcode.mkv" // MPEG-4 Part 2 + AC3 5.1
	mediaDuration  = 12.0
	mediaFPS       = 25.0
)

// irregularKeyframes are the forced keyframes of mediaIrregular.
var irregularKeyframes = "0,1.4,4.6,5.2,9.0,10.4"

func needFFmpeg(t testing.TB) {
	t.Helper()
	for _, b := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed", b)
		}
	}
}

// media returns the path of a test media file, making all of them on first
// use.
func media(t testing.TB, name string) string {
	t.Helper()
	needFFmpeg(t)
	mediaOnce.Do(func() {
		mediaDir, mediaErr = os.MkdirTemp("", "hls-media-")
		if mediaErr != nil {
			return
		}
		src := []string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
			"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "12"}
		h264 := []string{"-c:v", "libx264", "-preset", "superfast", "-b:v", "800k", "-pix_fmt", "yuv420p", "-sc_threshold", "0"}
		jobs := [][]string{
			concat(src, h264, []string{"-g", "50", "-keyint_min", "50", "-c:a", "aac", "-ac", "2", "-b:a", "96k", mediaCopy}),
			{"-i", mediaCopy, "-c", "copy", "-movflags", "+faststart", mediaFaststart},
			concat(src, h264, []string{"-g", "1000", "-force_key_frames", irregularKeyframes, "-c:a", "ac3", "-ac", "6", mediaIrregular}),
			concat(src, []string{"-c:v", "mpeg4", "-q:v", "5", "-g", "50", "-c:a", "ac3", "-ac", "6", mediaTranscode}),
		}
		for _, args := range jobs {
			cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-v", "error", "-y"}, args...)...)
			cmd.Dir = mediaDir
			if out, err := cmd.CombinedOutput(); err != nil {
				mediaErr = fmt.Errorf("make %s: %v: %s", args[len(args)-1], err, out)
				return
			}
		}
	})
	if mediaErr != nil {
		t.Fatal(mediaErr)
	}
	return filepath.Join(mediaDir, name)
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// mediaServer serves one file with http.ServeContent, like the daemon's
// /stream: Range support, and optionally slow or stalled bytes like a torrent
// that is still downloading.
type mediaServer struct {
	*httptest.Server
	size     int64
	served   atomic.Int64 // bytes handed to ServeContent
	requests atomic.Int64
	range_   atomic.Value  // string: the Range header of the latest request
	gate     chan struct{} // closed: stalled bytes flow
	gateOnce sync.Once
}

type serverOptions struct {
	bytesPerSec int64 // 0: unthrottled
	// Bytes in [stallFrom, stallTo) are not delivered until release().
	stallFrom, stallTo int64
}

func serveMedia(t testing.TB, path string, o serverOptions) *mediaServer {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ms := &mediaServer{size: int64(len(data)), gate: make(chan struct{})}
	ms.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("t") != testToken {
			http.NotFound(w, r)
			return
		}
		ms.requests.Add(1)
		ms.range_.Store(r.Header.Get("Range"))
		rs := &slowReader{r: bytes.NewReader(data), ms: ms, o: o, ctx: r.Context()}
		http.ServeContent(w, r, filepath.Base(path), time.Time{}, rs)
	}))
	t.Cleanup(func() {
		ms.release()
		ms.Server.CloseClientConnections()
		ms.Server.Close()
	})
	return ms
}

func (ms *mediaServer) release() { ms.gateOnce.Do(func() { close(ms.gate) }) }

func (ms *mediaServer) inputURL() string { return ms.URL + "/stream?id=task&t=" + testToken }

// slowReader delivers bytes in small chunks, at a rate, and holds back the
// stalled range until the gate opens.
type slowReader struct {
	r   *bytes.Reader
	ms  *mediaServer
	o   serverOptions
	ctx context.Context
}

func (s *slowReader) Seek(off int64, whence int) (int64, error) { return s.r.Seek(off, whence) }

func (s *slowReader) Read(p []byte) (int, error) {
	pos := s.r.Size() - int64(s.r.Len())
	if s.o.stallTo > s.o.stallFrom && pos >= s.o.stallFrom && pos < s.o.stallTo {
		select {
		case <-s.ms.gate:
		case <-s.ctx.Done():
			return 0, s.ctx.Err()
		}
	}
	if s.o.stallTo > s.o.stallFrom && pos < s.o.stallFrom && int64(len(p)) > s.o.stallFrom-pos {
		p = p[:s.o.stallFrom-pos]
	}
	if s.o.bytesPerSec > 0 {
		const chunk = 8 << 10
		if len(p) > chunk {
			p = p[:chunk]
		}
		// Emulates bandwidth, not synchronisation.
		d := time.Duration(float64(len(p)) / float64(s.o.bytesPerSec) * float64(time.Second))
		select {
		case <-time.After(d):
		case <-s.ctx.Done():
			return 0, s.ctx.Err()
		}
	}
	n, err := s.r.Read(p)
	s.ms.served.Add(int64(n))
	return n, err
}

// logBuffer collects log output to check that no token leaks.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	out io.Writer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if l.out != nil {
		_, _ = l.out.Write(p)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// newTestManager returns a Manager on a temp dir whose logs are checked for
// the token at cleanup.
func newTestManager(t testing.TB, o Options) *Manager {
	t.Helper()
	needFFmpeg(t)
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.SegmentSeconds == 0 {
		// The tests' segment arithmetic (three segments in the 12 s
		// titles) was written for 4 s segments, the default until 2.
		o.SegmentSeconds = 4
	}
	logs := &logBuffer{}
	if tt, ok := t.(*testing.T); ok && testing.Verbose() {
		logs.out = tt.Output()
	}
	o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := New(o)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Manager.Close() = %v", err)
		}
		if strings.Contains(logs.String(), testToken) {
			t.Errorf("logs contain the input token:\n%s", logs.String())
		}
	})
	return m
}

// segProbe is what ffprobe says about one segment file.
type segProbe struct {
	videoStart, videoDur float64
	codec                string
	audioCodec           string
	audioChannels        int
	audioStart, audioDur float64
}

func probeSegment(t testing.TB, path string) segProbe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-print_format", "json", "-show_streams", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", filepath.Base(path), err)
	}
	var raw struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
			StartTime string `json:"start_time"`
			Duration  string `json:"duration"`
			Channels  int    `json:"channels"`
			Frames    string `json:"nb_read_frames"`
			Rate      string `json:"sample_rate"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatal(err)
	}
	var sp segProbe
	for _, s := range raw.Streams {
		switch s.CodecType {
		case "video":
			sp.codec = s.CodecName
			sp.videoStart, _ = strconv.ParseFloat(s.StartTime, 64)
			sp.videoDur, _ = strconv.ParseFloat(s.Duration, 64)
		case "audio":
			sp.audioCodec, sp.audioChannels = s.CodecName, s.Channels
			sp.audioStart, _ = strconv.ParseFloat(s.StartTime, 64)
			// MPEG-TS packs several AAC frames in one PES, so the
			// container's duration estimate is short; count the
			// decoded frames (1024 samples each) instead.
			frames, _ := strconv.Atoi(s.Frames)
			rate, _ := strconv.Atoi(s.Rate)
			if s.CodecName == "aac" && rate > 0 {
				sp.audioDur = float64(frames*1024) / float64(rate)
			} else {
				sp.audioDur, _ = strconv.ParseFloat(s.Duration, 64)
			}
		}
	}
	// Decode every frame: the segment must play on its own.
	cmd := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-i", path, "-f", "null", "-")
	if msg, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(msg)) > 0 {
		t.Errorf("decode %s: %v: %s", filepath.Base(path), err, msg)
	}
	return sp
}

// segTolerance is the allowed difference between an EXTINF and a
// segment's real duration or start.
const segTolerance = 0.1 + 1/mediaFPS

// audioTolerance is the allowed difference between an audio segment's
// start or length and the video segment's: audio cuts land on audio frame
// boundaries (1024 samples, 21 ms at 48 kHz), plus the encoder's priming.
const audioTolerance = 0.05 + 1/mediaFPS

// checkSegment validates segment i against the playlist.
func checkSegment(t testing.TB, path string, pl *mediaPlaylist, i int) segProbe {
	t.Helper()
	sp := probeSegment(t, path)
	if sp.codec != "h264" {
		t.Errorf("segment %d video codec = %q, want h264", i, sp.codec)
	}
	want := pl.segments[i].duration
	if math.Abs(sp.videoDur-want) > segTolerance {
		t.Errorf("segment %d duration = %.3f, EXTINF %.3f", i, sp.videoDur, want)
	}
	before := 0.0
	for _, s := range pl.segments[:i] {
		before += s.duration
	}
	if got := sp.videoStart - tsOffset; math.Abs(got-before) > segTolerance {
		t.Errorf("segment %d starts at %.3f, sum of earlier EXTINF %.3f", i, got, before)
	}
	return sp
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	// The deadline only turns a hang into a failure: cond is an event the test awaits, so the
	// deadline is generous for a loaded machine (never less than eventWait).
	d = max(d, eventWait)
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling, not synchronisation
	}
}

// eventWait is the least time waitFor waits for an event. On a busy 2-core machine ffmpeg
// took more than 10 s to write four segments (issue 9); tests never assert timings.
const eventWait = 2 * time.Minute

// children returns the live processes whose parent is this test process.
func children(t testing.TB) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	me := os.Getpid()
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := procStat(pid)
		if err != nil {
			continue
		}
		if st.ppid == me {
			out = append(out, fmt.Sprintf("%d(%s,%s)", pid, st.comm, st.state))
		}
	}
	return out
}

type procStatus struct {
	comm       string
	state      string
	ppid, pgrp int
}

func procStat(pid int) (procStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStatus{}, err
	}
	s := string(b)
	open, closeIdx := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closeIdx < open {
		return procStatus{}, errors.New("bad stat")
	}
	f := strings.Fields(s[closeIdx+1:])
	if len(f) < 3 {
		return procStatus{}, errors.New("bad stat")
	}
	ppid, _ := strconv.Atoi(f[1])
	pgrp, _ := strconv.Atoi(f[2])
	return procStatus{comm: s[open+1 : closeIdx], state: f[0], ppid: ppid, pgrp: pgrp}, nil
}

// groupMembers returns the live processes in process group pgid.
func groupMembers(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := procStat(pid); err == nil && st.pgrp == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// producerPID returns the pid of the session's running video ffmpeg for unnamed players,
// 0 if none.
func producerPID(s *Session) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tracks) == 0 || s.tracks[0].prods[""] == nil {
		return 0
	}
	return s.tracks[0].prods[""].pid
}

// fetchPlaylist returns the parsed index playlist of a ready session.
func fetchPlaylist(t testing.TB, s *Session) *mediaPlaylist {
	t.Helper()
	b, err := s.Playlist(t.Context(), "index.m3u8", testToken)
	if err != nil {
		t.Fatalf("Playlist(index.m3u8) = %v", err)
	}
	pl, err := parseMediaPlaylist(b)
	if err != nil {
		t.Fatalf("parse index.m3u8: %v\n%s", err, b)
	}
	return pl
}
