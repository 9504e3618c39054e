package daemon

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/enginetest"
)

// cdp drives headless Chromium over --remote-debugging-pipe: the DevTools
// protocol as NUL-terminated JSON messages on fds 3 (to Chromium) and 4
// (from it). No WebSocket, no port.
type cdp struct {
	t   testing.TB
	out io.Writer // to Chromium

	mu      sync.Mutex // guards nextID, pending
	nextID  int
	pending map[int]chan cdpReply
	exited  chan struct{}
	log     *lockedBuffer
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// startCDP starts headless Chromium with a debugging pipe, and flags.
func startCDP(t testing.TB, bin string, flags ...string) *cdp {
	t.Helper()
	// Chromium reads commands from fd 3 and writes replies to fd 4.
	chromeRead, ourWrite, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ourRead, chromeWrite, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	args := append([]string{
		"--hide-scrollbars",
		"--mute-audio",
		"--window-size=1280,860",
		"--autoplay-policy=no-user-gesture-required",
		"--remote-debugging-pipe"}, flags...)
	cmd := exec.Command(bin, chromiumArgs(t, append(args, "about:blank")...)...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = []*os.File{chromeRead, chromeWrite}
	inOwnGroup(cmd) // sysproc_*_test.go
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	chromeRead.Close()
	chromeWrite.Close()
	c := &cdp{t: t, out: ourWrite, pending: map[int]chan cdpReply{}, exited: make(chan struct{}), log: out}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		r := bufio.NewReader(ourRead)
		for {
			msg, err := r.ReadBytes(0)
			if err != nil {
				return
			}
			var m struct {
				ID int `json:"id"`
				cdpReply
			}
			if json.Unmarshal(bytes.TrimSuffix(msg, []byte{0}), &m) != nil || m.ID == 0 {
				continue // an event
			}
			c.mu.Lock()
			ch := c.pending[m.ID]
			delete(c.pending, m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m.cdpReply
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		// The group is Chromium's own (Setpgid): browser, zygote, renderers.
		killGroup(cmd)
		<-c.exited
		ourWrite.Close()
		ourRead.Close()
		<-readerDone
	})
	return c
}

// newPage opens a blank tab, attaches to it and enables its page events; it
// returns the tab's session for call, eval and waitJS.
func (c *cdp) newPage() string {
	c.t.Helper()
	var target struct {
		TargetID string `json:"targetId"`
	}
	if err := json.Unmarshal(c.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, 30*time.Second), &target); err != nil {
		c.t.Fatal(err)
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := json.Unmarshal(c.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, 30*time.Second), &att); err != nil {
		c.t.Fatal(err)
	}
	c.call(att.SessionID, "Page.enable", map[string]any{}, 30*time.Second)
	return att.SessionID
}

// call sends one command (in session when not "") and returns its result.
func (c *cdp) call(session, method string, params any, within time.Duration) json.RawMessage {
	c.t.Helper()
	res, err := c.tryCall(session, method, params, within)
	if err != nil {
		c.t.Fatal(err)
	}
	return res
}

// tryCall is call that returns the browser's error instead of failing the test (a page
// in the middle of a navigation refuses some methods).
func (c *cdp) tryCall(session, method string, params any, within time.Duration) (json.RawMessage, error) {
	c.t.Helper()
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	ch := make(chan cdpReply, 1) // the reader never blocks on a late reply
	c.pending[id] = ch
	c.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if session != "" {
		msg["sessionId"] = session
	}
	b, err := json.Marshal(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.out.Write(append(b, 0)); err != nil {
		c.t.Fatalf("cdp %s: %v", method, err)
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return nil, fmt.Errorf("cdp %s: %s", method, r.Error.Message)
		}
		return r.Result, nil
	case <-c.exited:
		return nil, fmt.Errorf("chromium exited during %s:\n%s", method, c.log.String())
	case <-time.After(within):
		return nil, fmt.Errorf("cdp %s: no answer within %s", method, within)
	}
}

// eval evaluates a JS expression (awaiting a promise) and decodes its value.
func (c *cdp) eval(session, expr string, within time.Duration, into any) {
	c.t.Helper()
	res := c.call(session, "Runtime.evaluate", map[string]any{
		"expression": expr, "awaitPromise": true, "returnByValue": true,
	}, within)
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		c.t.Fatal(err)
	}
	if r.ExceptionDetails != nil {
		c.t.Fatalf("%s: %s %s", expr, r.ExceptionDetails.Text, r.ExceptionDetails.Exception.Description)
	}
	if into != nil {
		if err := json.Unmarshal(r.Result.Value, into); err != nil {
			c.t.Fatalf("%s = %s: %v", expr, r.Result.Value, err)
		}
	}
}

// waitJS waits, inside the page, until cond (a JS expression) holds or
// within passes; why says what is awaited, for the failure.
func (c *cdp) waitJS(session, cond string, within time.Duration, why string) {
	c.t.Helper()
	waitPage(c.t, chromiumPage{c, session}, cond, within, why)
}

// browserPage is a page in a browser a test or benchmark drives: Chromium over DevTools
// (chromiumPage), Firefox over Marionette (firefoxPage), WebKit over W3C WebDriver
// (webKitPage).
type browserPage interface {
	// eval evaluates a JavaScript expression, awaiting it when it is a Promise, and
	// decodes its value into v (when not nil).
	eval(expr string, within time.Duration, v any)
}

type chromiumPage struct {
	c       *cdp
	session string
}

// e2eBothPaths are the page's two ways to play, with a title that takes each: hls.js for
// the tracks MKV, the raw file for the MP4.
var e2eBothPaths = []struct {
	engine string
	film   func(t testing.TB, dir string, seconds int) string
}{
	{"hlsjs", e2eMakeTracks},
	{"raw", e2eMakeMP4},
}

// openChromium starts a Chromium, opens a tab and navigates it to pageURL.
func openChromium(t *testing.T, chromium, pageURL string) chromiumPage {
	t.Helper()
	c := startCDP(t, chromium)
	p := chromiumPage{c, c.newPage()}
	c.call(p.session, "Page.navigate", map[string]any{"url": pageURL}, 60*time.Second)
	return p
}

// seekJS moves the page's <video> to the given second.
func seekJS(to float64) string {
	return fmt.Sprintf(`(() => { document.getElementById('video').currentTime = %v; return true; })()`, to)
}

func (p chromiumPage) eval(expr string, within time.Duration, v any) {
	p.c.eval(p.session, expr, within, v)
}

