package netaddr

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Tailscale address ranges: the CGNAT block Tailscale assigns IPv4 node
// addresses from, and Tailscale's own ULA block for IPv6.
var (
	tailscaleV4 = netip.MustParsePrefix("100.64.0.0/10")
	tailscaleV6 = netip.MustParsePrefix("fd7a:115c:a1e0::/48")
)

// Route probes: documentation addresses (RFC 5737, RFC 3849). A UDP "dial"
// only makes the kernel choose a route and a source address; nothing is sent.
const (
	routeProbeV4 = "192.0.2.1:9"
	routeProbeV6 = "[2001:db8::1]:9"
)

// DefaultWatchInterval is how often [Watch] looks at the interfaces when given
// a non-positive interval.
const DefaultWatchInterval = 30 * time.Second

// Addresses are the machine's addresses as seen by players: the LAN address
// and the Tailscale address. A zero (invalid) [netip.Addr] means "unknown".
// Addresses is comparable with ==.
type Addresses struct {
	LAN       netip.Addr
	Tailscale netip.Addr
}

// String formats a for humans, e.g. "lan=192.168.1.5 tailscale=100.101.102.103".
func (a Addresses) String() string {
	return "lan=" + addrString(a.LAN) + " tailscale=" + addrString(a.Tailscale)
}

// LogValue makes a log as a group with keys lan and tailscale.
func (a Addresses) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("lan", addrString(a.LAN)),
		slog.String("tailscale", addrString(a.Tailscale)),
	)
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return "none"
	}
	return a.String()
}

// IsTailscale reports whether a is in a Tailscale range (100.64.0.0/10 or
// fd7a:115c:a1e0::/48). IPv4-mapped IPv6 addresses are unmapped first.
func IsTailscale(a netip.Addr) bool {
	a = a.Unmap()
	return tailscaleV4.Contains(a) || tailscaleV6.Contains(a)
}

// PickTailscale returns the first IPv4 Tailscale address in addrs, else the
// first IPv6 one, else the zero Addr. addrs are interface addresses as
// returned by [InterfaceAddrs].
func PickTailscale(addrs []netip.Prefix) netip.Addr {
	var v6 netip.Addr
	for _, p := range addrs {
		a := p.Addr().Unmap()
		switch {
		case a.Is4() && tailscaleV4.Contains(a):
			return a
		case a.Is6() && !v6.IsValid() && tailscaleV6.Contains(a):
			v6 = a
		}
	}
	return v6
}

// PickLAN chooses the LAN address. route is the source address the kernel
// picked for the default route (see [RouteAddr]); it wins when it is usable:
// valid, not loopback, unspecified, link-local, multicast or Tailscale (the
// last happens when a Tailscale exit node carries the default route). Else
// the first usable address of addrs is taken, preferring private IPv4, then
// other IPv4, then private IPv6 (fc00::/7), then other IPv6. It returns the
// zero Addr when nothing is usable.
func PickLAN(route netip.Addr, addrs []netip.Prefix) netip.Addr {
	if route = route.Unmap(); usableLAN(route) {
		return route
	}
	best, bestRank := netip.Addr{}, 0
	for _, p := range addrs {
		a := p.Addr().Unmap()
		if !usableLAN(a) {
			continue
		}
		if r := lanRank(a); r > bestRank {
			best, bestRank = a, r
		}
	}
	return best
}

func usableLAN(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsLoopback() &&
		!a.IsLinkLocalUnicast() && !a.IsLinkLocalMulticast() &&
		!a.IsMulticast() && !IsTailscale(a)
}

// lanRank orders candidate LAN addresses; higher is better.
func lanRank(a netip.Addr) int {
	switch {
	case a.Is4() && a.IsPrivate():
		return 4
	case a.Is4():
		return 3
	case a.IsPrivate():
		return 2
	default:
		return 1
	}
}

