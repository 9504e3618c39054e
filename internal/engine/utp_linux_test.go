package engine

import (
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestSetUDPRecvBuffer sets the receive buffer of a UDP socket found by its address alone, as
// the engine does for the library's uTP socket, and reads it back through the socket's own
// descriptor: the right socket got the size the kernel allows.
func TestSetUDPRecvBuffer(t *testing.T) {
	t.Parallel()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const want = 3 << 20
	got, err := setUDPRecvBuffer(c.LocalAddr(), want)
	if err != nil {
		t.Fatalf("setUDPRecvBuffer(%s) = %v", c.LocalAddr(), err)
	}
	if own := sockRecvBuffer(t, c); own != got {
		t.Errorf("setUDPRecvBuffer(%s) = %d, but the socket's own SO_RCVBUF is %d: another socket was changed", c.LocalAddr(), got, own)
	}
	if w := grantedRecvBuffer(t, want); got != w {
		t.Errorf("setUDPRecvBuffer(%s, %d) = %d, want %d (Linux reports twice the size granted)", c.LocalAddr(), want, got, w)
	}

	if _, err := setUDPRecvBuffer(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, want); !errors.Is(err, errNoSocket) {
		t.Errorf("setUDPRecvBuffer(a port no socket of ours holds) = %v, want errNoSocket", err)
	}
}

// grantedRecvBuffer returns the SO_RCVBUF Linux reports after asking for want: twice want
// with CAP_NET_ADMIN (SO_RCVBUFFORCE), else twice want capped at net.core.rmem_max.
func grantedRecvBuffer(t testing.TB, want int) int {
	t.Helper()
	if os.Geteuid() == 0 {
		return 2 * want
	}
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Fatal(err)
	}
	max, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return 2 * min(want, max)
}

func sockRecvBuffer(t testing.TB, c *net.UDPConn) int {
	t.Helper()
	return sockoptInt(t, c, syscall.SOL_SOCKET, syscall.SO_RCVBUF)
}

// TestEngineUTPRecvBuffer starts engines with uTP on and off: with it on, the library's uTP
// socket has the receive buffer the engine asked for (see utp.go); with it off there is no
// uTP socket to tune.
func TestEngineUTPRecvBuffer(t *testing.T) {
	t.Parallel()
	for _, disable := range []bool{false, true} {
		e, err := New(Options{
			DownloadDir: t.TempDir(), DataDir: t.TempDir(), ListenHost: "127.0.0.1",
			DisableDHT: true, DisableTrackers: true, DisableLSD: true, DisableUTP: disable,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		var addrs []net.Addr
		for _, l := range e.cl.Listeners() {
			if a := l.Addr(); a != nil && isUTP(a.Network()) {
				addrs = append(addrs, a)
			}
		}
		got := int(e.utpRecvBuffer.Load())
		switch {
		case disable && (len(addrs) != 0 || got != 0):
			t.Errorf("DisableUTP: %d uTP sockets, receive buffer %d; want none, 0", len(addrs), got)
		case !disable && len(addrs) != 1:
			t.Errorf("uTP on: uTP sockets %v, want one", addrs)
		case !disable:
			if w := grantedRecvBuffer(t, utpRecvBufferBytes); got != w {
				t.Errorf("uTP socket %s receive buffer = %d, want %d", addrs[0], got, w)
			}
			fd, err := findUDPSocket(addrs[0])
			if err != nil {
				t.Fatal(err)
			}
			if n, err := udpRecvBuffer(fd); err != nil || n != got {
				t.Errorf("SO_RCVBUF of the uTP socket %s = %d, %v; engine reports %d", addrs[0], n, err, got)
			}
		}
	}
}
