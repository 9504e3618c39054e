package hls

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Probe limits: ffprobe reads at most this much of the input to identify
// the streams. The input may be a torrent that is still downloading, so
// reading far into it would wait for pieces nobody needs yet.
const (
	probeSizeBytes   = 5_000_000
	probeDurationUS  = 5_000_000
	probeOutputBytes = 4 << 20
)

// probeResult is the part of ffprobe's JSON the package uses.
type probeResult struct {
	Streams []probeStream `json:"streams"`
	Format  probeFormat   `json:"format"`
}

type probeStream struct {
	Index        int               `json:"index"`
	ID           string            `json:"id"`
	CodecName    string            `json:"codec_name"`
	CodecType    string            `json:"codec_type"`
	Profile      string            `json:"profile"`
	Level        int               `json:"level"`
	Width        int               `json:"width"`
	Height       int               `json:"height"`
	PixFmt       string            `json:"pix_fmt"`
	AvgFrameRate string            `json:"avg_frame_rate"`
	RFrameRate   string            `json:"r_frame_rate"`
	Channels     int               `json:"channels"`
	HasBFrames   int               `json:"has_b_frames"` // frames of decoding delay (ffmpeg's video_delay)
	TimeBase     string            `json:"time_base"`    // "1/1000"
	BitRate      string            `json:"bit_rate"`
	Disposition  map[string]int    `json:"disposition"`
	Tags         map[string]string `json:"tags"`
}

type probeFormat struct {
	FormatName string `json:"format_name"`
	Duration   string `json:"duration"`
	StartTime  string `json:"start_time"`
	BitRate    string `json:"bit_rate"`
	Size       string `json:"size"`
}

// mediaInfo is what a session needs to know about its input.
type mediaInfo struct {
	format    string  // ffprobe format_name, e.g. "matroska,webm"
	duration  float64 // seconds
	startTime float64 // container start time, seconds
	bitRate   int64   // whole file, bits/s; 0 unknown
	video     *probeStream
	videoNth  int            // the video stream is the videoNth video stream (0-based)
	audio     *probeStream   // the default audio track (nil without audio)
	audios    []*probeStream // every audio track, in file order
	subs      []*probeStream // every subtitle track, in file order
}

// runProbe runs ffprobe on input and returns its JSON. The input URL is
// never part of the returned error.
func runProbe(ctx context.Context, ffprobe, input string, env []string) (*probeResult, error) {
	args := []string{"-hide_banner", "-v", "error",
		"-probesize", strconv.Itoa(probeSizeBytes), "-analyzeduration", strconv.Itoa(probeDurationUS)}
	args = append(args, inputOptions(input)...)
	args = append(args, "-print_format", "json", "-show_format", "-show_streams", "-i", input)

	// Pdeathsig is tied to the thread that forks the child: keep this
	// goroutine on its thread until the child is reaped.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	cmd := exec.CommandContext(ctx, ffprobe, args...)
	cmd.Env = env
	setProcAttrs(cmd)
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	cmd.WaitDelay = 2 * time.Second
	var stdout limitedBuffer
	stdout.max = probeOutputBytes
	stderr := newTail(2048)
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ffprobe: %w", ctx.Err())
		}
		return nil, fmt.Errorf("ffprobe: %w: %s", err, redact(stderr.String(), input))
	}
	if stdout.overflow {
		return nil, errors.New("ffprobe: output too large")
	}
	var res probeResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("ffprobe: decode output: %w", err)
	}
	return &res, nil
}

var (
	errNoVideo    = errors.New("input has no video stream")
	errNoDuration = errors.New("input duration unknown")
)

