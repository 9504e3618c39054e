package media

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
	"github.com/torrentclaw/cli/internal/hls"
	"github.com/torrentclaw/cli/internal/token"
)

// makeClip writes a small H.264/AAC MP4 (4 s, 160x120) with ffmpeg.
func makeClip(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "ffmpeg", "-hide_banner", "-v", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
}

func TestHLS(t *testing.T) {
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed", bin)
		}
	}
	dir := filepath.Join(t.TempDir(), "Clip")
	makeClip(t, filepath.Join(dir, "clip.mp4"))
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{})
	si := seeder.Add(t, dir)
	leech := enginetest.NewEngine(t)
	task, err := leech.Add(t.Context(), engine.AddSpec{Source: si.Magnet, FileIndex: -1, Stream: true})
	if err != nil {
		t.Fatal(err)
	}

	mgr, err := hls.New(hls.Options{Dir: t.TempDir(), SegmentSeconds: 2, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(t.Context())
	runDone := make(chan error, 1) // buffered: read once in cleanup
	go func() { runDone <- mgr.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-runDone; err != nil {
			t.Errorf("hls Run() = %v", err)
		}
	})

	tokens := token.New(token.Options{RequireToken: true})
	internal := token.New(token.Options{RequireToken: true})
	tok, itok := mintToken(t), mintToken(t)
	if err := tokens.Grant(task.ID(), tok, token.IssuerOrigin, token.TaskScope(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := internal.Grant(task.ID(), itok, token.IssuerOrigin, token.TaskScope(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	_, base, addr := startServer(t, Options{Engine: leech, Tokens: tokens, Internal: internal, HLS: mgr, Logger: testLogger(t)})
	client := newClient(t)

	sess, err := mgr.Create(t.Context(), hls.Spec{TaskID: task.ID(), InputURL: InternalStreamURL(addr, task.ID(), itok, -1)})
	if err != nil {
		t.Fatalf("Create() = %v", err)
	}
	hlsURL := func(resource string, tok token.Token) string {
		u := base + "/hls/" + sess.ID() + "/" + resource
		if tok != "" {
			u += "?t=" + string(tok)
		}
		return u
	}
	resp, body := do(t, client, http.MethodGet, base+"/nope")
	ref := dump(t, resp, body)
	refused := func(t *testing.T, u string) {
		t.Helper()
		resp, body := do(t, client, http.MethodGet, u)
		if got := dump(t, resp, body); got != ref {
			t.Errorf("GET %s:\n%s\nwant the reference 404:\n%s", redact(u), got, ref)
		}
	}

	t.Run("playlists and a segment with the token", func(t *testing.T) {
		resp, body := do(t, client, http.MethodGet, hlsURL("master.m3u8", tok))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET master.m3u8 = %d %s", resp.StatusCode, body)
		}
		if got := resp.Header.Get("Content-Type"); got != "application/vnd.apple.mpegurl" {
			t.Errorf("master.m3u8 Content-Type = %q", got)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("master.m3u8 Cache-Control = %q, want no-store", got)
		}
		if !strings.Contains(string(body), "?t="+string(tok)) {
			t.Errorf("master.m3u8 does not carry the token:\n%s", body)
		}
		resp, body = do(t, client, http.MethodGet, hlsURL("index.m3u8", tok))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET index.m3u8 = %d %s", resp.StatusCode, body)
		}
		var seg string
		for _, line := range strings.Split(string(body), "\n") {
			if line != "" && !strings.HasPrefix(line, "#") {
				seg = line
				break
			}
		}
		if !strings.Contains(seg, "?t="+string(tok)) {
			t.Fatalf("first segment URI %q lacks the token", seg)
		}
		name, _, _ := strings.Cut(seg, "?")
		resp, body = do(t, client, http.MethodGet, hlsURL(name, tok))
		if resp.StatusCode != http.StatusOK || len(body) == 0 || body[0] != 0x47 {
			t.Fatalf("GET %s = %d, %d bytes; want 200 and MPEG-TS", name, resp.StatusCode, len(body))
		}
		if got := resp.Header.Get("Content-Type"); got != "video/mp2t" {
			t.Errorf("segment Content-Type = %q, want video/mp2t", got)
		}
		resp, _ = do(t, client, http.MethodGet, hlsURL(name, tok), "Range", "bytes=0-187")
		if resp.StatusCode != http.StatusPartialContent {
			t.Errorf("segment Range: status %d, want 206", resp.StatusCode)
		}
	})

	t.Run("playlists gzipped for clients that accept it", func(t *testing.T) {
		for _, name := range []string{"master.m3u8", "index.m3u8"} {
			resp, plain := do(t, client, http.MethodGet, hlsURL(name, tok))
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "" {
				t.Fatalf("GET %s without Accept-Encoding = %d, Content-Encoding %q", name, resp.StatusCode, resp.Header.Get("Content-Encoding"))
			}
			if len(plain) < gzipMinPlaylist {
				t.Fatalf("%s is %d bytes, under the %d this test needs", name, len(plain), gzipMinPlaylist)
			}
			resp, zipped := do(t, client, http.MethodGet, hlsURL(name, tok), "Accept-Encoding", "gzip, deflate, br")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" ||
				!strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
				t.Fatalf("GET %s with Accept-Encoding gzip = %d, Content-Encoding %q, Vary %q", name, resp.StatusCode,
					resp.Header.Get("Content-Encoding"), resp.Header.Get("Vary"))
			}
			if resp.Header.Get("Content-Length") != strconv.Itoa(len(zipped)) {
				t.Errorf("%s gzipped: Content-Length %s for %d bytes", name, resp.Header.Get("Content-Length"), len(zipped))
			}
			zr, err := gzip.NewReader(bytes.NewReader(zipped))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) {
				t.Errorf("%s gzipped decompresses to\n%s\nwant\n%s", name, got, plain)
			}
			resp, body := do(t, client, http.MethodGet, hlsURL(name, tok), "Accept-Encoding", "gzip;q=0, identity")
			if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, plain) {
				t.Errorf("GET %s with gzip;q=0: Content-Encoding %q, body changed", name, resp.Header.Get("Content-Encoding"))
			}
		}
	})

	t.Run("refused", func(t *testing.T) {
		refused(t, hlsURL("master.m3u8", ""))
		refused(t, hlsURL("index.m3u8", mintToken(t)))
		refused(t, hlsURL("index.m3u8", itok)) // internal tokens are for /stream only
		refused(t, hlsURL("seg-99999.ts", ""))
		refused(t, hlsURL("nope.txt", tok)) // authorized, but not a resource
		refused(t, base+"/hls/no-such-session/index.m3u8?t="+string(tok))
	})

	t.Run("closed session", func(t *testing.T) {
		if err := sess.Close(); err != nil {
			t.Fatal(err)
		}
		refused(t, hlsURL("master.m3u8", tok))
		refused(t, hlsURL("index.m3u8", tok))
	})
}

