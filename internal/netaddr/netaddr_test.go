package netaddr

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func addr(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(s)
}

func TestIsTailscale(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{"100.64.0.1", true},
		{"100.127.255.254", true},
		{"100.63.255.255", false},
		{"100.128.0.0", false},
		{"::ffff:100.100.1.1", true},
		{"fd7a:115c:a1e0::1", true},
		{"fd7a:115c:a1e0:ab12::1", true},
		{"fd7a:115c:a1e1::1", false},
		{"192.168.1.5", false},
	}
	for _, tc := range tests {
		if got := IsTailscale(addr(tc.in)); got != tc.want {
			t.Errorf("IsTailscale(%s) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if IsTailscale(netip.Addr{}) {
		t.Errorf("IsTailscale(zero) = true, want false")
	}
}

func TestPickTailscale(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		addrs []string
		want  string
	}{
		{"none", []string{"127.0.0.1/8", "192.168.1.5/24"}, ""},
		{"empty", nil, ""},
		{"v4", []string{"192.168.1.5/24", "100.101.102.103/32"}, "100.101.102.103"},
		{"v6 only", []string{"fd7a:115c:a1e0::53/128"}, "fd7a:115c:a1e0::53"},
		{"v4 preferred over earlier v6", []string{"fd7a:115c:a1e0::53/128", "100.101.102.103/32"}, "100.101.102.103"},
		{"first v4 wins", []string{"100.64.0.2/32", "100.64.0.3/32"}, "100.64.0.2"},
		{"outside range", []string{"100.128.0.1/24", "fd7a:115c:a1e1::1/64"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := PickTailscale(prefixes(t, tc.addrs...)); got != addr(tc.want) {
				t.Errorf("PickTailscale(%v) = %v, want %v", tc.addrs, got, tc.want)
			}
		})
	}
}

func TestPickLAN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		route string
		addrs []string
		want  string
	}{
		{"route wins", "192.168.1.5", []string{"10.0.0.2/8", "192.168.1.5/24"}, "192.168.1.5"},
		{"route v6", "2001:db8::5", nil, "2001:db8::5"},
		{"route mapped", "::ffff:192.168.1.5", nil, "192.168.1.5"},
		{"no route, private v4 first", "", []string{"127.0.0.1/8", "fe80::1/64", "2001:db8::5/64", "203.0.113.4/24", "10.1.2.3/8"}, "10.1.2.3"},
		{"no route, public v4", "", []string{"2001:db8::5/64", "203.0.113.4/24"}, "203.0.113.4"},
		{"no route, ula over global v6", "", []string{"2001:db8::5/64", "fd00::2/64"}, "fd00::2"},
		{"tailscale exit node route falls back", "100.64.0.9", []string{"100.64.0.9/32", "192.168.0.10/24"}, "192.168.0.10"},
		{"loopback route falls back", "127.0.0.1", []string{"192.168.0.10/24"}, "192.168.0.10"},
		{"nothing usable", "", []string{"127.0.0.1/8", "::1/128", "fe80::1/64", "100.64.0.1/32", "fd7a:115c:a1e0::1/128"}, ""},
		{"empty", "", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := PickLAN(addr(tc.route), prefixes(t, tc.addrs...)); got != addr(tc.want) {
				t.Errorf("PickLAN(%q, %v) = %v, want %v", tc.route, tc.addrs, got, tc.want)
			}
		})
	}
}

func TestPrefixOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   net.Addr
		want string
	}{
		{&net.IPNet{IP: net.IPv4(192, 168, 1, 5), Mask: net.CIDRMask(24, 32)}, "192.168.1.5/24"},
		{&net.IPNet{IP: net.IPv4(192, 168, 1, 5), Mask: net.CIDRMask(120, 128)}, "192.168.1.5/24"},
		{&net.IPNet{IP: net.ParseIP("fd7a:115c:a1e0::1"), Mask: net.CIDRMask(128, 128)}, "fd7a:115c:a1e0::1/128"},
	}
	for _, tc := range tests {
		got, ok := prefixOf(tc.in)
		if !ok || got != netip.MustParsePrefix(tc.want) {
			t.Errorf("prefixOf(%v) = %v, %v, want %v", tc.in, got, ok, tc.want)
		}
	}
	if _, ok := prefixOf(&net.TCPAddr{}); ok {
		t.Errorf("prefixOf(*TCPAddr) ok, want not ok")
	}
}

