package upnp

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/upnptest"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	// The deadline only turns a hang into a failure; generous so a loaded machine never
	// reaches it (tests never assert timings).
	timeout = max(timeout, 2*time.Minute)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

func newTestMapper(t *testing.T, opts Options) *Mapper {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.DiscoverTimeout == 0 {
		opts.DiscoverTimeout = 3 * time.Second
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = 3 * time.Second
	}
	m, err := New(opts)
	if err != nil {
		t.Fatalf("New(%+v) = %v", opts, err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return m
}

func TestDiscoverMapRemove(t *testing.T) {
	t.Parallel()
	f := upnptest.New(t, upnptest.Config{})
	m := newTestMapper(t, Options{SSDPAddr: f.SSDPAddr(), Description: "tc"})
	ctx := t.Context()

	if err := m.Discover(ctx); err != nil {
		t.Fatalf("Discover() = %v", err)
	}
	st := m.Status()
	if st.Service != "WANIPConnection:2" || st.LocalAddr != loopback || st.FriendlyName != upnptest.FriendlyName ||
		st.Gateway != f.Host() || st.Lease != time.Hour {
		t.Errorf("Status() after Discover = %+v", st)
	}

	want := []Mapping{
		{Protocol: "TCP", InternalPort: 11818, Name: "media"},
		{Protocol: "udp", InternalPort: 42069, ExternalPort: 42070, Name: "bittorrent"},
	}
	if err := m.Map(ctx, want); err != nil {
		t.Fatalf("Map() = %v", err)
	}
	adds := f.Calls("AddPortMapping")
	wantArgs := []map[string]string{
		{"NewRemoteHost": "", "NewExternalPort": "11818", "NewProtocol": "TCP", "NewInternalPort": "11818",
			"NewInternalClient": "127.0.0.1", "NewEnabled": "1", "NewPortMappingDescription": "tc media", "NewLeaseDuration": "3600"},
		{"NewRemoteHost": "", "NewExternalPort": "42070", "NewProtocol": "UDP", "NewInternalPort": "42069",
			"NewInternalClient": "127.0.0.1", "NewEnabled": "1", "NewPortMappingDescription": "tc bittorrent", "NewLeaseDuration": "3600"},
	}
	if len(adds) != len(wantArgs) {
		t.Fatalf("gateway saw %d AddPortMapping calls, want %d", len(adds), len(wantArgs))
	}
	for i, c := range adds {
		if c.ServiceType != upnptest.ServiceIP2 {
			t.Errorf("AddPortMapping #%d service = %q, want %q", i, c.ServiceType, upnptest.ServiceIP2)
		}
		for k, v := range wantArgs[i] {
			if c.Args[k] != v {
				t.Errorf("AddPortMapping #%d %s = %q, want %q", i, k, c.Args[k], v)
			}
		}
	}
	wantMapped := []Mapping{
		{Protocol: "TCP", InternalPort: 11818, ExternalPort: 11818, Name: "media"},
		{Protocol: "UDP", InternalPort: 42069, ExternalPort: 42070, Name: "bittorrent"},
	}
	if got := m.Mapped(); !slices.Equal(got, wantMapped) {
		t.Errorf("Mapped() = %v, want %v", got, wantMapped)
	}
	wantTable := []upnptest.PortMapping{
		{Protocol: "TCP", ExternalPort: 11818, InternalPort: 11818, InternalClient: "127.0.0.1", Description: "tc media", LeaseSeconds: 3600},
		{Protocol: "UDP", ExternalPort: 42070, InternalPort: 42069, InternalClient: "127.0.0.1", Description: "tc bittorrent", LeaseSeconds: 3600},
	}
	if got := f.Mappings(); !slices.Equal(got, wantTable) {
		t.Errorf("gateway mappings = %+v, want %+v", got, wantTable)
	}

	ip, err := m.ExternalIP(ctx)
	if err != nil || ip != netip.MustParseAddr("198.51.100.7") {
		t.Errorf("ExternalIP() = %v, %v, want 198.51.100.7", ip, err)
	}
	if got := m.Status().ExternalIP; got != ip {
		t.Errorf("Status().ExternalIP = %v, want %v", got, ip)
	}

	if err := m.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	dels := f.Calls("DeletePortMapping")
	var gotDel []string
	for _, c := range dels {
		gotDel = append(gotDel, c.Args["NewProtocol"]+" "+c.Args["NewExternalPort"])
	}
	if !slices.Equal(gotDel, []string{"TCP 11818", "UDP 42070"}) {
		t.Errorf("DeletePortMapping calls = %q, want TCP 11818 and UDP 42070", gotDel)
	}
	if got := m.Mapped(); len(got) != 0 {
		t.Errorf("Mapped() after Close = %v, want none", got)
	}
	if got := f.Mappings(); len(got) != 0 {
		t.Errorf("gateway mappings after Close = %+v, want none", got)
	}
	if err := m.Map(ctx, want); !errors.Is(err, ErrClosed) {
		t.Errorf("Map() after Close = %v, want ErrClosed", err)
	}
	if err := m.Discover(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Discover() after Close = %v, want ErrClosed", err)
	}
}

func TestSearchRequests(t *testing.T) {
	t.Parallel()
	f := upnptest.New(t, upnptest.Config{SilentSSDP: true})
	m := newTestMapper(t, Options{SSDPAddr: f.SSDPAddr(), DiscoverTimeout: 1500 * time.Millisecond})
	if err := m.Discover(t.Context()); !errors.Is(err, ErrNoGateway) {
		t.Fatalf("Discover() = %v, want ErrNoGateway", err)
	}
	// Without an answer, at least the first round (every target) goes out,
	// and a second one after searchInterval.
	waitFor(t, "two M-SEARCH rounds", 2*time.Second, func() bool { return len(f.Searches()) >= 2*len(searchTargets) })
	sts := map[string]int{}
	for _, req := range f.Searches() {
		for _, want := range []string{"M-SEARCH * HTTP/1.1\r\n", "\r\nMAN: \"ssdp:discover\"\r\n", "\r\nMX: 1\r\n",
			"\r\nHOST: " + f.SSDPAddr() + "\r\n"} {
			if !strings.Contains(req, want) {
				t.Errorf("M-SEARCH %q lacks %q", req, want)
			}
		}
		if _, after, ok := strings.Cut(req, "\r\nST: "); ok {
			sts[strings.SplitN(after, "\r\n", 2)[0]]++
		}
	}
	for _, st := range searchTargets {
		if sts[st] < 2 {
			t.Errorf("M-SEARCH for %s sent %d times, want at least 2", st, sts[st])
		}
	}
}

func TestServicePreference(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		services []string
		want     string // Status().Service
		wantNS   string // SOAP namespace the mapping used
	}{
		{"ip2 only", []string{upnptest.ServiceIP2}, "WANIPConnection:2", upnptest.ServiceIP2},
		{"ip1 only", []string{upnptest.ServiceIP1}, "WANIPConnection:1", upnptest.ServiceIP1},
		{"ppp1 only", []string{upnptest.ServicePPP1}, "WANPPPConnection:1", upnptest.ServicePPP1},
		{"ip1 before ip2", []string{upnptest.ServiceIP1, upnptest.ServiceIP2}, "WANIPConnection:2", upnptest.ServiceIP2},
		{"ppp1 before ip1", []string{upnptest.ServicePPP1, upnptest.ServiceIP1}, "WANIPConnection:1", upnptest.ServiceIP1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := upnptest.New(t, upnptest.Config{Services: tc.services})
			m := newTestMapper(t, Options{SSDPAddr: f.SSDPAddr()})
			if err := m.Discover(t.Context()); err != nil {
				t.Fatalf("Discover() = %v", err)
			}
			if got := m.Status().Service; got != tc.want {
				t.Errorf("Status().Service = %q, want %q", got, tc.want)
			}
			if err := m.Map(t.Context(), []Mapping{{Protocol: "TCP", InternalPort: 5000}}); err != nil {
				t.Fatalf("Map() = %v", err)
			}
			adds := f.Calls("AddPortMapping")
			if len(adds) != 1 || adds[0].ServiceType != tc.wantNS {
				t.Errorf("AddPortMapping calls = %+v, want one on %s", adds, tc.wantNS)
			}
		})
	}
}

func TestDiscoverFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cfg        upnptest.Config
		byURL      bool // use RootDescURL instead of SSDP
		wantIs     error
		wantSubstr string
	}{
		{name: "ssdp silent", cfg: upnptest.Config{SilentSSDP: true}, wantIs: ErrNoGateway},
		{name: "no wan service", cfg: upnptest.Config{Services: []string{upnptest.ServiceL3F}}, wantIs: ErrNoGateway,
			wantSubstr: "offers no WANIPConnection or WANPPPConnection service"},
		{name: "location on another host", cfg: upnptest.Config{Location: "http://127.0.0.2:9/rootDesc.xml"}, wantIs: ErrNoGateway},
		{name: "location not http", cfg: upnptest.Config{Location: "file:///etc/passwd"}, wantIs: ErrNoGateway},
		{name: "bad xml", cfg: upnptest.Config{DescBody: "<root><device>"}, byURL: true, wantSubstr: "bad xml"},
		{name: "not xml", cfg: upnptest.Config{DescBody: "hello"}, byURL: true, wantSubstr: "bad xml"},
		{name: "control url on another host", cfg: upnptest.Config{ControlURL: "http://127.0.0.2:9/ctl"}, byURL: true,
			wantSubstr: "control url http://127.0.0.2:9/ctl is not on 127.0.0.1"},
		{name: "description hangs", cfg: upnptest.Config{HangDesc: true}, byURL: true, wantIs: context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := upnptest.New(t, tc.cfg)
			opts := Options{SSDPAddr: f.SSDPAddr(), DiscoverTimeout: 600 * time.Millisecond, RequestTimeout: 300 * time.Millisecond}
			if tc.byURL {
				opts.RootDescURL = f.RootDescURL()
			}
			m := newTestMapper(t, opts)
			start := time.Now()
			err := m.Discover(t.Context())
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Discover() took %v, want it bounded by the 600ms timeout", took)
			}
			if err == nil {
				t.Fatalf("Discover() = nil, want an error")
			}
			t.Logf("Discover() = %v", err)
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("Discover() = %v, want errors.Is %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.wantSubstr) {
				t.Errorf("Discover() = %q, want it to contain %q", err, tc.wantSubstr)
			}
			if got := m.Status().LastError; got == "" {
				t.Errorf("Status().LastError is empty after a failed Discover")
			}
			if err := m.Map(t.Context(), []Mapping{{Protocol: "TCP", InternalPort: 1}}); !errors.Is(err, ErrNotDiscovered) {
				t.Errorf("Map() without gateway = %v, want ErrNotDiscovered", err)
			}
		})
	}
}

