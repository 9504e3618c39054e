package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/config"
	"github.com/torrentclaw/cli/internal/control"
	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
	"github.com/torrentclaw/cli/internal/upnptest"
)

// upnpLease is the shortest lease config accepts; renewal at half of it is
// too slow for these tests and is covered in internal/upnp.
const upnpLease = time.Minute

// upnpConfig is testConfig with UPnP on, which requires stream tokens.
func upnpConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.UPnP.Enabled = true
	cfg.UPnP.Lease = config.Duration(upnpLease)
	cfg.Stream.RequireStreamToken = true
	return cfg
}

func startUPnPDaemon(t *testing.T, cfg config.Config, hook UPnPOptions) *running {
	t.Helper()
	return startDaemon(t, cfg, nil, func(o *Options) { o.UPnP = hook })
}

// upnpSeed seeds a 1 MiB file whose content (and so infohash) is this
// test's own. Each subtest has its own seeder: a seeder shared by consecutive
// daemons would hand the next one the stopped one's address over PEX, and the
// daemon's dial to it would outlive the test.
func upnpSeed(t *testing.T) (info engine.SeedInfo, sha256hex string) {
	t.Helper()
	src, sum := enginetest.WriteRandomFile(t, t.TempDir(), "film.mp4", 1<<20, int64(crc32.ChecksumIEEE([]byte(t.Name()))))
	return enginetest.NewSeeder(t, enginetest.SeederOptions{}).Add(t, src), sum
}

// mappingStrings renders a gateway's table for comparison and messages.
func mappingStrings(ms []upnptest.PortMapping) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s %d->%s:%d lease %ds %q", m.Protocol, m.ExternalPort, m.InternalClient,
			m.InternalPort, m.LeaseSeconds, m.Description))
	}
	slices.Sort(out)
	return out
}

// upnpCheck returns the doctor's "upnp" check.
func upnpCheck(t *testing.T, r *running) control.Check {
	t.Helper()
	checks, err := r.client.Doctor(t.Context())
	if err != nil {
		t.Fatalf("Doctor() error = %v", err)
	}
	for _, c := range checks {
		if c.Name == "upnp" {
			return c
		}
	}
	t.Fatalf("Doctor() has no upnp check: %+v", checks)
	return control.Check{}
}

// viaGateway is an HTTP client that reaches the gateway's external address
// the way its port forward does: every connection goes to the media listener.
func viaGateway(r *running) *http.Client {
	media := r.d.MediaAddr().String()
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, media)
		},
		DisableKeepAlives: true, // nothing idles past the test
	}}
}

