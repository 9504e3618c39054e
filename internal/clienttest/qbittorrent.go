package clienttest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// QBittorrent is a qbittorrent-nox (libtorrent-rasterbar 2.0) instance with its WebUI API
// on loopback.
type QBittorrent struct {
	*proc
	peer  int
	webui int
	hc    *http.Client
}

var _ Client = (*QBittorrent)(nil)

// StartQBittorrent starts qbittorrent-nox with a fresh profile: TCP and uTP (its default),
// DHT, LSD, PeX, UPnP and queueing off, several connections per IP allowed unless
// opts.OneConnectionPerIP (every peer in the namespace is 127.0.0.1, and libtorrent bans an
// address that connects to itself otherwise), no ratio limit.
func StartQBittorrent(t testing.TB, opts Options) *QBittorrent {
	t.Helper()
	requireIsolated(t, "qbittorrent-nox")
	Need(t, "qbittorrent-nox")
	// Encryption (in the config file and the API's "encryption"): 0 allows both kinds (the
	// default), 1 forces encryption, 2 disables it. Whichever is negotiated, qBittorrent lets
	// libtorrent encrypt only with RC4.
	wantEnc := 0
	switch opts.Encryption {
	case EncryptionDefault:
	case EncryptionRequired:
		wantEnc = 1
	case EncryptionDisabled:
		wantEnc = 2
	default:
		t.Fatalf("qbittorrent-nox has no encryption mode %q", opts.Encryption)
	}
	// A port FreePort returned may be taken before qBittorrent binds it (another
	// connection's ephemeral port): it then exits saying so, and starts again on new ports.
	var q *QBittorrent
	var limited bool
	for attempt := 1; ; attempt++ {
		prof := t.TempDir()
		q = &QBittorrent{peer: FreePort(t), webui: FreePort(t), hc: &http.Client{Timeout: 10 * time.Second}}
		limited = opts.UploadRateBytes > 0
		conf := fmt.Sprintf(`[LegalNotice]
Accepted=true

[BitTorrent]
Session\DHTEnabled=false
Session\LSDEnabled=false
Session\PeXEnabled=false
Session\Port=%d
Session\Interface=lo
Session\InterfaceName=lo
Session\InterfaceAddress=127.0.0.1
Session\QueueingSystemEnabled=false
Session\AddTrackersEnabled=false
Session\MultiConnectionsPerIp=%t
Session\GlobalMaxRatio=-1
Session\IgnoreLimitsOnLAN=%t
Session\uTPRateLimited=%t
Session\TempPathEnabled=false
Session\Encryption=%d
Session\DefaultSavePath=%s

[Preferences]
Connection\UPnP=false
Connection\ResolvePeerCountries=false
General\Locale=en
WebUI\Enabled=true
WebUI\Address=127.0.0.1
WebUI\Port=%d
WebUI\LocalHostAuth=false
WebUI\CSRFProtection=false
WebUI\HostHeaderValidation=false
WebUI\UseUPnP=false
`, q.peer, !opts.OneConnectionPerIP, !limited, limited, wantEnc, filepath.Join(prof, "downloads"), q.webui)
		cfgDir := filepath.Join(prof, "qBittorrent", "config")
		if err := os.MkdirAll(cfgDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfgDir, "qBittorrent.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		q.proc = startProc(t, filepath.Join(prof, "qbittorrent.log"), "qbittorrent-nox",
			"--profile="+prof, fmt.Sprintf("--webui-port=%d", q.webui))
		err := waitHTTPErr(q.proc, q.api("app/version"), 30*time.Second)
		if err == nil {
			break
		}
		if attempt < 3 && errors.Is(err, errExited) && strings.Contains(q.proc.LogTail(), "already in use") {
			t.Logf("qbittorrent-nox: a port was taken before it bound it; starting again on new ports")
			continue
		}
		t.Fatal(err)
	}
	// The same settings through the API, applied live (some of them are read only from
	// there), then read back.
	prefs := map[string]any{
		"dht": false, "lsd": false, "pex": false, "upnp": false,
		"listen_port": q.peer, "random_port": false, "queueing_enabled": false,
		"max_ratio_enabled": false, "add_trackers_enabled": false,
		"enable_multi_connections_from_same_ip": !opts.OneConnectionPerIP,
		"limit_lan_peers":                       limited, "limit_utp_rate": limited,
		"max_connec": -1, "max_connec_per_torrent": -1, "max_uploads": -1, "max_uploads_per_torrent": -1,
		"up_limit": opts.UploadRateBytes, "dl_limit": 0, "resolve_peer_countries": false,
		"bittorrent_protocol": 0, // TCP and uTP
	}
	if opts.UTPOnly {
		prefs["bittorrent_protocol"] = 2
	}
	prefs["encryption"] = wantEnc
	b, _ := json.Marshal(prefs)
	q.form(t, "app/setPreferences", url.Values{"json": {string(b)}})
	var got map[string]any
	q.getJSON(t, "app/preferences", &got)
	if got["dht"] != false || got["pex"] != false || fmt.Sprint(got["listen_port"]) != fmt.Sprint(q.peer) ||
		got["enable_multi_connections_from_same_ip"] != !opts.OneConnectionPerIP || fmt.Sprint(got["bittorrent_protocol"]) != fmt.Sprint(prefs["bittorrent_protocol"]) {
		t.Fatalf("qbittorrent-nox: preferences not applied: dht=%v pex=%v listen_port=%v multi_ip=%v",
			got["dht"], got["pex"], got["listen_port"], got["enable_multi_connections_from_same_ip"])
	}
	if fmt.Sprint(got["encryption"]) != fmt.Sprint(wantEnc) {
		t.Fatalf("qbittorrent-nox: encryption is %v, want %d", got["encryption"], wantEnc)
	}
	return q
}

