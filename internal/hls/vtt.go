package hls

// WebVTT cue handling for subtitle windows (subtitles.go): ffmpeg's WebVTT
// output is read back as cues, moved onto the session's timeline and cut
// to one window.

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// webvttHeader begins every window file (SubtitleWindowPrefix).
var webvttHeader = "WEBVTT\n" + timestampMap + "\n"

// vttBlock is one cue of a WebVTT file.
type vttBlock struct {
	id         string // the optional identifier line
	start, end float64
	settings   string // what follows the end time on the timing line
	payload    string // the cue text, lines joined by "\n"
}

// maxCueSeconds bounds cue times: far beyond any title (about 11 days),
// and exactly representable in milliseconds.
const maxCueSeconds = 999_999

// parseVTTCues reads the cues of a WebVTT file. Blocks without a timing
// line (NOTE, STYLE, REGION) are dropped; a timing line that does not
// parse is an error, so a window never silently loses a cue.
func parseVTTCues(vtt []byte) ([]vttBlock, error) {
	s := strings.ReplaceAll(string(bytes.TrimPrefix(vtt, []byte("\xef\xbb\xbf"))), "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	blocks := strings.Split(s, "\n\n")
	if !strings.HasPrefix(blocks[0], "WEBVTT") {
		return nil, errors.New("not WebVTT: no header")
	}
	var cues []vttBlock
	for _, blk := range blocks[1:] {
		blk = strings.Trim(blk, "\n")
		if blk == "" {
			continue
		}
		lines := strings.Split(blk, "\n")
		t := 0
		if !strings.Contains(lines[0], "-->") {
			if len(lines) < 2 || !strings.Contains(lines[1], "-->") {
				continue // NOTE, STYLE, REGION
			}
			t = 1
		}
		c, err := parseTiming(lines[t])
		if err != nil {
			return nil, err
		}
		if t == 1 {
			c.id = lines[0]
		}
		c.payload = strings.Join(lines[t+1:], "\n")
		cues = append(cues, c)
	}
	return cues, nil
}

// parseTiming parses "start --> end[ settings]".
func parseTiming(line string) (vttBlock, error) {
	a, rest, _ := strings.Cut(line, "-->")
	rest = strings.TrimLeft(rest, " \t")
	b, settings, _ := strings.Cut(rest, " ")
	var c vttBlock
	var err1, err2 error
	c.start, err1 = parseVTTTime(strings.TrimSpace(a))
	c.end, err2 = parseVTTTime(strings.TrimSpace(b))
	if err1 != nil || err2 != nil {
		return vttBlock{}, fmt.Errorf("bad WebVTT timing line %q", line)
	}
	c.settings = strings.TrimSpace(settings)
	return c, nil
}

// parseVTTTime parses "[hh:]mm:ss.ttt" (hours of any width).
func parseVTTTime(s string) (float64, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, errors.New("bad time")
	}
	sec, frac, ok := strings.Cut(parts[len(parts)-1], ".")
	if !ok || len(sec) != 2 || len(frac) != 3 || len(parts[len(parts)-2]) != 2 {
		return 0, errors.New("bad time")
	}
	num := func(d string) (int, bool) {
		if d == "" || len(d) > 6 {
			return 0, false
		}
		for _, r := range d {
			if r < '0' || r > '9' {
				return 0, false
			}
		}
		n, err := strconv.Atoi(d)
		return n, err == nil
	}
	h := 0
	if len(parts) == 3 {
		var ok bool
		if h, ok = num(parts[0]); !ok {
			return 0, errors.New("bad time")
		}
	}
	m, ok1 := num(parts[len(parts)-2])
	ss, ok2 := num(sec)
	ms, ok3 := num(frac)
	if !ok1 || !ok2 || !ok3 || m > 59 || ss > 59 {
		return 0, errors.New("bad time")
	}
	t := float64(h*3600+m*60+ss) + float64(ms)/1000
	if t > maxCueSeconds {
		return 0, errors.New("bad time")
	}
	return t, nil
}

// formatVTTTime writes seconds as "hh:mm:ss.ttt".
func formatVTTTime(t float64) string {
	ms := int64(math.Round(min(max(t, 0), maxCueSeconds) * 1000))
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3_600_000, ms/60_000%60, ms/1000%60, ms%1000)
}

// windowVTT writes the WebVTT file of one window: the cues, moved by shift
// seconds, that show during [from, to) (a cue spanning a boundary is in
// both windows, as HLS expects; players drop the repeat), with the
// session's X-TIMESTAMP-MAP.
func windowVTT(cues []vttBlock, shift, from, to float64) []byte {
	var b bytes.Buffer
	b.WriteString(webvttHeader)
	for _, c := range cues {
		start, end := max(c.start+shift, 0), c.end+shift
		if end <= start || start >= to || end <= from {
			continue
		}
		b.WriteString("\n")
		if c.id != "" {
			b.WriteString(c.id + "\n")
		}
		b.WriteString(formatVTTTime(start) + " --> " + formatVTTTime(end))
		if c.settings != "" {
			b.WriteString(" " + c.settings)
		}
		b.WriteString("\n")
		if c.payload != "" {
			b.WriteString(c.payload + "\n")
		}
	}
	return b.Bytes()
}
