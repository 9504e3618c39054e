package hls

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSessionPlayback(t *testing.T) {
	tests := []struct {
		name      string
		media     string
		mode      string
		codecs    string
		durations []float64 // expected EXTINFs
		target    string
		audio     string
		channels  int
	}{
		{name: "copy mp4 moov at end", media: mediaCopy, mode: ModeCopy, codecs: "avc1.640014,mp4a.40.2",
			durations: []float64{4, 4, 4}, target: "4", audio: "aac", channels: 2},
		{name: "copy mp4 faststart", media: mediaFaststart, mode: ModeCopy, codecs: "avc1.640014,mp4a.40.2",
			durations: []float64{4, 4, 4}, target: "4", audio: "aac", channels: 2},
		// Irregular keyframes: boundaries land on real keyframes, so
		// EXTINFs are irregular but exact.
		{name: "copy video mkv irregular keyframes", media: mediaIrregular, mode: ModeCopyVideo, codecs: "avc1.640014,mp4a.40.2",
			durations: []float64{4.605, 4.4, 3.0}, target: "5", audio: "aac", channels: 2},
		{name: "transcode mpeg4 ac3", media: mediaTranscode, mode: ModeTranscode, codecs: "avc1.640029,mp4a.40.2",
			durations: []float64{4, 4, 4.005}, target: "4", audio: "aac", channels: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := serveMedia(t, media(t, tc.media), serverOptions{})
			m := newTestManager(t, Options{})
			s, err := m.Create(t.Context(), Spec{TaskID: "task", InputURL: srv.inputURL()})
			if err != nil {
				t.Fatalf("Create() = %v", err)
			}
			if !ValidSessionID(s.ID()) || len(s.ID()) != 36 {
				t.Errorf("minted ID %q is not a UUID", s.ID())
			}
			if err := s.WaitReady(t.Context()); err != nil {
				t.Fatalf("WaitReady() = %v", err)
			}
			if got := s.Info().Mode; got != tc.mode {
				t.Errorf("mode = %q, want %q", got, tc.mode)
			}

			master, err := s.Playlist(t.Context(), "master.m3u8", testToken)
			if err != nil {
				t.Fatalf("Playlist(master.m3u8) = %v", err)
			}
			for _, want := range []string{
				"#EXTM3U\n", "#EXT-X-INDEPENDENT-SEGMENTS\n", `CODECS="` + tc.codecs + `"`,
				"RESOLUTION=320x240", "BANDWIDTH=", "FRAME-RATE=25.000",
				"\nindex.m3u8?t=" + testToken + "\n",
			} {
				if !strings.Contains(string(master), want) {
					t.Errorf("master.m3u8 lacks %q:\n%s", want, master)
				}
			}

			idx, err := s.Playlist(t.Context(), "index.m3u8", testToken)
			if err != nil {
				t.Fatalf("Playlist(index.m3u8) = %v", err)
			}
			for _, want := range []string{"#EXT-X-PLAYLIST-TYPE:VOD\n", "#EXT-X-ENDLIST\n", "#EXT-X-INDEPENDENT-SEGMENTS\n", "#EXT-X-TARGETDURATION:" + tc.target + "\n"} {
				if !strings.Contains(string(idx), want) {
					t.Errorf("index.m3u8 lacks %q:\n%s", want, idx)
				}
			}
			pl, err := parseMediaPlaylist(idx)
			if err != nil {
				t.Fatalf("parse index.m3u8: %v", err)
			}
			sum := 0.0
			for i, seg := range pl.segments {
				sum += seg.duration
				if want := segmentName(i) + "?t=" + testToken; seg.uri != want {
					t.Errorf("segment %d URI = %q, want %q", i, seg.uri, want)
				}
				if i < len(tc.durations) && math.Abs(seg.duration-tc.durations[i]) > 0.0015 {
					t.Errorf("EXTINF %d = %.6f, want %.3f", i, seg.duration, tc.durations[i])
				}
			}
			if len(pl.segments) != len(tc.durations) {
				t.Errorf("%d segments, want %d", len(pl.segments), len(tc.durations))
			}
			if math.Abs(sum-mediaDuration) > 4 {
				t.Errorf("sum of EXTINF = %.3f, want %.1f within one segment", sum, mediaDuration)
			}

			for i := range pl.segments {
				path, err := s.Segment(t.Context(), segmentName(i))
				if err != nil {
					t.Fatalf("Segment(%d) = %v", i, err)
				}
				sp := checkSegment(t, path, pl, i)
				if sp.audioCodec != "" {
					t.Errorf("video segment %d carries audio (%s): audio belongs to the renditions", i, sp.audioCodec)
				}
				// The audio rendition's segment i covers the same time.
				apath, err := s.Segment(t.Context(), audioSegmentName(0, i))
				if err != nil {
					t.Fatalf("Segment(%s) = %v", audioSegmentName(0, i), err)
				}
				ap := probeSegment(t, apath)
				if ap.audioCodec != tc.audio || ap.audioChannels != tc.channels || ap.codec != "" {
					t.Errorf("audio segment %d = video %q audio %s/%d, want audio only %s/%d", i, ap.codec, ap.audioCodec, ap.audioChannels, tc.audio, tc.channels)
				}
				if math.Abs(ap.audioStart-sp.videoStart) > audioTolerance || math.Abs(ap.audioDur-pl.segments[i].duration) > audioTolerance {
					t.Errorf("audio segment %d at %.3f for %.3f s, video segment at %.3f for EXTINF %.3f", i, ap.audioStart, ap.audioDur, sp.videoStart, pl.segments[i].duration)
				}
			}
			if !strings.Contains(string(master), `AUDIO="audio"`) || !strings.Contains(string(master), `URI="audio-0.m3u8?t=`+testToken+`"`) {
				t.Errorf("master.m3u8 has no audio rendition:\n%s", master)
			}
			if got := m.starts.Load(); got != 1 {
				t.Errorf("video ffmpeg started %d times for sequential playback, want 1", got)
			}
			if got := m.audioStarts.Load(); got != 1 {
				t.Errorf("audio ffmpeg started %d times for sequential playback, want 1", got)
			}
		})
	}
}

