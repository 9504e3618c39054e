package hls

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/torrentclaw/cli/internal/ids"
)

// Resource names a session serves.
const (
	masterName = "master.m3u8"
	indexName  = "index.m3u8"
)

// Content types for the resources of a session.
const (
	playlistContentType = "application/vnd.apple.mpegurl"
	segmentContentType  = "video/mp2t"
	webvttContentType   = "text/vtt; charset=utf-8"
)

// ContentType returns the Content-Type for a session resource name
// ("master.m3u8", "index.m3u8", "audio-1.m3u8", "subs-0.m3u8",
// "seg-00000.ts", "a1-00000.ts", "subs-0.vtt"), or "" when the name is not
// a valid resource.
func ContentType(resource string) string {
	r, err := parseResource(resource)
	if err != nil {
		return ""
	}
	switch r.kind {
	case kindSegment, kindAudioSegment:
		return segmentContentType
	case kindSubtitle, kindSubWindow:
		return webvttContentType
	}
	return playlistContentType
}

// ValidSessionID reports whether s is a well-formed session ID:
// 1 to 128 characters of [A-Za-z0-9_-]. It is [ids.ValidSessionID].
func ValidSessionID(s string) bool { return ids.ValidSessionID(s) }

type resourceKind int

const (
	kindMaster resourceKind = iota + 1
	kindIndex
	kindSegment
	kindAudioPlaylist
	kindAudioSegment
	kindSubPlaylist
	kindSubtitle
	kindSubWindow
)

type resource struct {
	kind  resourceKind
	index int // segment or subtitle window index
	track int // audio or subtitle rendition number
}

// maxSegmentIndex bounds segment numbers: far more than any title needs
// (9 digits at 1 s per segment is 31 years) and safe from int overflow.
const maxSegmentIndex = 999_999_999

// maxRenditions bounds audio and subtitle rendition numbers.
const maxRenditions = 999

// segmentName is the canonical name of video segment i; parseResource
// accepts only canonical names, so every resource has exactly one name.
func segmentName(i int) string { return fmt.Sprintf("seg-%05d.ts", i) }

// audioSegmentName is the canonical name of segment i of audio rendition k.
func audioSegmentName(k, i int) string { return fmt.Sprintf("a%d-%05d.ts", k, i) }

func audioPlaylistName(k int) string    { return "audio-" + strconv.Itoa(k) + ".m3u8" }
func subtitlePlaylistName(k int) string { return "subs-" + strconv.Itoa(k) + ".m3u8" }
func subtitleFileName(k int) string     { return "subs-" + strconv.Itoa(k) + ".vtt" }

// IsSubtitleWindow reports whether resource names a subtitle window
// ("subs-<k>-<w>.vtt"): a file that may take a while, and that always
// begins with [SubtitleWindowPrefix].
func IsSubtitleWindow(resource string) bool {
	r, err := parseResource(resource)
	return err == nil && r.kind == kindSubWindow
}

// SubtitleWindowPrefix is how every subtitle window file begins: the
// WebVTT header with the session's timestamp map.
func SubtitleWindowPrefix() []byte { return []byte(webvttHeader) }

// subtitleWindowName is the WebVTT file of window w of subtitle rendition k.
func subtitleWindowName(k, w int) string {
	return "subs-" + strconv.Itoa(k) + "-" + strconv.Itoa(w) + ".vtt"
}

// parseNumber parses a canonical non-negative decimal (no sign, no leading
// zero) of at most max.
func parseNumber(s string, max int) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0 && n <= max && strconv.Itoa(n) == s
}

