package daemon

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/clienttest"
)

// TestE2EWatchFirefox plays the /watch page in Firefox (Gecko), the other engine users
// bring besides Chromium's: its media stack says yes and no to other types (the page's
// choice between the raw file and hls.js rests on canPlayType), and hls.js runs on its
// Media Source Extensions. Firefox cannot play the MKV itself and plays the MP4 raw
// (e2eWatchTwoTitles). Even with firefoxPrefs, Firefox looks up hosts at start-up (strace
// showed about a hundred connects to the resolver in its first 25 s), so the test runs in
// a network namespace with only lo.
func TestE2EWatchFirefox(t *testing.T) {
	firefox := e2eFirefoxStart(t)
	if firefox == "" {
		return // the test ran in its namespace
	}
	e2eWatchTwoTitles(t, "Firefox", func(t *testing.T) drivenPage {
		return firefoxPage{startFirefox(t, firefox, "normal")}
	}, nil)
}

// drivenPage is a browserPage the test also navigates and photographs: Firefox over
// Marionette, WebKit over W3C WebDriver.
type drivenPage interface {
	browserPage
	// navigate loads url and returns once the page has loaded.
	navigate(url string)
	// screenshot returns a PNG of the viewport, base64.
	screenshot() string
}

// e2eWatchTwoTitles is the page test of a browser other than Chromium, named name (for
// messages and the screenshot watch-page-<name>.png); open starts it once the first
// daemon runs. Two titles, each from a loopback seeder to a cold daemon:
//   - the tracks MKV (H.264, AAC eng + AC3 5.1 spa, SRT and ASS, a French sidecar): two
//     audio tracks, so hls.js plays it, switches to Spanish audio, shows a French cue,
//     and resumes after a seek to the middle;
//   - an H.264/AAC MP4, played raw from /stream, with the French sidecar's cue and a seek.
//
// No CSP violation after load, no request to another origin, a screenshot of the HLS
// page kept as an artifact. afterRawSeek, when not nil, checks more once the raw path
// has resumed after its seek.
func e2eWatchTwoTitles(t *testing.T, name string, open func(t *testing.T) drivenPage, afterRawSeek func(t *testing.T, p drivenPage)) {
	const seconds = 30
	const slow = 3 * time.Minute // a race-enabled daemon on a busy 2-core machine
	film := e2eMakeTracks(t, t.TempDir(), seconds)
	cfg := testConfig(t, t.TempDir())
	cfg.HLS.SegmentSeconds = e2eSegSeconds
	r, add, logs := e2eWatchTask(t, cfg, film)
	base := e2eMediaBase(r)

	p := open(t)
	state := func() pageState {
		var st pageState
		p.eval(pageStateJS, time.Minute, &st)
		return st
	}
	// Navigate returns once the page has loaded; the listener sees what comes after
	// (Chromium's test, which can install it before the page's own script, covers the load).
	const cspJS = `(() => { window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI)); return true; })()`
	p.navigate(e2eWatchURL(r, add))
	p.eval(cspJS, time.Minute, nil)
	start := time.Now()
	waitPage(t, p, `document.getElementById('video').currentTime > 3`, slow, "play past 3 s")
	st := state()
	t.Logf("played past 3 s %s after load: %+v", time.Since(start).Round(time.Millisecond), st)
	if st.Engine != "hlsjs" {
		t.Fatalf("page state %+v, want hls.js playing the MKV", st)
	}
	if len(st.AudioOptions) != 2 || !strings.HasPrefix(st.AudioOptions[1], "Spanish") || len(st.SubOptions) != 4 {
		t.Errorf("menus: audio %q subtitles %q, want 2 audio tracks and Off + 3 subtitles", st.AudioOptions, st.SubOptions)
	}

	p.eval(`(() => { const a = document.getElementById('audio'); a.value = '1'; a.dispatchEvent(new Event('change')); return true; })()`, time.Minute, nil)
	waitPage(t, p, `document.body.dataset.audio === 'es'`, slow, "hls.js switches to the Spanish rendition")
	var t0 float64
	p.eval(`document.getElementById('video').currentTime`, time.Minute, &t0)
	waitPage(t, p, fmt.Sprintf(`document.getElementById('video').currentTime > %f + 1.5`, t0), slow, "playback continues after the audio switch")
	// WebKitGTK fails hls.js's first append after an audio switch (a fatal
	// bufferAppendError), and hls.js rebuilds the media source and plays on.
	t.Logf("after the audio switch: %s", state().Media)

	p.eval(e2ePickSubsJS("French"), time.Minute, nil)
	waitPage(t, p, e2eCueShowingJS(e2eFreCue), slow, "a French cue becomes active")

	mid := float64(seconds) / 2
	p.eval(fmt.Sprintf(`(() => { document.getElementById('video').currentTime = %f; return true; })()`, mid), time.Minute, nil)
	waitPage(t, p, fmt.Sprintf(`document.getElementById('video').currentTime > %f && !document.getElementById('video').paused`, mid+1), slow, "playback resumes after the seek")
	waitPage(t, p, e2eCueShowingJS(e2eFreCue), slow, "a French cue after the seek")
	st = state()
	t.Logf("after the audio switch, the French subtitles and the seek to %.0f s: %+v", mid, st)
	saveScreenshot(t, p.screenshot(), "watch-page-"+strings.ToLower(name)+".png")
	firefoxPageChecks(t, p, base, st)
	assertNoSecrets(t, logs.String(), add.Token.Reveal())

	// The MP4: the browser plays it itself.
	mp4 := e2eMakeMP4(t, t.TempDir(), seconds)
	cfg = testConfig(t, t.TempDir())
	r, add, logs = e2eWatchTask(t, cfg, mp4)
	base = e2eMediaBase(r)
	p.navigate(e2eWatchURL(r, add))
	p.eval(cspJS, time.Minute, nil)
	waitPage(t, p, `document.getElementById('video').currentTime > 3`, slow, "play the MP4 past 3 s")
	st = state()
	if st.Engine != "raw" {
		t.Fatalf("page state %+v, want the MP4 played raw", st)
	}
	p.eval(e2ePickSubsJS("French"), time.Minute, nil)
	waitPage(t, p, e2eCueShowingJS(e2eFreCue), slow, "a French cue on the raw path")
	p.eval(fmt.Sprintf(`(() => { document.getElementById('video').currentTime = %f; return true; })()`, mid), time.Minute, nil)
	waitPage(t, p, fmt.Sprintf(`document.getElementById('video').currentTime > %f && !document.getElementById('video').paused`, mid+1), slow, "the raw path resumes after the seek")
	if afterRawSeek != nil {
		afterRawSeek(t, p)
	}
	st = state()
	t.Logf("MP4 after the seek to %.0f s: %+v", mid, st)
	firefoxPageChecks(t, p, base, st)
	if n := strings.Count(logs.String(), "ffmpeg start"); n > 0 {
		t.Errorf("%d ffmpeg runs for a file %s plays raw", n, name)
	}
	assertNoSecrets(t, logs.String(), add.Token.Reveal())
}

