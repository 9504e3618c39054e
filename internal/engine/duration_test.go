package engine_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
)

const sampleMP4 = "../../testdata/sample.mp4" // 30 s, its movie box before the media data

// remux copies sample.mp4's streams into dir/name with ffmpeg (real containers, as players
// get them), with extra muxer options.
func remux(t *testing.T, dir, name string, opts ...string) string {
	t.Helper()
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg not found: no containers to read")
	}
	out := filepath.Join(dir, name)
	args := append([]string{"-hide_banner", "-v", "error", "-i", sampleMP4, "-c", "copy"}, opts...)
	if b, err := exec.Command(ffmpeg, append(args, out)...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", name, err, b)
	}
	return out
}

// ffprobeDuration is the reference: what ffprobe says the file lasts.
func ffprobeDuration(t *testing.T, path string) float64 {
	t.Helper()
	b, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		t.Fatalf("ffprobe %s: %q", path, b)
	}
	return d
}

func TestContainerDuration(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		path string
	}{
		{"mp4 movie box first", sampleMP4},
		{"mp4 movie box last", remux(t, dir, "last.mp4")},
		{"mov", remux(t, dir, "x.mov")},
		{"matroska", remux(t, dir, "x.mkv")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := os.ReadFile(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := engine.ContainerDuration(bytes.NewReader(b), int64(len(b)))
			want := ffprobeDuration(t, tc.path)
			if err != nil || got < want-0.1 || got > want+0.1 {
				t.Errorf("ContainerDuration(%s) = %.3f, %v; ffprobe says %.3f", tc.name, got, err, want)
			}
		})
	}
	// Version 1 movie headers (64-bit times) come from muxers for very long files; ffmpeg
	// writes version 0 here, so build one: 90 kHz timescale, 2 h.
	v1 := mp4Box("ftyp", []byte("isom\x00\x00\x02\x00isom"))
	mvhd := make([]byte, 32) // version 1, flags, creation, modification: zero
	mvhd[0] = 1
	binary.BigEndian.PutUint32(mvhd[20:24], 90000)
	binary.BigEndian.PutUint64(mvhd[24:32], 2*3600*90000)
	v1 = append(v1, mp4Box("moov", mp4Box("mvhd", append(mvhd, make([]byte, 80)...)))...)
	if got, err := engine.ContainerDuration(bytes.NewReader(v1), int64(len(v1))); err != nil || got != 7200 {
		t.Errorf("ContainerDuration(mvhd version 1, 2 h) = %v, %v; want 7200", got, err)
	}

	sample, err := os.ReadFile(sampleMP4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"text", []byte("#EXTM3U\n#EXTINF:10,\nx.ts\n")},
		{"mp4 cut before its movie box", sample[:32]},
		{"mp4 box longer than the file", append([]byte{0xff, 0xff, 0xff, 0xf0, 'f', 't', 'y', 'p'}, make([]byte, 8)...)},
		{"ebml header only", []byte{0x1a, 0x45, 0xdf, 0xa3, 0x80}},
		// An unknown-size segment with no duration in Info (ffprobe says N/A too).
		{"matroska written live", readFile(t, remux(t, dir, "live.mkv", "-live", "1"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d, err := engine.ContainerDuration(bytes.NewReader(tc.b), int64(len(tc.b))); err == nil {
				t.Errorf("ContainerDuration(%s) = %v, want an error", tc.name, d)
			}
		})
	}
}

// mp4Box returns an ISO BMFF box of type typ around body.
func mp4Box(typ string, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	return append(append(b, typ...), body...)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzContainerDuration(f *testing.F) {
	sample, err := os.ReadFile(sampleMP4)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample[:4096])
	f.Add([]byte{0x1a, 0x45, 0xdf, 0xa3, 0x80, 0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0x15, 0x49, 0xa9, 0x66, 0x8e, 0x2a, 0xd7, 0xb1, 0x83, 0x0f, 0x42, 0x40, 0x44, 0x89, 0x84, 0x46, 0xea, 0x60, 0x00})
	f.Add([]byte("\x00\x00\x00\x08moov\x00\x00\x00\x01mvhd"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := engine.ContainerDuration(bytes.NewReader(b), int64(len(b)))
		if err == nil && !(d > 0 && d <= 30*24*3600) {
			t.Fatalf("ContainerDuration = %v with no error, want a real duration", d)
		}
	})
}

// TestStreamBufferedSeconds streams the sample from a loopback seeder with nobody playing:
// once it is all verified, the whole file is buffered ahead of position 0, and the engine
// knows it in seconds from the container (no HLS session, no ffprobe).
func TestStreamBufferedSeconds(t *testing.T) {
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{})
	si := seeder.Add(t, sampleMP4)
	le := enginetest.NewEngine(t)
	task, err := le.Add(t.Context(), engine.AddSpec{Source: si.Magnet, FileIndex: -1, Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	st := enginetest.WaitStatus(t, task, enginetest.EventWait, func(s engine.Status) bool {
		return s.TotalBytes > 0 && s.BufferedBytes == s.TotalBytes && s.BufferedSeconds > 0
	})
	if st.BufferedSeconds < 29.9 || st.BufferedSeconds > 30.1 {
		t.Errorf("Status() buffered the whole file as %.2f s, want 30 s", st.BufferedSeconds)
	}
}