// InterfaceAddrs returns the addresses of the interfaces that are up.
func InterfaceAddrs() ([]netip.Prefix, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue // one odd interface must not hide the others
		}
		for _, a := range addrs {
			if p, ok := prefixOf(a); ok {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

func prefixOf(a net.Addr) (netip.Prefix, bool) {
	ipn, ok := a.(*net.IPNet)
	if !ok {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(ipn.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := ipn.Mask.Size()
	if bits == 128 && ip.Is4In6() {
		ones -= 96
	}
	ip = ip.Unmap()
	if ones < 0 || ones > ip.BitLen() {
		ones = ip.BitLen()
	}
	return netip.PrefixFrom(ip, ones), true
}

// RouteAddr returns the source address of the default route, IPv4 first,
// then IPv6, or the zero Addr when there is no route. It sends nothing: a
// connect on a UDP socket only selects a route.
func RouteAddr() netip.Addr {
	for _, probe := range []struct{ network, addr string }{
		{"udp4", routeProbeV4},
		{"udp6", routeProbeV6},
	} {
		if a := routeSource(probe.network, probe.addr); a.IsValid() {
			return a
		}
	}
	return netip.Addr{}
}

func routeSource(network, addr string) netip.Addr {
	c, err := net.Dial(network, addr)
	if err != nil {
		return netip.Addr{}
	}
	defer c.Close()
	ua, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok {
		return netip.Addr{}
	}
	return ua.AddrPort().Addr().Unmap()
}

// Discover finds the LAN and Tailscale addresses of this machine. Unknown
// ones are left zero. It is cheap (no traffic) and safe to call on every sync.
func Discover() Addresses {
	addrs, _ := InterfaceAddrs() // on error: no list; the route may still give a LAN address
	return Addresses{
		LAN:       PickLAN(RouteAddr(), addrs),
		Tailscale: PickTailscale(addrs),
	}
}

// Watch calls fn with the current addresses at once, then again each time
// they change, checking every interval (non-positive: [DefaultWatchInterval]).
// It returns when ctx is done. fn runs on Watch's goroutine.
func Watch(ctx context.Context, interval time.Duration, fn func(Addresses)) {
	watch(ctx, interval, Discover, fn)
}

func watch(ctx context.Context, interval time.Duration, discover func() Addresses, fn func(Addresses)) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	last := discover()
	fn(last)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if cur := discover(); cur != last {
				last = cur
				fn(cur)
			}
		}
	}
}

// IsLoopbackListen reports whether a listen address ("host:port", or a bare
// host) binds loopback only: "localhost" or a loopback IP. An empty or
// unspecified host (":11818", "0.0.0.0:11818", "[::]:11818") and any other
// name give false, the safe answer for "is this exposed?".
func IsLoopbackListen(addr string) bool {
	host := NormalizeHost(addr)
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// NormalizeHost returns the host part of a Host header or listen address
// ("host", "host:port", "[v6]:port", "v6"), without port or brackets, in
// lower case, without a trailing dot; IP addresses in canonical form
// (IPv4-mapped IPv6 unmapped). It returns "" for an empty host.
func NormalizeHost(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return host
}

// OwnHosts lists the hosts (normalized, no port) under which this daemon's
// listener on listen is reachable, for "is this Host one of ours" checks:
// the listen host itself when it is specific; loopback names when listen is
// unspecified or loopback; the LAN and Tailscale addresses of a when listen is
// unspecified (all interfaces); and every extra host (configured public host,
// UPnP external address; "host", "host:port" or "[v6]:port"). The result has
// no duplicates and no empty entries.
func OwnHosts(listen string, a Addresses, extra ...string) []string {
	var out []string
	add := func(h string) {
		if h = NormalizeHost(h); h != "" && !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	host := NormalizeHost(listen)
	ip, err := netip.ParseAddr(host)
	all := host == "" || (err == nil && ip.IsUnspecified())
	if all || IsLoopbackListen(listen) {
		add("localhost")
		add("127.0.0.1")
		add("::1")
	}
	if all {
		if a.LAN.IsValid() {
			add(a.LAN.String())
		}
		if a.Tailscale.IsValid() {
			add(a.Tailscale.String())
		}
	} else {
		add(host)
	}
	for _, h := range extra {
		add(h)
	}
	return out
}

// HostIn reports whether the host of hostport (a Host header value) is one of
// own. Both sides are normalized with [NormalizeHost]; an empty host never
// matches.
func HostIn(hostport string, own []string) bool {
	h := NormalizeHost(hostport)
	if h == "" {
		return false
	}
	for _, o := range own {
		if NormalizeHost(o) == h {
			return true
		}
	}
	return false
}

// BaseURL returns "scheme://addr:port" (IPv6 in brackets, a zone escaped as
// "%25"), or "" when addr is invalid or port is out of range.
func BaseURL(scheme string, addr netip.Addr, port int) string {
	if !addr.IsValid() || port <= 0 || port > 65535 {
		return ""
	}
	host := strings.ReplaceAll(addr.Unmap().String(), "%", "%25")
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port))
}