func TestUPnPMapsPortsAndReportsPublicURL(t *testing.T) {
	checkGoroutines(t)
	tests := []struct {
		name       string
		hook       func(g *upnptest.Gateway) UPnPOptions
		wantClient string // internal client of every mapping
	}{
		{"ssdp discovery", func(g *upnptest.Gateway) UPnPOptions {
			return UPnPOptions{SSDPAddr: g.SSDPAddr()}
		}, "127.0.0.1"},
		{"root description url and local address", func(g *upnptest.Gateway) UPnPOptions {
			return UPnPOptions{RootDescURL: g.RootDescURL(), LocalAddr: netip.MustParseAddr("192.0.2.10")}
		}, "192.0.2.10"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, sum := upnpSeed(t)
			g := upnptest.New(t, upnptest.Config{})
			f := newFakeOrigin(t, testAPIKey)
			tok := mintStr(t)
			f.queueSync(map[string]any{"newTasks": []any{map[string]any{
				"id": "task-1", "infoHash": info.InfoHash, "mode": "stream", "magnet": info.Magnet, "streamToken": tok,
			}}})
			cfg := upnpConfig(t)
			cfg.Origin.APIURL = f.URL()
			cfg.Origin.APIKey = testAPIKey
			r := startUPnPDaemon(t, cfg, tc.hook(g))
			st, err := r.client.Status(t.Context())
			if err != nil {
				t.Fatalf("Status() error = %v", err)
			}
			mediaPort, btPort := st.Addresses.MediaPort, st.Addresses.TorrentPort
			if mediaPort == 0 || btPort == 0 {
				t.Fatalf("Status().Addresses = %+v, want bound media and torrent ports", st.Addresses)
			}

			// The media port and the BitTorrent port (TCP and UDP) are
			// forwarded to this host, with the configured lease.
			lease := int(upnpLease / time.Second)
			want := []string{
				fmt.Sprintf("TCP %d->%s:%d lease %ds %q", mediaPort, tc.wantClient, mediaPort, lease, "torrentclaw media"),
				fmt.Sprintf("TCP %d->%s:%d lease %ds %q", btPort, tc.wantClient, btPort, lease, "torrentclaw bittorrent"),
				fmt.Sprintf("UDP %d->%s:%d lease %ds %q", btPort, tc.wantClient, btPort, lease, "torrentclaw bittorrent"),
			}
			slices.Sort(want)
			eventually(t, 10*time.Second, "three ports mapped", func() bool { return len(g.Mappings()) >= len(want) })
			if got := mappingStrings(g.Mappings()); !slices.Equal(got, want) {
				t.Errorf("gateway mappings = %q, want %q", got, want)
			}
			for _, c := range g.Calls("AddPortMapping") {
				if c.ServiceType != upnptest.ServiceIP2 {
					t.Errorf("AddPortMapping on %q, want %q", c.ServiceType, upnptest.ServiceIP2)
				}
			}

			// The gateway's external address becomes pub in the URLs the
			// origin is told, and it streams the same bytes.
			pubBase := fmt.Sprintf("http://%s:%d", upnptest.DefaultExternalIP, mediaPort)
			wantPub := pubBase + "/stream?id=task-1&t=" + tok
			var urls map[string]string
			eventually(t, 30*time.Second, "the origin told the pub stream URL", func() bool {
				st := f.lastTaskState("task-1")
				if st == nil {
					return false
				}
				s, _ := st["streamUrl"].(string)
				urls = nil
				return json.Unmarshal([]byte(s), &urls) == nil && urls["pub"] == wantPub
			})
			if code, body := get(t, urls["lan"]); code != http.StatusOK || sha(body) != sum {
				t.Errorf("GET lan stream URL = %d, identical=%v, want 200 and the seeded bytes", code, sha(body) == sum)
			}
			// Through the forward, the pub URL streams the same bytes, and
			// the external address counts as the daemon's own: a playlist
			// asked for under it links back to it.
			fetches := []struct {
				name string
				url  string
				ok   func(body []byte) bool
			}{
				{"pub stream URL", urls["pub"], func(b []byte) bool { return sha(b) == sum }},
				{"playlist under the pub host", pubBase + "/playlist.m3u?id=task-1&t=" + tok, func(b []byte) bool {
					return strings.Contains(string(b), "\n"+pubBase+"/stream?")
				}},
			}
			client := viaGateway(r)
			for _, fe := range fetches {
				resp, err := client.Get(fe.url)
				if err != nil {
					t.Fatalf("GET %s: %v", fe.name, err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || !fe.ok(body) {
					t.Errorf("GET %s = %d, %d bytes, %v; want 200 and the expected body", fe.name, resp.StatusCode, len(body), err)
				}
			}

			st, err = r.client.Status(t.Context())
			if err != nil {
				t.Fatalf("Status() error = %v", err)
			}
			if st.Addresses.Public != upnptest.DefaultExternalIP {
				t.Errorf("Status().Addresses.Public = %q, want %q", st.Addresses.Public, upnptest.DefaultExternalIP)
			}
			if !slices.Contains(st.MediaURLs, pubBase) {
				t.Errorf("Status().MediaURLs = %q, want it to contain %s", st.MediaURLs, pubBase)
			}
			for _, want := range []string{
				fmt.Sprintf("TCP %d->%d", mediaPort, mediaPort),
				fmt.Sprintf("TCP %d->%d", btPort, btPort),
				fmt.Sprintf("UDP %d->%d", btPort, btPort),
				"on " + g.Host() + " (WANIPConnection:2)",
				"external " + upnptest.DefaultExternalIP,
			} {
				if !strings.Contains(st.UPnP, want) {
					t.Errorf("Status().UPnP = %q, want it to contain %q", st.UPnP, want)
				}
			}
			if strings.Contains(st.UPnP, "error") {
				t.Errorf("Status().UPnP = %q, want no error", st.UPnP)
			}
			if c := upnpCheck(t, r); c.Level != control.LevelOK || !c.OK || c.Detail != st.UPnP {
				t.Errorf("doctor upnp check = %+v, want ok with detail %q", c, st.UPnP)
			}

			// Stopping the daemon removes every mapping from the gateway.
			if err := r.stop(t); err != nil {
				t.Fatalf("Run() = %v, want nil", err)
			}
			if got := g.Mappings(); len(got) != 0 {
				t.Errorf("gateway mappings after stop = %q, want none", mappingStrings(got))
			}
			if got := len(g.Calls("DeletePortMapping")); got != 3 {
				t.Errorf("gateway saw %d DeletePortMapping calls, want 3", got)
			}
			assertNoSecrets(t, r.logs.String(), testAPIKey, tok)
		})
	}
}

func TestUPnPGatewayFailureKeepsServing(t *testing.T) {
	checkGoroutines(t)
	tests := []struct {
		name        string
		cfg         upnptest.Config
		hang        bool // SOAP requests never answer
		hook        func(g *upnptest.Gateway) UPnPOptions
		wantError   string // in the doctor's detail
		wantDeletes int    // mappings the gateway accepted before the failure, then removed
	}{
		{
			name: "gateway refuses tcp",
			cfg: upnptest.Config{Fault: func(c upnptest.Call, _ int) int {
				if c.Action == "AddPortMapping" && c.Args["NewProtocol"] == "TCP" {
					return upnptest.CodeNotAuthorized
				}
				return 0
			}},
			hook:        func(g *upnptest.Gateway) UPnPOptions { return UPnPOptions{SSDPAddr: g.SSDPAddr()} },
			wantError:   "upnp error 606 Action not authorized",
			wantDeletes: 1, // UDP bittorrent
		},
		{
			name: "gateway hangs",
			hang: true,
			hook: func(g *upnptest.Gateway) UPnPOptions {
				return UPnPOptions{SSDPAddr: g.SSDPAddr(), RequestTimeout: 300 * time.Millisecond}
			},
			wantError: "gateway did not answer within 300ms",
		},
		{
			name: "no gateway answers",
			cfg:  upnptest.Config{SilentSSDP: true},
			hook: func(g *upnptest.Gateway) UPnPOptions {
				return UPnPOptions{SSDPAddr: g.SSDPAddr(), DiscoverTimeout: 500 * time.Millisecond}
			},
			wantError: "no upnp internet gateway found",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, sum := upnpSeed(t)
			g := upnptest.New(t, tc.cfg)
			g.SetHangSOAP(tc.hang)
			r := startUPnPDaemon(t, upnpConfig(t), tc.hook(g))

			const warning = `level=WARN msg="upnp unavailable; the media port is reachable on the LAN only"`
			eventually(t, 10*time.Second, "the upnp warning", func() bool { return strings.Contains(r.logs.String(), warning) })
			c := upnpCheck(t, r)
			if c.Level != control.LevelWarn || !c.OK || !strings.HasPrefix(c.Detail, "failed: ") || !strings.Contains(c.Detail, tc.wantError) {
				t.Errorf("doctor upnp check = %+v, want warn with %q", c, tc.wantError)
			}
			// Whatever the gateway accepted before refusing is taken back.
			eventually(t, 10*time.Second, "no mapping left on the gateway", func() bool { return len(g.Mappings()) == 0 })
			if got := len(g.Calls("DeletePortMapping")); got != tc.wantDeletes {
				t.Errorf("gateway saw %d DeletePortMapping calls, want %d", got, tc.wantDeletes)
			}

			// The daemon keeps serving, with no public address.
			add, err := r.client.AddTask(t.Context(), control.AddRequest{Source: info.Magnet, FileIndex: -1})
			if err != nil {
				t.Fatalf("AddTask() error = %v", err)
			}
			if code, body := get(t, add.StreamURL); code != http.StatusOK || sha(body) != sum {
				t.Errorf("GET stream = %d, identical=%v, want 200 and the seeded bytes", code, sha(body) == sum)
			}
			st, err := r.client.Status(t.Context())
			if err != nil {
				t.Fatalf("Status() error = %v", err)
			}
			if st.Addresses.Public != "" || st.UPnP != c.Detail {
				t.Errorf("Status() public = %q, upnp = %q; want no public address and %q", st.Addresses.Public, st.UPnP, c.Detail)
			}
			if err := r.stop(t); err != nil {
				t.Errorf("Run() = %v, want nil: a gateway failure is never fatal", err)
			}
		})
	}
}