func TestIsLoopbackListen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want bool
	}{
		{"127.0.0.1:11818", true},
		{"127.1.2.3:80", true},
		{"[::1]:11818", true},
		{"::1", true},
		{"localhost:11818", true},
		{"LOCALHOST.:1", true},
		{"127.0.0.1", true},
		{"0.0.0.0:11818", false},
		{"[::]:11818", false},
		{":11818", false},
		{"", false},
		{"192.168.1.5:11818", false},
		{"example.com:80", false},
		{"[::ffff:127.0.0.1]:80", true},
	}
	for _, tc := range tests {
		if got := IsLoopbackListen(tc.in); got != tc.want {
			t.Errorf("IsLoopbackListen(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

var normalizeCases = []struct {
	in, want string
}{
	{"192.168.1.5:11818", "192.168.1.5"},
	{"192.168.1.5", "192.168.1.5"},
	{"[fd7a:115c:a1e0::1]:11818", "fd7a:115c:a1e0::1"},
	{"[FD7A:115C:A1E0:0::1]", "fd7a:115c:a1e0::1"},
	{"fd7a:115c:a1e0::1", "fd7a:115c:a1e0::1"},
	{"Media.Example.COM.:443", "media.example.com"},
	{"media.example.com", "media.example.com"},
	{"[::ffff:10.0.0.1]:80", "10.0.0.1"},
	{":11818", ""},
	{"", ""},
}

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	for _, tc := range normalizeCases {
		if got := NormalizeHost(tc.in); got != tc.want {
			t.Errorf("NormalizeHost(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzNormalizeHost(f *testing.F) {
	for _, tc := range normalizeCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := NormalizeHost(in)
		if got != strings.ToLower(got) {
			t.Errorf("NormalizeHost(%q) = %q, not lower case", in, got)
		}
		if a, err := netip.ParseAddr(got); err == nil && a.Unmap().String() != got {
			t.Errorf("NormalizeHost(%q) = %q, not canonical", in, got)
		}
		if HostIn(in, nil) {
			t.Errorf("HostIn(%q, nil) = true", in)
		}
		_ = IsLoopbackListen(in)
	})
}

func TestOwnHosts(t *testing.T) {
	t.Parallel()
	both := Addresses{LAN: addr("192.168.1.5"), Tailscale: addr("100.101.102.103")}
	loop := []string{"localhost", "127.0.0.1", "::1"}
	tests := []struct {
		name   string
		listen string
		a      Addresses
		extra  []string
		want   []string
	}{
		{"all interfaces", "0.0.0.0:11818", both, nil, append(slices.Clone(loop), "192.168.1.5", "100.101.102.103")},
		{"empty host", ":11818", both, []string{"Media.Example.com:8443"}, append(slices.Clone(loop), "192.168.1.5", "100.101.102.103", "media.example.com")},
		{"v6 unspecified, unknown ts", "[::]:11818", Addresses{LAN: addr("192.168.1.5")}, nil, append(slices.Clone(loop), "192.168.1.5")},
		{"loopback only", "127.0.0.1:11818", both, nil, loop},
		{"specific address", "192.168.1.5:11818", both, []string{"203.0.113.7", "192.168.1.5", ""}, []string{"192.168.1.5", "203.0.113.7"}},
		{"tailscale only", "100.101.102.103:11818", both, nil, []string{"100.101.102.103"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := OwnHosts(tc.listen, tc.a, tc.extra...)
			if !slices.Equal(got, tc.want) {
				t.Errorf("OwnHosts(%q, %v, %q) = %q, want %q", tc.listen, tc.a, tc.extra, got, tc.want)
			}
		})
	}
}

func TestHostIn(t *testing.T) {
	t.Parallel()
	own := OwnHosts("0.0.0.0:11818", Addresses{LAN: addr("192.168.1.5"), Tailscale: addr("fd7a:115c:a1e0::1")}, "media.example.com")
	tests := []struct {
		host string
		want bool
	}{
		{"192.168.1.5:11818", true},
		{"192.168.1.5", true},
		{"[fd7a:115c:a1e0::1]:11818", true},
		{"[FD7A:115C:A1E0::0001]:11818", true},
		{"localhost:11818", true},
		{"MEDIA.example.com.:11818", true},
		{"evil.example.com:11818", false},
		{"192.168.1.6:11818", false},
		{"", false},
		{":11818", false},
		{"media.example.com.evil.com", false},
	}
	for _, tc := range tests {
		if got := HostIn(tc.host, own); got != tc.want {
			t.Errorf("HostIn(%q, %q) = %v, want %v", tc.host, own, got, tc.want)
		}
	}
}

func TestBaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scheme string
		addr   string
		port   int
		want   string
	}{
		{"http", "192.168.1.5", 11818, "http://192.168.1.5:11818"},
		{"https", "fd7a:115c:a1e0::1", 8443, "https://[fd7a:115c:a1e0::1]:8443"},
		{"http", "::ffff:10.0.0.1", 80, "http://10.0.0.1:80"},
		{"http", "fe80::1%eth0", 80, "http://[fe80::1%25eth0]:80"},
		{"http", "", 80, ""},
		{"http", "10.0.0.1", 0, ""},
		{"http", "10.0.0.1", 70000, ""},
	}
	for _, tc := range tests {
		if got := BaseURL(tc.scheme, addr(tc.addr), tc.port); got != tc.want {
			t.Errorf("BaseURL(%q, %q, %d) = %q, want %q", tc.scheme, tc.addr, tc.port, got, tc.want)
		}
	}
}

func TestAddressesString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a    Addresses
		want string
	}{
		{Addresses{}, "lan=none tailscale=none"},
		{Addresses{LAN: addr("192.168.1.5"), Tailscale: addr("100.64.0.1")}, "lan=192.168.1.5 tailscale=100.64.0.1"},
	}
	for _, tc := range tests {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.a, got, tc.want)
		}
	}
}