// parseSegmentIndex parses the 5-9 digit segment number of a segment name.
func parseSegmentIndex(digits string) (int, bool) {
	if len(digits) < 5 || len(digits) > 9 {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil && n >= 0 && n <= maxSegmentIndex && fmt.Sprintf("%05d", n) == digits
}

// parseResource parses a resource name of a session.
func parseResource(name string) (resource, error) {
	switch name {
	case masterName:
		return resource{kind: kindMaster}, nil
	case indexName:
		return resource{kind: kindIndex}, nil
	}
	if digits, ok := strings.CutPrefix(name, "seg-"); ok {
		if digits, ok = strings.CutSuffix(digits, ".ts"); ok {
			if n, ok := parseSegmentIndex(digits); ok {
				return resource{kind: kindSegment, index: n}, nil
			}
		}
		return resource{}, ErrBadResource
	}
	if rest, ok := strings.CutPrefix(name, "audio-"); ok {
		if k, ok := strings.CutSuffix(rest, ".m3u8"); ok {
			if n, ok := parseNumber(k, maxRenditions); ok {
				return resource{kind: kindAudioPlaylist, track: n}, nil
			}
		}
		return resource{}, ErrBadResource
	}
	if rest, ok := strings.CutPrefix(name, "subs-"); ok {
		kind := kindSubPlaylist
		k, ok := strings.CutSuffix(rest, ".m3u8")
		if !ok {
			kind = kindSubtitle
			k, ok = strings.CutSuffix(rest, ".vtt")
		}
		if kw, w, windowed := strings.Cut(k, "-"); ok && windowed && kind == kindSubtitle {
			n, ok1 := parseNumber(kw, maxRenditions)
			wn, ok2 := parseNumber(w, maxSegmentIndex)
			if ok1 && ok2 {
				return resource{kind: kindSubWindow, track: n, index: wn}, nil
			}
			return resource{}, ErrBadResource
		}
		if n, ok2 := parseNumber(k, maxRenditions); ok && ok2 {
			return resource{kind: kind, track: n}, nil
		}
		return resource{}, ErrBadResource
	}
	if rest, ok := strings.CutPrefix(name, "a"); ok {
		if rest, ok = strings.CutSuffix(rest, ".ts"); ok {
			k, digits, ok := strings.Cut(rest, "-")
			kn, ok1 := parseNumber(k, maxRenditions)
			n, ok2 := parseSegmentIndex(digits)
			if ok && ok1 && ok2 {
				return resource{kind: kindAudioSegment, track: kn, index: n}, nil
			}
		}
	}
	return resource{}, ErrBadResource
}

// plan is the segmentation of a title: segment i covers
// [starts[i], starts[i+1]) seconds of the file's timeline (relative to the
// container's start time), the last one ends at duration.
type plan struct {
	starts   []float64
	duration float64
}

func (p *plan) n() int { return len(p.starts) }

func (p *plan) segDuration(i int) float64 {
	if i+1 < len(p.starts) {
		return p.starts[i+1] - p.starts[i]
	}
	return p.duration - p.starts[i]
}

// indexAt returns the segment containing t seconds.
func (p *plan) indexAt(t float64) int {
	lo, hi := 0, len(p.starts)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if p.starts[mid] <= t {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// minLastSeconds is the shortest tail segment a plan makes: a shorter tail is
// merged into the segment before it (a sliver may hold no video frame at
// all, and then ffmpeg would never write it).
const minLastSeconds = 0.25

// gridPlan cuts the title every segSec seconds (transcode mode: the encoder
// is forced to put a keyframe on every boundary).
func gridPlan(duration, segSec float64) *plan {
	n := int(math.Ceil((duration - minLastSeconds) / segSec))
	n = max(n, 1)
	p := &plan{starts: make([]float64, n), duration: duration}
	for i := range p.starts {
		p.starts[i] = float64(i) * segSec
	}
	return p
}

// maxCopySegmentSeconds is the longest segment a copy-mode plan accepts. A
// source whose keyframes are further apart is transcoded instead.
const maxCopySegmentSeconds = 20

var errSparseKeyframes = errors.New("keyframes too far apart for stream copy")

// keyframePlan cuts the title on source keyframes (stream-copy mode), taking
// for each boundary the keyframe nearest to segSec after the previous one
// (but at least segSec/2 after it). keyframes are in seconds relative to the
// container start, ascending.
func keyframePlan(keyframes []float64, duration, segSec float64) (*plan, error) {
	p := &plan{starts: []float64{0}, duration: duration}
	last := 0.0
	i := 0
	for {
		target := last + segSec
		for i < len(keyframes) && keyframes[i] < target {
			i++
		}
		var best float64
		found := false
		if i < len(keyframes) {
			best, found = keyframes[i], true
		}
		if i > 0 {
			prev := keyframes[i-1]
			if prev >= last+segSec/2 && (!found || target-prev < best-target) {
				best, found = prev, true
			}
		}
		// The end of the title competes too: stop when it is nearer
		// the target than any keyframe.
		if !found || best > duration-minLastSeconds || math.Abs(duration-target) <= math.Abs(best-target) {
			break
		}
		if best-last > maxCopySegmentSeconds {
			return nil, fmt.Errorf("%w: %.1fs at %.1fs", errSparseKeyframes, best-last, last)
		}
		p.starts = append(p.starts, best)
		last = best
	}
	if duration-last > maxCopySegmentSeconds {
		return nil, fmt.Errorf("%w: %.1fs at %.1fs", errSparseKeyframes, duration-last, last)
	}
	return p, nil
}

// mediaPlaylist is the content of index.m3u8.
type mediaPlaylist struct {
	targetDuration int
	segments       []playlistEntry
}

type playlistEntry struct {
	duration float64
	uri      string
}

// withToken appends ?t=<token> to a relative child URI. Relative URIs do not
// inherit the playlist's query, so every child carries the token itself.
func withToken(uri, token string) string { return uri + tokenQuery(token) }

func tokenQuery(token string) string {
	if token == "" {
		return ""
	}
	return "?t=" + url.QueryEscape(token)
}

// mediaPlaylistFor builds the VOD playlist of a plan's video segments.
func mediaPlaylistFor(p *plan, token string) *mediaPlaylist {
	return mediaPlaylistNamed(p, token, segmentName)
}

// mediaPlaylistNamed builds the VOD playlist of a plan with segment names
// from name: audio renditions share the video's boundaries, so players
// switch between them at the same points.
func mediaPlaylistNamed(p *plan, token string, name func(int) string) *mediaPlaylist {
	pl := &mediaPlaylist{segments: make([]playlistEntry, p.n())}
	q := tokenQuery(token)
	for i := range pl.segments {
		pl.segments[i] = playlistEntry{duration: p.segDuration(i), uri: name(i) + q}
	}
	pl.targetDuration = targetDuration(pl.segments)
	return pl
}

// targetDuration follows RFC 8216 4.3.3.1: every EXTINF rounded to the
// nearest integer must not exceed it.
func targetDuration(segs []playlistEntry) int {
	t := 1
	for _, s := range segs {
		t = max(t, int(math.Round(roundMicro(s.duration))))
	}
	return t
}

// roundMicro rounds to the precision EXTINF is written with, so the target
// duration and the written durations agree.
func roundMicro(f float64) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', 6, 64), 64)
	return v
}

// render writes the playlist. EXTINF values carry microseconds so that the
// sum of earlier durations (where a player places a segment) does not drift
// from the segments' real timestamps over thousands of segments.
func (pl *mediaPlaylist) render() []byte {
	size := 160
	for _, s := range pl.segments {
		size += len(s.uri) + 32
	}
	b := make([]byte, 0, size)
	b = append(b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:"...)
	b = strconv.AppendInt(b, int64(pl.targetDuration), 10)
	b = append(b, "\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n"...)
	for _, s := range pl.segments {
		b = append(b, "#EXTINF:"...)
		b = strconv.AppendFloat(b, s.duration, 'f', 6, 64)
		b = append(b, ",\n"...)
		b = append(b, s.uri...)
		b = append(b, '\n')
	}
	return append(b, "#EXT-X-ENDLIST\n"...)
}

var errBadPlaylist = errors.New("malformed playlist")

// maxEXTINF bounds a parsed segment duration (seconds).
const maxEXTINF = 1e6

// parseMediaPlaylist parses the subset of RFC 8216 that render writes: a VOD
// media playlist. It is the inverse of render (tests, fuzzing).
func parseMediaPlaylist(data []byte) (*mediaPlaylist, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	pl := &mediaPlaylist{}
	first := true
	var pending *float64
	ended := false
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if first {
			if line != "#EXTM3U" {
				return nil, fmt.Errorf("%w: missing #EXTM3U", errBadPlaylist)
			}
			first = false
			continue
		}
		if ended {
			if line != "" {
				return nil, fmt.Errorf("%w: content after #EXT-X-ENDLIST", errBadPlaylist)
			}
			continue
		}
		switch {
		case line == "":
		case strings.HasPrefix(line, "#EXT-X-TARGETDURATION:"):
			v, err := strconv.Atoi(strings.TrimPrefix(line, "#EXT-X-TARGETDURATION:"))
			if err != nil || v < 0 {
				return nil, fmt.Errorf("%w: bad target duration", errBadPlaylist)
			}
			pl.targetDuration = v
		case strings.HasPrefix(line, "#EXTINF:"):
			if pending != nil {
				return nil, fmt.Errorf("%w: EXTINF without URI", errBadPlaylist)
			}
			v, _, _ := strings.Cut(strings.TrimPrefix(line, "#EXTINF:"), ",")
			d, err := strconv.ParseFloat(v, 64)
			if err != nil || !(d >= 0 && d <= maxEXTINF) {
				return nil, fmt.Errorf("%w: bad EXTINF", errBadPlaylist)
			}
			pending = &d
		case line == "#EXT-X-ENDLIST":
			ended = true
		case strings.HasPrefix(line, "#"):
			// Other tags (version, sequence, type) are fixed by render.
		default:
			if pending == nil {
				return nil, fmt.Errorf("%w: URI without EXTINF", errBadPlaylist)
			}
			pl.segments = append(pl.segments, playlistEntry{duration: *pending, uri: line})
			pending = nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadPlaylist, err)
	}
	if first || pending != nil || !ended {
		return nil, fmt.Errorf("%w: truncated", errBadPlaylist)
	}
	return pl, nil
}

// variant describes the single rendition a session serves.
type variant struct {
	copyVideo, copyAudio bool
	hasAudio             bool
	width, height        int // output size
	fps                  float64
	videoCodec           string // RFC 6381, e.g. "avc1.640028"
	bandwidth            int64  // peak bits/s (estimate)
	avgBandwidth         int64  // 0 when unknown
	x264Level            string // transcode only
	maxrate              int64  // transcode only, video bits/s
}

func (v variant) mode() string {
	switch {
	case v.copyVideo && (v.copyAudio || !v.hasAudio):
		return ModeCopy
	case v.copyVideo:
		return ModeCopyVideo
	default:
		return ModeTranscode
	}
}

func (v variant) codecs() string {
	if v.hasAudio {
		return v.videoCodec + ",mp4a.40.2"
	}
	return v.videoCodec
}

// Rendition group IDs in master.m3u8.
const (
	audioGroupID    = "audio"
	subtitleGroupID = "subs"
)

// renderMaster writes master.m3u8: one EXT-X-MEDIA per audio rendition and
// per text subtitle rendition, and one variant (the video, index.m3u8) that
// references both groups. The video segments carry no audio: every audio
// track, the default one too, is its own rendition, so switching language
// changes only which audio playlist the player reads.
func renderMaster(v variant, audios []*audioRendition, subs []*subRendition, token string) []byte {
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	for _, a := range audios {
		in := a.info
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"%s\"", audioGroupID)
		if in.Language != "" {
			fmt.Fprintf(&b, ",LANGUAGE=\"%s\"", quotedValue(in.Language))
		}
		fmt.Fprintf(&b, ",NAME=\"%s\",DEFAULT=%s,AUTOSELECT=YES,CHANNELS=\"%d\",URI=\"%s\"\n",
			quotedValue(in.Name), yesNo(in.Default), in.Channels, withToken(in.URI, token))
	}
	hasSubs := false
	for _, r := range subs {
		in := r.info
		if in.Image {
			continue
		}
		hasSubs = true
		fmt.Fprintf(&b, "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"%s\"", subtitleGroupID)
		if in.Language != "" {
			fmt.Fprintf(&b, ",LANGUAGE=\"%s\"", quotedValue(in.Language))
		}
		fmt.Fprintf(&b, ",NAME=\"%s\",DEFAULT=%s,AUTOSELECT=YES,FORCED=NO,URI=\"%s\"\n",
			quotedValue(in.Name), yesNo(in.Default), withToken(in.URI, token))
	}
	fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d", v.bandwidth)
	if v.avgBandwidth > 0 {
		fmt.Fprintf(&b, ",AVERAGE-BANDWIDTH=%d", v.avgBandwidth)
	}
	fmt.Fprintf(&b, ",CODECS=\"%s\"", v.codecs())
	if v.width > 0 && v.height > 0 {
		fmt.Fprintf(&b, ",RESOLUTION=%dx%d", v.width, v.height)
	}
	if v.fps > 0 {
		fmt.Fprintf(&b, ",FRAME-RATE=%.3f", v.fps)
	}
	if len(audios) > 0 {
		fmt.Fprintf(&b, ",AUDIO=\"%s\"", audioGroupID)
	}
	if hasSubs {
		fmt.Fprintf(&b, ",SUBTITLES=\"%s\"", subtitleGroupID)
	}
	b.WriteString("\n")
	b.WriteString(withToken(indexName, token))
	b.WriteString("\n")
	return b.Bytes()
}

func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}

