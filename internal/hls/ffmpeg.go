package hls

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// cutEpsilon moves every cut time and copy-mode seek point slightly before
// the keyframe it aims at. ffmpeg cuts at the first keyframe whose pts is
// >= the cut time, and rounding between time bases could otherwise put a
// keyframe a tick before its own cut time and the cut one GOP later. 1 ms
// is far below any frame interval.
const cutEpsilon = 0.001

// windowSegments bounds the cut list of one ffmpeg run (a single argv
// string is limited to 128 KiB on Linux). A run stops at the end of its
// window; a later request starts the next run there.
const windowSegments = 1000

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 6, 64) }

// inputOptions are ffmpeg/ffprobe input options for input: reconnect on a
// dropped HTTP connection (a paused ffmpeg may be cut off by the server's
// write deadline) from the byte offset it had reached.
func inputOptions(input string) []string {
	if !strings.HasPrefix(input, "http://") && !strings.HasPrefix(input, "https://") {
		return nil
	}
	return []string{"-reconnect", "1", "-reconnect_on_network_error", "1", "-reconnect_delay_max", "10"}
}

// runSpec is one ffmpeg run: segments [start, end) of the plan.
type runSpec struct {
	input      string
	plan       *plan
	variant    variant
	videoIndex int
	audioIndex int  // audio runs: the audio stream; -1 in video runs
	audioCopy  bool // audio runs: pass the audio through
	burnIndex  int  // video runs: image subtitle stream to burn in, -1 none
	segSec     float64
	start, end int
	pattern    string // output file pattern with one %05d
	// exactSeek: the run's first segment starts on a keyframe that is
	// more than lead (+ cutEpsilon) before the next one, so the run can
	// make the demuxer land on it (see landing).
	exactSeek bool
	land      landing
}

// landing is how a run makes ffmpeg's demuxer land on the keyframe its
// first segment starts on (exactSeek).
//
// ffmpeg seeks its demuxer back to the last keyframe at or before -ss minus
// lead, so a -ss just past the keyframe plus the lead lands on the keyframe
// itself, not the one before it: a run reads from its own segment's first
// byte, not a whole GOP earlier (with a 10 s GOP at 4 Mbit/s, 5 MB a seek
// would otherwise wait for). Since -ss then lies past the keyframe, the
// packets between the two must not be dropped: the caller copies them
// (-copypriorss 1) or, when audio is decoded, keeps what the decoder returns
// (-noaccurate_seek). Matroska starts every track at the keyframe's time
// after such a seek; MP4 seeks each track to its own sample at -ss (its lead
// is 0).
type landing struct {
	lead float64 // mediaInfo.seekLead
	// stepUS: -ss is a whole number of these microseconds. ffmpeg shifts
	// packet timestamps by -ss in each stream's own time base and back by
	// -output_ts_offset in MPEG-TS's 90 kHz; a -ss that is not a whole
	// number of ticks of both is rounded differently on the way in and out,
	// leaving the run's timestamps a tick off every other run's.
	stepUS int64
}

// time returns the -ss of a run whose first segment starts on the keyframe
// at start.
func (l landing) time(start float64) float64 {
	step := max(l.stepUS, 1)
	us := int64(math.Ceil((start+l.lead+cutEpsilon)*1e6-1e-3)) + step - 1
	return float64(us/step*step) / 1e6
}

