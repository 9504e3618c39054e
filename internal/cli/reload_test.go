package cli

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemonProc is a `torrentclaw daemon` child process whose stderr lines
// arrive on lines.
type daemonProc struct {
	cmd   *exec.Cmd
	lines chan string
	base  string // http://127.0.0.1:port
}

// startDaemonProc starts bin daemon with the config at path and waits for
// "daemon started".
func startDaemonProc(t *testing.T, bin, path string, port int, env ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(bin, "daemon", "--config", path)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &daemonProc{cmd: cmd, lines: make(chan string, 1024), base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(p.lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("daemon: %s", sc.Text())
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
	})
	p.await(t, "daemon started", time.Minute)
	return p
}

// await waits for a stderr line containing every one of want.
func (p *daemonProc) await(t *testing.T, want string, limit time.Duration, also ...string) string {
	t.Helper()
	// limit only turns a hang into a failure: never less than 2 minutes, for a loaded machine.
	limit = max(limit, 2*time.Minute)
	deadline := time.After(limit)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("daemon exited before logging %q", want)
			}
			if !strings.Contains(line, want) {
				continue
			}
			for _, a := range also {
				if !strings.Contains(line, a) {
					t.Fatalf("log line %q lacks %q", line, a)
				}
			}
			return line
		case <-deadline:
			t.Fatalf("no log line %q within %s", want, limit)
		}
	}
}

func (p *daemonProc) health(t *testing.T) {
	t.Helper()
	resp, err := http.Get(p.base + "/health")
	if err != nil {
		t.Fatalf("GET /health: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /health = %s", resp.Status)
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// SIGHUP applies a new log level and rate limit, names the change that
// needs a restart, and the daemon keeps serving; SIGTERM then stops it
// cleanly.
func TestSIGHUPReloadsLogLevel(t *testing.T) {
	bin := installBinary(t)
	dir := t.TempDir()
	port := freePort(t)
	conf := func(level string, maxActive int) string {
		return fmt.Sprintf(`[stream]
listen = "127.0.0.1"
port = %d
[torrent]
data_dir = %q
listen_port = 0
dht = false
max_active = %d
upload_rate = %q
[log]
level = %q
`, port, filepath.Join(dir, "data"), maxActive, map[string]string{"info": "0", "debug": "1MiB"}[level], level)
	}
	path := filepath.Join(dir, "config.toml")
	writeFile(t, path, conf("info", 5))
	p := startDaemonProc(t, bin, path, port, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	p.health(t)

	writeFile(t, path, conf("debug", 7))
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.await(t, "config reloaded", time.Minute, "log.level", "torrent.upload_rate", "needs_restart=torrent.max_active")
	// Debug is on: the next request shows up in the access log.
	p.health(t)
	p.await(t, `msg="http request"`, time.Minute, `route="GET /health"`, "dur_ms=")

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.await(t, "daemon stopped", time.Minute)
}