// quotedValue makes s safe inside an RFC 8216 quoted-string: no double
// quote, CR or LF (and no other control character).
func quotedValue(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r < 0x20 || r == 0x7f:
			return ' '
		}
		return r
	}, s)
}

// windowCount is the number of subtitle windows of window seconds a title
// of duration seconds has: the last one takes a tail shorter than
// minLastSeconds, as a plan's last segment does.
func windowCount(duration, window float64) int {
	return max(1, int(math.Ceil((duration-minLastSeconds)/window)))
}

// renderSubtitlePlaylist writes the media playlist of a subtitle rendition:
// one WebVTT file covering the whole title, or with window > 0 one file
// per window seconds (the last one takes the rest).
func renderSubtitlePlaylist(k int, duration, window float64, token string) []byte {
	pl := &mediaPlaylist{}
	if window <= 0 {
		pl.segments = []playlistEntry{{duration: duration, uri: withToken(subtitleFileName(k), token)}}
	} else {
		n := windowCount(duration, window)
		for w := range n {
			d := window
			if w == n-1 {
				d = duration - float64(w)*window
			}
			pl.segments = append(pl.segments, playlistEntry{duration: max(d, 0), uri: withToken(subtitleWindowName(k, w), token)})
		}
	}
	pl.targetDuration = targetDuration(pl.segments)
	return pl.render()
}