// ffmpegArgs builds the command line of a video run. Video segments carry
// no audio: every audio track is its own rendition (audioArgs).
//
// Timestamps: every run writes segments whose timestamps are the source's
// (relative to its start time) plus the MPEG-TS muxer's fixed 1.4 s offset,
// whatever segment it starts at: -ss S shifts the input to 0, and
// -output_ts_offset S shifts it back. avoid_negative_ts is disabled on both
// the segment muxer and the inner MPEG-TS muxer, because its automatic
// shift (applied only when a run starts at the very beginning of a file
// with B-frames) would make the first run's timestamps disagree with every
// other run's.
func ffmpegArgs(r runSpec) []string {
	v := r.variant
	args := []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"}
	args = append(args, inputOptions(r.input)...)
	seek := 0.0
	exact := r.start > 0 && v.copyVideo && r.exactSeek
	if r.start > 0 {
		seek = r.plan.starts[r.start]
		switch {
		case exact:
			seek = r.land.time(seek)
		case v.copyVideo:
			// Land just before the keyframe; -copypriorss 0 drops the
			// packets before the seek point, so output starts on it.
			// The demuxer then reads from the keyframe before.
			seek -= cutEpsilon
		}
		args = append(args, "-ss", ftoa(seek))
	}
	args = append(args, "-i", r.input)
	scale := fmt.Sprintf("scale=%d:%d", v.width, v.height)
	if r.burnIndex >= 0 && !v.copyVideo {
		// Bitmap subtitles are drawn at the source's size, then the
		// picture is scaled; eof_action=pass keeps the video going
		// after the last subtitle.
		args = append(args, "-filter_complex",
			fmt.Sprintf("[0:%d][0:%d]overlay=eof_action=pass,%s[v]", r.videoIndex, r.burnIndex, scale), "-map", "[v]")
	} else {
		args = append(args, "-map", fmt.Sprintf("0:%d", r.videoIndex))
	}
	args = append(args, "-an", "-sn", "-dn")
	if v.copyVideo {
		prior := "0"
		if exact {
			prior = "1" // from the keyframe the demuxer landed on
		}
		args = append(args, "-c:v", "copy", "-copypriorss", prior)
	} else {
		seg := ftoa(r.segSec)
		// -tune zerolatency: no lookahead, no B-frames, sliced threads.
		// A segment is complete only when the encoder has emitted the
		// next segment's first frame, so the lookahead and frame-thread
		// delay (about 16 frames at veryfast) held every segment back,
		// most visibly the first one after a seek; it also costs less CPU
		// per segment. The price is bits: about 40-55 % more at the same
		// CRF and SSIM (docs/benchmarks.md), still capped by -maxrate.
		// -preset superfast: a seek waits for one whole segment's
		// encoding, which at 720p is most of it; superfast made the
		// first segment after a restart a third sooner than veryfast
		// (median 0.94 s against 1.40 s in the /watch benchmark at
		// 1280x720) for an SSIM 0.001 lower at the same bytes.
		args = append(args, "-c:v", "libx264", "-preset", "superfast", "-tune", "zerolatency",
			"-profile:v", "high", "-level:v", v.x264Level, "-pix_fmt", "yuv420p",
			"-crf", "21", "-maxrate", strconv.FormatInt(v.maxrate, 10), "-bufsize", strconv.FormatInt(v.maxrate*2, 10),
			// Keyframes on the segment grid, counted from this run's
			// start (which is itself on the grid).
			"-force_key_frames", "expr:gte(t,n_forced*"+seg+")")
		if r.burnIndex < 0 {
			args = append(args, "-vf", scale)
		}
	}
	args = append(args, "-avoid_negative_ts", "disabled")
	if r.start > 0 {
		args = append(args, "-output_ts_offset", ftoa(seek))
	}
	args = append(args, "-max_muxing_queue_size", "4096",
		"-f", "segment", "-segment_format", "mpegts",
		"-segment_format_options", "avoid_negative_ts=disabled")
	return append(args, segmentArgs(r)...)
}