// waitPage waits until cond is true in the page; on timeout it fails with the page state.
func waitPage(t testing.TB, p browserPage, cond string, within time.Duration, why string) {
	t.Helper()
	var ok bool
	p.eval(fmt.Sprintf(`new Promise((resolve) => {
		const end = Date.now() + %d;
		const check = () => {
			try { if (%s) { resolve(true); return; } } catch (e) {}
			if (Date.now() > end) { resolve(false); return; }
			setTimeout(check, 50);
		};
		check();
	})`, within.Milliseconds(), cond), within+30*time.Second, &ok)
	if !ok {
		var st pageState
		p.eval(pageStateJS, 30*time.Second, &st)
		t.Fatalf("%s: not within %s; page state %+v", why, within, st)
	}
}

// pageState is what the test reads from the player page.
type pageState struct {
	Engine, Audio, Status string
	Reconnect             string // what noticed the daemon was gone: "probe", "hls" or "error"
	Time, Duration        float64
	AudioOptions          []string
	SubOptions            []string
	Cues                  []string
	Violations            []string
	Resources             []string `json:"-"` // URLs with the token: never printed
	Paused                bool
	// Media is the element's state and what the page recorded of its recoveries, for
	// failure messages: seeking, readyState, networkState, buffered ranges, error code,
	// hls.js's last fatal error, seek nudges and late media recoveries.
	Media string
}

const pageStateJS = `(() => {
	const v = document.getElementById('video');
	const cues = [];
	for (const tt of v.textTracks) {
		if (tt.mode === 'showing' && tt.activeCues) for (const c of tt.activeCues) cues.push(c.text);
	}
	return {
		Engine: document.body.dataset.engine || '', Audio: document.body.dataset.audio || '',
		Reconnect: document.body.dataset.reconnect || '',
		Status: document.getElementById('status').textContent,
		Time: v.currentTime, Duration: v.duration || 0, Paused: v.paused,
		Media: 'seeking=' + v.seeking + ' readyState=' + v.readyState + ' networkState=' + v.networkState +
			' buffered=' + [...Array(v.buffered.length).keys()].map(i => v.buffered.start(i).toFixed(2) + '-' + v.buffered.end(i).toFixed(2)).join(',') +
			' error=' + (v.error ? v.error.code : '') + ' hlsError=' + (document.body.dataset.hlsError || '') +
			' seekNudges=' + (document.body.dataset.seekNudges || 0) + ' recoveries=' + (document.body.dataset.mediaRecoveries || 0),
		AudioOptions: [...document.getElementById('audio').options].map(o => o.textContent),
		SubOptions: [...document.getElementById('subs').options].map(o => o.textContent),
		Cues: cues, Violations: window.__csp || [],
	};
})()`

const pageResourcesJS = `performance.getEntriesByType('resource').map(e => e.name)`

