package daemon

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A Firefox driven over Marionette, its own remote protocol: the player page's test in a
// second browser engine (Gecko) beside Chromium's. Firefox has no DevTools pipe like
// Chromium's; Marionette is a TCP socket on localhost that carries WebDriver commands as
// length-prefixed JSON ("<len>:<json>"): a command is [0, id, name, params], its answer
// [1, id, error, result].

// firefoxPrefs keeps a test Firefox quiet: no first-run pages, no updates, telemetry,
// safe-browsing lists or connectivity checks, and media that plays without a gesture.
// The test also runs it in a network namespace with only lo (clienttest.Isolate), so
// nothing it still tries reaches another host.
var firefoxPrefs = map[string]any{
	"app.normandy.enabled":                       false,
	"app.update.auto":                            false,
	"app.update.enabled":                         false,
	"browser.aboutwelcome.enabled":               false,
	"browser.newtabpage.enabled":                 false,
	"browser.safebrowsing.downloads.enabled":     false,
	"browser.safebrowsing.malware.enabled":       false,
	"browser.safebrowsing.phishing.enabled":      false,
	"browser.shell.checkDefaultBrowser":          false,
	"browser.startup.homepage_override.mstone":   "ignore",
	"browser.startup.page":                       0,
	"datareporting.healthreport.uploadEnabled":   false,
	"datareporting.policy.dataSubmissionEnabled": false,
	"extensions.update.enabled":                  false,
	"media.autoplay.blocking_policy":             0,
	"media.autoplay.default":                     0,
	"network.captive-portal-service.enabled":     false,
	"network.connectivity-service.enabled":       false,
	"toolkit.telemetry.enabled":                  false,
	"toolkit.telemetry.reportingpolicy.firstRun": false,
}

// marionette is a WebDriver session in a Firefox started by startFirefox.
type marionette struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	mu   sync.Mutex // one command at a time
	id   int
}

// startFirefox starts a headless Firefox with a fresh profile and opens a WebDriver session
// in it, whose Navigate waits as pageLoad says ("normal": for the load event; "none": not
// at all); the browser is killed when the test ends.
func startFirefox(t testing.TB, bin, pageLoad string) *marionette {
	t.Helper()
	port := freePort(t)
	profile := t.TempDir()
	var prefs strings.Builder
	for k, v := range firefoxPrefs {
		val, _ := json.Marshal(v)
		fmt.Fprintf(&prefs, "user_pref(%q, %s);\n", k, val)
	}
	fmt.Fprintf(&prefs, "user_pref(\"marionette.port\", %d);\n", port)
	if err := os.WriteFile(filepath.Join(profile, "user.js"), []byte(prefs.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	cmd := exec.Command(bin, "--headless", "--marionette", "--no-remote", "--profile", profile, "about:blank")
	cmd.Stdout, cmd.Stderr = out, out
	// Firefox takes its size from these in headless mode.
	cmd.Env = append(os.Environ(), "MOZ_HEADLESS_WIDTH=1280", "MOZ_HEADLESS_HEIGHT=860")
	exited := startBrowser(t, cmd, "firefox") // e2e_browser_test.go
	// Marionette listens once the browser is up: seconds on a busy machine.
	var conn net.Conn
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			conn = c
			break
		}
		select {
		case <-exited:
			t.Fatalf("firefox exited before Marionette listened:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("Marionette not listening on port %d within 2 min: %v\n%s", port, err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	m := &marionette{t: t, conn: conn, r: bufio.NewReader(conn)}
	t.Cleanup(func() { _ = conn.Close() })
	// The server speaks first: {"applicationType":"gecko","marionetteProtocol":3}.
	var hello struct {
		ApplicationType    string `json:"applicationType"`
		MarionetteProtocol int    `json:"marionetteProtocol"`
	}
	if err := m.readMessage(time.Minute, &hello); err != nil || hello.ApplicationType != "gecko" {
		t.Fatalf("Marionette greeting %+v: %v", hello, err)
	}
	m.call("WebDriver:NewSession", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"pageLoadStrategy": pageLoad,
	}}}, 2*time.Minute, nil)
	// A script may wait for minutes (a player on a busy machine); the default is 30 s.
	m.call("WebDriver:SetTimeouts", map[string]any{"script": 300_000, "pageLoad": 120_000}, time.Minute, nil)
	return m
}