// TestDiscover runs against the real interfaces: whatever it finds must obey
// the rules (no loopback LAN, Tailscale only from its ranges).
func TestDiscover(t *testing.T) {
	t.Parallel()
	got := Discover()
	if got.LAN.IsValid() && !usableLAN(got.LAN) {
		t.Errorf("Discover().LAN = %v, not a usable LAN address", got.LAN)
	}
	if got.Tailscale.IsValid() && !IsTailscale(got.Tailscale) {
		t.Errorf("Discover().Tailscale = %v, not in a Tailscale range", got.Tailscale)
	}
	if r := RouteAddr(); r.IsValid() && r.Is4In6() {
		t.Errorf("RouteAddr() = %v, want unmapped", r)
	}
	t.Logf("discovered %v", got)
}

func TestWatch(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		a1 := Addresses{LAN: addr("192.168.1.5")}
		a2 := Addresses{LAN: addr("192.168.1.5"), Tailscale: addr("100.64.0.1")}
		seq := []Addresses{a1, a1, a2, a2, a2, a1}
		var mu sync.Mutex // guards calls and got: watch runs on its own goroutine
		calls := 0
		discover := func() Addresses {
			mu.Lock()
			defer mu.Unlock()
			a := seq[min(calls, len(seq)-1)]
			calls++
			return a
		}
		var got []Addresses
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			watch(ctx, time.Second, discover, func(a Addresses) {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, a)
			})
		}()
		time.Sleep(5*time.Second + time.Millisecond) // fake clock inside the bubble
		synctest.Wait()
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		want := []Addresses{a1, a2, a1}
		if !slices.Equal(got, want) {
			t.Errorf("watch notifications = %v, want %v", got, want)
		}
		if calls != 6 {
			t.Errorf("discover calls = %d, want 6", calls)
		}
	})
}

func TestWatchDefaultInterval(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			watch(ctx, 0, func() Addresses { calls.Add(1); return Addresses{} }, func(Addresses) {})
		}()
		time.Sleep(DefaultWatchInterval - time.Millisecond)
		synctest.Wait()
		if n := calls.Load(); n != 1 {
			t.Errorf("discover calls before first tick = %d, want 1", n)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if n := calls.Load(); n != 2 {
			t.Errorf("discover calls after first tick = %d, want 2", n)
		}
		cancel()
		<-done
	})
}

func TestWatchReal(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	var got []Addresses
	Watch(ctx, time.Hour, func(a Addresses) { got = append(got, a); cancel() })
	if len(got) != 1 {
		t.Errorf("Watch initial notifications = %d, want 1", len(got))
	}
}
