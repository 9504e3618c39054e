package upnp

// This file runs the Mapper against the real miniupnpd (Debian packages
// miniupnpd + miniupnpd-nftables + nftables) inside two network namespaces
// the test creates and deletes:
//
//	tclan-N: veth-l 10.200.0.2/24 ── veth-g 10.200.0.1/24 :tcgw-N
//	                                  wan0 10.200.1.1/24 ── wan1 10.200.1.2/24 (fake STUN server)
//
// Neither namespace has a link to the host's network, so nothing leaves them.
// miniupnpd refuses to forward when its WAN address is private unless a STUN
// server vouches for a 1:1 NAT, so a tiny STUN responder (this test binary,
// re-executed) answers it on wan1. The Mapper runs in tclan-N (this test
// binary again), discovering the gateway by real SSDP multicast.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/logtest"
)

// helperEnv selects a helper mode when the test binary is re-executed inside
// a namespace.
const helperEnv = "TORRENTCLAW_UPNP_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "stun":
		os.Exit(runSTUNHelper(os.Getenv("STUN_ADDR")))
	case "client":
		os.Exit(runClientHelper())
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", helperEnv, os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// Addresses inside the namespaces.
const (
	nsLANClient = "10.200.0.2"
	nsLANGW     = "10.200.0.1"
	nsWAN       = "10.200.1.1"
	nsSTUN      = "10.200.1.2"
	tcpPort     = 18080
	udpPort     = 18081
)

// clientEvent is one JSON line the client helper prints.
type clientEvent struct {
	Step        string `json:"step"`
	Err         string `json:"err,omitempty"`
	Service     string `json:"service,omitempty"`
	Gateway     string `json:"gateway,omitempty"`
	LocalAddr   string `json:"local_addr,omitempty"`
	ExternalIP  string `json:"external_ip,omitempty"`  // from ExternalIP, or its error
	FaultCode   int    `json:"fault_code,omitempty"`   // from the refused foreign mapping
	Mapped      int    `json:"mapped,omitempty"`       // len(Mapped())
	Unauthorize bool   `json:"unauthorized,omitempty"` // refusal matched ErrNotAuthorized or ErrConflict
}

func TestMiniupnpd(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the miniupnpd namespace test in -short mode")
	}
	if os.Getenv("TORRENTCLAW_SKIP_NETNS") != "" {
		t.Skip("TORRENTCLAW_SKIP_NETNS is set")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: creating network namespaces for miniupnpd needs root")
	}
	bins := map[string]string{}
	for _, name := range []string{"ip", "nft", "miniupnpd"} {
		p, err := exec.LookPath(name)
		if err != nil {
			p, err = exec.LookPath(filepath.Join("/usr/sbin", name))
		}
		if err != nil {
			t.Skipf("skipping: %s not installed (Debian: apt-get install iproute2 nftables miniupnpd miniupnpd-nftables)", name)
		}
		bins[name] = p
	}
	if out, _ := exec.Command(bins["miniupnpd"], "--version").CombinedOutput(); !strings.Contains(string(out), "nftables") {
		t.Skipf("skipping: miniupnpd is not the nftables build (install miniupnpd-nftables): %q", out)
	}

	tests := []struct {
		name        string
		extraConf   string
		wantService string
	}{
		{"igd2", "", "WANIPConnection:2"},
		// miniupnpd describing itself as IGD:1 exercises the fallback.
		{"igd1", "force_igd_desc_v1=yes\n", "WANIPConnection:1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testMiniupnpd(t, bins, tc.extraConf, tc.wantService)
		})
	}
}

