package hls

import (
	"context"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// ffprobeKeyframes is the reference: every keyframe's pts as ffprobe reports
// it (reads the whole file; fine in a test).
func ffprobeKeyframes(t *testing.T, path string) []float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var kf []float64
	for line := range strings.Lines(string(out)) {
		pts, flags, _ := strings.Cut(strings.TrimSpace(line), ",")
		if strings.Contains(flags, "K") {
			v, err := strconv.ParseFloat(pts, 64)
			if err != nil {
				t.Fatalf("bad ffprobe line %q", line)
			}
			kf = append(kf, v)
		}
	}
	slices.Sort(kf)
	return kf
}

func TestFetchKeyframes(t *testing.T) {
	tests := []struct {
		media  string
		format string
		codec  string
	}{
		{mediaCopy, "mov,mp4,m4a,3gp,3g2,mj2", "avc1.640014"},
		{mediaFaststart, "mov,mp4,m4a,3gp,3g2,mj2", "avc1.640014"},
		{mediaIrregular, "matroska,webm", "avc1.640014"},
	}
	for _, tc := range tests {
		t.Run(tc.media, func(t *testing.T) {
			path := media(t, tc.media)
			srv := serveMedia(t, path, serverOptions{})
			mi := &mediaInfo{format: tc.format, video: &probeStream{ID: "0x1"}}
			idx, err := fetchKeyframes(t.Context(), http.DefaultClient, srv.inputURL(), mi)
			if err != nil {
				t.Fatalf("fetchKeyframes() = %v", err)
			}
			want := ffprobeKeyframes(t, path)
			if len(idx.times) != len(want) {
				t.Fatalf("keyframes = %v, want %v", idx.times, want)
			}
			for i := range want {
				if math.Abs(idx.times[i]-want[i]) > 1e-6 {
					t.Errorf("keyframe %d = %.6f, want %.6f", i, idx.times[i], want[i])
				}
			}
			if c, ok := avc1FromRecord(idx.avcC); !ok || c != tc.codec {
				t.Errorf("codec from avcC = %q, %v; want %q", c, ok, tc.codec)
			}
			// Matroska's cue points say where each keyframe's cluster
			// begins: at or before the keyframe's packet, after the
			// previous keyframe's. MP4's chunk tables give the packet's
			// own position.
			pos := keyframePositions(t, path)
			if len(idx.offsets) != len(idx.times) {
				t.Fatalf("%d offsets for %d keyframes", len(idx.offsets), len(idx.times))
			}
			for i, ts := range idx.times {
				p := posAt(t, pos, ts)
				switch {
				case tc.format != "matroska,webm":
					if idx.offsets[i] != p {
						t.Errorf("keyframe %.3f s at byte %d: sample offset %d", ts, p, idx.offsets[i])
					}
				case idx.offsets[i] > p || (i > 0 && idx.offsets[i] <= posAt(t, pos, idx.times[i-1]) && idx.offsets[i] != idx.offsets[i-1]):
					t.Errorf("keyframe %.3f s at byte %d: cluster offset %d", ts, p, idx.offsets[i])
				}
			}
			if srv.served.Load() > srv.size/10 {
				t.Errorf("read %d of %d bytes for the index", srv.served.Load(), srv.size)
			}
		})
	}
}

// memSource is an in-memory byteSource.
type memSource []byte

func (m memSource) length() int64 { return int64(len(m)) }

func (m memSource) readAt(_ context.Context, off, n int64) ([]byte, error) {
	if off < 0 || off >= int64(len(m)) || n <= 0 {
		return nil, io.EOF
	}
	return m[off:min(off+n, int64(len(m)))], nil
}

func TestIndexRejectsGarbage(t *testing.T) {
	inputs := map[string][]byte{
		"empty":          nil,
		"short":          {0, 0, 0},
		"box size 0":     {0, 0, 0, 0, 'f', 't', 'y', 'p'},
		"box size small": {0, 0, 0, 4, 'm', 'o', 'o', 'v'},
		"huge box":       {0xff, 0xff, 0xff, 0xff, 'm', 'd', 'a', 't'},
		"ebml only":      {0x1A, 0x45, 0xDF, 0xA3, 0x80},
		"zeros":          make([]byte, 100),
	}
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			if _, err := mp4Keyframes(t.Context(), memSource(data), 0); err == nil {
				t.Error("mp4Keyframes = nil error")
			}
			if _, err := mkvKeyframes(t.Context(), memSource(data), 0); err == nil {
				t.Error("mkvKeyframes = nil error")
			}
		})
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 0-99/1000", 0, 1000, true},
		{"bytes 500-999/1000", 500, 1000, true},
		{"bytes 5-9/*", 5, -1, true},
		{"bytes */1000", 0, 0, false},
		{"items 0-1/2", 0, 0, false},
		{"bytes x-1/2", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tc := range tests {
		start, total, ok := parseContentRange(tc.in)
		if ok != tc.ok || (ok && (start != tc.start || total != tc.total)) {
			t.Errorf("parseContentRange(%q) = %d, %d, %v; want %d, %d, %v", tc.in, start, total, ok, tc.start, tc.total, tc.ok)
		}
	}
}

func FuzzParseMoov(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 8, 't', 'r', 'a', 'k'})
	f.Add([]byte{0, 0, 0, 16, 'm', 'v', 'h', 'd', 1, 0, 0, 0, 0, 0, 0, 0})
	if _, err := exec.LookPath("ffmpeg"); err == nil {
		// A real moov (the test media's), so the fuzzer starts from
		// sample tables that parse.
		raw, err := os.ReadFile(media(f, mediaFaststart))
		if err != nil {
			f.Fatal(err)
		}
		_ = eachBox(raw, func(typ string, p []byte) error {
			if typ == "moov" {
				f.Add(p)
			}
			return nil
		})
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, err := parseMoov(data, 0)
		if err == nil && idx == nil {
			t.Fatal("nil index without error")
		}
		if err == nil && idx.offsets != nil {
			if len(idx.offsets) != len(idx.times) || !slices.IsSorted(idx.offsets) || idx.offsets[0] < 0 {
				t.Fatalf("offsets %v for times %v", idx.offsets, idx.times)
			}
		}
		_, _ = mp4Keyframes(t.Context(), memSource(data), 0)
	})
}

func FuzzMKVIndex(f *testing.F) {
	f.Add([]byte{0x1A, 0x45, 0xDF, 0xA3, 0x80, 0x18, 0x53, 0x80, 0x67, 0xFF})
	f.Add([]byte{0x1A, 0x45, 0xDF, 0xA3, 0x80, 0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, data []byte) {
		idx, err := mkvKeyframes(t.Context(), memSource(data), 0)
		if err == nil && idx.offsets != nil {
			if len(idx.offsets) != len(idx.times) || !slices.IsSorted(idx.offsets) || idx.offsets[0] < 0 {
				t.Fatalf("offsets %v for times %v", idx.offsets, idx.times)
			}
			si := newSeekIndex(idx, 0, landing{lead: ffmpegSeekLead, stepUS: 1000})
			for _, at := range []float64{-1, 0, idx.times[len(idx.times)-1], 1e9} {
				for _, exact := range []bool{false, true} {
					off, n := si.byteRange(at, at+4, exact)
					if off < 0 || n > maxPrefetchBytes {
						t.Fatalf("byteRange(%v, %v) = %d, %d", at, exact, off, n)
					}
				}
			}
		}
		seeks := map[uint32]int64{}
		parseSeekHead(data, seeks)
	})
}