func TestRootDescURL(t *testing.T) {
	t.Parallel()
	f := upnptest.New(t, upnptest.Config{SilentSSDP: true, Services: []string{upnptest.ServiceIP1}})
	local := netip.MustParseAddr("192.168.77.5") // only sent as an argument, never bound
	m := newTestMapper(t, Options{RootDescURL: f.RootDescURL(), LocalAddr: local})
	if err := m.Discover(t.Context()); err != nil {
		t.Fatalf("Discover() = %v", err)
	}
	if len(f.Searches()) != 0 {
		t.Errorf("Discover with RootDescURL sent %d M-SEARCH requests, want 0", len(f.Searches()))
	}
	if err := m.Map(t.Context(), []Mapping{{Protocol: "UDP", InternalPort: 6881}}); err != nil {
		t.Fatalf("Map() = %v", err)
	}
	if adds := f.Calls("AddPortMapping"); len(adds) != 1 || adds[0].Args["NewInternalClient"] != local.String() {
		t.Errorf("AddPortMapping calls = %+v, want one for internal client %v", adds, local)
	}
}

func TestGatewayRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		code     int
		wantIs   error
		wantText string
	}{
		{"conflict", 718, ErrConflict, "upnp error 718 ConflictInMappingEntry"},
		{"not authorized", 606, ErrNotAuthorized, "upnp error 606 Action not authorized"},
		{"action failed", 501, nil, "upnp error 501 ActionFailed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := upnptest.New(t, upnptest.Config{Fault: func(c upnptest.Call, _ int) int {
				if c.Action == "AddPortMapping" && c.Args["NewProtocol"] == "TCP" {
					return tc.code
				}
				return 0
			}})
			m := newTestMapper(t, Options{SSDPAddr: f.SSDPAddr()})
			if err := m.Discover(t.Context()); err != nil {
				t.Fatalf("Discover() = %v", err)
			}
			err := m.Map(t.Context(), []Mapping{{Protocol: "TCP", InternalPort: 80}, {Protocol: "UDP", InternalPort: 6881}})
			if err == nil {
				t.Fatalf("Map() = nil, want the gateway's refusal")
			}
			var fe *FaultError
			if !errors.As(err, &fe) || fe.Code != tc.code || fe.Action != "AddPortMapping" {
				t.Errorf("Map() = %v, want a FaultError with code %d", err, tc.code)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("Map() = %v, want errors.Is %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.wantText) || !strings.Contains(err.Error(), "TCP 80->80") {
				t.Errorf("Map() = %q, want it to name the mapping and contain %q", err, tc.wantText)
			}
			// The UDP mapping the gateway accepted is kept.
			if got, want := m.Mapped(), []Mapping{{Protocol: "UDP", InternalPort: 6881, ExternalPort: 6881}}; !slices.Equal(got, want) {
				t.Errorf("Mapped() = %v, want %v", got, want)
			}
		})
	}
}