// saveScreenshot keeps a browser's base64 PNG screenshot in artifactDir as name.
func saveScreenshot(t testing.TB, b64, name string) {
	t.Helper()
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(png) < 1000 {
		t.Fatalf("screenshot: %d bytes, %v", len(png), err)
	}
	path := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// artifactDir is where browser screenshots are kept after the test:
// $TORRENTCLAW_ARTIFACTS, else a torrentclaw-artifacts dir in the temp dir.
func artifactDir(t testing.TB) string {
	dir := os.Getenv("TORRENTCLAW_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "torrentclaw-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// e2eWatchTask starts a cold daemon with cfg that logs to the returned buffer, and a
// loopback seeder of film, and adds film's task to the daemon.
func e2eWatchTask(t *testing.T, cfg config.Config, film string) (*running, control.AddResponse, *logBuffer) {
	t.Helper()
	return e2eWatchTaskAt(t, cfg, film, 0)
}

// e2eWatchTaskAt is e2eWatchTask with a seeder that sends rate bytes a second (0:
// unlimited).
func e2eWatchTaskAt(t *testing.T, cfg config.Config, film string, rate int64) (*running, control.AddResponse, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	r := startDaemon(t, cfg, logs)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{UploadRateBytes: rate})
	add, err := r.client.AddTask(t.Context(), control.AddRequest{Source: seeder.Add(t, film).Magnet, FileIndex: -1})
	if err != nil {
		t.Fatalf("AddTask() error = %v", err)
	}
	return r, add, logs
}

// e2eWatchStart skips or fails a /watch browser test that cannot run here, and returns
// Chromium's path.
func e2eWatchStart(t *testing.T) string {
	t.Helper()
	e2eStart(t)
	e2eNeedFFmpeg(t)
	return e2eTool(t, "chromium")
}

// e2eNativeHLSPage opens a Chromium page that plays HLS itself, as Safari does: its
// AudioVideoTracks feature on and hls.js blocked. It skips when this Chromium has no HLS.
func e2eNativeHLSPage(t *testing.T, chromium string) (*cdp, string) {
	t.Helper()
	c := startCDP(t, chromium, "--enable-blink-features=AudioVideoTracks")
	s := c.newPage()
	var native string
	c.eval(s, `document.createElement('video').canPlayType('application/vnd.apple.mpegurl')`, 30*time.Second, &native)
	if native == "" {
		t.Skip("skipping: this Chromium does not play HLS itself")
	}
	c.call(s, "Network.enable", map[string]any{}, 30*time.Second)
	c.call(s, "Network.setBlockedURLs", map[string]any{"urls": []string{"*/hls.min.js*"}}, 30*time.Second)
	return c, s
}

// e2eWatchURL is the /watch page of a task, with its token.
func e2eWatchURL(r *running, add control.AddResponse) string {
	q := url.Values{"id": {add.TaskID}, "t": {add.Token.Reveal()}}
	return e2eMediaBase(r) + "/watch?" + q.Encode()
}

// e2ePickSubsJS picks, in the page's subtitle menu, the first track whose name starts
// with name.
func e2ePickSubsJS(name string) string {
	return `(() => { const m = document.getElementById('subs'); const o = [...m.options].find(o => o.textContent.startsWith('` +
		name + `')); m.value = o.value; m.dispatchEvent(new Event('change')); return true; })()`
}

// e2eCueShowingJS is true while a shown subtitle cue holds text.
func e2eCueShowingJS(text string) string {
	return `[...document.getElementById('video').textTracks].some(tt => tt.mode === 'showing' && tt.activeCues &&
		[...tt.activeCues].some(c => c.text.includes('` + text + `')))`
}

// e2eHLSSessions is how many HLS sessions the daemon has open for a task.
func e2eHLSSessions(t *testing.T, r *running, taskID string) int {
	t.Helper()
	ti, err := r.client.Task(t.Context(), taskID)
	if err != nil {
		t.Fatalf("Task() error = %v", err)
	}
	return len(ti.HLS)
}

// TestE2EWatch opens the /watch player page of the tracks torrent (an MKV
// a browser cannot play raw) in headless Chromium, from a cold daemon fed
// by a loopback seeder, and uses it like a person: it plays past 3 s with
// hls.js, switches the audio menu to Spanish and keeps playing, turns on
// the French subtitles and sees the cue, seeks to the middle and plays on.
// The page makes no request to another origin and violates no CSP rule. A
// screenshot is kept in the artifact dir.
func TestE2EWatch(t *testing.T) {
	chromium := e2eWatchStart(t)
	const seconds = 30
	film := e2eMakeTracks(t, t.TempDir(), seconds)
	cfg := testConfig(t, t.TempDir())
	cfg.HLS.SegmentSeconds = e2eSegSeconds
	r, add, logs := e2eWatchTask(t, cfg, film)
	base := e2eMediaBase(r)
	watchURL := e2eWatchURL(r, add)

	// The page: authorized like /stream, strict CSP.
	resp, err := http.Get(watchURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != http.StatusOK || !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
		!strings.Contains(string(page), "<title>Film.mkv · torrentclaw</title>") || strings.Contains(string(page), "<script>") {
		t.Fatalf("GET /watch = %d, CSP %q:\n%s", resp.StatusCode, csp, redactBody(page, add.Token.Reveal()))
	}
	// That request started the session the page asks for next, so its probe runs while the
	// browser loads the page and hls.js.
	hlsSessions := func() int { return e2eHLSSessions(t, r, add.TaskID) }
	enginetest.WaitFor(t, time.Minute, "the HLS session started by GET /watch", func() bool { return hlsSessions() == 1 })
	want404 := e2eGetNotFound(t, base+"/stream?id="+add.TaskID+"&t=wrong"+strings.Repeat("0", 40))
	e2eAssert404(t, "watch with a wrong token", want404,
		base+"/watch?id="+add.TaskID+"&t=wrong"+strings.Repeat("0", 40),
		base+"/watch?id=nope&t="+add.Token.Reveal(),
		base+"/watch/session?id="+add.TaskID+"&t=wrong"+strings.Repeat("0", 40),
		base+"/watch?id="+add.TaskID)

	c := startCDP(t, chromium)
	s := c.newPage()
	c.call(s, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 860, "deviceScaleFactor": 1, "mobile": false}, 30*time.Second)
	c.call(s, "Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": `window.__csp = [];
		document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`}, 30*time.Second)
	start := time.Now()
	c.call(s, "Page.navigate", map[string]any{"url": watchURL}, 60*time.Second)

	state := func() pageState {
		var st pageState
		c.eval(s, pageStateJS, 30*time.Second, &st)
		return st
	}
	// Deadlines are generous: a race-enabled daemon on a busy 2-core
	// machine fetches the torrent, probes it and starts two ffmpegs.
	const slow = 3 * time.Minute
	c.waitJS(s, `document.getElementById('video').currentTime > 3`, slow, "play past 3 s")
	st := state()
	t.Logf("played past 3 s after %s: %+v", time.Since(start).Round(time.Millisecond), st)
	if st.Engine != "hlsjs" || st.Time <= 3 {
		t.Fatalf("page state %+v, want hls.js playing past 3 s", st)
	}
	if n := hlsSessions(); n != 1 {
		t.Errorf("%d HLS sessions, want the one GET /watch started, reused by the page", n)
	}
	if len(st.AudioOptions) != 2 || !strings.HasPrefix(st.AudioOptions[1], "Spanish") || len(st.SubOptions) != 4 {
		t.Errorf("menus: audio %q subtitles %q, want 2 audio tracks and Off + 3 subtitles", st.AudioOptions, st.SubOptions)
	}
	if st.Duration < seconds-2 {
		t.Errorf("duration %.1f s, want the whole title (%d s)", st.Duration, seconds)
	}

	// Audio: pick Spanish in the menu; playback goes on.
	switchAt := time.Now()
	c.eval(s, `(() => { const a = document.getElementById('audio'); a.value = '1'; a.dispatchEvent(new Event('change')); return true; })()`, 30*time.Second, nil)
	c.waitJS(s, `document.body.dataset.audio === 'es'`, slow, "hls.js switches to the Spanish rendition")
	var t0 float64
	c.eval(s, `document.getElementById('video').currentTime`, 30*time.Second, &t0)
	c.waitJS(s, fmt.Sprintf(`document.getElementById('video').currentTime > %f + 1.5`, t0), slow, "playback continues after the audio switch")
	t.Logf("audio switched to Spanish and played on in %s", time.Since(switchAt).Round(time.Millisecond))

	// Subtitles: French (the sidecar) has a cue every second.
	c.eval(s, e2ePickSubsJS("French"), 30*time.Second, nil)
	c.waitJS(s, e2eCueShowingJS(e2eFreCue), slow, "a French cue becomes active")
	st = state()
	t.Logf("French cue active: %q at %.2f s", st.Cues, st.Time)

	// Seek to the middle and resume.
	mid := float64(seconds) / 2
	c.eval(s, fmt.Sprintf(`(() => { document.getElementById('video').currentTime = %f; return true; })()`, mid), 30*time.Second, nil)
	c.waitJS(s, fmt.Sprintf(`document.getElementById('video').currentTime > %f`, mid+1), slow, "playback resumes after the seek")
	// Let a cue show in the screenshot.
	c.waitJS(s, `[...document.getElementById('video').textTracks].some(tt => tt.mode === 'showing' && tt.activeCues && tt.activeCues.length > 0)`, slow, "a cue on screen")
	st = state()
	t.Logf("after the seek to %.0f s: %+v", mid, st)

	var shot struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(c.call(s, "Page.captureScreenshot", map[string]any{"format": "png"}, 60*time.Second), &shot); err != nil {
		t.Fatal(err)
	}
	saveScreenshot(t, shot.Data, "watch-page.png")

	if len(st.Violations) > 0 {
		t.Errorf("CSP violations: %q", st.Violations)
	}
	var resources []string
	c.eval(s, pageResourcesJS, 30*time.Second, &resources)
	if len(resources) < 5 {
		t.Errorf("the page loaded %d resources; want its assets, playlists and segments", len(resources))
	}
	for _, res := range resources {
		if !strings.HasPrefix(res, base+"/") {
			t.Errorf("the page requested another origin: %s", redactURL(res))
		}
	}
	assertNoSecrets(t, logs.String(), add.Token.Reveal())
}

// TestE2EWatchAfterIdle: the daemon closes an HLS session nothing asked
// anything of for hls.idle_timeout, which a paused player outlives (a
// coffee break). The page then meets a 404 on the next playlist or segment
// it needs; it must ask for the session again and play on, at the same
// place, with the audio the user picked. Here: play, pause until the
// session is closed, pick Spanish (its playlist and segments come from the
// closed session) and play.
func TestE2EWatchAfterIdle(t *testing.T) {
	chromium := e2eWatchStart(t)
	film := e2eMakeTracks(t, t.TempDir(), 20)
	cfg := testConfig(t, t.TempDir())
	cfg.HLS.SegmentSeconds = e2eSegSeconds
	cfg.HLS.IdleTimeout = config.Duration(2 * time.Second)
	r, add, logs := e2eWatchTask(t, cfg, film)
	hlsSessions := func() int { return e2eHLSSessions(t, r, add.TaskID) }

	c := startCDP(t, chromium)
	s := c.newPage()
	c.call(s, "Page.navigate", map[string]any{"url": e2eWatchURL(r, add)}, 60*time.Second)
	const slow = 3 * time.Minute
	c.waitJS(s, `document.getElementById('video').currentTime > 1`, slow, "play past 1 s")
	var at float64
	c.eval(s, `(() => { const v = document.getElementById('video'); v.pause(); return v.currentTime; })()`, 30*time.Second, &at)
	enginetest.WaitFor(t, time.Minute, "the paused page's session to be closed as idle", func() bool { return hlsSessions() == 0 })

	c.eval(s, `(() => { const a = document.getElementById('audio'); a.value = '1'; a.dispatchEvent(new Event('change'));
		document.getElementById('video').play(); return true; })()`, 30*time.Second, nil)
	c.waitJS(s, `document.body.dataset.audio === 'es'`, slow, "the Spanish rendition, from a new session")
	c.waitJS(s, fmt.Sprintf(`document.getElementById('video').currentTime > %f + 1.5`, at), slow, "playback goes on after the pause")
	var st pageState
	c.eval(s, pageStateJS, 30*time.Second, &st)
	t.Logf("after the idle close: %+v", st)
	if st.Time > at+10 {
		t.Errorf("playback at %.1f s after pausing at %.1f s: it did not go on from where it was", st.Time, at)
	}
	if strings.Contains(st.Status, "failed") {
		t.Errorf("page status %q", st.Status)
	}
	if !strings.Contains(logs.String(), "hls session idle") {
		t.Error("the log does not show the idle close")
	}
	assertNoSecrets(t, logs.String(), add.Token.Reveal())
}

// TestE2EWatchSubtitlesAfterIdle: subtitles picked in a page paused for
// longer than the idle timeout come from the closed session. The page must
// renew the session, show the cue where it is paused, stay paused, and not
// go on saying it is reconnecting.
func TestE2EWatchSubtitlesAfterIdle(t *testing.T) {
	chromium := e2eWatchStart(t)
	film := e2eMakeTracks(t, t.TempDir(), 20)
	cfg := testConfig(t, t.TempDir())
	cfg.HLS.SegmentSeconds = e2eSegSeconds
	cfg.HLS.IdleTimeout = config.Duration(2 * time.Second)
	r, add, logs := e2eWatchTask(t, cfg, film)

	c := startCDP(t, chromium)
	s := c.newPage()
	c.call(s, "Page.navigate", map[string]any{"url": e2eWatchURL(r, add)}, 60*time.Second)
	const slow = 3 * time.Minute
	c.waitJS(s, `document.getElementById('video').currentTime > 1`, slow, "play past 1 s")
	// Paused half-way through a second: the French sidecar has a cue from 0 to 0.9 s of each.
	var at float64
	c.eval(s, `(() => { const v = document.getElementById('video'); v.pause(); v.currentTime = Math.floor(v.currentTime) + 0.5; return v.currentTime; })()`, 30*time.Second, &at)
	enginetest.WaitFor(t, time.Minute, "the paused page's session to be closed as idle", func() bool { return e2eHLSSessions(t, r, add.TaskID) == 0 })

	c.eval(s, e2ePickSubsJS("French"), 30*time.Second, nil)
	c.waitJS(s, e2eCueShowingJS(e2eFreCue), slow, "a French cue where the page is paused")
	var st pageState
	c.eval(s, pageStateJS, 30*time.Second, &st)
	t.Logf("after the idle close: %+v", st)
	if !st.Paused || st.Time < at-0.1 || st.Time > at+0.5 || st.Status != "" {
		t.Errorf("page state %+v, want it still paused at %.1f s, with no status", st, at)
	}
	assertNoSecrets(t, logs.String(), add.Token.Reveal())
}

// TestE2EWatchNative plays the page on the browser's own HLS, the path
// Safari takes: Chromium plays HLS itself too (since 2025), and the page
// takes that path when hls.js cannot load (blocked here). Chromium lists
// the audio renditions as the video's audioTracks (with its
// AudioVideoTracks feature, which Safari has on) and none of the subtitle
// renditions, so the page's menus must work from the audio tracks and its
// own <track> elements: Spanish audio and French subtitles play. Then,
// after a pause longer than the idle timeout, a segment URL of the closed
// session answers 404, which the browser reports as a media error and
// pauses on; the page must ask for the session again and play on from
// where it was, with the same audio and subtitles.
func TestE2EWatchNative(t *testing.T) {
	chromium := e2eWatchStart(t)
	const seconds = 40
	film := e2eMakeTracks(t, t.TempDir(), seconds)
	cfg := testConfig(t, t.TempDir())
	cfg.HLS.SegmentSeconds = e2eSegSeconds
	cfg.HLS.IdleTimeout = config.Duration(2 * time.Second)
	r, add, logs := e2eWatchTask(t, cfg, film)
	hlsSessions := func() int { return e2eHLSSessions(t, r, add.TaskID) }

	c, s := e2eNativeHLSPage(t, chromium)
	c.call(s, "Page.navigate", map[string]any{"url": e2eWatchURL(r, add)}, 60*time.Second)
	const slow = 3 * time.Minute
	c.waitJS(s, `document.getElementById('video').currentTime > 1`, slow, "play past 1 s")
	var st pageState
	c.eval(s, pageStateJS, 30*time.Second, &st)
	t.Logf("playing: %+v", st)
	if st.Engine != "native" || len(st.AudioOptions) != 2 || !strings.HasPrefix(st.AudioOptions[1], "Spanish") || len(st.SubOptions) != 4 {
		t.Fatalf("page state %+v, want the browser's own HLS with 2 audio tracks and Off + 3 subtitles in the menus", st)
	}

	// The menus: Spanish audio, French subtitles.
	c.eval(s, `(() => { const a = document.getElementById('audio'); a.value = '1'; a.dispatchEvent(new Event('change'));
		const m = document.getElementById('subs'); const o = [...m.options].find(o => o.textContent.startsWith('French'));
		m.value = o.value; m.dispatchEvent(new Event('change')); return true; })()`, 30*time.Second, nil)
	frenchCue := e2eCueShowingJS(e2eFreCue)
	c.waitJS(s, `document.body.dataset.audio === 'es' && `+frenchCue, slow, "Spanish audio and a French cue")
	// The browser switches renditions for what it fetches next: seek past its buffer, and
	// the daemon must make the Spanish rendition's segments (track 2: video is 0, English 1).
	const spanish = "track=2 "
	c.eval(s, `(() => { document.getElementById('video').currentTime = 20; return true; })()`, 30*time.Second, nil)
	c.waitJS(s, `document.getElementById('video').currentTime > 21.5`, slow, "playback goes on in Spanish")
	if !strings.Contains(logs.String(), spanish) {
		t.Fatal("no segment of the Spanish rendition was made after the switch")
	}

	c.eval(s, `document.getElementById('video').pause()`, 30*time.Second, nil)
	enginetest.WaitFor(t, time.Minute, "the paused page's session to be closed as idle", func() bool { return hlsSessions() == 0 })

	// Far from what the browser has buffered: it must ask the closed session for a segment.
	before := len(logs.String())
	const to = seconds - 8
	c.eval(s, fmt.Sprintf(`(() => { const v = document.getElementById('video'); v.currentTime = %d; v.play(); return true; })()`, to), 30*time.Second, nil)
	c.waitJS(s, fmt.Sprintf(`document.getElementById('video').currentTime > %d + 1.5 || /failed|cannot/.test(document.getElementById('status').textContent)`, to),
		slow, "playback to go on after the pause, or the page to give up")
	c.eval(s, pageStateJS, 30*time.Second, &st)
	t.Logf("after the idle close: %+v", st)
	if st.Engine != "native" || st.Time < to+1.5 || st.Time > to+10 || strings.Contains(st.Status, "failed") || strings.Contains(st.Status, "cannot") {
		t.Fatalf("page state %+v, want the browser's own HLS playing on from %d s", st, to)
	}
	c.waitJS(s, `document.body.dataset.audio === 'es' && `+frenchCue, slow, "Spanish audio and French cues after the renewal")
	if !strings.Contains(logs.String()[before:], spanish) {
		t.Error("the new session made no segment of the Spanish rendition")
	}
	assertNoSecrets(t, logs.String(), add.Token.Reveal())
}

// TestE2EWatchDaemonRestart: the daemon stops while the page plays (an
// upgrade, a crash and its restart) and comes back a while later with the
// same config. The player gives up on the unreachable daemon only after its
// own retries (hls.js after about 14 s, Chromium's raw playback after about
// 30 s), so the page finds out by itself: it asks the daemon for a small
// file once the element has waited for data for 2 s ("probe"). It must keep
// asking for a session until the daemon answers, and then play on from where
// the user was, on either path.
func TestE2EWatchDaemonRestart(t *testing.T) {
	chromium := e2eWatchStart(t)
	e2eDaemonRestart(t, map[string]string{"hlsjs": "probe", "raw": "probe", "proxied": "probe", "maintenance": "probe"}, func(t *testing.T, pageURL string) browserPage {
		return openChromium(t, chromium, pageURL)
	})
}

// TestE2EWatchTwoPages: the same /watch link open in two tabs shares one HLS session.
// One tab plays from the start, the other seeks far ahead; both then play on. Each page
// names its player in its segment requests, so each gets an ffmpeg of its own: while both
// play, neither's requests stop the other's run (before, every segment one tab asked for
// outside the other's run restarted the video's ffmpeg there, and the two were served in
// turn).
func TestE2EWatchTwoPages(t *testing.T) {
	chromium := e2eWatchStart(t)
	const seconds = 120
	film := e2eMakeTracks(t, t.TempDir(), seconds)
	cfg := testConfig(t, t.TempDir())
	cfg.HLS.SegmentSeconds = e2eSegSeconds
	// A seeder a few times faster than the title plays (as in the restart test): from an
	// unlimited one both pages hold the whole title after one burst of requests.
	r, add, logs := e2eWatchTaskAt(t, cfg, film, 400<<10)
	c := startCDP(t, chromium)
	const slow = 3 * time.Minute
	var pages [2]chromiumPage
	for i := range pages {
		pages[i] = chromiumPage{c, c.newPage()}
		c.call(pages[i].session, "Page.navigate", map[string]any{"url": e2eWatchURL(r, add)}, 60*time.Second)
		waitPage(t, pages[i], `document.getElementById('video').currentTime > 1`, slow, fmt.Sprintf("page %d to play past 1 s", i+1))
	}
	// From the seek on, count the video's ffmpeg starts: one for the seek, and then none
	// while both play on.
	before := len(logs.String())
	seekAt := time.Now()
	pages[1].eval(seekJS(80), 30*time.Second, nil)
	waitPage(t, pages[1], `document.getElementById('video').currentTime > 81`, slow, "page 2 to play on after its seek to 80 s")
	t.Logf("page 2 plays on %v after its seek", time.Since(seekAt).Round(time.Millisecond))
	var at [2]float64
	for i, p := range pages {
		p.eval(`document.getElementById('video').currentTime`, 30*time.Second, &at[i])
	}
	for i, p := range pages {
		waitPage(t, p, fmt.Sprintf(`document.getElementById('video').currentTime > %f`, at[i]+8), slow,
			fmt.Sprintf("page %d to play 8 s more", i+1))
	}
	starts := 0
	for _, line := range strings.Split(logs.String()[before:], "\n") {
		if strings.Contains(line, "ffmpeg start") && strings.Contains(line, "track=0") {
			starts++
		}
	}
	var st [2]pageState
	for i, p := range pages {
		p.eval(pageStateJS, 30*time.Second, &st[i])
	}
	t.Logf("from page 2's seek until both pages played 8 s more (from %.1f s and %.1f s), the video's ffmpeg started %d times; pages: %+v",
		at[0], at[1], starts, st)
	if starts > 2 {
		t.Errorf("the video's ffmpeg started %d times from one seek while two pages played on, want 1 (2 at most)", starts)
	}
	for i := range st {
		if st[i].Status != "" {
			t.Errorf("page %d says %q", i+1, st[i].Status)
		}
	}
	assertNoSecrets(t, logs.String(), add.Token.Reveal())
}

// e2eReverseProxy serves target's URLs on a loopback port of its own, as a reverse proxy
// in front of the daemon does: 502 while the daemon does not answer, or, with maintenance,
// a page of its own with a 200 (nginx's error_page with =200).
func e2eReverseProxy(t *testing.T, target string, maintenance bool) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // its URLs hold the token
	if maintenance {
		rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = io.WriteString(w, "<!doctype html><title>Maintenance</title><p>Back soon.</p>")
		}
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

// e2eDaemonRestart stops the daemon under a playing page, seeks far past what the player
// holds, and starts the daemon again on the same port: the page must say it waits, then
// play on from where it stands then, on both paths, never from further back. cause says,
// by case ("hlsjs", "raw", and "proxied": hls.js behind a reverse proxy), what must have
// noticed the daemon was gone (pageState.Reconnect); a case it does not name is not run.
// ("maintenance" is hls.js behind a proxy that answers 200 with a page of its own.)
// open opens the page in a browser.
func e2eDaemonRestart(t *testing.T, cause map[string]string, open func(t *testing.T, pageURL string) browserPage) {
	const seconds = 120 // longer than hls.js buffers ahead (30 s)
	for _, tc := range []struct {
		name, engine string
		film         func(t testing.TB, dir string, seconds int) string
		proxied      bool // the page reaches the daemon through a reverse proxy
		maintenance  bool // which answers 200 for the daemon while it is gone
	}{
		{"hlsjs", "hlsjs", e2eMakeTracks, false, false},
		{"raw", "raw", e2eMakeMP4, false, false},
		{"proxied", "hlsjs", e2eMakeTracks, true, false},
		{"maintenance", "hlsjs", e2eMakeTracks, true, true},
	} {
		want, ok := cause[tc.name]
		if !ok {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			film := tc.film(t, t.TempDir(), seconds)
			cfg := testConfig(t, t.TempDir()) // a fixed media port: the page's URLs stay valid
			cfg.HLS.SegmentSeconds = e2eSegSeconds
			// A seeder a few times faster than the title plays: from an unlimited one,
			// hls.js can hold the whole title (it buffers up to 60 MB ahead) before
			// the daemon stops, and then the seek needs no daemon.
			r, add, logs := e2eWatchTaskAt(t, cfg, film, 400<<10)
			pageURL := e2eWatchURL(r, add)
			if tc.proxied {
				// What nginx or Caddy in front of the daemon does: while the daemon is
				// gone, every request gets 502 instead of no answer.
				pageURL = strings.Replace(pageURL, e2eMediaBase(r), e2eReverseProxy(t, e2eMediaBase(r), tc.maintenance), 1)
			}
			p := open(t, pageURL)
			const slow = 3 * time.Minute
			waitPage(t, p, `document.getElementById('video').currentTime > 1`, slow, "play past 1 s")
			var st pageState
			p.eval(pageStateJS, 30*time.Second, &st)
			if st.Engine != tc.engine {
				t.Fatalf("page state %+v, want it playing with %s", st, tc.engine)
			}
			if err := r.stop(t); err != nil {
				t.Fatalf("Run() = %v, want nil on clean shutdown", err)
			}

			// Far past what the player has buffered: it needs the daemon, which is gone.
			// (Chromium waits there; Firefox, which has reported the error already,
			// keeps the seek inside what it holds.)
			const to = 90
			p.eval(seekJS(to), 30*time.Second, nil)
			stopped := time.Now()
			waitPage(t, p, `/not answering/.test(document.getElementById('status').textContent)`, slow,
				"the page to say the daemon is not answering")
			p.eval(pageStateJS, 30*time.Second, &st)
			t.Logf("daemon stopped; %v later the page says so: %+v", time.Since(stopped).Round(time.Millisecond), st)
			if st.Reconnect != want {
				t.Errorf("the page reconnects on %q, want %q", st.Reconnect, want)
			}
			// Where the page stands now, and from here on the lowest position it plays
			// from (not the 0 a reloaded element shows before the page moves it on).
			var at float64
			p.eval(`(() => {
				const v = document.getElementById('video');
				window.__lowest = v.currentTime;
				v.addEventListener('timeupdate', () => {
					if (v.readyState >= 3 && !v.seeking && !v.paused) window.__lowest = Math.min(window.__lowest, v.currentTime);
				});
				return v.currentTime;
			})()`, 30*time.Second, &at)

			logs2 := &logBuffer{}
			startDaemon(t, cfg, logs2)
			// Firefox may still be playing what it has buffered: wait for the page to
			// have reconnected too.
			waitPage(t, p, fmt.Sprintf(`document.getElementById('video').currentTime > %f + 1.5 && document.getElementById('status').textContent === '' ||
				/failed|cannot/.test(document.getElementById('status').textContent)`, at),
				slow, "playback to go on after the restart, or the page to give up")
			p.eval(pageStateJS, 30*time.Second, &st)
			var lowest float64
			p.eval(`window.__lowest`, 30*time.Second, &lowest)
			t.Logf("after the restart (from %.2f s, lowest %.2f s): %+v", at, lowest, st)
			if st.Time < at+1.5 || st.Time > at+10 || st.Status != "" {
				t.Errorf("page state %+v, want playback going on from %.2f s", st, at)
			}
			if lowest < at-1 {
				t.Errorf("playback went back to %.2f s after the restart, from %.2f s", lowest, at)
			}
			assertNoSecrets(t, logs.String()+logs2.String(), add.Token.Reveal())
		})
	}
}

