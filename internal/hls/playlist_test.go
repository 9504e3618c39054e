package hls

import (
	"bytes"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var resourceTests = []struct {
	name  string
	kind  resourceKind
	index int
	ok    bool
}{
	{"master.m3u8", kindMaster, 0, true},
	{"index.m3u8", kindIndex, 0, true},
	{"seg-00000.ts", kindSegment, 0, true},
	{"seg-00042.ts", kindSegment, 42, true},
	{"seg-123456.ts", kindSegment, 123456, true},
	{"seg-999999999.ts", kindSegment, 999999999, true},
	{"seg-0000000001.ts", 0, 0, false},
	{"seg-000001.ts", 0, 0, false}, // not canonical
	{"seg-1.ts", 0, 0, false},
	{"seg--0001.ts", 0, 0, false},
	{"seg-+0001.ts", 0, 0, false},
	{"seg-00001.mp4", 0, 0, false},
	{"../master.m3u8", 0, 0, false},
	{"Master.m3u8", 0, 0, false},
	{"", 0, 0, false},
	{"seg-00001.ts\x00", 0, 0, false},
}

func TestParseResource(t *testing.T) {
	for _, tc := range resourceTests {
		r, err := parseResource(tc.name)
		if ok := err == nil; ok != tc.ok || (ok && (r.kind != tc.kind || r.index != tc.index)) {
			t.Errorf("parseResource(%q) = %+v, %v; want kind %d index %d ok %v", tc.name, r, err, tc.kind, tc.index, tc.ok)
		}
	}
}

func TestContentType(t *testing.T) {
	for name, want := range map[string]string{
		"master.m3u8":  "application/vnd.apple.mpegurl",
		"index.m3u8":   "application/vnd.apple.mpegurl",
		"seg-00001.ts": "video/mp2t",
		"a1-00001.ts":  "video/mp2t",
		"audio-1.m3u8": "application/vnd.apple.mpegurl",
		"subs-0.m3u8":  "application/vnd.apple.mpegurl",
		"subs-0.vtt":   "text/vtt; charset=utf-8",
		"x.ts":         "",
	} {
		if got := ContentType(name); got != want {
			t.Errorf("ContentType(%q) = %q, want %q", name, got, want)
		}
	}
}

var sessionIDTests = []struct {
	id string
	ok bool
}{
	{"a", true},
	{"0f8fad5b-d9cb-469f-a165-70867728950e", true},
	{"A_z-9", true},
	{strings.Repeat("x", 128), true},
	{strings.Repeat("x", 129), false},
	{"", false},
	{"a b", false},
	{"a/b", false},
	{"..", false},
	{"é", false},
}

func TestValidSessionID(t *testing.T) {
	for _, tc := range sessionIDTests {
		if got := ValidSessionID(tc.id); got != tc.ok {
			t.Errorf("ValidSessionID(%q) = %v, want %v", tc.id, got, tc.ok)
		}
	}
}

func TestKeyframePlan(t *testing.T) {
	tests := []struct {
		name      string
		keyframes []float64
		duration  float64
		want      []float64 // starts
		wantErr   bool
	}{
		{"regular gop", []float64{0, 2, 4, 6, 8, 10}, 12, []float64{0, 4, 8}, false},
		{"gop equals segment", []float64{0, 4, 8}, 12, []float64{0, 4, 8}, false},
		{"irregular", []float64{0.005, 1.405, 4.605, 5.205, 9.005, 10.405}, 12.005, []float64{0, 4.605, 9.005}, false},
		{"nearest earlier keyframe", []float64{0, 3.5, 9}, 12, []float64{0, 3.5, 9}, false},
		{"tiny tail merged", []float64{0, 4, 8, 11.9}, 12, []float64{0, 4, 8}, false},
		{"no keyframe after start", []float64{0}, 6, []float64{0}, false},
		{"gop too long", []float64{0, 30}, 60, nil, true},
		{"tail too long", []float64{0, 4}, 40, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := keyframePlan(tc.keyframes, tc.duration, 4)
			if (err != nil) != tc.wantErr {
				t.Fatalf("keyframePlan() error = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && !slices.Equal(p.starts, tc.want) {
				t.Errorf("keyframePlan() starts = %v, want %v", p.starts, tc.want)
			}
		})
	}
}

func TestGridPlan(t *testing.T) {
	tests := []struct {
		duration float64
		n        int
		last     float64
	}{
		{12, 3, 4},
		{12.005, 3, 4.005},
		{12.3, 4, 0.3},
		{0.1, 1, 0.1},
		{7200, 1800, 4},
	}
	for _, tc := range tests {
		p := gridPlan(tc.duration, 4)
		if p.n() != tc.n || math.Abs(p.segDuration(p.n()-1)-tc.last) > 1e-9 {
			t.Errorf("gridPlan(%v) = %d segments, last %v; want %d, %v", tc.duration, p.n(), p.segDuration(p.n()-1), tc.n, tc.last)
		}
		if got := p.indexAt(tc.duration - 0.01); got != p.n()-1 {
			t.Errorf("indexAt(end) = %d, want %d", got, p.n()-1)
		}
	}
}

func TestRenderIndex(t *testing.T) {
	p := &plan{starts: []float64{0, 4.605, 9.005}, duration: 12.005}
	got := string(mediaPlaylistFor(p, "a b+c/d").render())
	want := `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:5
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXTINF:4.605000,
seg-00000.ts?t=a+b%2Bc%2Fd
#EXTINF:4.400000,
seg-00001.ts?t=a+b%2Bc%2Fd
#EXTINF:3.000000,
seg-00002.ts?t=a+b%2Bc%2Fd
#EXT-X-ENDLIST
`
	if got != want {
		t.Errorf("render() =\n%s\nwant\n%s", got, want)
	}
	if got := string(mediaPlaylistFor(p, "").render()); !strings.Contains(got, "\nseg-00000.ts\n") {
		t.Errorf("render without token:\n%s", got)
	}
}

func TestRenderMaster(t *testing.T) {
	v := variant{copyVideo: true, copyAudio: true, hasAudio: true, width: 1920, height: 1080, fps: 23.976,
		videoCodec: "avc1.640028", bandwidth: 9_000_000, avgBandwidth: 6_000_000}
	audios := []*audioRendition{
		{info: TrackInfo{Name: "English", Language: "en", Channels: 2, Default: true, URI: "audio-0.m3u8"}},
		{info: TrackInfo{Name: `Spanish "5.1"`, Language: "es", Channels: 2, URI: "audio-1.m3u8"}},
	}
	subs := []*subRendition{
		{info: TrackInfo{Name: "English", Language: "en", URI: "subs-0.m3u8"}},
		{info: TrackInfo{Name: "PGS", Image: true}},
		{info: TrackInfo{Name: "Track 3", URI: "subs-1.m3u8", Default: true}},
	}
	got := string(renderMaster(v, audios, subs, "tok"))
	want := "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-INDEPENDENT-SEGMENTS\n" +
		"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio-0.m3u8?t=tok\"\n" +
		"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",LANGUAGE=\"es\",NAME=\"Spanish '5.1'\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio-1.m3u8?t=tok\"\n" +
		"#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI=\"subs-0.m3u8?t=tok\"\n" +
		"#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Track 3\",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI=\"subs-1.m3u8?t=tok\"\n" +
		"#EXT-X-STREAM-INF:BANDWIDTH=9000000,AVERAGE-BANDWIDTH=6000000,CODECS=\"avc1.640028,mp4a.40.2\",RESOLUTION=1920x1080,FRAME-RATE=23.976,AUDIO=\"audio\",SUBTITLES=\"subs\"\n" +
		"index.m3u8?t=tok\n"
	if got != want {
		t.Errorf("renderMaster() =\n%s\nwant\n%s", got, want)
	}
}

func TestCodecStrings(t *testing.T) {
	tests := []struct {
		profile string
		level   int
		want    string
	}{
		{"High", 40, "avc1.640028"},
		{"High", 41, "avc1.640029"},
		{"Main", 31, "avc1.4D401F"},
		{"Constrained Baseline", 30, "avc1.42E01E"},
		{"Baseline", 21, "avc1.420015"},
		{"High", 0, "avc1.640028"},
	}
	for _, tc := range tests {
		if got := avc1Codec(tc.profile, tc.level); got != tc.want {
			t.Errorf("avc1Codec(%q, %d) = %q, want %q", tc.profile, tc.level, got, tc.want)
		}
	}
	if got, ok := avc1FromRecord([]byte{1, 0x64, 0x00, 0x28, 0xff}); !ok || got != "avc1.640028" {
		t.Errorf("avc1FromRecord = %q, %v", got, ok)
	}
	if _, ok := avc1FromRecord([]byte{0, 1}); ok {
		t.Error("avc1FromRecord(short) ok")
	}
}

func TestChooseVariant(t *testing.T) {
	base := func() *mediaInfo {
		return &mediaInfo{duration: 100, bitRate: 5_000_000,
			video: &probeStream{CodecName: "h264", Profile: "High", Level: 40, PixFmt: "yuv420p", Width: 1920, Height: 1080, AvgFrameRate: "24000/1001", BitRate: "4800000"},
			audio: &probeStream{CodecName: "aac", Profile: "LC", Channels: 2, BitRate: "192000"}}
	}
	tests := []struct {
		name          string
		edit          func(*mediaInfo)
		copyV, copyA  bool
		width, height int
		codecs        string
	}{
		{"h264 aac", func(*mediaInfo) {}, true, true, 1920, 1080, "avc1.640028,mp4a.40.2"},
		{"ac3 5.1", func(m *mediaInfo) { m.audio.CodecName, m.audio.Channels = "ac3", 6 }, true, false, 1920, 1080, "avc1.640028,mp4a.40.2"},
		{"aac 5.1", func(m *mediaInfo) { m.audio.Channels = 6 }, true, false, 1920, 1080, "avc1.640028,mp4a.40.2"},
		{"he-aac", func(m *mediaInfo) { m.audio.Profile = "HE-AAC" }, true, false, 1920, 1080, "avc1.640028,mp4a.40.2"},
		{"hevc 4k", func(m *mediaInfo) { m.video.CodecName, m.video.Width, m.video.Height = "hevc", 3840, 2160 }, false, true, 1920, 1080, "avc1.640029,mp4a.40.2"},
		{"high10", func(m *mediaInfo) { m.video.Profile, m.video.PixFmt = "High 10", "yuv420p10le" }, false, true, 1920, 1080, "avc1.640029,mp4a.40.2"},
		{"odd size", func(m *mediaInfo) { m.video.CodecName, m.video.Width, m.video.Height = "mpeg4", 721, 405 }, false, true, 722, 406, "avc1.640029,mp4a.40.2"},
		{"60fps", func(m *mediaInfo) { m.video.CodecName, m.video.AvgFrameRate = "vp9", "60/1" }, false, true, 1920, 1080, "avc1.64002A,mp4a.40.2"},
		{"no audio", func(m *mediaInfo) { m.audio = nil }, true, false, 1920, 1080, "avc1.640028"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mi := base()
			tc.edit(mi)
			v := chooseVariant(mi, mi.canCopyVideo())
			if v.copyVideo != tc.copyV || v.copyAudio != tc.copyA || v.width != tc.width || v.height != tc.height || v.codecs() != tc.codecs {
				t.Errorf("chooseVariant() = copy %v/%v %dx%d %s; want %v/%v %dx%d %s",
					v.copyVideo, v.copyAudio, v.width, v.height, v.codecs(), tc.copyV, tc.copyA, tc.width, tc.height, tc.codecs)
			}
			if v.bandwidth <= 0 {
				t.Errorf("bandwidth = %d", v.bandwidth)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	in := "http://127.0.0.1:1/stream?id=x&t=" + testToken
	msg := "[http @ 0x1] " + in + ": Server returned 404 Not Found; token " + testToken
	got := redact(msg, in)
	if strings.Contains(got, testToken) {
		t.Errorf("redact() = %q leaks the token", got)
	}
}

func TestParseListLine(t *testing.T) {
	name, start, end, ok := parseListLine("part-3-00012.ts,48.000000,52.000000\n")
	if !ok || name != "part-3-00012.ts" || start != 48 || end != 52 {
		t.Errorf("parseListLine = %q %v %v %v", name, start, end, ok)
	}
	if idx, ok := partIndex(name, 3); !ok || idx != 12 {
		t.Errorf("partIndex = %d, %v", idx, ok)
	}
	for _, bad := range []string{"", "a,b,c", "x.ts,1", "part-3-00012.ts,1,2,3"} {
		if _, _, _, ok := parseListLine(bad); ok {
			t.Errorf("parseListLine(%q) ok", bad)
		}
	}
	if _, ok := partIndex("part-4-00012.ts", 3); ok {
		t.Error("partIndex accepted another run's file")
	}
}

func FuzzResourceName(f *testing.F) {
	for _, tc := range resourceTests {
		f.Add(tc.name)
	}
	for _, tc := range sessionIDTests {
		f.Add(tc.id)
	}
	for _, name := range []string{"audio-3.m3u8", "a2-00007.ts", "subs-1.m3u8", "subs-1.vtt", "subs-1-17.vtt", "subs-1-017.vtt"} {
		f.Add(name)
	}
	ref := regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidSessionID(s), ref.MatchString(s); got != want {
			t.Errorf("ValidSessionID(%q) = %v, regexp says %v", s, got, want)
		}
		r, err := parseResource(s)
		if err != nil {
			if ContentType(s) != "" {
				t.Errorf("ContentType(%q) set for an invalid name", s)
			}
			return
		}
		var back string
		switch r.kind {
		case kindMaster:
			back = masterName
		case kindIndex:
			back = indexName
		case kindSegment:
			back = segmentName(r.index)
		case kindAudioPlaylist:
			back = audioPlaylistName(r.track)
		case kindAudioSegment:
			back = audioSegmentName(r.track, r.index)
		case kindSubPlaylist:
			back = subtitlePlaylistName(r.track)
		case kindSubtitle:
			back = subtitleFileName(r.track)
		case kindSubWindow:
			back = subtitleWindowName(r.track, r.index)
		}
		if back != s {
			t.Errorf("parseResource(%q) = %+v, which names %q", s, r, back)
		}
		if strings.ContainsAny(s, "/\\") {
			t.Errorf("parseResource accepted a path %q", s)
		}
	})
}

func FuzzMediaPlaylist(f *testing.F) {
	f.Add(mediaPlaylistFor(&plan{starts: []float64{0, 4.605, 9.005}, duration: 12.005}, "tok").render())
	f.Add(mediaPlaylistFor(gridPlan(30, 4), "").render())
	f.Add([]byte("#EXTM3U\n#EXTINF:1,\na\n#EXT-X-ENDLIST\n"))
	f.Add([]byte("#EXTM3U\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pl, err := parseMediaPlaylist(data)
		if err != nil {
			return
		}
		// render(parse(x)) is a fixed point of parse+render.
		once := pl.render()
		pl2, err := parseMediaPlaylist(once)
		if err != nil {
			t.Fatalf("re-parse of rendered playlist: %v\n%s", err, once)
		}
		if twice := pl2.render(); !bytes.Equal(once, twice) {
			t.Errorf("round trip differs:\n%s\n---\n%s", once, twice)
		}
		if len(pl2.segments) != len(pl.segments) {
			t.Errorf("segments %d -> %d", len(pl.segments), len(pl2.segments))
		}
	})
}
