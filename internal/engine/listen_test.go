package engine

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"
)

// hasIPv6Loopback reports whether ::1 can be bound here.
func hasIPv6Loopback() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// TestListenTCP checks the engine's own TCP listeners (listen.go) for each kind of listen
// host: one per address family the host allows, all on the port the engine reports and the
// library announces, the uTP socket on the same port, each registered with the library as
// a listener and a dialer; and that Close releases the port.
func TestListenTCP(t *testing.T) {
	t.Parallel()
	v6 := hasIPv6Loopback()
	cases := []struct {
		name, host string
		fixedPort  bool
		want       []string // networks of the TCP listeners
		needV6     bool
	}{
		{name: "ipv4", host: "127.0.0.1", want: []string{"tcp4"}},
		{name: "ipv4_fixed_port", host: "127.0.0.1", fixedPort: true, want: []string{"tcp4"}},
		{name: "ipv6", host: "::1", want: []string{"tcp6"}, needV6: true},
		{name: "all", host: "", want: []string{"tcp4", "tcp6"}, needV6: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needV6 && !v6 {
				t.Skip("no IPv6 loopback here")
			}
			port := 0
			if tc.fixedPort {
				port = freePort(t)
			}
			e, err := New(Options{
				DownloadDir: t.TempDir(), DataDir: t.TempDir(), ListenHost: tc.host, ListenPort: port,
				DisableDHT: true, DisableTrackers: true, DisableLSD: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			defer func() {
				if !closed {
					e.Close()
				}
			}()
			lp := e.ListenAddr().Port()
			if port != 0 && int(lp) != port {
				t.Errorf("ListenAddr().Port() = %d, want the configured %d", lp, port)
			}
			if got := e.cl.LocalPort(); got != int(lp) {
				t.Errorf("library LocalPort() = %d, want the engine's %d", got, lp)
			}
			var nets []string
			for _, l := range e.tcp {
				nets = append(nets, l.network)
				if p := l.Addr().(*net.TCPAddr).Port; p != int(lp) {
					t.Errorf("%s listener on port %d, want %d", l.network, p, lp)
				}
				if !slices.Contains(e.cl.Listeners(), any(l).(interface {
					Accept() (net.Conn, error)
					Addr() net.Addr
				})) {
					t.Errorf("%s listener not registered with the library", l.network)
				}
			}
			if !slices.Equal(nets, tc.want) {
				t.Errorf("TCP listeners %v, want %v", nets, tc.want)
			}
			utp := 0
			for _, l := range e.cl.Listeners() {
				a := l.Addr()
				if isUTP(a.Network()) {
					utp++
					if p := a.(*net.UDPAddr).Port; p != int(lp) {
						t.Errorf("uTP socket %s on port %d, want %d", a, p, lp)
					}
				}
			}
			if utp != len(tc.want) {
				t.Errorf("%d uTP sockets, want %d (one per family)", utp, len(tc.want))
			}
			// A peer can connect on every family the engine listens on.
			for _, n := range tc.want {
				host := "127.0.0.1"
				if n == "tcp6" {
					host = "::1"
				}
				c, err := net.Dial(n, net.JoinHostPort(host, fmt.Sprint(lp)))
				if errors.Is(err, syscall.ECONNRESET) {
					continue // accepted, and closed at once: the engine has no torrent to talk about
				}
				if err != nil {
					t.Errorf("dial %s %s port %d: %v", n, host, lp, err)
					continue
				}
				c.Close()
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			closed = true
			for _, n := range tc.want {
				host := netip.IPv4Unspecified()
				if n == "tcp6" {
					host = netip.IPv6Unspecified()
				}
				if tc.host != "" {
					host = netip.MustParseAddr(tc.host)
				}
				ln, err := net.Listen(n, netip.AddrPortFrom(host, lp).String())
				if err != nil {
					t.Errorf("after Close, listen on %s port %d: %v (the engine kept its listener)", n, lp, err)
					continue
				}
				ln.Close()
			}
		})
	}
}

// TestListenTCPErrors checks that a listen address this host does not have, or a port
// another socket holds, fails New with an error naming it.
func TestListenTCPErrors(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name, host string
		port       int
	}{
		{"foreign_address", "192.0.2.1", 0}, // TEST-NET-1: never on this host
		{"port_in_use", "127.0.0.1", busy.Addr().(*net.TCPAddr).Port},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := New(Options{
				DownloadDir: t.TempDir(), DataDir: t.TempDir(), ListenHost: tc.host, ListenPort: tc.port,
				DisableDHT: true, DisableTrackers: true, DisableLSD: true,
			})
			if err == nil {
				e.Close()
				t.Fatalf("New(ListenHost %q, ListenPort %d) succeeded, want an error", tc.host, tc.port)
			}
			t.Logf("New: %v", err)
		})
	}
}

// freePort returns a port free for TCP and UDP on 127.0.0.1 at the time of the call.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no port free for TCP and UDP")
	return 0
}