// TestE2EWatchPausedTask pauses the task under a playing page and seeks past what the
// player holds: the page must say the download is paused (not "Buffering…", and not give
// up), and once the task is resumed play on from the place it was sent to, by itself, on
// both paths. Before, hls.js gave up after 30 s and its new start waited on an ffmpeg that
// had failed on the paused input; the raw path's element took the 503 for a network error
// and stopped for good.
func TestE2EWatchPausedTask(t *testing.T) {
	chromium := e2eWatchStart(t)
	e2ePausedTask(t, func(t *testing.T, pageURL string) browserPage {
		return openChromium(t, chromium, pageURL)
	})
}

// e2ePausedTask is TestE2EWatchPausedTask in the browser open opens pages in.
func e2ePausedTask(t *testing.T, open func(t *testing.T, pageURL string) browserPage) {
	const seconds = 120 // longer than hls.js buffers ahead (30 s)
	for _, tc := range e2eBothPaths {
		t.Run(tc.engine, func(t *testing.T) {
			film := tc.film(t, t.TempDir(), seconds)
			cfg := testConfig(t, t.TempDir())
			cfg.HLS.SegmentSeconds = e2eSegSeconds
			// As in the restart test: slow enough that the far seek needs bytes the
			// task does not have when it is paused.
			r, add, logs := e2eWatchTaskAt(t, cfg, film, 400<<10)
			p := open(t, e2eWatchURL(r, add))
			const slow = 3 * time.Minute
			waitPage(t, p, `document.getElementById('video').currentTime > 1`, slow, "play past 1 s")
			var st pageState
			p.eval(pageStateJS, 30*time.Second, &st)
			if st.Engine != tc.engine {
				t.Fatalf("page state %+v, want it playing with %s", st, tc.engine)
			}
			if err := r.client.PauseTask(t.Context(), add.TaskID); err != nil {
				t.Fatal(err)
			}
			const to = 90
			p.eval(seekJS(to), 30*time.Second, nil)
			paused := time.Now()
			waitPage(t, p, `document.body.dataset.wait === 'paused' && /paused/.test(document.getElementById('status').textContent)`, slow,
				"the page to say the download is paused")
			p.eval(pageStateJS, 30*time.Second, &st)
			t.Logf("task paused; %v later the page says so: %+v", time.Since(paused).Round(time.Millisecond), st)
			// Long enough for hls.js to give up on the segment it waits for (about 30 s),
			// and for the element's error on the raw path: the page must still wait.
			hlsGaveUp := `/fragLoad/.test(document.body.dataset.hlsError || '')`
			if tc.engine == "hlsjs" {
				waitPage(t, p, hlsGaveUp, slow, "hls.js to give up on the held segment")
			}
			p.eval(pageStateJS, 30*time.Second, &st)
			if !strings.Contains(st.Status, "paused") || st.Reconnect != "" {
				t.Errorf("page state while the task stays paused: %+v, want it waiting and saying so", st)
			}
			p.eval(`(() => {
				const v = document.getElementById('video');
				window.__lowest = Infinity;
				v.addEventListener('timeupdate', () => {
					if (v.readyState >= 3 && !v.seeking && !v.paused) window.__lowest = Math.min(window.__lowest, v.currentTime);
				});
				return true;
			})()`, 30*time.Second, nil)
			if err := r.client.ResumeTask(t.Context(), add.TaskID); err != nil {
				t.Fatal(err)
			}
			resumed := time.Now()
			waitPage(t, p, fmt.Sprintf(`document.getElementById('video').currentTime > %d + 1.5 && document.getElementById('status').textContent === ''`, to),
				slow, "playback to go on from the seek after the resume")
			p.eval(pageStateJS, 30*time.Second, &st)
			var lowest float64
			p.eval(`window.__lowest`, 30*time.Second, &lowest)
			t.Logf("resumed; %v later playing from %.2f s: %+v", time.Since(resumed).Round(time.Millisecond), lowest, st)
			if lowest < to-1 {
				t.Errorf("playback went back to %.2f s after the resume, want it from %d s", lowest, to)
			}
			assertNoSecrets(t, logs.String(), add.Token.Reveal())
		})
	}
}

