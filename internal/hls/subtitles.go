package hls

// Subtitle renditions: each text subtitle track becomes one WebVTT file
// covering the whole title (a valid single-segment VOD playlist), made by
// ffmpeg on the first request and kept in the session dir. An embedded
// track is read from the whole input (subtitles are interleaved with the
// media), a sidecar from its own small file.
//
// Timing: cue times are seconds from the container start, like the video
// segments' timestamps before MPEG-TS's fixed 1.4 s offset. The
// X-TIMESTAMP-MAP header says so (MPEGTS 126000 = 1.4 s at 90 kHz is cue
// time 0), so HLS players place the cues on the video's timeline.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/torrentclaw/cli/internal/atomicfile"
)

// timestampMap is the X-TIMESTAMP-MAP header of every WebVTT file.
var timestampMap = "X-TIMESTAMP-MAP=MPEGTS:" + strconv.Itoa(int(tsOffsetSeconds*90000)) + ",LOCAL:00:00:00.000"

// tsOffsetSeconds is the offset ffmpeg's MPEG-TS muxer adds to every
// timestamp (-muxdelay 0.7 s, applied twice).
const tsOffsetSeconds = 1.4

// subtitleTimeout bounds one conversion (the embedded case reads the
// whole input, which may still be downloading).
const subtitleTimeout = 30 * time.Minute

// sidecarFormats maps a sidecar's format to ffmpeg's demuxer.
var sidecarFormats = map[string]string{"srt": "srt", "ass": "ass", "ssa": "ass", "vtt": "webvtt"}

// Subtitle returns the path of a WebVTT file of a text subtitle
// rendition, making it on first use: "subs-<k>.vtt", the whole track, or
// "subs-<k>-<w>.vtt", window w of an embedded track (subWindowed).
// Concurrent requests share one conversion, and a failed one is retried by
// the next request. Content type: text/vtt.
func (s *Session) Subtitle(ctx context.Context, name string) (string, error) {
	r, err := parseResource(name)
	if err != nil || (r.kind != kindSubtitle && r.kind != kindSubWindow) {
		return "", fmt.Errorf("subtitle %q: %w", name, ErrBadResource)
	}
	if !s.begin() {
		return "", ErrNotFound
	}
	defer s.end()
	if err := s.waitReady(ctx); err != nil {
		return "", err
	}
	k := r.track
	if k >= len(s.textSubs) || (r.kind == kindSubWindow &&
		(!s.subWindowed(k) || r.index >= windowCount(s.plan.duration, subWindowSeconds))) {
		return "", fmt.Errorf("subtitle %q: %w", name, ErrBadResource)
	}
	path := filepath.Join(s.dir, name) // parseResource accepts canonical names only
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", ErrNotFound
	}
	st := s.subtitleStateLocked(r)
	if st.ready {
		s.mu.Unlock()
		return path, nil
	}
	if !st.running {
		st.running, st.err, st.done = true, nil, make(chan struct{})
		jobCtx := s.ctx
		if r.kind == kindSubWindow {
			// A window nobody waits for any more (the player seeked
			// away) stops reading: its bytes would compete with the
			// ones the player waits for.
			jobCtx, st.cancel = context.WithCancel(s.ctx)
		}
		s.wg.Add(1)
		go s.convertSubtitle(jobCtx, r, st)
	}
	st.waiters++
	done := st.done
	s.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.ctx.Done():
		err = ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.waiters--
	if err != nil {
		if st.waiters == 0 && st.running && st.cancel != nil {
			time.AfterFunc(subWindowGrace, func() { s.abandonWindow(r, st) })
		}
		return "", err
	}
	if s.closed {
		return "", ErrNotFound
	}
	if st.err != nil {
		return "", st.err
	}
	return path, nil
}

// abandonWindow stops a window's conversion that nobody waits for.
func (s *Session) abandonWindow(r resource, st *subtitleState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st.waiters > 0 || !st.running {
		return
	}
	st.cancel()
	if s.winState[r] == st {
		delete(s.winState, r) // the next request starts afresh
	}
}

// subtitleResourceName names a whole track or a window.
func subtitleResourceName(r resource) string {
	if r.kind == kindSubtitle {
		return subtitleFileName(r.track)
	}
	return subtitleWindowName(r.track, r.index)
}

// subtitleStateLocked returns the state of a whole track or a window.
// s.mu must be held.
func (s *Session) subtitleStateLocked(r resource) *subtitleState {
	if r.kind == kindSubtitle {
		return &s.subState[r.track]
	}
	if s.winState == nil {
		s.winState = make(map[resource]*subtitleState)
	}
	st := s.winState[r]
	if st == nil {
		st = &subtitleState{}
		s.winState[r] = st
	}
	return st
}

