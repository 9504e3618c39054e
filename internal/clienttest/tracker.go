package clienttest

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Tracker is a local opentracker (HTTP and UDP on the same port of 127.0.0.1). Debian builds
// it to serve only whitelisted infohashes; [Tracker.Allow] adds some.
type Tracker struct {
	p    *proc
	dir  string
	port int

	mu      sync.Mutex // guards allowed
	allowed []string
}

// StartTracker starts opentracker serving the given infohashes (hex).
func StartTracker(t testing.TB, infoHashes ...string) *Tracker {
	t.Helper()
	requireIsolated(t, "opentracker")
	Need(t, "opentracker")
	dir := t.TempDir()
	// opentracker chroots into dir and drops root for nobody, who must read the whitelist.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tr := &Tracker{dir: dir, port: FreePort(t)}
	tr.writeWhitelist(t, infoHashes)
	port := fmt.Sprint(tr.port)
	tr.p = startProc(t, filepath.Join(t.TempDir(), "opentracker.log"), "opentracker",
		"-i", "127.0.0.1", "-p", port, "-P", port, "-d", dir, "-u", "nobody", "-w", "whitelist.txt")
	waitHTTP(t, tr.p, fmt.Sprintf("http://127.0.0.1:%d/stats", tr.port), 10*time.Second)
	for _, ih := range infoHashes {
		tr.waitAllowed(t, ih)
	}
	return tr
}

// AnnounceURL is the tracker's HTTP announce URL.
func (tr *Tracker) AnnounceURL() string {
	return fmt.Sprintf("http://127.0.0.1:%d/announce", tr.port)
}

// Allow whitelists more infohashes (opentracker rereads the list on SIGHUP) and waits until
// the tracker accepts them.
func (tr *Tracker) Allow(t testing.TB, infoHashes ...string) {
	t.Helper()
	tr.writeWhitelist(t, infoHashes)
	if err := tr.p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("opentracker: reload whitelist: %v", err)
	}
	for _, ih := range infoHashes {
		tr.waitAllowed(t, ih)
	}
}

func (tr *Tracker) writeWhitelist(t testing.TB, add []string) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.allowed = append(tr.allowed, add...)
	if err := os.WriteFile(filepath.Join(tr.dir, "whitelist.txt"), []byte(strings.Join(tr.allowed, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitAllowed scrapes ih until the tracker knows it is allowed (a scrape of a refused hash
// answers a failure reason).
func (tr *Tracker) waitAllowed(t testing.TB, ih string) {
	t.Helper()
	raw, err := hex.DecodeString(ih)
	if err != nil || len(raw) != 20 {
		t.Fatalf("tracker: infohash %q: want 40 hex digits", ih)
	}
	// An announce with a throwaway peer id and port 1: opentracker answers a failure for a
	// hash it does not serve. The peer expires with the announce interval; port 1 is never
	// reachable, so no client wastes more than one refused dial on it.
	u := fmt.Sprintf("http://127.0.0.1:%d/announce?info_hash=%s&peer_id=-CT0000-clienttest00&port=1&left=0&event=stopped&compact=1",
		tr.port, url.QueryEscape(string(raw)))
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(u)
		if err == nil {
			var b [512]byte
			n, _ := resp.Body.Read(b[:])
			resp.Body.Close()
			if !strings.Contains(string(b[:n]), "failure reason") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("opentracker does not serve %s after 10s\n%s", ih, tr.p.LogTail())
		}
		time.Sleep(50 * time.Millisecond) // opentracker reloads asynchronously; nothing to await
	}
}