// TestE2EWatchBeforeMetainfo opens the page of a magnet the daemon has no peer for yet:
// the page comes at once and says it looks for peers (it used to be a blank tab until the
// metainfo came), then, once the seeder is found, plays without a reload.
func TestE2EWatchBeforeMetainfo(t *testing.T) {
	chromium := e2eWatchStart(t)
	film := e2eMakeMP4(t, t.TempDir(), 30)
	cfg := testConfig(t, t.TempDir())
	logs := &logBuffer{}
	r := startDaemon(t, cfg, logs)
	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{})
	si := seeder.Add(t, film)
	// The magnet without its x.pe: nobody to ask for the metainfo.
	add, err := r.client.AddTask(t.Context(), control.AddRequest{Source: "magnet:?xt=urn:btih:" + si.InfoHash + "&dn=Film", FileIndex: -1})
	if err != nil {
		t.Fatalf("AddTask() error = %v", err)
	}
	p := openChromium(t, chromium, e2eWatchURL(r, add))
	const slow = 3 * time.Minute
	waitPage(t, p, `document.body.dataset.wait === 'metadata' && /Looking for peers/.test(document.getElementById('status').textContent)`,
		slow, "the page to say it looks for peers")
	var title string
	p.eval(`document.title`, 30*time.Second, &title)
	if title != "Film · torrentclaw" {
		t.Errorf("page title %q before the metainfo, want the magnet's name", title)
	}
	task, err := r.d.eng.Task(add.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.AddPeers(si.Peer.String()); err != nil {
		t.Fatal(err)
	}
	found := time.Now()
	waitPage(t, p, `document.getElementById('video').currentTime > 1`, slow, "play past 1 s once the seeder is found")
	var st pageState
	p.eval(pageStateJS, 30*time.Second, &st)
	t.Logf("playing %v after the peer was given: %+v", time.Since(found).Round(time.Millisecond), st)
	if st.Status != "" {
		t.Errorf("page says %q while playing", st.Status)
	}
	assertNoSecrets(t, logs.String(), add.Token.Reveal())
}