// testMiniupnpd builds the two namespaces, starts the STUN helper and
// miniupnpd in the gateway one, and drives a Mapper from the LAN one.
func testMiniupnpd(t *testing.T, bins map[string]string, extraConf, wantService string) {
	suffix := randomSuffix(t)
	gw, lan := "tcgw-"+suffix, "tclan-"+suffix
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(bins["ip"], args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	if out, err := exec.Command(bins["ip"], "netns", "add", gw).CombinedOutput(); err != nil {
		t.Skipf("skipping: ip netns add is not permitted here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command(bins["ip"], "netns", "del", gw).Run() })
	run("netns", "add", lan)
	t.Cleanup(func() { exec.Command(bins["ip"], "netns", "del", lan).Run() })

	run("link", "add", "veth-l", "netns", lan, "type", "veth", "peer", "name", "veth-g", "netns", gw)
	run("-n", gw, "link", "add", "wan0", "type", "veth", "peer", "name", "wan1")
	run("-n", lan, "addr", "add", nsLANClient+"/24", "dev", "veth-l")
	run("-n", gw, "addr", "add", nsLANGW+"/24", "dev", "veth-g")
	run("-n", gw, "addr", "add", nsWAN+"/24", "dev", "wan0")
	run("-n", gw, "addr", "add", nsSTUN+"/24", "dev", "wan1")
	for _, l := range []struct{ ns, dev string }{{lan, "lo"}, {lan, "veth-l"}, {gw, "lo"}, {gw, "veth-g"}, {gw, "wan0"}, {gw, "wan1"}} {
		run("-n", l.ns, "link", "set", l.dev, "up")
	}
	run("-n", lan, "route", "add", "default", "via", nsLANGW)

	// The chains miniupnpd's nftables backend fills (its defaults: table
	// "filter", family inet, chains miniupnpd / prerouting_miniupnpd /
	// postrouting_miniupnpd).
	nft := exec.Command(bins["ip"], "netns", "exec", gw, bins["nft"], "-f", "-")
	nft.Stdin = strings.NewReader(`table inet filter {
  chain forward { type filter hook forward priority 0; policy drop; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
`)
	if out, err := nft.CombinedOutput(); err != nil {
		t.Fatalf("nft init: %v: %s", err, out)
	}
	natRules := func() string {
		out, err := exec.Command(bins["ip"], "netns", "exec", gw, bins["nft"], "list", "chain", "inet", "filter", "prerouting_miniupnpd").CombinedOutput()
		if err != nil {
			t.Fatalf("nft list: %v: %s", err, out)
		}
		return string(out)
	}

	// Fake STUN server on wan1, so miniupnpd enables port forwarding.
	stun := startHelper(t, bins["ip"], gw, "stun", "STUN_ADDR="+nsSTUN+":3478")
	if ev := stun.next(t, 10*time.Second); ev.Step != "ready" {
		t.Fatalf("stun helper: %+v, want ready", ev)
	}

	dir := t.TempDir()
	conf := filepath.Join(dir, "miniupnpd.conf")
	confText := fmt.Sprintf(`ext_ifname=wan0
listening_ip=veth-g
http_port=0
enable_natpmp=no
ipv6_disable=yes
secure_mode=yes
system_uptime=yes
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b
lease_file=%s
minissdpdsocket=%s
ext_perform_stun=yes
ext_stun_host=%s
ext_stun_port=3478
allow 1024-65535 10.200.0.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
%s`, filepath.Join(dir, "leases"), filepath.Join(dir, "minissdpd.sock"), nsSTUN, extraConf)
	if err := os.WriteFile(conf, []byte(confText), 0o600); err != nil {
		t.Fatal(err)
	}
	mlog := &logtest.Buffer{}
	mini := exec.Command(bins["ip"], "netns", "exec", gw, bins["miniupnpd"], "-d", "-f", conf, "-P", filepath.Join(dir, "pid"))
	mini.Stdout, mini.Stderr = mlog, mlog
	if err := mini.Start(); err != nil {
		t.Fatalf("start miniupnpd: %v", err)
	}
	t.Cleanup(func() {
		// Killed outright: its rules and state die with the namespace and
		// the temporary directory.
		mini.Process.Kill()
		mini.Wait()
		if t.Failed() {
			t.Logf("miniupnpd log:\n%s", mlog.String())
		}
	})
	started := time.Now()
	waitFor(t, "miniupnpd to listen", 15*time.Second, func() bool {
		return strings.Contains(mlog.String(), "HTTP listening on port")
	})
	t.Logf("miniupnpd listening after %v", time.Since(started).Round(time.Millisecond))
	if !strings.Contains(mlog.String(), "Port forwarding is now enabled") {
		t.Fatalf("miniupnpd did not enable port forwarding:\n%s", mlog.String())
	}

	client := startHelper(t, bins["ip"], lan, "client")
	ev := client.next(t, 15*time.Second)
	if ev.Step != "discovered" || ev.Err != "" {
		t.Fatalf("client: %+v, want discovered", ev)
	}
	if ev.Service != wantService || ev.LocalAddr != nsLANClient || !strings.HasPrefix(ev.Gateway, nsLANGW+":") {
		t.Errorf("client discovered %+v, want %s at %s:* for %s", ev, wantService, nsLANGW, nsLANClient)
	}

	ev = client.next(t, 10*time.Second)
	if ev.Step != "mapped" || ev.Err != "" || ev.Mapped != 2 {
		t.Fatalf("client: %+v, want mapped with 2 mappings", ev)
	}
	rules := natRules()
	for _, want := range []string{
		fmt.Sprintf("dnat ip to %s:%d", nsLANClient, tcpPort),
		fmt.Sprintf("dnat ip to %s:%d", nsLANClient, udpPort),
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("gateway nat rules lack %q:\n%s", want, rules)
		}
	}
	// miniupnpd reports the address its STUN server saw.
	if ev.ExternalIP != nsSTUN {
		t.Errorf("ExternalIP() = %q, want %s (the address the STUN server reported)", ev.ExternalIP, nsSTUN)
	}

	ev = client.next(t, 10*time.Second)
	if ev.Step != "refused" || ev.FaultCode == 0 || !ev.Unauthorize {
		t.Errorf("client: %+v, want the gateway (secure mode) to refuse a mapping to another host", ev)
	}
	t.Logf("mapping to another host refused: %s", ev.Err)

	ev = client.next(t, 10*time.Second)
	if ev.Step != "renewed" || ev.Err != "" {
		t.Fatalf("client: %+v, want renewed", ev)
	}
	// Its log arrives through a pipe, maybe after the helper's event.
	waitFor(t, "miniupnpd to log the renewal", 5*time.Second, func() bool {
		return strings.Contains(mlog.String(), "updating existing port mapping")
	})

	client.send(t, "stop")
	ev = client.next(t, 10*time.Second)
	if ev.Step != "stopped" || ev.Err != "" || ev.Mapped != 0 {
		t.Fatalf("client: %+v, want stopped with nothing mapped", ev)
	}
	if rules := natRules(); strings.Contains(rules, nsLANClient) {
		t.Errorf("gateway nat rules still forward to %s after shutdown:\n%s", nsLANClient, rules)
	}
}

// helper is a re-executed test binary running in a namespace.
type helper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan clientEvent // closed when stdout ends
	start  time.Time
}

func startHelper(t *testing.T, ipBin, ns, mode string, env ...string) *helper {
	t.Helper()
	cmd := exec.Command(ipBin, "netns", "exec", ns, os.Args[0], "-test.run=^$")
	// atexit_sleep_ms=0: a -race helper would otherwise linger a second on exit.
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=" + mode, "GORACE=atexit_sleep_ms=0"}, env...)...)
	cmd.Stderr = t.Output()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s helper: %v", mode, err)
	}
	h := &helper{cmd: cmd, stdin: stdin, events: make(chan clientEvent, 16), start: time.Now()} // buffered: a whole run's events
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(h.events)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev clientEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = clientEvent{Step: "garbage", Err: sc.Text()}
			}
			h.events <- ev
		}
	})
	t.Cleanup(func() {
		stdin.Close() // helpers exit when stdin closes
		done := make(chan struct{})
		go func() { wg.Wait(); cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return h
}

func (h *helper) next(t *testing.T, timeout time.Duration) clientEvent {
	t.Helper()
	// timeout only turns a hang into a failure: never less than 2 minutes, for a loaded
	// machine (the helper's own wait for a renewal is as long).
	timeout = max(timeout, 2*time.Minute)
	select {
	case ev, ok := <-h.events:
		if !ok {
			t.Fatalf("helper exited early")
		}
		t.Logf("helper event %q after %v", ev.Step, time.Since(h.start).Round(time.Millisecond))
		return ev
	case <-time.After(timeout):
		t.Fatalf("no event from helper within %v", timeout)
	}
	return clientEvent{}
}

func (h *helper) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(h.stdin, line+"\n"); err != nil {
		t.Fatalf("write to helper: %v", err)
	}
}

// runClientHelper is the Mapper's side, inside the LAN namespace.
func runClientHelper() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	enc := json.NewEncoder(os.Stdout)
	emit := func(ev clientEvent) { enc.Encode(ev) }
	errText := func(err error) string {
		if err == nil {
			return ""
		}
		return err.Error()
	}
	stdin := bufio.NewScanner(os.Stdin)
	ctx := context.Background()

	m, err := New(Options{Lease: 2 * time.Second, DiscoverTimeout: 10 * time.Second, RequestTimeout: 3 * time.Second,
		Description: "torrentclaw-test", Logger: log})
	if err != nil {
		emit(clientEvent{Step: "discovered", Err: err.Error()})
		return 1
	}
	defer m.Close()

	err = m.Discover(ctx)
	st := m.Status()
	emit(clientEvent{Step: "discovered", Err: errText(err), Service: st.Service, Gateway: st.Gateway, LocalAddr: st.LocalAddr.String()})
	if err != nil {
		return 1
	}

	err = m.Map(ctx, []Mapping{
		{Protocol: "TCP", InternalPort: tcpPort, Name: "media"},
		{Protocol: "UDP", InternalPort: udpPort, Name: "bittorrent"},
	})
	ip, ipErr := m.ExternalIP(ctx)
	ext := ip.String()
	if ipErr != nil {
		ext = ipErr.Error()
	}
	emit(clientEvent{Step: "mapped", Err: errText(err), Mapped: len(m.Mapped()), ExternalIP: ext})

	// Secure mode: the gateway must refuse a mapping to a host other than
	// the one asking.
	other, err := New(Options{RootDescURL: "http://" + st.Gateway + "/rootDesc.xml",
		LocalAddr: netip.MustParseAddr("10.200.0.99"), RequestTimeout: 3 * time.Second, Logger: log})
	if err == nil {
		if err = other.Discover(ctx); err == nil {
			err = other.Map(ctx, []Mapping{{Protocol: "TCP", InternalPort: tcpPort + 10}})
		}
		other.Close()
	}
	var fe *FaultError
	ev := clientEvent{Step: "refused", Err: errText(err)}
	if errors.As(err, &fe) {
		ev.FaultCode = fe.Code
		ev.Unauthorize = errors.Is(err, ErrNotAuthorized) || errors.Is(err, ErrConflict)
	}
	emit(ev)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1) // buffered: Run's goroutine never blocks on send
	go func() { runErr <- m.Run(runCtx) }()
	deadline := time.After(2 * time.Minute) // a hang guard: the test awaits the renewal
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
poll:
	for m.Status().LastRenewal.IsZero() {
		select {
		case <-deadline:
			break poll
		case <-tick.C:
		}
	}
	if m.Status().LastRenewal.IsZero() {
		emit(clientEvent{Step: "renewed", Err: "no renewal within 2 minutes: " + m.Status().LastError})
	} else {
		emit(clientEvent{Step: "renewed"})
	}

	for stdin.Scan() && stdin.Text() != "stop" {
	}
	cancel()
	err = <-runErr
	emit(clientEvent{Step: "stopped", Err: errText(err), Mapped: len(m.Mapped())})
	return 0
}