func TestSeek(t *testing.T) {
	tests := []struct {
		name     string
		media    string
		segments int
	}{
		{"copy", mediaCopy, 6},
		// Boundaries at 0, 1.405, 4.605, 9.005, 10.405.
		{"copy video irregular", mediaIrregular, 5},
		{"transcode", mediaTranscode, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := serveMedia(t, media(t, tc.media), serverOptions{})
			m := newTestManager(t, Options{SegmentSeconds: 2})
			s, err := m.Create(t.Context(), Spec{InputURL: srv.inputURL()})
			if err != nil {
				t.Fatal(err)
			}
			pl := fetchPlaylist(t, s)
			if len(pl.segments) != tc.segments {
				t.Fatalf("%d segments, want %d", len(pl.segments), tc.segments)
			}
			// First request: the segment at 70% (8.4 s).
			target := s.plan.indexAt(0.7 * s.plan.duration)
			path, err := s.Segment(t.Context(), segmentName(target))
			if err != nil {
				t.Fatalf("Segment(%d) = %v", target, err)
			}
			checkSegment(t, path, pl, target)
			for i := range target {
				if _, err := os.Stat(s.segPath(s.tracks[0], i)); err == nil {
					t.Errorf("segment %d exists after seeking to %d", i, target)
				}
			}
			if got := s.Info().OnDisk; got > len(pl.segments)-target {
				t.Errorf("%d segments on disk, want at most %d", got, len(pl.segments)-target)
			}

			// Seek back: restarts ffmpeg, timestamps still line up.
			path, err = s.Segment(t.Context(), segmentName(1))
			if err != nil {
				t.Fatalf("Segment(1) = %v", err)
			}
			checkSegment(t, path, pl, 1)
			if got := m.starts.Load(); got != 2 {
				t.Errorf("ffmpeg started %d times, want 2", got)
			}
			if target < 2 {
				t.Fatalf("seek target %d too early for this test", target)
			}
			// The run started at 1 stops where finished segments begin.
			path, err = s.Segment(t.Context(), segmentName(target))
			if err != nil {
				t.Fatal(err)
			}
			checkSegment(t, path, pl, target)
		})
	}
}

// A seek restarts the video's ffmpeg, and the audio rendition the player
// was listening to is started at the same segment before the player asks
// for it: hls.js often asks for the audio only after the video segment has
// arrived, and waiting for two ffmpeg starts in a row doubles the seek.
func TestSeekStartsAudioAlongside(t *testing.T) {
	// Throttled like a torrent, so that the audio ffmpeg started at 0 is
	// paused three segments ahead long before it could reach the seek.
	path := media(t, mediaTranscode)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := serveMedia(t, path, serverOptions{bytesPerSec: max(fi.Size()/6, 1)})
	m := newTestManager(t, Options{SegmentSeconds: 1})
	m.readaheadSec = 1 // pause 3 segments ahead
	s, err := m.Create(t.Context(), Spec{InputURL: srv.inputURL()})
	if err != nil {
		t.Fatal(err)
	}
	pl := fetchPlaylist(t, s)
	if len(pl.segments) != 12 {
		t.Fatalf("%d segments, want 12", len(pl.segments))
	}
	// A video restart before any audio request starts no audio.
	if _, err := s.Segment(t.Context(), segmentName(0)); err != nil {
		t.Fatal(err)
	}
	if got := m.audioStarts.Load(); got != 0 {
		t.Fatalf("%d audio ffmpeg started before any audio request", got)
	}
	if _, err := s.Segment(t.Context(), audioSegmentName(0, 0)); err != nil {
		t.Fatal(err)
	}

	const target = 10
	vpath, err := s.Segment(t.Context(), segmentName(target))
	if err != nil {
		t.Fatal(err)
	}
	vp := checkSegment(t, vpath, pl, target)
	// The deadline is a hang guard (see waitFor).
	waitFor(t, "the audio segment at the seek", 60*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.tracks[1].segs[target].done
	})
	if got := m.audioStarts.Load(); got != 2 {
		t.Errorf("audio ffmpeg started %d times, want 2 (at 0, then at the seek without being asked)", got)
	}
	apath, err := s.Segment(t.Context(), audioSegmentName(0, target))
	if err != nil {
		t.Fatal(err)
	}
	ap := probeSegment(t, apath)
	if ap.audioCodec != "aac" || ap.audioChannels != 2 || ap.codec != "" {
		t.Errorf("audio segment %d = video %q audio %s/%d, want aac/2 only", target, ap.codec, ap.audioCodec, ap.audioChannels)
	}
	if math.Abs(ap.audioStart-vp.videoStart) > audioTolerance || math.Abs(ap.audioDur-pl.segments[target].duration) > audioTolerance {
		t.Errorf("audio segment %d at %.3f for %.3f s, video segment at %.3f for EXTINF %.3f",
			target, ap.audioStart, ap.audioDur, vp.videoStart, pl.segments[target].duration)
	}
	if got := m.starts.Load(); got != 2 {
		t.Errorf("video ffmpeg started %d times, want 2", got)
	}
}

