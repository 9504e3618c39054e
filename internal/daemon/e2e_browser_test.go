package daemon

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// hlsJSEnv names the hls.js build the browser test serves (.ci/e2e-deps.sh
// prints it).
const hlsJSEnv = "TORRENTCLAW_HLSJS"

// e2eReport is one progress report of testdata/player.html.
type e2eReport struct {
	ID, Phase, Engine, Msg string
	T, D, Mid              float64
	At                     time.Time // when the report arrived
}

// e2ePage serves the player page, hls.js and the report endpoint, on its
// own origin (not the media listener's), like the website would.
type e2ePage struct {
	srv   *httptest.Server
	hlsJS string // path of hls.min.js; "" when not installed

	// mu guards reports and changed.
	mu      sync.Mutex
	reports []e2eReport
	changed chan struct{} // closed and replaced on every report
}

func newE2EPage(t *testing.T, hlsJS string) *e2ePage {
	t.Helper()
	html, err := os.ReadFile(filepath.Join("testdata", "player.html"))
	if err != nil {
		t.Fatal(err)
	}
	p := &e2ePage{hlsJS: hlsJS, changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /player.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(html)
	})
	mux.HandleFunc("GET /hls.min.js", func(w http.ResponseWriter, r *http.Request) {
		if p.hlsJS == "" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		http.ServeFile(w, r, p.hlsJS)
	})
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		rep := e2eReport{ID: q.Get("id"), Phase: q.Get("phase"), Engine: q.Get("engine"), Msg: q.Get("msg"), At: time.Now()}
		rep.T, _ = strconv.ParseFloat(q.Get("t"), 64)
		rep.D, _ = strconv.ParseFloat(q.Get("d"), 64)
		rep.Mid, _ = strconv.ParseFloat(q.Get("mid"), 64)
		p.mu.Lock()
		p.reports = append(p.reports, rep)
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// final waits for the report that ends a run of id: seeked, error or
// unsupported. It returns every report of id so far. chromiumOut is shown
// (redacted) when Chromium dies or the page never finishes.
func (p *e2ePage) final(t *testing.T, id string, within time.Duration, chromiumExited <-chan struct{}, chromiumOut func() string) (e2eReport, []e2eReport) {
	t.Helper()
	timeout := time.NewTimer(within)
	defer timeout.Stop()
	for {
		p.mu.Lock()
		var mine []e2eReport
		for _, r := range p.reports {
			if r.ID == id {
				mine = append(mine, r)
			}
		}
		ch := p.changed
		p.mu.Unlock()
		for _, r := range mine {
			switch r.Phase {
			case "seeked", "error", "unsupported":
				return r, mine
			}
		}
		select {
		case <-ch:
		case <-chromiumExited:
			t.Fatalf("chromium exited before the page finished; reports: %+v\nchromium output:\n%s", mine, chromiumOut())
		case <-timeout.C:
			t.Fatalf("no final report from the page within %s; reports: %+v\nchromium output:\n%s", within, mine, chromiumOut())
		}
	}
}

// e2eChromium starts headless Chromium on pageURL. It returns a channel
// closed when Chromium exits, and its output (for failures). Chromium and
// its helpers (one process group) are killed when the test ends.
// chromiumArgs returns the flags every headless Chromium in these tests
// needs (no background traffic on a closed network, runs as root in CI, a
// fresh profile), followed by extra.
func chromiumArgs(t testing.TB, extra ...string) []string {
	args := []string{
		"--headless",
		"--no-sandbox", // as root in CI containers; the page is our own
		"--disable-gpu",
		"--disable-quic",
		"--no-first-run",
		"--no-default-browser-check",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(),
	}
	return append(args, extra...)
}

func e2eChromium(t *testing.T, bin, pageURL string) (<-chan struct{}, *lockedBuffer) {
	t.Helper()
	out := &lockedBuffer{}
	cmd := exec.Command(bin, chromiumArgs(t,
		"--autoplay-policy=no-user-gesture-required",
		pageURL)...)
	cmd.Stdout, cmd.Stderr = out, out
	return startBrowser(t, cmd, "chromium"), out
}

// startBrowser starts a browser in a process group of its own (sysproc_*_test.go) and
// kills the whole group when the test ends: Chromium's zygote, renderers and utility
// processes, Firefox's content processes. The channel is closed once the browser exited.
func startBrowser(t testing.TB, cmd *exec.Cmd, name string) <-chan struct{} {
	t.Helper()
	inOwnGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		killGroup(cmd)
		<-exited
	})
	return exited
}

