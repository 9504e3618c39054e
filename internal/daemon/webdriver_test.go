package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A WebKit driven over W3C WebDriver: the player page's test in the engine Safari is built
// on. WebKitGTK's WebKitWebDriver (Debian's webkit2gtk-driver) serves the W3C WebDriver
// HTTP API on loopback and starts WebKitGTK's MiniBrowser for a session; MiniBrowser is a
// GTK window and needs an X display, which an Xvfb gives it. A command is an HTTP request
// on /session/{id}/...; its answer {"value": ...}, an error {"value": {"error", "message"}}.

// webDriver is a WebDriver session in a WebKit started by startWebKit.
type webDriver struct {
	t       testing.TB
	base    string // http://127.0.0.1:port
	session string // "/session/{id}"
	client  http.Client
}

// startWebKit starts an Xvfb, a WebKitWebDriver on it and a WebDriver session in a fresh
// MiniBrowser (media plays without a gesture, pages load up to the load event); all of
// them are stopped when the test ends.
func startWebKit(t testing.TB, driver, xvfb string) *webDriver {
	t.Helper()
	display := startXvfb(t, xvfb)
	port := freePort(t)
	out := &lockedBuffer{}
	cmd := exec.Command(driver, "--host=127.0.0.1", "--port="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = out, out
	// NO_AT_BRIDGE: no accessibility bus to look for. GST_PLUGIN_FEATURE_RANK: the machine
	// has no sound device, and GStreamer's autoaudiosink tries PulseAudio, JACK, OSS and
	// OpenAL in turn; a failed try reaches the media pipeline as an error, and then
	// hls.js's first seek (over the gap to the first video frame, at 0.08 s) hung for good
	// in 2 of 11 runs here (seeking stayed true at 0.13 s, readyState 1).
	// fakeaudiosink, first in rank, plays the audio to nowhere at the clock's pace.
	cmd.Env = append(os.Environ(), "DISPLAY="+display, "NO_AT_BRIDGE=1", "GST_PLUGIN_FEATURE_RANK=fakeaudiosink:MAX")
	// MiniBrowser and WebKit's web, network and GPU processes stay in the driver's group.
	exited := startBrowser(t, cmd, "WebKitWebDriver") // e2e_browser_test.go
	w := &webDriver{t: t, base: "http://127.0.0.1:" + strconv.Itoa(port)}
	// The driver answers /status once it listens: at once, or seconds on a busy machine.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var status struct {
			Ready bool `json:"ready"`
		}
		err := w.do(http.MethodGet, "/status", nil, 5*time.Second, &status)
		if err == nil && status.Ready {
			break
		}
		select {
		case <-exited:
			t.Fatalf("WebKitWebDriver exited before it listened:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("WebKitWebDriver not ready on port %d within 2 min: %v\n%s", port, err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var session struct {
		SessionID    string         `json:"sessionId"`
		Capabilities map[string]any `json:"capabilities"`
	}
	// MiniBrowser blocks media with sound that starts without a gesture (so does Safari:
	// the page then says "Press play"); the test plays as a user who pressed play would.
	caps := map[string]any{"alwaysMatch": map[string]any{
		"pageLoadStrategy": "normal",
		"webkitgtk:browserOptions": map[string]any{
			"args": []string{"--automation", "--autoplay-policy=allow"},
		},
	}}
	if err := w.do(http.MethodPost, "/session", map[string]any{"capabilities": caps}, 2*time.Minute, &session); err != nil {
		t.Fatalf("WebDriver new session: %v\n%s", err, out.String())
	}
	w.session = "/session/" + session.SessionID
	t.Logf("WebKit: %v %v", session.Capabilities["browserName"], session.Capabilities["browserVersion"])
	t.Cleanup(func() { _ = w.do(http.MethodDelete, w.session, nil, 30*time.Second, nil) })
	// A script may wait for minutes (a player on a busy machine); the default is 30 s.
	w.call(http.MethodPost, "/timeouts", map[string]any{"script": 300_000, "pageLoad": 120_000}, time.Minute, nil)
	w.call(http.MethodPost, "/window/rect", map[string]any{"width": 1280, "height": 860}, time.Minute, nil)
	return w
}

// startXvfb starts an X server on a free display number and returns its name (":N").
// It is stopped with SIGTERM when the test ends, so that it removes its lock files.
func startXvfb(t testing.TB, bin string) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := &lockedBuffer{}
	// -displayfd 3: Xvfb picks a free display and writes its number there once it is ready.
	cmd := exec.Command(bin, "-displayfd", "3", "-screen", "0", "1280x860x24", "-nolisten", "tcp")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = []*os.File{w}
	inOwnGroup(cmd)
	if err := cmd.Start(); err != nil {
		_ = w.Close()
		t.Fatalf("start Xvfb: %v", err)
	}
	_ = w.Close()
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			killGroup(cmd)
			<-exited
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		n := strings.TrimSpace(s)
		if _, err := strconv.Atoi(n); err != nil {
			<-exited
			t.Fatalf("Xvfb gave no display number (%q):\n%s", s, out.String())
		}
		return ":" + n
	case <-time.After(2 * time.Minute):
		t.Fatalf("Xvfb not ready within 2 min:\n%s", out.String())
	}
	return ""
}

