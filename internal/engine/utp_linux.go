package engine

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// setUDPRecvBuffer sets the kernel receive buffer of this process's UDP socket bound to addr
// to want bytes and returns what the kernel granted (SO_RCVBUF as read back, which counts the
// kernel's bookkeeping overhead too: Linux doubles the value asked for). It tries
// SO_RCVBUFFORCE first, which needs CAP_NET_ADMIN and ignores net.core.rmem_max, then
// SO_RCVBUF, which the kernel caps at rmem_max.
//
// The uTP socket is opened inside the torrent library, which does not hand out its file
// descriptor, so the socket is found among the process's descriptors by its type and bound
// address: only one UDP socket can be bound to that address while the library holds it.
func setUDPRecvBuffer(addr net.Addr, want int) (int, error) {
	fd, err := findUDPSocket(addr)
	if err != nil {
		return 0, err
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, want); err != nil {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, want); err != nil {
			return 0, fmt.Errorf("set SO_RCVBUF on udp %s: %w", addr, err)
		}
	}
	return udpRecvBuffer(fd)
}

func udpRecvBuffer(fd int) (int, error) {
	got, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	if err != nil {
		return 0, fmt.Errorf("get SO_RCVBUF: %w", err)
	}
	return got, nil
}

// findUDPSocket returns the descriptor of this process's UDP socket bound to addr.
func findUDPSocket(addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("find socket: %s is not a UDP address", addr)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, fmt.Errorf("find udp socket %s: %w", addr, err)
	}
	for _, ent := range ents {
		fd, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		if link, err := os.Readlink("/proc/self/fd/" + ent.Name()); err != nil || !strings.HasPrefix(link, "socket:") {
			continue
		}
		if typ, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TYPE); err != nil || typ != syscall.SOCK_DGRAM {
			continue
		}
		sa, err := syscall.Getsockname(fd)
		if err != nil {
			continue
		}
		if sockaddrIs(sa, ua) {
			return fd, nil
		}
	}
	return 0, fmt.Errorf("find udp socket %s: %w", addr, errNoSocket)
}

var errNoSocket = errors.New("no such socket in this process")

func sockaddrIs(sa syscall.Sockaddr, ua *net.UDPAddr) bool {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return sa.Port == ua.Port && (ua.IP == nil || net.IP(sa.Addr[:]).Equal(ua.IP))
	case *syscall.SockaddrInet6:
		return sa.Port == ua.Port && (ua.IP == nil || net.IP(sa.Addr[:]).Equal(ua.IP))
	}
	return false
}