// TestE2EBrowser plays the daemon's streams in headless Chromium: the raw
// /stream of an H.264/AAC MP4, and HLS sessions (copy and transcode paths)
// with the browser's own HLS and with hls.js. The page plays past 3 s, seeks
// to the middle and plays on past middle + 1 s.
func TestE2EBrowser(t *testing.T) {
	e2eStart(t)
	chromium := e2eTool(t, "chromium")
	hlsJS := os.Getenv(hlsJSEnv)
	if hlsJS != "" {
		if _, err := os.Stat(hlsJS); err != nil {
			t.Logf("%s=%s: %v", hlsJSEnv, hlsJS, err)
			hlsJS = ""
		}
	}
	page := newE2EPage(t, hlsJS)

	_, ffmpegErr := exec.LookPath("ffmpeg")
	var mkv string
	if ffmpegErr == nil {
		mkv = e2eMakeMedia(t, t.TempDir(), e2eTranscodeMKV)
	}

	cfg := testConfig(t, t.TempDir())
	cfg.HLS.SegmentSeconds = e2eSegSeconds
	// The page's origin differs from the media listener's: hls.js fetches
	// the playlists and segments with CORS.
	cfg.Stream.CORSOrigins = []string{page.srv.URL}
	logs := &logBuffer{}
	r := startDaemon(t, cfg, logs)
	ctx := t.Context()
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{})

	hlsOK := ffmpegErr == nil && r.d.hlsError == nil
	sample, err := r.client.AddTask(ctx, control.AddRequest{
		Source: seeder.Add(t, filepath.Join("..", "..", "testdata", "sample.mp4")).Magnet, FileIndex: -1, HLS: hlsOK,
	})
	if err != nil {
		t.Fatalf("AddTask(sample.mp4) error = %v", err)
	}
	var transcode control.AddResponse
	if mkv != "" {
		if transcode, err = r.client.AddTask(ctx, control.AddRequest{Source: seeder.Add(t, mkv).Magnet, FileIndex: -1, HLS: hlsOK}); err != nil {
			t.Fatalf("AddTask(%s) error = %v", e2eTranscodeMKV, err)
		}
	}

	cases := []struct {
		name, engine string
		src          func() string
		needs        string // "", "ffmpeg" or "hls.js"
	}{
		{"raw mp4 stream", "raw", func() string { return sample.StreamURL }, ""},
		{"native hls copy", "native", func() string { return sample.HLSURL }, "ffmpeg"},
		{"hlsjs hls copy", "hlsjs", func() string { return sample.HLSURL }, "hls.js"},
		{"hlsjs hls transcode", "hlsjs", func() string { return transcode.HLSURL }, "hls.js"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.needs != "" && !hlsOK {
				e2eMissing(t, "ffmpeg is not installed (HLS unavailable)")
			}
			if c.needs == "hls.js" && hlsJS == "" {
				e2eMissing(t, hlsJSEnv+" does not name hls.min.js")
			}
			id := strconv.Itoa(i)
			q := url.Values{"src": {c.src()}, "engine": {c.engine}, "id": {id}}
			start := time.Now()
			tok := e2eTokenOf(t, c.src())
			exited, out := e2eChromium(t, chromium, page.srv.URL+"/player.html?"+q.Encode())
			final, all := page.final(t, id, 90*time.Second, exited, func() string { return redactBody([]byte(out.String()), tok) })
			switch final.Phase {
			case "unsupported":
				// Not a missing tool: this Chromium build has no native HLS.
				t.Skipf("chromium has no native HLS: %s", final.Msg)
			case "error":
				t.Fatalf("the page failed: %s\nreports: %+v\nchromium output:\n%s",
					redactBody([]byte(final.Msg), tok), redactBody([]byte(fmt.Sprint(all)), tok), redactBody([]byte(out.String()), tok))
			}
			var played *e2eReport
			engine := ""
			for i := range all {
				t.Logf("%s: %s t=%.2f", all[i].At.Sub(start).Round(time.Millisecond), all[i].Phase, all[i].T)
				switch all[i].Phase {
				case "played":
					played = &all[i]
				case "start":
					engine = all[i].Engine
				}
			}
			if played == nil || played.T <= 3 {
				t.Errorf("no report of currentTime past 3 s before the seek: %+v", all)
			}
			if final.Mid <= 0 || final.T <= final.Mid+1 {
				t.Errorf("after the seek to %.1f s currentTime = %.1f s, want past %.1f s", final.Mid, final.T, final.Mid+1)
			}
			if want := e2eDurationOf(t, c.name); want > 0 && (final.D < want-2*e2eSegSeconds || final.D > want+2*e2eSegSeconds) {
				t.Errorf("video.duration = %.2f s, want about %.0f s (the whole title from the start)", final.D, want)
			}
			t.Logf("engine %s: played past 3 s, seeked to %.1f s and played to %.1f s (duration %.1f s) in %s",
				engine, final.Mid, final.T, final.D, time.Since(start).Round(time.Millisecond))
		})
	}
	secrets := []string{sample.Token.Reveal(), e2eTokenOfRaw(sample.HLSURL)}
	if mkv != "" {
		secrets = append(secrets, transcode.Token.Reveal())
	}
	assertNoSecrets(t, logs.String(), secrets...)
}

// e2eDurationOf is the title length a browser case plays.
func e2eDurationOf(t *testing.T, caseName string) float64 {
	t.Helper()
	switch {
	case strings.Contains(caseName, "transcode"):
		return e2eMediaSeconds
	default:
		return 30 // testdata/sample.mp4
	}
}

// e2eTokenOfRaw is e2eTokenOf without a test to fail; "" for a bad URL.
func e2eTokenOfRaw(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Query().Get("t")
}
