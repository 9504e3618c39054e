package daemon

import (
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/clienttest"
)

// TestE2EWatchWebKit plays the /watch page in WebKit, the engine of Safari, which these
// tests cannot run: WebKitGTK's MiniBrowser on an Xvfb, driven over W3C WebDriver
// (webdriver_test.go). WebKit's JavaScript, DOM, <track> and Media Source code is Safari's;
// its media stack is not (GStreamer here, AVFoundation in Safari), so what canPlayType
// answers and which codecs play differ. This WebKit has Media Source Extensions and no
// HLS of its own: it plays the tracks MKV through hls.js and the MP4 raw
// (e2eWatchTwoTitles), and after the raw seek the page must stop saying "Buffering…" and
// send no daemon check while the video plays on. The browser runs in a network namespace
// with only lo.
func TestE2EWatchWebKit(t *testing.T) {
	driver, xvfb := e2eWebKitStart(t)
	if driver == "" {
		return // the test ran in its namespace
	}
	e2eWatchTwoTitles(t, "WebKit", func(t *testing.T) drivenPage {
		p := webKitPage{startWebKit(t, driver, xvfb)}
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
		return p
	}, func(t *testing.T, p drivenPage) {
		const slow = 3 * time.Minute
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
	})
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
