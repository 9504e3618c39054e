package hls

import (
	"strconv"
	"strings"
	"testing"
)

func TestWindowVTT(t *testing.T) {
	in := "\xef\xbb\xbfWEBVTT\r\n\r\nNOTE made by hand\r\n\r\n" +
		"00:01.000 --> 00:02.500\nbefore\n\n" +
		"intro\n00:09.000 --> 00:11.000 align:start line:0\n<i>spans</i> the\nboundary\n\n" +
		"00:12.250 --> 00:13.000\ninside\n\n" +
		"01:00:20.000 --> 01:00:21.000\nan hour later\n"
	cues, err := parseVTTCues([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(cues) != 4 || cues[1].id != "intro" || cues[1].settings != "align:start line:0" ||
		cues[1].payload != "<i>spans</i> the\nboundary" || cues[3].start != 3620 {
		t.Fatalf("parseVTTCues = %+v", cues)
	}
	got := string(windowVTT(cues, 0, 10, 20))
	want := "WEBVTT\n" + timestampMap + "\n\n" +
		"intro\n00:00:09.000 --> 00:00:11.000 align:start line:0\n<i>spans</i> the\nboundary\n\n" +
		"00:00:12.250 --> 00:00:13.000\ninside\n"
	if got != want {
		t.Errorf("window [10, 20) =\n%q\nwant\n%q", got, want)
	}
	// A start time of 1 s (-copyts) moves every cue 1 s earlier; what ends
	// up before 0 is cut at 0.
	got = string(windowVTT(cues, -1.5, 0, 10))
	want = "WEBVTT\n" + timestampMap + "\n\n" +
		"00:00:00.000 --> 00:00:01.000\nbefore\n\n" +
		"intro\n00:00:07.500 --> 00:00:09.500 align:start line:0\n<i>spans</i> the\nboundary\n"
	if got != want {
		t.Errorf("window [0, 10) moved by -1.5 s =\n%q\nwant\n%q", got, want)
	}
	for _, bad := range []string{"", "00:01.000 --> 00:02.000\nno header\n", "WEBVTT\n\n00:01.000 --> 2\nx\n",
		"WEBVTT\n\n00:61.000 --> 00:62.000\nx\n", "WEBVTT\n\n1:00.000 --> 1:01.000\nx\n"} {
		if c, err := parseVTTCues([]byte(bad)); err == nil {
			t.Errorf("parseVTTCues(%q) = %+v, want an error", bad, c)
		}
	}
}

// FuzzWindowVTT: whatever ffmpeg (or a hostile file through it) writes,
// a window's file parses back to the cues that show in the window.
func FuzzWindowVTT(f *testing.F) {
	f.Add("WEBVTT\n\n00:09.000 --> 00:11.000 align:start\nhello\n\n", 10.0, 0.0)
	f.Add("WEBVTT\n\nid\n00:00:01.000 --> 00:00:02.000\na\nb\n\nNOTE x\n\n", 0.0, -0.5)
	f.Add("WEBVTT\n\n999:59:59.999 --> 999:59:59.999\nx", 5.0, 1.0)
	f.Fuzz(func(t *testing.T, in string, from, shift float64) {
		if from != from || shift != shift || from < 0 || from > maxCueSeconds || shift < -maxCueSeconds || shift > maxCueSeconds {
			return
		}
		cues, err := parseVTTCues([]byte(in))
		if err != nil {
			return
		}
		out := windowVTT(cues, shift, from, from+10)
		back, err := parseVTTCues(out)
		if err != nil {
			t.Fatalf("window of %q does not parse: %v\n%s", in, err, out)
		}
		n := 0
		for _, c := range cues {
			start, end := max(c.start+shift, 0), min(c.end+shift, maxCueSeconds)
			if end > start && start < from+10 && end > from && !strings.Contains(c.payload, "\n\n") {
				n++
			}
		}
		if len(back) > n {
			t.Errorf("window of %q has %d cues, want at most %d:\n%s", in, len(back), n, out)
		}
		for _, c := range back {
			if c.end < from-0.001 || c.start > from+10.001 {
				t.Errorf("cue %+v is outside [%g, %g)", c, from, from+10)
			}
		}
	})
}

// FuzzBoundedInput: the input proxy's parsers for a bounded input's
// "<end>-<tail>" and ffmpeg's Range header accept only what they can
// honour.
func FuzzBoundedInput(f *testing.F) {
	f.Add("1000-5000", "bytes=0-")
	f.Add("1-2", "bytes=10-99")
	f.Add("01-2", "bytes=-5")
	f.Fuzz(func(t *testing.T, bound, rng string) {
		if end, tail, ok := parseBound(bound); ok && (end <= 0 || tail <= end || strconv.FormatInt(end, 10)+"-"+strconv.FormatInt(tail, 10) != bound) {
			t.Errorf("parseBound(%q) = %d, %d", bound, end, tail)
		}
		from, to, ok := parseByteRange(rng)
		if !ok {
			return
		}
		if from < 0 || (to != -1 && to < from) {
			t.Errorf("parseByteRange(%q) = %d, %d", rng, from, to)
		}
		if rng != "" && !strings.HasPrefix(rng, "bytes="+strconv.FormatInt(from, 10)) {
			t.Errorf("parseByteRange(%q) = %d, %d", rng, from, to)
		}
	})
}