func TestHLSUnavailable(t *testing.T) {
	tokens := token.New(token.Options{RequireToken: true})
	tok := mintToken(t)
	if err := tokens.Grant("task", tok, token.IssuerOrigin, token.TaskScope(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	noFFmpeg, err := hls.New(hls.Options{Dir: t.TempDir(), FFmpegPath: filepath.Join(t.TempDir(), "no-ffmpeg"), FFprobePath: filepath.Join(t.TempDir(), "no-ffprobe")})
	if err != nil {
		t.Fatal(err)
	}
	if err := noFFmpeg.Available(); !errors.Is(err, hls.ErrNoFFmpeg) {
		t.Fatalf("Available() = %v, want ErrNoFFmpeg", err)
	}
	for _, tc := range []struct {
		name    string
		mgr     *hls.Manager
		wantMsg string
	}{
		{"nil manager", nil, "disabled"},
		{"no ffmpeg", noFFmpeg, "ffmpeg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, base, _ := startServer(t, Options{Engine: noEngine{}, Tokens: tokens, HLS: tc.mgr})
			client := newClient(t)
			resp, body := do(t, client, http.MethodGet, base+"/hls/0b5f8a6e-1c2d-4e3f-8a9b-0c1d2e3f4a5b/master.m3u8?t="+string(tok))
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), tc.wantMsg) {
				t.Errorf("GET /hls without HLS = %d %q, want 503 mentioning %q", resp.StatusCode, body, tc.wantMsg)
			}
			for _, u := range []string{
				base + "/hls/abc/master.m3u8",                    // no token
				base + "/hls/abc/master.m3u8?t=short",            // not a token
				base + "/hls/a%20b/master.m3u8?t=" + string(tok), // bad session ID
			} {
				resp, body := do(t, client, http.MethodGet, u)
				if resp.StatusCode != http.StatusNotFound || string(body) != notFoundBody {
					t.Errorf("GET %s without HLS = %d %q, want 404", redact(u), resp.StatusCode, body)
				}
			}
		})
	}
}