// mediaInfoFrom picks the streams a session uses: the first video stream
// that is not cover art, and the default audio stream (else the first).
func mediaInfoFrom(res *probeResult) (*mediaInfo, error) {
	mi := &mediaInfo{format: res.Format.FormatName}
	mi.duration, _ = strconv.ParseFloat(res.Format.Duration, 64)
	if !(mi.duration > 0) || math.IsInf(mi.duration, 0) {
		return nil, errNoDuration
	}
	mi.startTime, _ = strconv.ParseFloat(res.Format.StartTime, 64)
	if math.IsNaN(mi.startTime) || math.IsInf(mi.startTime, 0) {
		mi.startTime = 0
	}
	mi.bitRate, _ = strconv.ParseInt(res.Format.BitRate, 10, 64)
	if mi.bitRate <= 0 {
		if size, err := strconv.ParseInt(res.Format.Size, 10, 64); err == nil && size > 0 {
			mi.bitRate = int64(float64(size) * 8 / mi.duration)
		}
	}
	nth := 0
	for i := range res.Streams {
		st := &res.Streams[i]
		switch st.CodecType {
		case "video":
			// Cover art is not a track (matroska keeps it as an
			// attachment), so it does not count towards videoNth.
			if st.Disposition["attached_pic"] != 0 {
				continue
			}
			if mi.video == nil {
				mi.video, mi.videoNth = st, nth
			}
			nth++
		case "subtitle":
			mi.subs = append(mi.subs, st)
		case "audio":
			mi.audios = append(mi.audios, st)
			if mi.audio == nil || (st.Disposition["default"] == 1 && mi.audio.Disposition["default"] != 1) {
				mi.audio = st
			}
		}
	}
	if mi.video == nil {
		return nil, errNoVideo
	}
	return mi, nil
}

// ffmpegSeekLead is how far before an input -ss time ffmpeg (5.x to 7.x) asks the demuxer to
// seek when the container does not seek by presentation time (Matroska, WebM, MPEG-TS, AVI;
// MP4 does) and a stream has decoding delay (B-frames): 3/23 s, to land before the frames
// whose decode time precedes their presentation time. With backward seeking to a keyframe,
// a cut on a keyframe then makes the demuxer start at the keyframe before.
const ffmpegSeekLead = 3.0 / 23

// seekLead returns how far before a run's start time ffmpeg's demuxer seek lands for this
// input: ffmpegSeekLead when the rule above applies, else 0.
func (mi *mediaInfo) seekLead() float64 {
	formats := strings.Split(mi.format, ",")
	if slices.Contains(formats, "mp4") || slices.Contains(formats, "mov") {
		return 0
	}
	if mi.video.HasBFrames > 0 {
		return ffmpegSeekLead
	}
	for _, st := range append(mi.audios, mi.subs...) {
		if st.HasBFrames > 0 {
			return ffmpegSeekLead
		}
	}
	return 0
}

// landing returns how runs land on a keyframe in this input (see landing):
// the lead, and a step that is a whole number of ticks of every audio and
// video stream's time base and of MPEG-TS's 90 kHz.
func (mi *mediaInfo) landing() landing {
	step := int64(100) // 90 kHz: 9 ticks per 100 us
	for _, st := range append([]*probeStream{mi.video}, mi.audios...) {
		step = lcm(step, tickStepUS(st.TimeBase))
	}
	return landing{lead: mi.seekLead(), stepUS: step}
}