// audioArgs builds the command line of an audio rendition's run: the same
// segment boundaries and the same timestamps (the source's plus MPEG-TS's
// offset) as the video's, so a player can switch to it at any segment.
// Audio packets are all keyframes: the cuts land within one audio frame
// (about 21 ms) of the video's.
func audioArgs(r runSpec) []string {
	args := []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"}
	args = append(args, inputOptions(r.input)...)
	seek := 0.0
	// Only with a lead does an audio run's seek land a keyframe early.
	exact := r.start > 0 && r.exactSeek && r.land.lead > 0
	if r.start > 0 {
		seek = r.plan.starts[r.start]
		if exact {
			seek = r.land.time(seek)
			args = append(args, "-noaccurate_seek")
		}
		args = append(args, "-ss", ftoa(seek))
	}
	args = append(args, "-i", r.input, "-map", fmt.Sprintf("0:%d", r.audioIndex), "-vn", "-sn", "-dn")
	if r.audioCopy {
		prior := "0"
		if exact {
			prior = "1"
		}
		args = append(args, "-c:a", "copy", "-copypriorss", prior)
	} else {
		args = append(args, "-c:a", "aac", "-ac", "2", "-b:a", audioBitrateK)
	}
	args = append(args, "-avoid_negative_ts", "disabled")
	if r.start > 0 {
		args = append(args, "-output_ts_offset", ftoa(seek))
	}
	args = append(args, "-max_muxing_queue_size", "4096",
		"-f", "segment", "-segment_format", "mpegts",
		"-segment_format_options", "avoid_negative_ts=disabled")
	return append(args, segmentArgs(r)...)
}

// segmentArgs are the segment muxer's cut list, numbering and output.
func segmentArgs(r runSpec) []string {
	var args []string
	// Cut times are absolute (the run's timestamps are the source's). The
	// list includes the boundary at the window's end, so the last segment
	// of the window is finished and reported before the run is stopped.
	var times []string
	for j := r.start + 1; j <= r.end && j < r.plan.n(); j++ {
		times = append(times, ftoa(r.plan.starts[j]-cutEpsilon))
	}
	if len(times) == 0 {
		// Only the last segment is left; without a cut list the muxer
		// would cut every 2 s.
		times = append(times, ftoa(r.plan.duration+86400))
	}
	args = append(args, "-segment_times", strings.Join(times, ","))
	// The segment list goes to stdout (csv: name,start,end), one line per
	// segment once its file is complete; that line is the signal to
	// rename the file into place.
	args = append(args, "-segment_start_number", strconv.Itoa(r.start),
		"-segment_list", "pipe:1", "-segment_list_type", "csv", r.pattern)
	return args
}

// escapePattern escapes % in a path used as a segment-muxer file pattern.
func escapePattern(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// parseListLine parses one line of the segment muxer's csv list:
// "<name>,<start>,<end>".
func parseListLine(line string) (name string, start, end float64, ok bool) {
	parts := strings.Split(strings.TrimSpace(line), ",")
	if len(parts) != 3 {
		return "", 0, 0, false
	}
	var err1, err2 error
	start, err1 = strconv.ParseFloat(parts[1], 64)
	end, err2 = strconv.ParseFloat(parts[2], 64)
	return parts[0], start, end, err1 == nil && err2 == nil && parts[0] != ""
}

// partIndex extracts the segment number from a part file name
// "part-<run>-<n>.ts".
func partIndex(name string, run int) (int, bool) {
	rest, ok := strings.CutPrefix(name, "part-"+strconv.Itoa(run)+"-")
	if !ok {
		return 0, false
	}
	rest, ok = strings.CutSuffix(rest, ".ts")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0
}

// redact removes the input URL (which carries a token) from ffmpeg output.
func redact(s, input string) string {
	if input == "" {
		return s
	}
	s = strings.ReplaceAll(s, input, "<input>")
	if u, err := url.Parse(input); err == nil && u.RawQuery != "" {
		s = strings.ReplaceAll(s, u.RawQuery, "<redacted>")
		for _, vs := range u.Query() {
			for _, v := range vs {
				if len(v) >= 8 {
					s = strings.ReplaceAll(s, v, "<redacted>")
				}
			}
		}
	}
	return strings.TrimSpace(s)
}

// tail keeps the last max bytes written to it (ffmpeg's stderr).
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