func TestOnlyPermanentLeases(t *testing.T) {
	t.Parallel()
	f := upnptest.New(t, upnptest.Config{Fault: func(c upnptest.Call, _ int) int {
		if c.Action == "AddPortMapping" && c.Args["NewLeaseDuration"] != "0" {
			return 725
		}
		return 0
	}})
	m := newTestMapper(t, Options{SSDPAddr: f.SSDPAddr()})
	if err := m.Discover(t.Context()); err != nil {
		t.Fatalf("Discover() = %v", err)
	}
	if err := m.Map(t.Context(), []Mapping{{Protocol: "TCP", InternalPort: 80}, {Protocol: "UDP", InternalPort: 81}}); err != nil {
		t.Fatalf("Map() = %v", err)
	}
	var leases []string
	for _, c := range f.Calls("AddPortMapping") {
		leases = append(leases, c.Args["NewLeaseDuration"])
	}
	if !slices.Equal(leases, []string{"3600", "0", "0"}) {
		t.Errorf("AddPortMapping leases = %q, want 3600 refused, then 0 for both", leases)
	}
	if got := m.Status().Lease; got != 0 {
		t.Errorf("Status().Lease = %v, want 0 (permanent)", got)
	}
}

func TestRenewAndRemoveOnShutdown(t *testing.T) {
	t.Parallel()
	f := upnptest.New(t, upnptest.Config{})
	m := newTestMapper(t, Options{SSDPAddr: f.SSDPAddr(), Lease: 2 * time.Second})
	if err := m.Discover(t.Context()); err != nil {
		t.Fatalf("Discover() = %v", err)
	}
	if err := m.Map(t.Context(), []Mapping{{Protocol: "TCP", InternalPort: 11818}, {Protocol: "UDP", InternalPort: 6881}}); err != nil {
		t.Fatalf("Map() = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	mapped := time.Now()
	runErr := make(chan error, 1) // buffered: Run's goroutine never blocks on send
	go func() { runErr <- m.Run(ctx) }()

	// Renewal comes at half the lease: a second AddPortMapping per mapping.
	waitFor(t, "renewal", 5*time.Second, func() bool { return len(f.Calls("AddPortMapping")) >= 4 })
	if took := time.Since(mapped); took < 900*time.Millisecond {
		t.Errorf("renewal after %v, want about half the 2s lease", took)
	}
	for _, c := range f.Calls("AddPortMapping")[2:4] {
		if c.Args["NewLeaseDuration"] != "2" || c.Args["NewInternalClient"] != "127.0.0.1" {
			t.Errorf("renewal AddPortMapping args = %v, want lease 2 to 127.0.0.1", c.Args)
		}
	}
	waitFor(t, "LastRenewal", 2*time.Second, func() bool { return !m.Status().LastRenewal.IsZero() })

	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	case <-time.After(2 * time.Minute): // a hang guard, generous for a loaded machine
		t.Fatalf("Run() did not return after cancel")
	}
	if got := len(f.Calls("DeletePortMapping")); got != 2 {
		t.Errorf("gateway saw %d DeletePortMapping calls after shutdown, want 2", got)
	}
	if got := m.Mapped(); len(got) != 0 {
		t.Errorf("Mapped() after Run = %v, want none", got)
	}
	if got := f.Mappings(); len(got) != 0 {
		t.Errorf("gateway mappings after Run = %+v, want none", got)
	}
}

func TestRenewalFailureIsRetried(t *testing.T) {
	t.Parallel()
	// The first renewal fails; Run logs it, retries, and keeps going.
	f := upnptest.New(t, upnptest.Config{Fault: func(c upnptest.Call, n int) int {
		if c.Action == "AddPortMapping" && n == 1 {
			return 501
		}
		return 0
	}})
	m := newTestMapper(t, Options{SSDPAddr: f.SSDPAddr(), Lease: 2 * time.Second})
	if err := m.Discover(t.Context()); err != nil {
		t.Fatalf("Discover() = %v", err)
	}
	if err := m.Map(t.Context(), []Mapping{{Protocol: "TCP", InternalPort: 11818}}); err != nil {
		t.Fatalf("Map() = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	runErr := make(chan error, 1) // buffered: Run's goroutine never blocks on send
	go func() { runErr <- m.Run(ctx) }()
	waitFor(t, "retried renewal", 5*time.Second, func() bool { return len(f.Calls("AddPortMapping")) >= 3 })
	waitFor(t, "LastRenewal", 2*time.Second, func() bool { return !m.Status().LastRenewal.IsZero() })
	cancel()
	if err := <-runErr; err != nil {
		t.Errorf("Run() = %v, want nil", err)
	}
}

func TestHangingGateway(t *testing.T) {
	t.Parallel()
	const reqTimeout = 300 * time.Millisecond
	const bound = 2 * time.Second // generous for a loaded machine, far below "forever"

	t.Run("map", func(t *testing.T) {
		t.Parallel()
		f := upnptest.New(t, upnptest.Config{})
		m := newTestMapper(t, Options{SSDPAddr: f.SSDPAddr(), RequestTimeout: reqTimeout})
		if err := m.Discover(t.Context()); err != nil {
			t.Fatalf("Discover() = %v", err)
		}
		f.SetHangSOAP(true)
		start := time.Now()
		err := m.Map(t.Context(), []Mapping{{Protocol: "TCP", InternalPort: 80}})
		if took := time.Since(start); took > bound {
			t.Errorf("Map() took %v against a hanging gateway", took)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "did not answer within 300ms") {
			t.Errorf("Map() = %v, want a deadline error", err)
		}
		start = time.Now()
		if _, err := m.ExternalIP(t.Context()); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ExternalIP() = %v, want a deadline error", err)
		}
		if took := time.Since(start); took > bound {
			t.Errorf("ExternalIP() took %v against a hanging gateway", took)
		}
	})

	t.Run("close", func(t *testing.T) {
		t.Parallel()
		f := upnptest.New(t, upnptest.Config{})
		m, err := New(Options{SSDPAddr: f.SSDPAddr(), RequestTimeout: reqTimeout})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Discover(t.Context()); err != nil {
			t.Fatalf("Discover() = %v", err)
		}
		if err := m.Map(t.Context(), []Mapping{{Protocol: "TCP", InternalPort: 80}, {Protocol: "UDP", InternalPort: 80}}); err != nil {
			t.Fatalf("Map() = %v", err)
		}
		f.SetHangSOAP(true)
		start := time.Now()
		err = m.Close()
		if took := time.Since(start); took > bound {
			t.Errorf("Close() took %v against a hanging gateway", took)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close() = %v, want a deadline error", err)
		}
		if got := len(m.Mapped()); got != 2 {
			t.Errorf("Mapped() after failed removal has %d entries, want 2 kept for a retry", got)
		}
		f.SetHangSOAP(false)
		if err := m.Close(); err != nil {
			t.Errorf("second Close() = %v, want nil", err)
		}
		if got := len(m.Mapped()); got != 0 {
			t.Errorf("Mapped() after second Close has %d entries, want 0", got)
		}
		if got := f.Mappings(); len(got) != 0 {
			t.Errorf("gateway mappings after second Close = %+v, want none", got)
		}
	})

	t.Run("run shutdown", func(t *testing.T) {
		t.Parallel()
		f := upnptest.New(t, upnptest.Config{})
		m := newTestMapper(t, Options{SSDPAddr: f.SSDPAddr(), RequestTimeout: reqTimeout})
		if err := m.Discover(t.Context()); err != nil {
			t.Fatalf("Discover() = %v", err)
		}
		if err := m.Map(t.Context(), []Mapping{{Protocol: "TCP", InternalPort: 80}}); err != nil {
			t.Fatalf("Map() = %v", err)
		}
		f.SetHangSOAP(true)
		ctx, cancel := context.WithCancel(t.Context())
		runErr := make(chan error, 1) // buffered: Run's goroutine never blocks on send
		go func() { runErr <- m.Run(ctx) }()
		cancel()
		start := time.Now()
		err := <-runErr
		if took := time.Since(start); took > bound {
			t.Errorf("Run() took %v to return against a hanging gateway", took)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Run() = %v, want the removal's deadline error", err)
		}
		f.SetHangSOAP(false) // let the cleanup Close remove the mapping
	})
}

func TestExternalIPErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cfg        upnptest.Config
		wantIs     error
		wantSubstr string
	}{
		{name: "empty", cfg: upnptest.Config{ExternalIP: " "}, wantIs: ErrNoExternalIP},
		{name: "unspecified", cfg: upnptest.Config{ExternalIP: "0.0.0.0"}, wantIs: ErrNoExternalIP},
		{name: "garbage", cfg: upnptest.Config{ExternalIP: "not-an-ip"}, wantIs: ErrNoExternalIP},
		{name: "fault", cfg: upnptest.Config{Fault: func(upnptest.Call, int) int { return 501 }}, wantSubstr: "upnp error 501"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := upnptest.New(t, tc.cfg)
			m := newTestMapper(t, Options{RootDescURL: f.RootDescURL()})
			if err := m.Discover(t.Context()); err != nil {
				t.Fatalf("Discover() = %v", err)
			}
			ip, err := m.ExternalIP(t.Context())
			if err == nil {
				t.Fatalf("ExternalIP() = %v, nil, want an error", ip)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("ExternalIP() = %v, want errors.Is %v", err, tc.wantIs)
			}
			if !strings.Contains(err.Error(), tc.wantSubstr) {
				t.Errorf("ExternalIP() = %q, want it to contain %q", err, tc.wantSubstr)
			}
		})
	}
}