// runSTUNHelper answers STUN binding requests (RFC 5389) with the sender's
// address as XOR-MAPPED-ADDRESS, from the address they were sent to, which
// is what miniupnpd takes for an unfiltered 1:1 NAT. It exits when stdin
// closes.
func runSTUNHelper(addr string) int {
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stun:", err)
		return 1
	}
	go func() {
		io.Copy(io.Discard, os.Stdin)
		pc.Close()
	}()
	json.NewEncoder(os.Stdout).Encode(clientEvent{Step: "ready"})
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return 0
		}
		if resp, ok := stunResponse(buf[:n], from.(*net.UDPAddr)); ok {
			pc.WriteTo(resp, from)
		}
	}
}

func stunResponse(req []byte, from *net.UDPAddr) ([]byte, bool) {
	ip := from.IP.To4()
	if len(req) < 20 || binary.BigEndian.Uint16(req[0:]) != 0x0001 || ip == nil {
		return nil, false
	}
	resp := make([]byte, 32)
	binary.BigEndian.PutUint16(resp[0:], 0x0101) // Binding success response
	binary.BigEndian.PutUint16(resp[2:], 12)     // one attribute
	copy(resp[4:20], req[4:20])                  // magic cookie and transaction ID
	attr := resp[20:]
	binary.BigEndian.PutUint16(attr[0:], 0x0020) // XOR-MAPPED-ADDRESS
	binary.BigEndian.PutUint16(attr[2:], 8)
	attr[5] = 0x01 // IPv4
	binary.BigEndian.PutUint16(attr[6:], uint16(from.Port)^0x2112)
	for i := range 4 {
		attr[8+i] = ip[i] ^ resp[4+i]
	}
	return resp, true
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