// A throttled input (a torrent still downloading): the playlists are ready
// long before the file has been read, and segments arrive as bytes do.
func TestThrottledInput(t *testing.T) {
	path := media(t, mediaCopy)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// The whole file takes ~8 s to arrive.
	srv := serveMedia(t, path, serverOptions{bytesPerSec: fi.Size() / 8})
	m := newTestManager(t, Options{})
	start := time.Now()
	s, err := m.Create(t.Context(), Spec{InputURL: srv.inputURL()})
	if err != nil {
		t.Fatal(err)
	}
	pl := fetchPlaylist(t, s)
	if served := srv.served.Load(); served >= srv.size/2 {
		t.Errorf("playlist ready after %d of %d bytes, want less than half", served, srv.size)
	}
	// How long it took is logged, never asserted: a loaded machine took 5.5 s (issue 9);
	// the bytes served before the playlist are what shows it did not wait for the file.
	t.Logf("playlist after %v, %d of %d bytes served", time.Since(start), srv.served.Load(), srv.size)
	if s.Info().OnDisk != 0 {
		t.Error("segments exist before any request")
	}
	p, err := s.Segment(t.Context(), segmentName(0))
	if err != nil {
		t.Fatal(err)
	}
	if served := srv.served.Load(); served >= srv.size {
		t.Errorf("first segment after the whole file was served")
	}
	checkSegment(t, p, pl, 0)
	p, err = s.Segment(t.Context(), segmentName(1))
	if err != nil {
		t.Fatal(err)
	}
	checkSegment(t, p, pl, 1)
}

// stalledServer serves faststart.mp4 but holds back the second half until
// released: ffmpeg makes segment 0 and then blocks inside the input.
func stalledServer(t *testing.T) *mediaServer {
	return stalledServerOf(t, mediaFaststart)
}

// stalledServerOf is stalledServer for another test media file.
func stalledServerOf(t *testing.T, name string) *mediaServer {
	path := media(t, name)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return serveMedia(t, path, serverOptions{stallFrom: fi.Size() / 2, stallTo: fi.Size()})
}

// runningSession creates a session on srv and returns it with ffmpeg
// running (blocked on the stalled input) after segment 0.
func runningSession(t *testing.T, m *Manager, srv *mediaServer, task string) *Session {
	t.Helper()
	s, err := m.Create(t.Context(), Spec{TaskID: task, InputURL: srv.inputURL()})
	if err != nil {
		t.Fatalf("Create() = %v", err)
	}
	if _, err := s.Segment(t.Context(), segmentName(0)); err != nil {
		t.Fatalf("Segment(0) = %v", err)
	}
	if producerPID(s) == 0 {
		t.Fatal("ffmpeg not running after segment 0 on a stalled input")
	}
	return s
}

func assertNoChildren(t *testing.T, pids ...int) {
	t.Helper()
	for _, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			t.Errorf("ffmpeg %d still exists (running or zombie)", pid)
		}
		if g := groupMembers(pid); len(g) > 0 {
			t.Errorf("process group %d still has members %v", pid, g)
		}
	}
	if c := children(t); len(c) > 0 {
		t.Errorf("child processes remain: %v", c)
	}
}