func TestNotDiscovered(t *testing.T) {
	t.Parallel()
	m := newTestMapper(t, Options{})
	if err := m.Map(t.Context(), []Mapping{{Protocol: "TCP", InternalPort: 1}}); !errors.Is(err, ErrNotDiscovered) {
		t.Errorf("Map() = %v, want ErrNotDiscovered", err)
	}
	if _, err := m.ExternalIP(t.Context()); !errors.Is(err, ErrNotDiscovered) {
		t.Errorf("ExternalIP() = %v, want ErrNotDiscovered", err)
	}
	if st := m.Status(); st.Gateway != "" || st.Service != "" || len(st.Mappings) != 0 {
		t.Errorf("Status() = %+v, want empty", st)
	}
}

func TestMapValidation(t *testing.T) {
	t.Parallel()
	m := newTestMapper(t, Options{})
	tests := []struct {
		name string
		in   Mapping
	}{
		{"bad protocol", Mapping{Protocol: "SCTP", InternalPort: 1}},
		{"empty protocol", Mapping{InternalPort: 1}},
		{"zero port", Mapping{Protocol: "TCP"}},
	}
	for _, tc := range tests {
		if err := m.Map(t.Context(), []Mapping{tc.in}); err == nil || errors.Is(err, ErrNotDiscovered) {
			t.Errorf("%s: Map(%+v) = %v, want a validation error", tc.name, tc.in, err)
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{"zero", Options{}, false},
		{"lease too short", Options{Lease: 500 * time.Millisecond}, true},
		{"lease too long", Options{Lease: 8 * 24 * time.Hour}, true},
		{"negative discover timeout", Options{DiscoverTimeout: -1}, true},
		{"negative request timeout", Options{RequestTimeout: -1}, true},
		{"ssdp not ip:port", Options{SSDPAddr: "gateway.lan:1900"}, true},
		{"ssdp ipv6", Options{SSDPAddr: "[ff02::c]:1900"}, true},
		{"ssdp loopback", Options{SSDPAddr: "127.0.0.1:1900"}, false},
		{"root desc https", Options{RootDescURL: "https://192.168.1.1/desc.xml"}, true},
		{"root desc relative", Options{RootDescURL: "/desc.xml"}, true},
		{"root desc http", Options{RootDescURL: "http://192.168.1.1:5000/rootDesc.xml"}, false},
		{"local ipv6", Options{LocalAddr: netip.MustParseAddr("fe80::1")}, true},
		{"local unspecified", Options{LocalAddr: netip.IPv4Unspecified()}, true},
		{"local ipv4", Options{LocalAddr: netip.MustParseAddr("192.168.1.20")}, false},
	}
	for _, tc := range tests {
		m, err := New(tc.opts)
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: New(%+v) error = %v, want error %v", tc.name, tc.opts, err, tc.wantErr)
		}
		if m != nil {
			if err := m.Close(); err != nil {
				t.Errorf("%s: Close() = %v", tc.name, err)
			}
		}
	}
	m, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.lease != DefaultLease || m.discoverTimeout != DefaultDiscoverTimeout || m.requestTimeout != DefaultRequestTimeout ||
		m.description != DefaultDescription || m.ssdpAddr.String() != DefaultSSDPAddr || !m.multicast {
		t.Errorf("New(Options{}) defaults = lease %v, discover %v, request %v, description %q, ssdp %v",
			m.lease, m.discoverTimeout, m.requestTimeout, m.description, m.ssdpAddr)
	}
}

func TestDiscoverCanceled(t *testing.T) {
	t.Parallel()
	f := upnptest.New(t, upnptest.Config{SilentSSDP: true})
	m := newTestMapper(t, Options{SSDPAddr: f.SSDPAddr(), DiscoverTimeout: time.Minute})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	if err := m.Discover(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Discover(canceled ctx) = %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Discover(canceled ctx) took %v", took)
	}
}