// Name implements [Client].
func (q *QBittorrent) Name() string { return "qbittorrent-nox" }

// PeerAddr implements [Client].
func (q *QBittorrent) PeerAddr() netip.AddrPort { return loopback(q.peer) }

func (q *QBittorrent) api(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d/api/v2/%s", q.webui, path)
}

// AddTorrent implements [Client].
func (q *QBittorrent) AddTorrent(t testing.TB, torrentPath, dir string) {
	t.Helper()
	data, err := os.ReadFile(torrentPath)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("torrents", filepath.Base(torrentPath))
	_, _ = fw.Write(data)
	for k, v := range map[string]string{"savepath": dir, "paused": "false", "skip_checking": "false", "autoTMM": "false"} {
		_ = mw.WriteField(k, v)
	}
	mw.Close()
	q.post(t, "torrents/add", mw.FormDataContentType(), &body)
}

// AddMagnet implements [Client].
func (q *QBittorrent) AddMagnet(t testing.TB, magnet, dir string) {
	t.Helper()
	q.form(t, "torrents/add", url.Values{"urls": {magnet}, "savepath": {dir}, "paused": {"false"}, "autoTMM": {"false"}})
}

// Status implements [Client].
func (q *QBittorrent) Status(t testing.TB, ih string) Status {
	t.Helper()
	var ts []struct {
		Progress float64 `json:"progress"`
		State    string  `json:"state"`
	}
	q.getJSON(t, "torrents/info?hashes="+strings.ToLower(ih), &ts)
	if len(ts) == 0 {
		return Status{}
	}
	s := Status{Known: true, Progress: ts[0].Progress}
	switch ts[0].State {
	case "uploading", "stalledUP", "forcedUP", "queuedUP":
		s.Seeding = s.Progress >= 1
	case "error", "missingFiles":
		s.Err = "state " + ts[0].State
	case "metaDL":
		s.Progress = 0
	}
	return s
}

func (q *QBittorrent) form(t testing.TB, path string, v url.Values) {
	t.Helper()
	q.post(t, path, "application/x-www-form-urlencoded", strings.NewReader(v.Encode()))
}

func (q *QBittorrent) post(t testing.TB, path, ctype string, body io.Reader) {
	t.Helper()
	resp, err := q.hc.Post(q.api(path), ctype, body)
	if err != nil {
		t.Fatalf("qbittorrent-nox %s: %v\n%s", path, err, q.LogTail())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) == "Fails." {
		t.Fatalf("qbittorrent-nox %s: %s %s", path, resp.Status, b)
	}
}

func (q *QBittorrent) getJSON(t testing.TB, path string, out any) {
	t.Helper()
	resp, err := q.hc.Get(q.api(path))
	if err != nil {
		t.Fatalf("qbittorrent-nox %s: %v\n%s", path, err, q.LogTail())
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("qbittorrent-nox %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(out); err != nil {
		t.Fatalf("qbittorrent-nox %s: decode: %v", path, err)
	}
}

// AddPeers makes qBittorrent connect to each peer ("host:port") for the torrent infoHash
// (40 hex digits), which it must already have (a magnet without metadata will do): it dials
// them, as a client dials the peers a tracker returns.
func (q *QBittorrent) AddPeers(t testing.TB, infoHash string, peers ...string) {
	t.Helper()
	q.form(t, "torrents/addPeers", url.Values{"hashes": {strings.ToLower(infoHash)}, "peers": {strings.Join(peers, "|")}})
}

// SetUploadLimit changes the client's global upload limit (bytes per second, 0: none) while
// it runs.
func (q *QBittorrent) SetUploadLimit(t testing.TB, bytesPerSecond int) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"up_limit": bytesPerSecond})
	q.form(t, "app/setPreferences", url.Values{"json": {string(b)}})
	var got map[string]any
	q.getJSON(t, "app/preferences", &got)
	if v, ok := got["up_limit"].(float64); !ok || v != float64(bytesPerSecond) {
		t.Fatalf("qbittorrent-nox: up_limit is %v, want %d", got["up_limit"], bytesPerSecond)
	}
}