// tickStepUS returns the least number of microseconds that is a whole
// number of ticks of time base tb ("1/12800": 625); 1000 (Matroska's
// default) when tb is not "1/n".
func tickStepUS(tb string) int64 {
	num, den, ok := strings.Cut(tb, "/")
	d, err := strconv.ParseInt(den, 10, 64)
	if !ok || num != "1" || err != nil || d <= 0 || d > 1e9 {
		return 1000
	}
	return 1e6 / gcd(1e6, d)
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// lcm is the least common multiple, at most 1 s (a step beyond that would
// move -ss past the next keyframe anyway; exactAt then says no).
func lcm(a, b int64) int64 { return min(a/gcd(a, b)*b, 1e6) }

// frameRate returns the video frame rate, 0 when unknown.
func (mi *mediaInfo) frameRate() float64 {
	for _, s := range []string{mi.video.AvgFrameRate, mi.video.RFrameRate} {
		num, den, ok := strings.Cut(s, "/")
		if !ok {
			continue
		}
		n, err1 := strconv.ParseFloat(num, 64)
		d, err2 := strconv.ParseFloat(den, 64)
		if err1 == nil && err2 == nil && n > 0 && d > 0 && n/d < 1000 {
			return n / d
		}
	}
	return 0
}

// canCopyVideo: browsers' MSE and Safari decode 8-bit 4:2:0 H.264 in the
// usual profiles; anything else (HEVC, 10-bit, 4:4:4, MPEG-4 Part 2) is
// transcoded.
func (mi *mediaInfo) canCopyVideo() bool {
	v := mi.video
	if v.CodecName != "h264" {
		return false
	}
	switch v.PixFmt {
	case "yuv420p", "yuvj420p":
	default:
		return false
	}
	switch v.Profile {
	case "Baseline", "Constrained Baseline", "Main", "High":
	default:
		return false
	}
	return v.Width > 0 && v.Height > 0
}

// canCopyAudio: only AAC-LC mono or stereo is passed through, so the
// playlist can promise mp4a.40.2 and every browser can play it.
func (mi *mediaInfo) canCopyAudio() bool { return canCopyAudio(mi.audio) }

func canCopyAudio(a *probeStream) bool {
	return a != nil && a.CodecName == "aac" && a.Profile == "LC" && a.Channels >= 1 && a.Channels <= 2
}

// avc1Codec returns the RFC 6381 codec string from ffprobe's profile and
// level, used when the container's avcC record is not at hand.
func avc1Codec(profile string, level int) string {
	var p, c byte
	switch profile {
	case "Constrained Baseline":
		p, c = 0x42, 0xE0
	case "Baseline":
		p, c = 0x42, 0x00
	case "Main":
		p, c = 0x4D, 0x40
	default:
		p, c = 0x64, 0x00
	}
	if level <= 0 || level > 255 {
		level = 0x28
	}
	return fmt.Sprintf("avc1.%02X%02X%02X", p, c, byte(level))
}

// avc1FromRecord returns the codec string from an AVCDecoderConfigurationRecord.
func avc1FromRecord(avcC []byte) (string, bool) {
	if len(avcC) < 4 || avcC[0] != 1 {
		return "", false
	}
	return fmt.Sprintf("avc1.%02X%02X%02X", avcC[1], avcC[2], avcC[3]), true
}

// Transcode output limits.
const (
	maxOutWidth   = 1920
	maxOutHeight  = 1080
	audioBitrate  = 160_000
	audioBitrateK = "160k"
)

// fitSize scales w x h down to fit maxOutWidth x maxOutHeight, keeping the
// aspect ratio, with even dimensions (4:2:0 needs them).
func fitSize(w, h int) (int, int) {
	if w <= 0 || h <= 0 {
		return 1280, 720
	}
	f := math.Min(1, math.Min(float64(maxOutWidth)/float64(w), float64(maxOutHeight)/float64(h)))
	even := func(x float64) int { return max(2, int(math.Round(x/2))*2) }
	return even(float64(w) * f), even(float64(h) * f)
}

// chooseVariant decides copy or transcode from the probe alone; the caller
// falls back to transcoding video when the keyframe index is unavailable.
func chooseVariant(mi *mediaInfo, copyVideo bool) variant {
	v := variant{
		copyVideo: copyVideo,
		hasAudio:  mi.audio != nil,
		copyAudio: mi.canCopyAudio(),
		fps:       mi.frameRate(),
	}
	audioOut := int64(0)
	if v.hasAudio {
		audioOut = audioBitrate
		if v.copyAudio {
			if br, err := strconv.ParseInt(mi.audio.BitRate, 10, 64); err == nil && br > 0 {
				audioOut = br
			}
		}
	}
	if copyVideo {
		v.width, v.height = mi.video.Width, mi.video.Height
		v.videoCodec = avc1Codec(mi.video.Profile, mi.video.Level)
		video, _ := strconv.ParseInt(mi.video.BitRate, 10, 64)
		if video <= 0 && mi.bitRate > 0 {
			video = mi.bitRate
			if v.hasAudio {
				if br, err := strconv.ParseInt(mi.audio.BitRate, 10, 64); err == nil && br < video {
					video -= br
				}
			}
		}
		if video <= 0 {
			video = 8_000_000
		}
		v.avgBandwidth = video + audioOut
		// Segment bitrates vary around the mean; 1.5x is a conventional
		// peak estimate for constrained-VBR sources.
		v.bandwidth = video*3/2 + audioOut
		return v
	}
	v.width, v.height = fitSize(mi.video.Width, mi.video.Height)
	switch {
	case v.height <= 480:
		v.maxrate = 2_500_000
	case v.height <= 720:
		v.maxrate = 5_000_000
	default:
		v.maxrate = 8_000_000
	}
	v.x264Level, v.videoCodec = "4.1", "avc1.640029"
	if v.fps > 30.5 {
		v.x264Level, v.videoCodec = "4.2", "avc1.64002A"
	}
	v.bandwidth = v.maxrate + audioOut
	return v
}

// limitedBuffer is a bytes.Buffer that stops growing at max bytes.
type limitedBuffer struct {
	bytes.Buffer
	max      int
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); len(p) > room {
		b.overflow = true
		b.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