// call sends a command of the session (path is relative to /session/{id}) and decodes
// its value into result (when not nil); an error fails the test.
func (w *webDriver) call(method, path string, body any, within time.Duration, result any) {
	w.t.Helper()
	if err := w.do(method, w.session+path, body, within, result); err != nil {
		w.t.Fatalf("WebDriver %s %s: %v", method, path, err)
	}
}

func (w *webDriver) do(method, path string, body any, within time.Duration, result any) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var in io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		in = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.base+path, in)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	var reply struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil {
		return fmt.Errorf("HTTP %d, not JSON: %.200q", resp.StatusCode, raw)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Message string }
		_ = json.Unmarshal(reply.Value, &e)
		return fmt.Errorf("HTTP %d: %s: %s", resp.StatusCode, e.Error, e.Message)
	}
	if result == nil {
		return nil
	}
	return json.Unmarshal(reply.Value, result)
}

// evalAsync evaluates a JavaScript expression in the page, awaiting it when it is a
// Promise, and decodes its value into v (when not nil); a rejected Promise fails the test.
func (w *webDriver) evalAsync(expr string, within time.Duration, v any) {
	w.t.Helper()
	script := `const done = arguments[arguments.length - 1];
Promise.resolve(` + expr + `).then((value) => done({value}), (e) => done({error: String(e)}));`
	var res struct {
		Value json.RawMessage `json:"value"`
		Error string          `json:"error"`
	}
	w.call(http.MethodPost, "/execute/async", map[string]any{"script": script, "args": []any{}}, within, &res)
	if res.Error != "" {
		w.t.Fatalf("script failed: %s", res.Error)
	}
	if v != nil {
		if err := json.Unmarshal(res.Value, v); err != nil {
			w.t.Fatalf("script result %s: %v", res.Value, err)
		}
	}
}

// navigate loads url in the session's window and returns once the page has loaded.
func (w *webDriver) navigate(url string) {
	w.t.Helper()
	w.call(http.MethodPost, "/url", map[string]any{"url": url}, 2*time.Minute, nil)
}

// screenshot is a base64 PNG of the window's viewport.
func (w *webDriver) screenshot() string {
	w.t.Helper()
	var b64 string
	w.call(http.MethodGet, "/screenshot", nil, time.Minute, &b64)
	return b64
}

// webKitPage is a page in a WebKit a test drives, as a drivenPage.
type webKitPage struct{ w *webDriver }

func (p webKitPage) eval(expr string, within time.Duration, v any) { p.w.evalAsync(expr, within, v) }
func (p webKitPage) navigate(url string)                           { p.w.navigate(url) }
func (p webKitPage) screenshot() string                            { return p.w.screenshot() }