// firefoxPageChecks fails on CSP violations and on requests to another origin than the
// daemon's media listener.
func firefoxPageChecks(t *testing.T, p browserPage, base string, st pageState) {
	t.Helper()
	if len(st.Violations) > 0 {
		t.Errorf("CSP violations: %q", st.Violations)
	}
	var resources []string
	p.eval(pageResourcesJS, time.Minute, &resources)
	if len(resources) < 3 {
		t.Errorf("the page loaded %d resources; want at least its assets and media", len(resources))
	}
	for _, res := range resources {
		if !strings.HasPrefix(res, base+"/") {
			t.Errorf("the page requested another origin: %s", redactURL(res))
		}
	}
}

// e2eFirefoxStart skips or fails a Firefox test that cannot run here, and runs the test
// in a network namespace with only lo (clienttest.Isolate). It returns Firefox's path
// there, and "" in the process that started it, which must return.
func e2eFirefoxStart(t *testing.T) string {
	t.Helper()
	e2eStart(t)
	e2eNeedFFmpeg(t)
	firefox := e2eFirefox(t)
	if !clienttest.Isolate(t) {
		return ""
	}
	return firefox
}

// e2eFirefox returns the path of Firefox (Debian's firefox-esr, else firefox).
func e2eFirefox(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"firefox-esr", "firefox"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	e2eMissing(t, "firefox-esr is not installed")
	return ""
}

// TestE2EWatchFirefoxRestart is TestE2EWatchDaemonRestart in Firefox. Firefox reports the
// raw stream's network error as soon as the daemon is gone and plays on from what it has
// buffered; the page used to resume from where it stood at the error, seconds back.
func TestE2EWatchFirefoxRestart(t *testing.T) {
	firefox := e2eFirefoxStart(t)
	if firefox == "" {
		return // the test ran in its namespace
	}
	// Firefox reports a raw stream's network error at once; hls.js retries a segment
	// for about 14 s, and the page's probe finds the daemon gone before that.
	e2eDaemonRestart(t, map[string]string{"hlsjs": "probe", "raw": "error"}, func(t *testing.T, pageURL string) browserPage {
		p := firefoxPage{startFirefox(t, firefox, "normal")}
		p.navigate(pageURL)
		return p
	})
}

// TestE2EWatchFirefoxPausedTask is TestE2EWatchPausedTask in Firefox, which reports the
// raw stream's 503 as an error at once and plays on from what it holds.
func TestE2EWatchFirefoxPausedTask(t *testing.T) {
	firefox := e2eFirefoxStart(t)
	if firefox == "" {
		return // the test ran in its namespace
	}
	e2ePausedTask(t, func(t *testing.T, pageURL string) browserPage {
		p := firefoxPage{startFirefox(t, firefox, "normal")}
		p.navigate(pageURL)
		return p
	})
}
