package clienttest

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Aria2 is an aria2c instance driven through its JSON-RPC on loopback. aria2 speaks
// BitTorrent over TCP only (it has no uTP).
type Aria2 struct {
	*proc
	peer int
	rpc  int
	hc   *http.Client

	mu     sync.Mutex        // guards gids and magnet
	gids   map[string]string // infohash → the download's gid (after a magnet's metadata: the follow-up)
	magnet map[string]bool   // gids that fetch a magnet's metadata; the data comes in a follow-up
}

var _ Client = (*Aria2)(nil)

// StartAria2 starts aria2c with RPC on loopback: DHT, LPD and PEX off, seeding without a
// ratio limit, no file preallocation.
func StartAria2(t testing.TB, opts Options) *Aria2 {
	t.Helper()
	requireIsolated(t, "aria2c")
	Need(t, "aria2c")
	dir := t.TempDir()
	a := &Aria2{peer: FreePort(t), rpc: FreePort(t), hc: &http.Client{Timeout: 10 * time.Second},
		gids: map[string]string{}, magnet: map[string]bool{}}
	args := []string{
		"--enable-rpc", "--rpc-listen-all=false", fmt.Sprintf("--rpc-listen-port=%d", a.rpc),
		fmt.Sprintf("--listen-port=%d", a.peer), "--interface=127.0.0.1", "--disable-ipv6=true",
		"--enable-dht=false", "--enable-dht6=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
		"--seed-ratio=0.0", "--bt-max-peers=0", "--file-allocation=none", "--bt-save-metadata=false",
		"--auto-file-renaming=false", "--allow-overwrite=true", "--max-concurrent-downloads=16",
		"--summary-interval=0", "--console-log-level=warn", "--log=" + filepath.Join(dir, "aria2.debug.log"), "--log-level=notice",
		"--dir=" + filepath.Join(dir, "downloads"),
	}
	if opts.UploadRateBytes > 0 {
		args = append(args, fmt.Sprintf("--max-overall-upload-limit=%dK", opts.UploadRateBytes/1024))
	}
	wantCrypto, wantLevel := "false", "plain"
	switch opts.Encryption {
	case EncryptionDefault:
	case EncryptionRequired:
		// Without the minimum level aria2 would accept an encrypted handshake that selects
		// plaintext for the payload.
		args = append(args, "--bt-require-crypto=true", "--bt-min-crypto-level=arc4")
		wantCrypto, wantLevel = "true", "arc4"
	default:
		t.Fatalf("aria2c has no encryption mode %q", opts.Encryption)
	}
	a.proc = startProc(t, filepath.Join(dir, "aria2.log"), "aria2c", args...)
	waitHTTP(t, a.proc, a.url(), 30*time.Second)
	var global map[string]string
	a.call(t, "aria2.getGlobalOption", []any{}, &global)
	if global["bt-require-crypto"] != wantCrypto || global["bt-min-crypto-level"] != wantLevel {
		t.Fatalf("aria2c: bt-require-crypto %q and bt-min-crypto-level %q, want %q and %q",
			global["bt-require-crypto"], global["bt-min-crypto-level"], wantCrypto, wantLevel)
	}
	return a
}

// Name implements [Client].
func (a *Aria2) Name() string { return "aria2c" }

// PeerAddr implements [Client].
func (a *Aria2) PeerAddr() netip.AddrPort { return loopback(a.peer) }

func (a *Aria2) url() string { return fmt.Sprintf("http://127.0.0.1:%d/jsonrpc", a.rpc) }

func (a *Aria2) call(t testing.TB, method string, params []any, out any) {
	t.Helper()
	var reply struct {
		Result any `json:"result"`
		Error  *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if out != nil {
		reply.Result = out
	}
	_, err := postJSON(a.hc, a.url(), nil, map[string]any{"jsonrpc": "2.0", "id": "clienttest", "method": method, "params": params}, &reply)
	if err != nil {
		t.Fatalf("aria2c %s: %v\n%s", method, err, a.LogTail())
	}
	if reply.Error != nil {
		t.Fatalf("aria2c %s: %s", method, reply.Error.Message)
	}
}

// AddTorrent implements [Client]. aria2 checks data already in dir and seeds it.
func (a *Aria2) AddTorrent(t testing.TB, torrentPath, dir string) {
	t.Helper()
	data, err := os.ReadFile(torrentPath)
	if err != nil {
		t.Fatal(err)
	}
	var gid string
	a.call(t, "aria2.addTorrent", []any{base64.StdEncoding.EncodeToString(data), []string{},
		map[string]string{"dir": dir, "check-integrity": "true", "bt-seed-unverified": "false"}}, &gid)
	a.track(t, gid)
}

// AddMagnet implements [Client].
func (a *Aria2) AddMagnet(t testing.TB, magnet, dir string) {
	t.Helper()
	var gid string
	a.call(t, "aria2.addUri", []any{[]string{magnet}, map[string]string{"dir": dir}}, &gid)
	a.track(t, gid)
	a.mu.Lock()
	a.magnet[gid] = true
	a.mu.Unlock()
}

func (a *Aria2) track(t testing.TB, gid string) {
	t.Helper()
	var st struct {
		InfoHash string `json:"infoHash"`
	}
	a.call(t, "aria2.tellStatus", []any{gid, []string{"infoHash"}}, &st)
	a.mu.Lock()
	a.gids[strings.ToLower(st.InfoHash)] = gid
	a.mu.Unlock()
}

// Status implements [Client].
func (a *Aria2) Status(t testing.TB, ih string) Status {
	t.Helper()
	ih = strings.ToLower(ih)
	a.mu.Lock()
	gid, ok := a.gids[ih]
	a.mu.Unlock()
	if !ok {
		return Status{}
	}
	for range 3 { // a magnet's metadata download is followed by the real one
		var st struct {
			Status     string   `json:"status"`
			Completed  string   `json:"completedLength"`
			Total      string   `json:"totalLength"`
			Verified   string   `json:"verifiedLength"`
			Checking   string   `json:"verifyIntegrityPending"`
			Seeder     string   `json:"seeder"`
			FollowedBy []string `json:"followedBy"`
			ErrorMsg   string   `json:"errorMessage"`
		}
		a.call(t, "aria2.tellStatus", []any{gid, []string{"status", "completedLength", "totalLength", "verifiedLength",
			"verifyIntegrityPending", "seeder", "followedBy", "errorMessage"}}, &st)
		if len(st.FollowedBy) > 0 {
			gid = st.FollowedBy[0]
			a.mu.Lock()
			a.gids[ih] = gid
			a.mu.Unlock()
			continue
		}
		s := Status{Known: true}
		if st.Status == "error" {
			s.Err = st.ErrorMsg
			return s
		}
		a.mu.Lock()
		metadataOnly := a.magnet[gid]
		a.mu.Unlock()
		if metadataOnly { // its follow-up is not there yet
			return s
		}
		done, _ := strconv.ParseInt(st.Completed, 10, 64)
		total, _ := strconv.ParseInt(st.Total, 10, 64)
		if total > 0 && st.Verified == "" && st.Checking == "" {
			s.Progress = float64(done) / float64(total)
		}
		s.Seeding = s.Progress >= 1 && st.Seeder == "true" && st.Status == "active"
		return s
	}
	return Status{Known: true}
}