// TestE2EWatchRevoked revokes the page's token under playback and seeks past what the
// player holds: the page must say the link no longer plays, on both paths (it used to say
// "Playback failed: the daemon answered 404").
func TestE2EWatchRevoked(t *testing.T) {
	chromium := e2eWatchStart(t)
	for _, tc := range e2eBothPaths {
		t.Run(tc.engine, func(t *testing.T) {
			film := tc.film(t, t.TempDir(), 120)
			cfg := testConfig(t, t.TempDir())
			cfg.HLS.SegmentSeconds = e2eSegSeconds
			r, add, logs := e2eWatchTaskAt(t, cfg, film, 400<<10)
			p := openChromium(t, chromium, e2eWatchURL(r, add))
			const slow = 3 * time.Minute
			waitPage(t, p, `document.getElementById('video').currentTime > 1`, slow, "play past 1 s")
			if err := r.client.RevokeToken(t.Context(), add.TaskID); err != nil {
				t.Fatal(err)
			}
			p.eval(seekJS(90), 30*time.Second, nil)
			waitPage(t, p, `/no longer plays/.test(document.getElementById('status').textContent)`, slow,
				"the page to say the link no longer plays")
			var st pageState
			p.eval(pageStateJS, 30*time.Second, &st)
			t.Logf("after the revocation and a seek: %+v", st)
			if st.Engine != tc.engine {
				t.Errorf("page played with %q, want %s", st.Engine, tc.engine)
			}
			assertNoSecrets(t, logs.String(), add.Token.Reveal())
		})
	}
}