func TestCloseKillsFFmpeg(t *testing.T) {
	srv := stalledServer(t)
	var closed []string
	var mu sync.Mutex
	m := newTestManager(t, Options{OnClose: func(id string) {
		mu.Lock()
		defer mu.Unlock()
		closed = append(closed, id)
	}})
	s := runningSession(t, m, srv, "task")
	pid := producerPID(s)
	if st, err := procStat(pid); err != nil || st.pgrp != pid {
		t.Errorf("ffmpeg %d: pgrp %d, err %v; want its own group", pid, st.pgrp, err)
	}
	// A request waiting on the stalled ffmpeg is released by Close.
	waitErr := make(chan error, 1)
	go func() {
		_, err := s.Segment(context.Background(), segmentName(2))
		waitErr <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := <-waitErr; !errors.Is(err, ErrNotFound) {
		t.Errorf("waiting Segment after Close = %v, want ErrNotFound", err)
	}
	assertNoChildren(t, pid)
	if _, err := m.Get(s.ID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Close = %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(s.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("session dir after Close: %v, want gone", err)
	}
	if _, err := s.Playlist(t.Context(), "index.m3u8", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Playlist after Close = %v, want ErrNotFound", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(closed, []string{s.ID()}) {
		t.Errorf("OnClose calls = %v, want [%s]", closed, s.ID())
	}
}

func TestRunCancelKillsFFmpeg(t *testing.T) {
	srv := stalledServer(t)
	m := newTestManager(t, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() { runErr <- m.Run(ctx) }()
	s := runningSession(t, m, srv, "task")
	pid := producerPID(s)
	cancel()
	if err := <-runErr; err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
	assertNoChildren(t, pid)
	if _, err := m.Get(s.ID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after Run ended = %v, want ErrNotFound", err)
	}
	if _, err := m.Create(t.Context(), Spec{InputURL: srv.inputURL()}); !errors.Is(err, ErrClosed) {
		t.Errorf("Create after Run ended = %v, want ErrClosed", err)
	}
}

func TestMaxSessions(t *testing.T) {
	srv := serveMedia(t, media(t, mediaCopy), serverOptions{})
	m := newTestManager(t, Options{MaxSessions: 1})
	a, err := m.Create(t.Context(), Spec{ID: "a", InputURL: srv.inputURL()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(t.Context(), Spec{ID: "a", InputURL: srv.inputURL()}); !errors.Is(err, ErrExists) {
		t.Errorf("Create(same id) = %v, want ErrExists", err)
	}
	if _, err := m.Create(t.Context(), Spec{ID: "b", InputURL: srv.inputURL()}); !errors.Is(err, ErrTooManySessions) {
		t.Errorf("Create(second) = %v, want ErrTooManySessions", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := m.Create(t.Context(), Spec{ID: "b", InputURL: srv.inputURL()})
	if err != nil {
		t.Fatalf("Create after Close = %v", err)
	}
	if got, err := m.Get("b"); err != nil || got != b {
		t.Errorf("Get(b) = %v, %v", got, err)
	}
}

// TestCopyTakesNoSlot: a run that copies the video takes no transcode slot, so
// copy sessions beside a transcode that holds the only one play at once.
func TestCopyTakesNoSlot(t *testing.T) {
	m := newTestManager(t, Options{MaxTranscodes: 1})
	runningSession(t, m, stalledServerOf(t, mediaTranscode), "transcode")
	for _, task := range []string{"copy 1", "copy 2"} {
		s, err := m.Create(t.Context(), Spec{TaskID: task, InputURL: serveMedia(t, media(t, mediaCopy), serverOptions{}).inputURL()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), eventWait) // a hang guard
		_, err = s.Segment(ctx, segmentName(0))
		cancel()
		if err != nil {
			t.Fatalf("%s: Segment beside a transcode holding the only slot = %v", task, err)
		}
	}
}

func TestMaxTranscodes(t *testing.T) {
	srv := stalledServerOf(t, mediaTranscode)
	m := newTestManager(t, Options{MaxTranscodes: 1})
	a := runningSession(t, m, srv, "a")

	b, err := m.Create(t.Context(), Spec{TaskID: "b", InputURL: srv.inputURL()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	if _, err := b.Segment(ctx, segmentName(0)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Segment with every slot busy = %v, want deadline exceeded", err)
	}
	if n := m.running.Load(); n != 1 {
		t.Errorf("%d ffmpeg running, want 1", n)
	}
	m.CloseTask("a")
	if _, err := m.Get(a.ID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after CloseTask = %v", err)
	}
	if _, err := b.Segment(t.Context(), segmentName(0)); err != nil {
		t.Fatalf("Segment after slot freed = %v", err)
	}
	if p := m.peak.Load(); p > 1 {
		t.Errorf("peak %d ffmpeg at once, want <= 1", p)
	}
}

// A paused ffmpeg (ahead of its player) gives its slot to another session.
func TestPausedProducerIsPreempted(t *testing.T) {
	// The input arrives at about one segment per second, like a torrent: unthrottled, an
	// ffmpeg can write every segment before a busy machine lets the session see the fourth
	// and pause it, and then there is no paused ffmpeg to preempt. Transcoded: only a run
	// that re-encodes takes a slot.
	path := media(t, mediaTranscode)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := serveMedia(t, path, serverOptions{bytesPerSec: max(fi.Size()/6, 1)})
	m := newTestManager(t, Options{MaxTranscodes: 1, SegmentSeconds: 2})
	m.readaheadSec = 1 // pause 3 segments ahead
	a, err := m.Create(t.Context(), Spec{InputURL: srv.inputURL()})
	if err != nil {
		t.Fatal(err)
	}
	pl := fetchPlaylist(t, a)
	if len(pl.segments) != 6 { // 12 s in 2 s segments
		t.Fatalf("%d segments, want 6", len(pl.segments))
	}
	if _, err := a.Segment(t.Context(), segmentName(0)); err != nil {
		t.Fatal(err)
	}
	pid := producerPID(a)
	// Paused three segments ahead of the player; on a loaded machine one more may get
	// through before the stop lands. The deadline is a hang guard (see waitFor).
	waitFor(t, "ffmpeg to pause", 60*time.Second, func() bool {
		st, err := procStat(pid)
		n := a.Info().OnDisk
		return err == nil && st.state == "T" && n >= 4 && n < 6
	})

	// The player catches up: ffmpeg continues.
	p, err := a.Segment(t.Context(), segmentName(2))
	if err != nil {
		t.Fatal(err)
	}
	checkSegment(t, p, pl, 2)
	waitFor(t, "ffmpeg to finish", 60*time.Second, func() bool { return a.Info().OnDisk == 6 && producerPID(a) == 0 })

	// Pause again, then let another session take the slot.
	a2, err := m.Create(t.Context(), Spec{InputURL: srv.inputURL()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a2.Segment(t.Context(), segmentName(0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ffmpeg to pause", 60*time.Second, func() bool {
		pid := producerPID(a2)
		st, err := procStat(pid)
		return pid != 0 && err == nil && st.state == "T"
	})
	b, err := m.Create(t.Context(), Spec{InputURL: srv.inputURL()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), eventWait) // a hang guard
	defer cancel()
	if _, err := b.Segment(ctx, segmentName(0)); err != nil {
		t.Fatalf("Segment while the only slot is held by a paused ffmpeg = %v", err)
	}
	// a2's player comes back: its ffmpeg restarts where it stopped.
	p, err = a2.Segment(t.Context(), segmentName(5))
	if err != nil {
		t.Fatal(err)
	}
	checkSegment(t, p, pl, 5)

	// Close kills paused (stopped) ffmpeg too.
	var pids []int
	for _, s := range []*Session{a, a2, b} {
		if pid := producerPID(s); pid != 0 {
			pids = append(pids, pid)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoChildren(t, pids...)
}

func TestConcurrentRequestsShareOneFFmpeg(t *testing.T) {
	srv := serveMedia(t, media(t, mediaCopy), serverOptions{})
	m := newTestManager(t, Options{})
	s, err := m.Create(t.Context(), Spec{InputURL: srv.inputURL()})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	paths := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { paths[i], errs[i] = s.Segment(t.Context(), segmentName(1)) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || paths[i] != s.segPath(s.tracks[0], 1) {
			t.Errorf("request %d: %q, %v", i, paths[i], errs[i])
		}
	}
	if got := m.starts.Load(); got != 1 {
		t.Errorf("ffmpeg started %d times for %d concurrent requests, want 1", got, n)
	}
}

// TestTwoPlayersOneSession: two players at two places in one session (the
// same /watch page open twice, or one HLS URL in two players) each ask for
// their next segment. Each request that no run covers restarts the track's
// ffmpeg; before the fix each restart killed the other player's run before
// it had made a segment, and the two went on killing each other for ever
// (thousands of ffmpeg starts a minute, no segment, in a real browser). A
// run that a request waits for now makes its first segment first.
func TestTwoPlayersOneSession(t *testing.T) {
	srv := serveMedia(t, media(t, mediaCopy), serverOptions{})
	m := newTestManager(t, Options{SegmentSeconds: 2})
	s, err := m.Create(t.Context(), Spec{InputURL: srv.inputURL()})
	if err != nil {
		t.Fatal(err)
	}
	pl := fetchPlaylist(t, s)
	if len(pl.segments) < 6 {
		t.Fatalf("%d segments, want 6 or more", len(pl.segments))
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	players := [][]int{{0, 1}, {5, 4}} // 4 after 5: behind that run, so a restart too
	errs := make([]error, len(players))
	paths := make([][]string, len(players))
	var wg sync.WaitGroup
	var start sync.WaitGroup
	start.Add(len(players))
	for i, segs := range players {
		wg.Go(func() {
			start.Done()
			start.Wait()
			for _, idx := range segs {
				path, err := s.Segment(ctx, segmentName(idx))
				if err != nil {
					errs[i] = fmt.Errorf("segment %d: %w", idx, err)
					cancel() // the other player would wait for ever too
					return
				}
				paths[i] = append(paths[i], path)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("player %d: %v (after %d ffmpeg starts)", i, err, m.starts.Load())
		}
		for k, idx := range players[i] {
			checkSegment(t, paths[i][k], pl, idx)
		}
	}
	// Each request that finds no run starts one; a few more when both ask at once.
	if got := m.starts.Load(); got > 8 {
		t.Errorf("ffmpeg started %d times for 4 requests of two players, want 8 at most", got)
	}
}

// longFilm makes a 40 s MPEG-4 film (transcoded, so 40 one-second segments): room for two
// players far apart and a seek.
func longFilm(t *testing.T) string {
	t.Helper()
	needFFmpeg(t)
	film := filepath.Join(t.TempDir(), "long.mkv")
	out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25",
		"-t", "40", "-c:v", "mpeg4", "-q:v", "8", "-g", "25", film).CombinedOutput()
	if err != nil {
		t.Fatalf("make the film: %v: %s", err, out)
	}
	return film
}

// namedPlayersSession opens a session on srv whose runs pause 3 one-second segments past
// their player, and returns it with its manager and playlist.
func namedPlayersSession(t *testing.T, srv *mediaServer, maxTranscodes int) (*Manager, *Session, *mediaPlaylist) {
	t.Helper()
	m := newTestManager(t, Options{SegmentSeconds: 1, MaxTranscodes: maxTranscodes})
	m.readaheadSec = 1
	s, err := m.Create(t.Context(), Spec{InputURL: srv.inputURL()})
	if err != nil {
		t.Fatal(err)
	}
	return m, s, fetchPlaylist(t, s)
}

// segmentFor asks s for segment idx as player, and checks what comes.
func segmentFor(t *testing.T, s *Session, pl *mediaPlaylist, player string, idx int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), eventWait) // a hang guard
	defer cancel()
	path, err := s.SegmentFor(ctx, segmentName(idx), player)
	if err != nil {
		t.Fatalf("player %q, segment %d: %v", player, idx, err)
	}
	checkSegment(t, path, pl, idx)
}

// TestNamedPlayerBehindAnother: a player asking for a segment another player's run made
// and the disk cap evicted gets a run for the gap, and the other player's run goes on.
func TestNamedPlayerBehindAnother(t *testing.T) {
	m, s, pl := namedPlayersSession(t, serveMedia(t, longFilm(t), serverOptions{}), 0)
	get := func(player string, idx int) { t.Helper(); segmentFor(t, s, pl, player, idx) }
	get("a", 0)
	waitFor(t, "player a's run to make segment 2", 60*time.Second, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.tracks[0].segs[2].done
	})
	// Evicted, as the disk cap does.
	s.mu.Lock()
	tr := s.tracks[0]
	tr.segs[1] = segInfo{}
	s.mu.Unlock()
	if err := os.Remove(s.segPath(tr, 1)); err != nil {
		t.Fatal(err)
	}
	get("b", 1)
	for idx := 1; idx <= 8; idx++ {
		get("a", idx)
	}
	if got := m.starts.Load(); got != 2 {
		t.Errorf("ffmpeg started %d times, want 2: player a's run, and player b's for the gap", got)
	}
}

// TestNamedPlayersRunsOfTheirOwn: two players that name themselves, far apart in one
// session, each get an ffmpeg run: the second's request does not stop the first's run
// (which a later request of the first would have to start again), and each player's own
// seek still replaces its own run.
func TestNamedPlayersRunsOfTheirOwn(t *testing.T) {
	srv := serveMedia(t, longFilm(t), serverOptions{})
	m, s, pl := namedPlayersSession(t, srv, 0)
	if len(pl.segments) != 40 {
		t.Fatalf("%d segments, want 40", len(pl.segments))
	}
	get := func(player string, idx int) { t.Helper(); segmentFor(t, s, pl, player, idx) }
	run := func(player string) *producer {
		s.mu.Lock()
		defer s.mu.Unlock()
		if p := s.tracks[0].prods[player]; p != nil && !p.stopping {
			return p
		}
		return nil
	}
	get("a", 0)
	a := run("a")
	if a == nil {
		t.Fatal("player a has no run after its first segment")
	}
	get("b", 20)
	b := run("b")
	if got := m.restarts.Load(); got != 0 {
		t.Errorf("%d runs stopped for another player's request, want 0", got)
	}
	if run("a") != a || b == nil {
		t.Errorf("runs after player b's request: a %p (was %p), b %p; want both", run("a"), a, b)
	}
	get("a", 1)
	get("b", 21)
	get("a", 2)
	if got := m.starts.Load(); got != 2 {
		t.Errorf("ffmpeg started %d times for two players, want 2", got)
	}
	// A player's own seek replaces its own run, and only that.
	get("a", 30)
	if got := m.restarts.Load(); got != 1 {
		t.Errorf("%d runs stopped after player a's seek, want 1", got)
	}
	if p := run("a"); p == nil || p == a || p.start != 30 {
		t.Errorf("player a's run after its seek: %+v, want a new one from segment 30", p)
	}
	if run("b") != b {
		t.Error("player b's run is gone after player a's seek")
	}
	get("b", 22)

	// With one transcode slot, held by player a's run, player b's takes that run over
	// instead of waiting for the slot.
	m1, s1, pl1 := namedPlayersSession(t, srv, 1)
	segmentFor(t, s1, pl1, "a", 0)
	segmentFor(t, s1, pl1, "b", 20)
	segmentFor(t, s1, pl1, "a", 1)
	if got := m1.restarts.Load(); got != 1 {
		t.Errorf("one slot: %d runs taken over, want 1 (player b's)", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	srv := stalledServer(t)
	closed := make(chan string, 4)
	m := newTestManager(t, Options{IdleTimeout: 300 * time.Millisecond, OnClose: func(id string) { closed <- id }})
	ctx, cancel := context.WithCancel(t.Context())
	runErr := make(chan error, 1)
	go func() { runErr <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("Run() = %v", err)
		}
	}()

	s := runningSession(t, m, srv, "task")
	pid := producerPID(s)
	// A request blocked for longer than IdleTimeout keeps the session.
	rctx, rcancel := context.WithTimeout(t.Context(), time.Second)
	defer rcancel()
	if _, err := s.Segment(rctx, segmentName(2)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Segment on stalled input = %v, want deadline exceeded", err)
	}
	if _, err := m.Get(s.ID()); err != nil {
		t.Fatalf("session reaped while a request was in flight: %v", err)
	}
	waitFor(t, "idle session to close", 60*time.Second, func() bool {
		_, err := m.Get(s.ID())
		return errors.Is(err, ErrNotFound)
	})
	if id := <-closed; id != s.ID() {
		t.Errorf("OnClose(%q), want %q", id, s.ID())
	}
	waitFor(t, "session dir removal", 5*time.Second, func() bool {
		_, err := os.Stat(s.dir)
		return errors.Is(err, os.ErrNotExist)
	})
	assertNoChildren(t, pid)
}

func TestDiskCap(t *testing.T) {
	srv := serveMedia(t, media(t, mediaCopy), serverOptions{})
	const capBytes = 600 << 10 // about two and a half 2-second segments
	m := newTestManager(t, Options{SegmentSeconds: 2, MaxDiskBytes: capBytes})
	m.readaheadSec = 2
	s, err := m.Create(t.Context(), Spec{InputURL: srv.inputURL()})
	if err != nil {
		t.Fatal(err)
	}
	pl := fetchPlaylist(t, s)
	var peak int64
	for i := range pl.segments {
		p, err := s.Segment(t.Context(), segmentName(i))
		if err != nil {
			t.Fatalf("Segment(%d) = %v", i, err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("segment %d vanished before it was served: %v", i, err)
		}
		peak = max(peak, fi.Size())
		checkSegment(t, p, pl, i)
	}
	total := dirBytes(t, s.dir)
	if total > capBytes {
		entries, _ := os.ReadDir(s.dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("%d bytes on disk, cap %d (largest segment %d): %v", total, capBytes, peak, names)
	}
	if got := m.disk.Load(); got != total {
		t.Errorf("accounted %d bytes, %d on disk", got, total)
	}
	if _, err := os.Stat(s.segPath(s.tracks[0], 0)); err == nil {
		t.Error("oldest segment not evicted")
	}
	// An evicted segment is made again on request.
	p, err := s.Segment(t.Context(), segmentName(0))
	if err != nil {
		t.Fatal(err)
	}
	checkSegment(t, p, pl, 0)
}

func dirBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "seg-") {
			fi, err := e.Info()
			if err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}

func TestPrewarmStartSec(t *testing.T) {
	srv := serveMedia(t, media(t, mediaCopy), serverOptions{})
	m := newTestManager(t, Options{})
	s, err := m.Create(t.Context(), Spec{InputURL: srv.inputURL(), StartSec: 9})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitReady(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "prewarmed segment", 60*time.Second, func() bool {
		_, err := os.Stat(s.segPath(s.tracks[0], 2))
		return err == nil
	})
	if _, err := os.Stat(s.segPath(s.tracks[0], 0)); err == nil {
		t.Error("segment 0 made by a prewarm at 9 s")
	}
}

func TestBadRequests(t *testing.T) {
	srv := serveMedia(t, media(t, mediaCopy), serverOptions{})
	m := newTestManager(t, Options{})
	s, err := m.Create(t.Context(), Spec{InputURL: srv.inputURL()})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"../index.m3u8", "seg-1.ts", "seg-00003.ts", "master.m3u8", "", "seg-00000.ts/x"} {
		if _, err := s.Segment(t.Context(), name); !errors.Is(err, ErrBadResource) {
			t.Errorf("Segment(%q) = %v, want ErrBadResource", name, err)
		}
	}
	for _, name := range []string{"seg-00000.ts", "MASTER.m3u8", "index.m3u8?t=x"} {
		if _, err := s.Playlist(t.Context(), name, "t"); !errors.Is(err, ErrBadResource) {
			t.Errorf("Playlist(%q) = %v, want ErrBadResource", name, err)
		}
	}
	for _, spec := range []Spec{
		{ID: "bad id", InputURL: srv.inputURL()},
		{InputURL: "file:///etc/passwd"},
		{InputURL: "/tmp/x.mkv"},
	} {
		if _, err := m.Create(t.Context(), spec); err == nil {
			t.Errorf("Create(%+v) = nil error", spec)
		}
	}
}

func TestProbeFailure(t *testing.T) {
	srv := serveMedia(t, media(t, mediaCopy), serverOptions{})
	m := newTestManager(t, Options{})
	// Wrong token: the server answers 404, like the daemon would.
	s, err := m.Create(t.Context(), Spec{InputURL: srv.URL + "/stream?id=task&t=wrong-" + testToken})
	if err != nil {
		t.Fatal(err)
	}
	err = s.WaitReady(t.Context())
	if err == nil {
		t.Fatal("WaitReady on a 404 input = nil")
	}
	if strings.Contains(err.Error(), testToken) {
		t.Errorf("error leaks the input URL: %v", err)
	}
	if _, err := s.Segment(t.Context(), segmentName(0)); err == nil {
		t.Error("Segment on a failed session = nil error")
	}
}

func TestCopyOnly(t *testing.T) {
	tests := []struct {
		media string
		err   error
	}{
		{mediaCopy, nil},
		{mediaTranscode, ErrNeedsTranscode},
	}
	for _, tc := range tests {
		t.Run(tc.media, func(t *testing.T) {
			srv := serveMedia(t, media(t, tc.media), serverOptions{})
			m := newTestManager(t, Options{CopyOnly: true})
			s, err := m.Create(t.Context(), Spec{InputURL: srv.inputURL()})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.WaitReady(t.Context()); !errors.Is(err, tc.err) {
				t.Errorf("WaitReady() = %v, want %v", err, tc.err)
			}
		})
	}
}

func TestNoFFmpeg(t *testing.T) {
	m, err := New(Options{Dir: t.TempDir(), FFmpegPath: filepath.Join(t.TempDir(), "ffmpeg"), FFprobePath: "/nonexistent/ffprobe"})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Available()
	if !errors.Is(err, ErrNoFFmpeg) || !strings.Contains(err.Error(), "apt-get install ffmpeg") {
		t.Errorf("Available() = %v, want ErrNoFFmpeg with install hint", err)
	}
	if _, err := m.Create(t.Context(), Spec{InputURL: "http://127.0.0.1:1/x"}); !errors.Is(err, ErrNoFFmpeg) {
		t.Errorf("Create() = %v, want ErrNoFFmpeg", err)
	}
}

func TestNewCleansStaleSessionDirs(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale-session")
	keep := filepath.Join(dir, "not-ours")
	for _, d := range []string{stale, keep} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "seg-00000.ts"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(stale, markerName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale session dir survived New: %v", err)
	}
	if _, err := os.Stat(filepath.Join(keep, "seg-00000.ts")); err != nil {
		t.Errorf("unmarked dir was touched: %v", err)
	}
}

// A copy run started at a segment (a seek) lands on that segment's own
// keyframe (landTime) and makes the same video packets, with the same
// timestamps, as a run that reached the segment from the start: MP4, and
// Matroska with B-frames (whose demuxer seeks 3/23 s early).
func TestSeekRunMatchesSequentialRun(t *testing.T) {
	for _, name := range []string{mediaCopy, mediaIrregular} {
		t.Run(name, func(t *testing.T) {
			srv := serveMedia(t, media(t, name), serverOptions{})
			m := newTestManager(t, Options{SegmentSeconds: 2})
			seq, err := m.Create(t.Context(), Spec{ID: "sequential", InputURL: srv.inputURL()})
			if err != nil {
				t.Fatal(err)
			}
			fetchPlaylist(t, seq)
			target := seq.plan.n() - 2
			if target < 2 {
				t.Fatalf("%d segments, want at least 4", seq.plan.n())
			}
			seq.mu.Lock()
			exact := seq.exactSeekLocked(target)
			seq.mu.Unlock()
			if !exact {
				t.Fatalf("segment %d (at %.3f s) does not start on a keyframe far from the next", target, seq.plan.starts[target])
			}
			var want string
			for i := 0; i <= target; i++ {
				p, err := seq.Segment(t.Context(), segmentName(i))
				if err != nil {
					t.Fatalf("sequential Segment(%d) = %v", i, err)
				}
				want = segmentPackets(t, p)
			}
			if got := m.starts.Load(); got != 1 {
				t.Fatalf("the sequential session started ffmpeg %d times, want 1", got)
			}
			jump, err := m.Create(t.Context(), Spec{ID: "jump", InputURL: srv.inputURL()})
			if err != nil {
				t.Fatal(err)
			}
			fetchPlaylist(t, jump)
			p, err := jump.Segment(t.Context(), segmentName(target))
			if err != nil {
				t.Fatalf("Segment(%d) after a jump = %v", target, err)
			}
			if got := segmentPackets(t, p); got != want {
				t.Errorf("segment %d from a run started there:\n%s\nfrom a run started at 0:\n%s", target, got, want)
			}
		})
	}
}

// segmentPackets lists the video packets of a segment: timestamps, key flag
// and size, one per line.
func segmentPackets(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries",
		"packet=pts,dts,flags,size", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", filepath.Base(path), err)
	}
	return strings.TrimSpace(string(out))
}

func TestLandingTime(t *testing.T) {
	for _, tc := range []struct {
		tb   string
		step int64
	}{{"1/1000", 1000}, {"1/12800", 625}, {"1/90000", 100}, {"1/24000", 125}, {"1/48000", 125}, {"1/600", 5000}, {"", 1000}, {"2/50", 1000}, {"1/0", 1000}, {"1/x", 1000}} {
		if got := tickStepUS(tc.tb); got != tc.step {
			t.Errorf("tickStepUS(%q) = %d, want %d", tc.tb, got, tc.step)
		}
	}
	mkv := &mediaInfo{format: "matroska,webm", video: &probeStream{TimeBase: "1/1000", HasBFrames: 2}, audios: []*probeStream{{TimeBase: "1/1000"}}}
	mp4 := &mediaInfo{format: "mov,mp4,m4a,3gp,3g2,mj2", video: &probeStream{TimeBase: "1/12800", HasBFrames: 2}, audios: []*probeStream{{TimeBase: "1/48000"}}}
	for _, tc := range []struct {
		mi          *mediaInfo
		start, want float64
	}{
		// 40.021 + 3/23 s + 1 ms, up to the next millisecond.
		{mkv, 40.021, 40.153},
		// No lead in MP4; 8.001 up to a whole 2.5 ms (625 us of 1/12800, 125 of 1/48000, 100 of 90 kHz).
		{mp4, 8, 8.0025},
		{mp4, 0.96, 0.9625},
	} {
		if got := tc.mi.landing().time(tc.start); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: landing time of %v = %.6f, want %.6f", tc.mi.format, tc.start, got, tc.want)
		}
	}
}

// TestPausedInputMakesNoEmptySegment: the input answers 503 where its bytes are missing
// (the daemon's /stream for a paused task). ffmpeg then closes the segment it began with
// nothing in it; that file is not a segment (served, hls.js cannot parse it, and it would
// stay cached). Once the input answers again, the same segment is made.
func TestPausedInputMakesNoEmptySegment(t *testing.T) {
	in := newPausedInput(t, "")
	m := newTestManager(t, Options{SegmentSeconds: 2})
	s, err := m.Create(t.Context(), Spec{InputURL: in.url})
	if err != nil {
		t.Fatal(err)
	}
	pl := fetchPlaylist(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), eventWait) // a hang guard
	defer cancel()
	if p, err := s.Segment(ctx, segmentName(4)); err == nil {
		fi, _ := os.Stat(p)
		t.Fatalf("Segment(4) with its bytes unavailable = %s (%d bytes), want an error", p, fi.Size())
	}
	s.mu.Lock()
	for i, seg := range s.tracks[0].segs {
		if seg.done && seg.size < minSegmentBytes {
			t.Errorf("segment %d is done with %d bytes", i, seg.size)
		}
	}
	s.mu.Unlock()
	in.paused.Store(false)
	p, err := s.Segment(ctx, segmentName(4))
	if err != nil {
		t.Fatalf("Segment(4) once the input answers = %v", err)
	}
	checkSegment(t, p, pl, 4)
}

// TestHeldInputIsWaitedFor: the input answers 503 with Retry-After where its bytes are
// missing (the daemon's /stream while a task is paused or its disk is full). The proxy
// holds ffmpeg's request and asks again, so the run waits instead of failing; once the
// input answers, the same run makes the segment, and nothing else was started.
func TestHeldInputIsWaitedFor(t *testing.T) {
	in := newPausedInput(t, "10")
	m := newTestManager(t, Options{SegmentSeconds: 2})
	m.inputRetry = 20 * time.Millisecond
	s, err := m.Create(t.Context(), Spec{InputURL: in.url})
	if err != nil {
		t.Fatal(err)
	}
	pl := fetchPlaylist(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), eventWait) // a hang guard
	defer cancel()
	type result struct {
		path string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		p, err := s.Segment(ctx, segmentName(4))
		got <- result{p, err}
	}()
	// The input refused ffmpeg's read three times, and the segment is still awaited.
	for range 3 {
		select {
		case <-in.refused:
		case r := <-got:
			t.Fatalf("Segment(4) with its bytes held back = %q, %v; want it to wait", r.path, r.err)
		case <-ctx.Done():
			t.Fatal("ffmpeg never asked for the held bytes")
		}
	}
	starts := m.starts.Load()
	in.paused.Store(false)
	var r result
	select {
	case r = <-got:
	case <-ctx.Done():
		t.Fatal("Segment(4) did not come once the input answered")
	}
	if r.err != nil {
		t.Fatalf("Segment(4) once the input answers = %v", r.err)
	}
	checkSegment(t, r.path, pl, 4)
	if n := m.starts.Load(); n != starts || n != 1 {
		t.Errorf("video ffmpeg started %d times (%d before the input answered), want once", n, starts)
	}
}

// pausedInput serves mediaFaststart as the daemon's /stream serves a paused task: while
// paused is set, a range from the second half on (bytes the task lacks) gets 503, with
// Retry-After when retryAfter is not empty. Every such answer is signalled on refused
// (when there is room).
type pausedInput struct {
	url     string
	paused  atomic.Bool
	refused chan struct{}
}

func newPausedInput(t *testing.T, retryAfter string) *pausedInput {
	t.Helper()
	path := media(t, mediaFaststart)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	half := fi.Size() / 2
	inner := serveMedia(t, path, serverOptions{})
	in := &pausedInput{refused: make(chan struct{}, 64)}
	in.paused.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from, _, _ := strings.Cut(strings.TrimPrefix(r.Header.Get("Range"), "bytes="), "-")
		if off, err := strconv.ParseInt(from, 10, 64); err == nil && off >= half && in.paused.Load() {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			http.Error(w, "task paused", http.StatusServiceUnavailable)
			select {
			case in.refused <- struct{}{}:
			default:
			}
			return
		}
		inner.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	in.url = srv.URL + "/stream?id=task&t=" + testToken
	return in
}
