package clienttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Transmission is a transmission-daemon instance driven through its RPC on loopback.
type Transmission struct {
	*proc
	peer int
	rpc  int
	hc   *http.Client

	mu  sync.Mutex // guards sid
	sid string     // X-Transmission-Session-Id
}

var _ Client = (*Transmission)(nil)

// StartTransmission starts transmission-daemon with a fresh config dir: TCP and uTP (its
// default), DHT, LPD, PEX and port forwarding off, no ratio or idle limits, no queues.
func StartTransmission(t testing.TB, opts Options) *Transmission {
	t.Helper()
	requireIsolated(t, "transmission-daemon")
	Need(t, "transmission-daemon")
	dir := t.TempDir()
	tr := &Transmission{peer: FreePort(t), rpc: FreePort(t), hc: &http.Client{Timeout: 10 * time.Second}}
	settings := map[string]any{
		"bind-address-ipv4":           "127.0.0.1",
		"bind-address-ipv6":           "::1",
		"peer-port":                   tr.peer,
		"peer-port-random-on-start":   false,
		"rpc-bind-address":            "127.0.0.1",
		"rpc-port":                    tr.rpc,
		"rpc-authentication-required": false,
		"rpc-whitelist-enabled":       false,
		"rpc-host-whitelist-enabled":  false,
		"dht-enabled":                 false,
		"lpd-enabled":                 false,
		"pex-enabled":                 false,
		"port-forwarding-enabled":     false,
		"blocklist-enabled":           false,
		"speed-limit-up-enabled":      opts.UploadRateBytes > 0,
		"speed-limit-up":              (opts.UploadRateBytes + 999) / 1000, // kB/s
		"speed-limit-down-enabled":    false,
		"alt-speed-enabled":           false,
		"ratio-limit-enabled":         false,
		"idle-seeding-limit-enabled":  false,
		"download-queue-enabled":      false,
		"seed-queue-enabled":          false,
		"queue-stalled-enabled":       false,
		"incomplete-dir-enabled":      false,
		"watch-dir-enabled":           false,
		"start-added-torrents":        true,
		"download-dir":                filepath.Join(dir, "downloads"),
		"message-level":               2,
	}
	// settings.json "encryption": 0 prefers plain connections (tolerates encrypted ones), 1
	// prefers encrypted ones (the default), 2 requires them. No value refuses encryption.
	wantEnc := "preferred" // how the RPC's session-get names the mode
	switch opts.Encryption {
	case EncryptionDefault:
	case EncryptionRequired:
		settings["encryption"] = 2
		wantEnc = "required"
	default:
		t.Fatalf("transmission-daemon has no encryption mode %q", opts.Encryption)
	}
	b, _ := json.MarshalIndent(settings, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "settings.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	tr.proc = startProc(t, filepath.Join(dir, "transmission.log"), "transmission-daemon", "-f", "-g", dir)
	waitHTTP(t, tr.proc, tr.url(), 30*time.Second)
	var session struct {
		Encryption string `json:"encryption"`
	}
	tr.call(t, "session-get", map[string]any{"fields": []string{"encryption"}}, &session)
	if session.Encryption != wantEnc {
		t.Fatalf("transmission-daemon: encryption is %q, want %q", session.Encryption, wantEnc)
	}
	return tr
}

// Name implements [Client].
func (tr *Transmission) Name() string { return "transmission-daemon" }

// PeerAddr implements [Client].
func (tr *Transmission) PeerAddr() netip.AddrPort { return loopback(tr.peer) }

func (tr *Transmission) url() string {
	return fmt.Sprintf("http://127.0.0.1:%d/transmission/rpc", tr.rpc)
}

// call makes one RPC, repeating it once with the session id a 409 answer hands out.
func (tr *Transmission) call(t testing.TB, method string, args any, out any) {
	t.Helper()
	var reply struct {
		Result    string          `json:"result"`
		Arguments json.RawMessage `json:"arguments"`
	}
	for range 2 {
		tr.mu.Lock()
		hdr := http.Header{"X-Transmission-Session-Id": {tr.sid}}
		tr.mu.Unlock()
		resp, err := postJSON(tr.hc, tr.url(), hdr, map[string]any{"method": method, "arguments": args}, &reply)
		if resp != nil && resp.StatusCode == http.StatusConflict {
			tr.mu.Lock()
			tr.sid = resp.Header.Get("X-Transmission-Session-Id")
			tr.mu.Unlock()
			continue
		}
		if err != nil {
			t.Fatalf("transmission-daemon %s: %v\n%s", method, err, tr.LogTail())
		}
		if reply.Result != "success" {
			t.Fatalf("transmission-daemon %s: %s", method, reply.Result)
		}
		if out != nil {
			if err := json.Unmarshal(reply.Arguments, out); err != nil {
				t.Fatalf("transmission-daemon %s: decode: %v", method, err)
			}
		}
		return
	}
	t.Fatalf("transmission-daemon %s: no session id", method)
}

// AddTorrent implements [Client]. Transmission checks data already in dir when asked to
// verify, which this does.
func (tr *Transmission) AddTorrent(t testing.TB, torrentPath, dir string) {
	t.Helper()
	var added struct {
		Added struct {
			ID int `json:"id"`
		} `json:"torrent-added"`
	}
	tr.call(t, "torrent-add", map[string]any{"filename": torrentPath, "download-dir": dir, "paused": false}, &added)
	tr.call(t, "torrent-verify", map[string]any{"ids": []int{added.Added.ID}}, nil)
}

// AddMagnet implements [Client].
func (tr *Transmission) AddMagnet(t testing.TB, magnet, dir string) {
	t.Helper()
	tr.call(t, "torrent-add", map[string]any{"filename": magnet, "download-dir": dir, "paused": false}, nil)
}

// Status implements [Client].
func (tr *Transmission) Status(t testing.TB, ih string) Status {
	t.Helper()
	var got struct {
		Torrents []struct {
			PercentDone  float64 `json:"percentDone"`
			Status       int     `json:"status"`
			Error        int     `json:"error"`
			ErrorString  string  `json:"errorString"`
			MetadataDone float64 `json:"metadataPercentComplete"`
			TrackerStats []struct {
				LastAnnounceSucceeded bool `json:"lastAnnounceSucceeded"`
			} `json:"trackerStats"`
		} `json:"torrents"`
	}
	tr.call(t, "torrent-get", map[string]any{"ids": []string{strings.ToLower(ih)},
		"fields": []string{"percentDone", "status", "error", "errorString", "metadataPercentComplete", "trackerStats"}}, &got)
	if len(got.Torrents) == 0 {
		return Status{}
	}
	g := got.Torrents[0]
	s := Status{Known: true, Progress: g.PercentDone}
	if g.MetadataDone < 1 {
		s.Progress = 0
	}
	// Status 6 is seeding; 1 and 2 are (waiting to) check. Error 3 is a local error; 1 and 2
	// are tracker warnings/errors, which do not stop a transfer.
	s.Seeding = g.Status == 6 && s.Progress >= 1
	// Transmission 3.00 never dials a 127.0.0.0/8 address (it counts loopback among the
	// "martian" addresses it ignores from trackers and PEX), so on loopback a peer finds it
	// only by announcing after it. Seeding therefore also waits for its first announce to
	// every tracker: a leecher started then learns its address at once.
	for _, ts := range g.TrackerStats {
		if !ts.LastAnnounceSucceeded {
			s.Seeding = false
		}
	}
	if g.Error == 3 {
		s.Err = g.ErrorString
	}
	return s
}