// TestE2EWatchBufferingSaysSwarm opens a page on a slow download and seeks far ahead: while
// the page waits, first for the session, then after the seek, it says how the download goes
// ("Preparing… (1 peer, 32 kB/s)", "Buffering… (1 peer, 32 kB/s)"), not only "Buffering…".
func TestE2EWatchBufferingSaysSwarm(t *testing.T) {
	chromium := e2eWatchStart(t)
	film := e2eMakeMP4(t, t.TempDir(), 120)
	cfg := testConfig(t, t.TempDir())
	// Slower than the title plays (about 100 KiB/s): the seek's bytes take seconds.
	r, add, logs := e2eWatchTaskAt(t, cfg, film, 32<<10)
	p := openChromium(t, chromium, e2eWatchURL(r, add))
	const slow = 3 * time.Minute
	// The session's probe reads the file's head at the seeder's pace: seconds.
	waitPage(t, p, `/^Preparing… \(1 peer, [0-9.]+ (kB|MB)\/s\)$/.test(document.getElementById('status').textContent)`, slow,
		"the page to say how the download goes while it prepares")
	waitPage(t, p, `document.getElementById('video').currentTime > 1`, slow, "play past 1 s")
	p.eval(seekJS(90), 30*time.Second, nil)
	waitPage(t, p, `/^Buffering… \(1 peer, [0-9.]+ (kB|MB)\/s\)$/.test(document.getElementById('status').textContent)`, slow,
		"the page to say how the download goes while it buffers")
	var st pageState
	p.eval(pageStateJS, 30*time.Second, &st)
	t.Logf("buffering after a far seek: %+v", st)
	waitPage(t, p, `document.getElementById('video').currentTime > 91 && document.getElementById('status').textContent === ''`, slow,
		"playback to go on after the seek")
	assertNoSecrets(t, logs.String(), add.Token.Reveal())
}