// readMessage reads one "<len>:<json>" message into v.
func (m *marionette) readMessage(within time.Duration, v any) error {
	_ = m.conn.SetReadDeadline(time.Now().Add(within))
	head, err := m.r.ReadString(':')
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(head, ":"))
	if err != nil || n < 0 || n > 64<<20 {
		return fmt.Errorf("bad Marionette length %q", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(m.r, body); err != nil {
		return err
	}
	return json.Unmarshal(body, v)
}

// call sends a command and decodes its result into result (when not nil); an error
// answer fails the test.
func (m *marionette) call(name string, params map[string]any, within time.Duration, result any) {
	m.t.Helper()
	if err := m.try(name, params, within, result); err != nil {
		m.t.Fatalf("Marionette %s: %v", name, err)
	}
}

func (m *marionette) try(name string, params map[string]any, within time.Duration, result any) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.id++
	id := m.id
	msg, err := json.Marshal([]any{0, id, name, params})
	if err != nil {
		return err
	}
	_ = m.conn.SetWriteDeadline(time.Now().Add(within))
	if _, err := fmt.Fprintf(m.conn, "%d:%s", len(msg), msg); err != nil {
		return err
	}
	for {
		var reply []json.RawMessage
		if err := m.readMessage(within, &reply); err != nil {
			return err
		}
		if len(reply) != 4 {
			return fmt.Errorf("malformed answer: %d fields", len(reply))
		}
		var got int
		if json.Unmarshal(reply[1], &got) != nil || got != id {
			continue // an answer to an earlier command that timed out here
		}
		if string(reply[2]) != "null" {
			var e struct{ Error, Message string }
			_ = json.Unmarshal(reply[2], &e)
			return fmt.Errorf("%s: %s", e.Error, e.Message)
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(reply[3], result)
	}
}

// evalAsync evaluates a JavaScript expression in the page, awaiting it when it is a
// Promise, and decodes its value into v (when not nil); a rejected Promise fails the test.
func (m *marionette) evalAsync(expr string, within time.Duration, v any) {
	m.t.Helper()
	script := `const done = arguments[arguments.length - 1];
Promise.resolve(` + expr + `).then((value) => done({value}), (e) => done({error: String(e)}));`
	var res struct {
		Value struct {
			Value json.RawMessage `json:"value"`
			Error string          `json:"error"`
		} `json:"value"`
	}
	m.call("WebDriver:ExecuteAsyncScript", map[string]any{"script": script, "args": []any{}}, within, &res)
	if res.Value.Error != "" {
		m.t.Fatalf("script failed: %s", res.Value.Error)
	}
	if v != nil {
		if err := json.Unmarshal(res.Value.Value, v); err != nil {
			m.t.Fatalf("script result %s: %v", res.Value.Value, err)
		}
	}
}

// firefoxPage is a page in a Firefox a test drives, as a drivenPage.
type firefoxPage struct{ m *marionette }

func (p firefoxPage) eval(expr string, within time.Duration, v any) { p.m.evalAsync(expr, within, v) }

func (p firefoxPage) navigate(url string) {
	p.m.call("WebDriver:Navigate", map[string]any{"url": url}, 2*time.Minute, nil)
}

func (p firefoxPage) screenshot() string {
	var shot struct {
		Value string `json:"value"`
	}
	p.m.call("WebDriver:TakeScreenshot", map[string]any{"full": false}, time.Minute, &shot)
	return shot.Value
}