// convertSubtitle makes one WebVTT file and records the outcome in st.
func (s *Session) convertSubtitle(ctx context.Context, r resource, st *subtitleState) {
	defer s.wg.Done()
	began := time.Now()
	var err error
	if r.kind == kindSubtitle {
		err = s.makeSubtitle(r.track)
	} else {
		err = s.makeWindow(ctx, r.track, r.index)
	}
	s.mu.Lock()
	st.running, st.err, st.ready = false, err, err == nil
	if st.cancel != nil {
		st.cancel()
	}
	close(st.done)
	s.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		s.log.Warn("hls subtitle conversion failed", "resource", subtitleResourceName(r), "err", err)
	} else if err == nil {
		s.log.Debug("hls subtitle made", "resource", subtitleResourceName(r), "ms", time.Since(began).Milliseconds())
	}
}

func (s *Session) makeSubtitle(k int) error {
	r := s.textSubs[k]
	ffmpeg, _, err := s.m.binaries()
	if err != nil {
		return err
	}
	env, err := s.procEnv()
	if err != nil {
		return err
	}
	part := filepath.Join(s.dir, "part-"+subtitleFileName(k))
	args := func(charenc string) []string {
		a := []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"}
		in := s.ffInput(0)
		if r.input > 0 {
			in = s.ffInput(r.input)
			if f := sidecarFormats[r.format]; f != "" {
				a = append(a, "-f", f)
			}
			if charenc != "" {
				a = append(a, "-sub_charenc", charenc)
			}
		}
		a = append(a, inputOptions(in)...)
		a = append(a, "-i", in, "-map")
		if r.input > 0 {
			a = append(a, "0:s:0")
		} else {
			a = append(a, fmt.Sprintf("0:%d", r.streamIndex))
		}
		return append(a, "-c:s", "webvtt", "-f", "webvtt", part)
	}
	err = s.runFFmpeg(s.ctx, ffmpeg, args(""), env)
	if err != nil && r.input > 0 && s.ctx.Err() == nil {
		// Sidecar SRTs are often in a legacy encoding, which ffmpeg
		// refuses as invalid UTF-8: the one files in the track's
		// language were mostly written in.
		err = s.runFFmpeg(s.ctx, ffmpeg, args(legacyCharset(r.info.Language)), env)
	}
	if err != nil {
		_ = os.Remove(part)
		return err
	}
	vtt, err := os.ReadFile(part)
	if err != nil {
		return err
	}
	vtt, err = addTimestampMap(vtt)
	if err != nil {
		return err
	}
	if err := os.WriteFile(part, vtt, 0o600); err != nil {
		return err
	}
	return os.Rename(part, filepath.Join(s.dir, subtitleFileName(k)))
}

// Windows. An embedded track's cues are spread through the whole file,
// so the whole-track file above exists only once the download is
// complete. An HLS player asks for subtitles near the playhead, in
// windows of subWindowSeconds (subs-<k>-<w>.m3u8 lists them), and window
// w needs only the bytes around it: ffmpeg seeks to a little before the
// window (the container's index, in the file's tail, says where) and
// reads through the input proxy, which ends the input at the first
// keyframe a little after the window (boundedInput). The window's file
// holds every cue that shows during it, moved onto the session's timeline.

// subWindowSeconds is the length of a subtitle window: about a segment,
// so that a window needs few bytes beyond those the video's segments
// around the playhead need anyway (on a swarm barely faster than the
// title, 10 s windows showed the first cues seconds late).
const subWindowSeconds = 6.0

// subWindowLead is how long before a window ffmpeg starts reading (from
// the keyframe before that): a cue that began up to this much earlier and
// still shows is included. Every second of it is bytes behind the
// playhead that only the subtitles need.
const subWindowLead = 1.0

// subWindowTail is how far past a window's end the input stays readable:
// a muxer may store a subtitle packet somewhat after video of the same time.
const subWindowTail = 1.0

// subWindowGrace is how long a window's conversion goes on after its last
// request gave up: hls.js gives up on a fragment without a first byte
// after 10 s and asks again at once, and the conversion should not start
// over then.
const subWindowGrace = 5 * time.Second

// subWindowed reports whether text subtitle rendition k is served in
// windows: an embedded track of a container whose index gives byte
// offsets (Matroska, MP4).
func (s *Session) subWindowed(k int) bool {
	if s.textSubs[k].input != 0 {
		return false
	}
	for _, f := range strings.Split(s.media.format, ",") {
		switch f {
		case "matroska", "webm", "mp4", "mov":
			return true
		}
	}
	return false
}