// TestE2EWatchNextFile plays the first of two episodes of a season pack: the page offers
// both in its file menu, and when the first ends it goes on to the second by itself.
func TestE2EWatchNextFile(t *testing.T) {
	chromium := e2eWatchStart(t)
	dir := e2eMakeMP4(t, t.TempDir(), 4)
	for _, name := range []string{"Film.fr.srt"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	first, second := filepath.Join(dir, "Show.S01E01.mp4"), filepath.Join(dir, "Show.S01E02.mp4")
	if err := os.Rename(filepath.Join(dir, "Film.mp4"), first); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(second, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, t.TempDir())
	r, add, logs := e2eWatchTaskAt(t, cfg, dir, 0)
	c := startCDP(t, chromium)
	p := chromiumPage{c, c.newPage()}
	c.call(p.session, "Page.navigate", map[string]any{"url": e2eWatchURL(r, add) + "&file=0"}, 60*time.Second)
	const slow = 3 * time.Minute
	waitPage(t, p, `document.getElementById('video').currentTime > 1`, slow, "play the first episode past 1 s")
	var menu struct {
		Hidden  bool
		Options []string
		Value   string
		Title   string
	}
	p.eval(`(() => { const s = document.getElementById('file');
		return { Hidden: document.getElementById('files').hidden, Options: [...s.options].map(o => o.textContent), Value: s.value, Title: document.title }; })()`,
		30*time.Second, &menu)
	if menu.Hidden || len(menu.Options) != 2 || menu.Options[0] != "Show.S01E01.mp4" || menu.Options[1] != "Show.S01E02.mp4" || menu.Value != "0" ||
		menu.Title != "Show.S01E01.mp4 · torrentclaw" {
		t.Fatalf("file menu %+v, want both episodes with the first picked", menu)
	}
	var shot struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(c.call(p.session, "Page.captureScreenshot", map[string]any{"format": "png"}, 60*time.Second), &shot); err != nil {
		t.Fatal(err)
	}
	saveScreenshot(t, shot.Data, "watch-page-files.png")
	// The first one ends (4 s): the page goes to the second.
	enginetest.WaitFor(t, slow, "the page to go on to the second episode", func() bool {
		var h struct {
			CurrentIndex int `json:"currentIndex"`
			Entries      []struct {
				URL string `json:"url"`
			} `json:"entries"`
		}
		res, err := c.tryCall(p.session, "Page.getNavigationHistory", map[string]any{}, 30*time.Second)
		if err != nil {
			return false // navigating
		}
		if err := json.Unmarshal(res, &h); err != nil {
			t.Fatal(err)
		}
		return h.CurrentIndex < len(h.Entries) && strings.Contains(h.Entries[h.CurrentIndex].URL, "file=1")
	})
	waitPage(t, p, `document.title === 'Show.S01E02.mp4 · torrentclaw' && document.getElementById('video').currentTime > 1`, slow,
		"the second episode to play")
	p.eval(`document.getElementById('file').value`, 30*time.Second, &menu.Value)
	if menu.Value != "1" {
		t.Errorf("file menu on the second episode picks %q, want 1", menu.Value)
	}
	assertNoSecrets(t, logs.String(), add.Token.Reveal())
}

// TestE2EWatchRemembersPosition leaves a page 30 s into a file and opens it again: the new
// page goes on from there, not from the start; a file that played to its end starts over.
func TestE2EWatchRemembersPosition(t *testing.T) {
	chromium := e2eWatchStart(t)
	for _, tc := range e2eBothPaths {
		t.Run(tc.engine, func(t *testing.T) {
			film := tc.film(t, t.TempDir(), 90) // 30 s is not in its last 30 s
			cfg := testConfig(t, t.TempDir())
			cfg.HLS.SegmentSeconds = e2eSegSeconds
			r, add, logs := e2eWatchTaskAt(t, cfg, film, 0)
			c := startCDP(t, chromium)
			p := chromiumPage{c, c.newPage()}
			const slow = 3 * time.Minute
			c.call(p.session, "Page.navigate", map[string]any{"url": e2eWatchURL(r, add)}, 60*time.Second)
			waitPage(t, p, `document.getElementById('video').currentTime > 1`, slow, "play past 1 s")
			p.eval(seekJS(30), 30*time.Second, nil)
			waitPage(t, p, `document.getElementById('video').currentTime > 31`, slow, "play on from 30 s")
			// A second page of the same file, as after closing the tab (pagehide saves).
			q := p
			q.session = c.newPage()
			c.call(p.session, "Page.navigate", map[string]any{"url": "about:blank"}, 60*time.Second)
			c.call(q.session, "Page.navigate", map[string]any{"url": e2eWatchURL(r, add)}, 60*time.Second)
			waitPage(t, q, `document.getElementById('video').currentTime > 31 && document.getElementById('status').textContent === ''`, slow,
				"the new page to go on from 30 s")
			var st struct {
				From string
				Time float64
			}
			q.eval(`({ From: document.body.dataset.resumedFrom || '', Time: document.getElementById('video').currentTime })`, 30*time.Second, &st)
			t.Logf("the new page went on from %s s: now %.2f s", st.From, st.Time)
			if from, err := strconv.ParseFloat(st.From, 64); err != nil || from < 30 || from > 40 {
				t.Errorf("the new page went on from %q, want the place the first one left (30–40 s)", st.From)
			}
			// Played to its end, the file starts over next time.
			q.eval(`(() => { const v = document.getElementById('video'); v.currentTime = v.duration - 1; return true; })()`, 30*time.Second, nil)
			waitPage(t, q, `document.getElementById('video').ended`, slow, "the file to end")
			var left string
			q.eval(`localStorage.length === 0 ? '' : JSON.stringify(Object.assign({}, localStorage))`, 30*time.Second, &left)
			if left != "" {
				t.Errorf("after the end, the browser still keeps %s", left)
			}
			if strings.Contains(left, add.Token.Reveal()) {
				t.Error("the browser's storage holds the token")
			}
			assertNoSecrets(t, logs.String(), add.Token.Reveal())
		})
	}
}
