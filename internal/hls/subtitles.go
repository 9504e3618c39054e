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
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
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

// Subtitle returns the path of the WebVTT file of text subtitle rendition
// "subs-<k>.vtt", converting it on first use; concurrent requests share
// one conversion, and a failed one is retried by the next request.
// Content type: text/vtt.
func (s *Session) Subtitle(ctx context.Context, name string) (string, error) {
	r, err := parseResource(name)
	if err != nil || r.kind != kindSubtitle {
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
	if k >= len(s.textSubs) {
		return "", fmt.Errorf("subtitle %q: %w", name, ErrBadResource)
	}
	path := filepath.Join(s.dir, subtitleFileName(k))
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", ErrNotFound
	}
	st := &s.subState[k]
	if st.ready {
		s.mu.Unlock()
		return path, nil
	}
	if !st.running {
		st.running, st.err, st.done = true, nil, make(chan struct{})
		s.wg.Add(1)
		go s.convertSubtitle(k, st.done)
	}
	done := st.done
	s.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return "", ctx.Err()
	case <-s.ctx.Done():
		return "", ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", ErrNotFound
	}
	if st.err != nil {
		return "", st.err
	}
	return path, nil
}

// convertSubtitle makes subs-<k>.vtt and records the outcome.
func (s *Session) convertSubtitle(k int, done chan struct{}) {
	defer s.wg.Done()
	err := s.makeSubtitle(k)
	s.mu.Lock()
	st := &s.subState[k]
	st.running, st.err, st.ready = false, err, err == nil
	close(done)
	s.mu.Unlock()
	if err != nil && s.ctx.Err() == nil {
		s.log.Warn("hls subtitle conversion failed", "subtitle", k, "err", err)
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
	err = s.runFFmpeg(ffmpeg, args(""), env)
	if err != nil && r.input > 0 && s.ctx.Err() == nil {
		// Sidecar SRTs are often in a legacy 8-bit encoding, which
		// ffmpeg refuses as invalid UTF-8; Windows-1252 covers most.
		err = s.runFFmpeg(ffmpeg, args("CP1252"), env)
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
func (s *Session) runFFmpeg(ffmpeg string, args, env []string) error {
	ctx, cancel := context.WithTimeout(s.ctx, subtitleTimeout)
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