// SubtitleWindows says how rendition uri ("subs-<k>.m3u8", a TrackInfo's
// URI) is cut: into n windows of seconds each ("subs-<k>-<w>.vtt"), or
// n = 0 for one file, and while the session is not ready.
func (s *Session) SubtitleWindows(uri string) (n int, seconds float64) {
	select {
	case <-s.ready:
	default:
		return 0, 0
	}
	r, err := parseResource(uri)
	if err != nil || r.kind != kindSubPlaylist || s.prepErr != nil ||
		r.track >= len(s.textSubs) || !s.subWindowed(r.track) {
		return 0, 0
	}
	return windowCount(s.plan.duration, subWindowSeconds), subWindowSeconds
}

// makeWindow makes subs-<k>-<w>.vtt.
func (s *Session) makeWindow(ctx context.Context, k, w int) error {
	from := float64(w) * subWindowSeconds
	to := from + subWindowSeconds
	if w == windowCount(s.plan.duration, subWindowSeconds)-1 {
		to = math.Inf(1)
	}
	out := filepath.Join(s.dir, subtitleWindowName(k, w))
	s.mu.Lock()
	whole := s.subState[k].ready
	s.mu.Unlock()
	select {
	case <-s.idxDone:
	case <-ctx.Done():
		return ErrNotFound
	}
	s.mu.Lock()
	si := s.seekIdx
	s.mu.Unlock()
	if whole || si == nil {
		// Cut the window from the whole track: made already, or the
		// only way when the index does not say where bytes are.
		p, err := s.Subtitle(ctx, subtitleFileName(k))
		if err != nil {
			return err
		}
		return writeWindow(out, p, 0, from, to)
	}
	ffmpeg, _, err := s.m.binaries()
	if err != nil {
		return err
	}
	env, err := s.procEnv()
	if err != nil {
		return err
	}
	// A window given up on and its successor may run at once: each
	// writes its own file.
	f, err := os.CreateTemp(s.dir, "."+subtitleWindowName(k, w)+".*.part")
	if err != nil {
		return err
	}
	part := f.Name()
	_ = f.Close()
	defer os.Remove(part)
	seekFrom := max(0, from-subWindowLead)
	// No -reconnect: the bounded input ends with a short read, which
	// must end ffmpeg's input rather than be retried. No stream
	// analysis: it would read the first seconds of the file (maybe not
	// downloaded), and a text subtitle track is described in the header.
	args := []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y",
		"-probesize", "32", "-analyzeduration", "0",
		"-copyts", "-ss", strconv.FormatFloat(seekFrom, 'f', 3, 64),
		"-i", s.boundedInput(si, to+subWindowTail),
		"-map", fmt.Sprintf("0:%d", s.textSubs[k].streamIndex),
		"-c:s", "webvtt", "-f", "webvtt", part}
	if err := s.runFFmpeg(ctx, ffmpeg, args, env); err != nil {
		return err
	}
	// -copyts keeps the container's timestamps; the session's timeline
	// starts at the container's start time.
	return writeWindow(out, part, -s.media.startTime, from, to)
}

// writeWindow writes out, the window [from, to) of WebVTT file src with
// its cues moved by shift seconds.
func writeWindow(out, src string, shift, from, to float64) error {
	vtt, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	cues, err := parseVTTCues(vtt)
	if err != nil {
		return err
	}
	return atomicfile.Write(out, windowVTT(cues, shift, from, to), 0o600)
}

// boundedInput is the input URL for reading up to the first keyframe at
// or after until seconds: the proxy serves bytes before that keyframe's
// offset and from the last keyframe's on (the container's index and
// trailer), and ends every read at the bound. Past the last keyframe
// there is no bound.
func (s *Session) boundedInput(si *seekIndex, until float64) string {
	i, _ := slices.BinarySearch(si.times, until)
	last := len(si.offsets) - 1
	if i >= last || si.offsets[i] >= si.offsets[last] {
		return s.ffInput(0)
	}
	return s.ffInput(0) + "/" + strconv.FormatInt(si.offsets[i], 10) + "-" + strconv.FormatInt(si.offsets[last], 10)
}

// addTimestampMap puts X-TIMESTAMP-MAP into the WebVTT header block.
func addTimestampMap(vtt []byte) ([]byte, error) {
	vtt = bytes.TrimPrefix(vtt, []byte("\xef\xbb\xbf"))
	first, rest, _ := bytes.Cut(vtt, []byte("\n"))
	if !bytes.HasPrefix(first, []byte("WEBVTT")) {
		return nil, errors.New("ffmpeg wrote no WebVTT header")
	}
	var b bytes.Buffer
	b.Write(bytes.TrimRight(first, "\r"))
	b.WriteString("\n" + timestampMap + "\n")
	b.Write(rest)
	return b.Bytes(), nil
}

