package daemon

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/clienttest"
)

// TestE2EWatchWebKit plays the /watch page in WebKit, the engine of Safari, which these
// tests cannot run: WebKitGTK's MiniBrowser on an Xvfb, driven over W3C WebDriver
// (webdriver_test.go). WebKit's JavaScript, DOM, <track> and Media Source code is Safari's;
// its media stack is not (GStreamer here, AVFoundation in Safari), so what canPlayType
// answers and which codecs play differ. This WebKit has Media Source Extensions and no
// HLS of its own, so the page plays HLS through hls.js. Two titles, as in
// TestE2EWatchFirefox, each from a loopback seeder to a cold daemon:
//   - the tracks MKV (H.264, AAC eng + AC3 5.1 spa, SRT and ASS, a French sidecar): two
//     audio tracks, so hls.js plays it, switches to Spanish audio, shows a French cue,
//     and resumes after a seek to the middle;
//   - an H.264/AAC MP4, which it plays raw from /stream, with the French sidecar's cue and
//     a seek.
//
// No CSP violation after load, no request to another origin, a screenshot of the HLS
// page kept as an artifact. The browser runs in a network namespace with only lo.
func TestE2EWatchWebKit(t *testing.T) {
	driver, xvfb := e2eWebKitStart(t)
	if driver == "" {
		return // the test ran in its namespace
	}
	const seconds = 30
	const slow = 3 * time.Minute // a race-enabled daemon on a busy 2-core machine
	film := e2eMakeTracks(t, t.TempDir(), seconds)
	cfg := testConfig(t, t.TempDir())
	cfg.HLS.SegmentSeconds = e2eSegSeconds
	r, add, logs := e2eWatchTask(t, cfg, film)
	base := e2eMediaBase(r)

	w := startWebKit(t, driver, xvfb)
	p := webKitPage{w}
	state := func() pageState {
		var st pageState
		p.eval(pageStateJS, time.Minute, &st)
		return st
	}
	var support struct {
		MSE            bool
		HLS, MP4, MKV  string
		UserAgent      string
		MSEH264AAC     bool
		MSEH264AC3     bool
		RawAC3InMP4    string
		RawMatroskaAVC string
	}
	// What this WebKit says it plays, for the log: Safari's answers differ (its own HLS,
	// no Matroska).
	p.eval(`(() => {
		const v = document.createElement('video');
		const ms = window.MediaSource;
		return {
			MSE: !!ms, HLS: v.canPlayType('application/vnd.apple.mpegurl'),
			MP4: v.canPlayType('video/mp4; codecs="avc1.64001f, mp4a.40.2"'), MKV: v.canPlayType('video/x-matroska'),
			UserAgent: navigator.userAgent,
			MSEH264AAC: !!ms && ms.isTypeSupported('video/mp4; codecs="avc1.64001f, mp4a.40.2"'),
			MSEH264AC3: !!ms && ms.isTypeSupported('video/mp4; codecs="avc1.64001f, ac-3"'),
			RawAC3InMP4: v.canPlayType('video/mp4; codecs="avc1.64001f, ac-3"'),
			RawMatroskaAVC: v.canPlayType('video/x-matroska; codecs="avc1.64001f, mp4a.40.2"'),
		};
	})()`, time.Minute, &support)
	t.Logf("WebKit plays: %+v", support)
	if !support.MSE {
		t.Fatalf("this WebKit has no MediaSource: the page cannot use hls.js (%+v)", support)
	}

	// Navigate returns once the page has loaded; the listener sees what comes after
	// (Chromium's test, which can install it before the page's own script, covers the load).
	w.navigate(e2eWatchURL(r, add))
	p.eval(`(() => { window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI)); return true; })()`, time.Minute, nil)
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
	saveScreenshot(t, w.screenshot(), "watch-page-webkit.png")
	firefoxPageChecks(t, p, base, st)
	assertNoSecrets(t, logs.String(), add.Token.Reveal())

	// The MP4: WebKit plays it itself.
	mp4 := e2eMakeMP4(t, t.TempDir(), seconds)
	cfg = testConfig(t, t.TempDir())
	r, add, logs = e2eWatchTask(t, cfg, mp4)
	base = e2eMediaBase(r)
	w.navigate(e2eWatchURL(r, add))
	p.eval(`(() => { window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI)); return true; })()`, time.Minute, nil)
	waitPage(t, p, `document.getElementById('video').currentTime > 3`, slow, "play the MP4 past 3 s")
	st = state()
	if st.Engine != "raw" {
		t.Fatalf("page state %+v, want the MP4 played raw", st)
	}
	p.eval(e2ePickSubsJS("French"), time.Minute, nil)
	waitPage(t, p, e2eCueShowingJS(e2eFreCue), slow, "a French cue on the raw path")
	p.eval(fmt.Sprintf(`(() => { document.getElementById('video').currentTime = %f; return true; })()`, mid), time.Minute, nil)
	waitPage(t, p, fmt.Sprintf(`document.getElementById('video').currentTime > %f && !document.getElementById('video').paused`, mid+1), slow, "the raw path resumes after the seek")
	// WebKitGTK plays on after this seek with its readyState left at HAVE_CURRENT_DATA
	// and no 'playing' event: the page said "Buffering…" while it played.
	waitPage(t, p, `document.getElementById('status').textContent === ''`, slow, "the page stops saying Buffering… once playback goes on")
	// With readyState at HAVE_CURRENT_DATA the page must not take playback for a wait
	// either: it asks the daemon whether it is there (a HEAD of player.css) only while
	// time stands still. Three more seconds of playback, and no such request.
	const probesJS = `performance.getEntriesByType('resource').filter(e => e.name.endsWith('/watch/assets/player.css') && e.initiatorType === 'fetch').length`
	var probes, probesAfter int
	var at float64
	p.eval(probesJS, time.Minute, &probes)
	p.eval(`document.getElementById('video').currentTime`, time.Minute, &at)
	waitPage(t, p, fmt.Sprintf(`document.getElementById('video').currentTime > %f + 3 || document.getElementById('video').ended`, at), slow, "three more seconds of playback")
	p.eval(probesJS, time.Minute, &probesAfter)
	if probesAfter != probes {
		t.Errorf("the page asked whether the daemon is there %d times while the video played on", probesAfter-probes)
	}
	st = state()
	t.Logf("MP4 after the seek to %.0f s: %+v", mid, st)
	firefoxPageChecks(t, p, base, st)
	if n := strings.Count(logs.String(), "ffmpeg start"); n > 0 {
		t.Errorf("%d ffmpeg runs for a file WebKit plays raw", n)
	}
	assertNoSecrets(t, logs.String(), add.Token.Reveal())
}

// e2eWebKitStart skips or fails a WebKit test that cannot run here, and runs the test in
// a network namespace with only lo (clienttest.Isolate). It returns the paths of
// WebKitWebDriver and Xvfb there, and "" in the process that started it, which must
// return.
func e2eWebKitStart(t *testing.T) (driver, xvfb string) {
	t.Helper()
	e2eStart(t)
	e2eNeedFFmpeg(t)
	driver, err := exec.LookPath("WebKitWebDriver")
	if err != nil {
		e2eMissing(t, "WebKitWebDriver is not installed (webkit2gtk-driver)")
	}
	xvfb, err = exec.LookPath("Xvfb")
	if err != nil {
		e2eMissing(t, "Xvfb is not installed (xvfb)")
	}
	if !clienttest.Isolate(t) {
		return "", ""
	}
	return driver, xvfb
}