// runFFmpeg runs one ffmpeg to completion, killed when the session closes
// or after subtitleTimeout.
func (s *Session) runFFmpeg(ctx context.Context, ffmpeg string, args, env []string) error {
	ctx, cancel := context.WithTimeout(ctx, subtitleTimeout)
	defer cancel()
	// Pdeathsig follows the thread that forked: keep it until Wait.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	cmd.Env = env
	setProcAttrs(cmd)
	cmd.Cancel = func() error {
		_ = signalGroup(cmd.Process.Pid, sigKill)
		return cmd.Process.Kill()
	}
	cmd.WaitDelay = 5 * time.Second
	stderr := newTail(2048)
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("ffmpeg: %w", ctx.Err())
		}
		return fmt.Errorf("ffmpeg: %w: %s", err, s.redact(stderr.String()))
	}
	return nil
}

// sourceType names the input as a MIME type with RFC 6381 codecs, for a
// browser's canPlayType; "" when the container is not one browsers play
// (Matroska, AVI, TS) or a codec has no such name.
func sourceType(mi *mediaInfo) string {
	formats := strings.Split(mi.format, ",")
	var mime string
	switch {
	case slices.Contains(formats, "mp4") || slices.Contains(formats, "mov"):
		mime = "video/mp4"
	case mi.format == "matroska,webm" && (mi.video.CodecName == "vp9" || mi.video.CodecName == "vp8" || mi.video.CodecName == "av1"):
		mime = "video/webm"
	default:
		return ""
	}
	var codecs []string
	switch mi.video.CodecName {
	case "h264":
		codecs = append(codecs, avc1Codec(mi.video.Profile, mi.video.Level))
	case "vp9":
		codecs = append(codecs, "vp09.00.10.08")
	case "vp8":
		codecs = append(codecs, "vp8")
	case "av1":
		codecs = append(codecs, "av01.0.05M.08")
	default:
		return ""
	}
	if a := mi.audio; a != nil {
		switch a.CodecName {
		case "aac":
			if a.Profile == "HE-AAC" {
				codecs = append(codecs, "mp4a.40.5")
			} else {
				codecs = append(codecs, "mp4a.40.2")
			}
		case "mp3":
			codecs = append(codecs, "mp4a.40.34")
		case "opus":
			codecs = append(codecs, "opus")
		case "vorbis":
			codecs = append(codecs, "vorbis")
		case "flac":
			codecs = append(codecs, "flac")
		case "ac3":
			codecs = append(codecs, "ac-3")
		case "eac3":
			codecs = append(codecs, "ec-3")
		default:
			return ""
		}
	}
	return mime + `; codecs="` + strings.Join(codecs, ", ") + `"`
}

// legacyCharset is the encoding subtitle files in language lang (BCP 47)
// were most often written in before UTF-8, as ffmpeg's -sub_charenc (iconv)
// names it: the Windows code page of the language's script, or the national
// one for Chinese, Japanese and Korean; Windows-1252 (Western Europe) when
// the language is unknown or written in Latin script with it. Without it,
// a Russian Windows-1251 file came out as "Ïðèâåò" for "Привет".
func legacyCharset(lang string) string {
	primary, rest, _ := strings.Cut(lang, "-")
	script := func(s string) bool { return strings.Contains("-"+rest+"-", "-"+s+"-") }
	switch primary {
	case "ru", "uk", "be", "bg", "mk":
		return "CP1251"
	case "sr", "bs":
		// Both scripts are in use; files are mostly in Latin.
		if script("Cyrl") {
			return "CP1251"
		}
		return "CP1250"
	case "pl", "cs", "sk", "hu", "ro", "hr", "sl", "sq":
		return "CP1250"
	case "el":
		return "CP1253"
	case "tr", "az":
		return "CP1254"
	case "he", "yi":
		return "CP1255"
	case "ar", "fa", "ur":
		return "CP1256"
	case "et", "lv", "lt":
		return "CP1257"
	case "vi":
		return "CP1258"
	case "th":
		return "CP874"
	case "zh":
		if script("Hant") || script("TW") || script("HK") || script("MO") {
			return "BIG5"
		}
		return "GB18030"
	case "ja":
		return "CP932"
	case "ko":
		return "CP949"
	}
	return "CP1252"
}
