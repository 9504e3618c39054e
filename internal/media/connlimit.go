package media

import (
	"net"
	"net/netip"
	"sync"
)

// Defaults of the connection caps; see [Options.MaxConns].
const (
	DefaultMaxConns          = 512
	DefaultMaxConnsPerClient = 64
)

// limitListener caps the connections open at once, in total and per client
// address. A connection beyond a cap is closed as soon as it is accepted,
// before anything is read from it, so a flood of idle connections costs one
// accept and one close each and cannot exhaust the process's descriptors. A
// connection counts until it is closed, idle keep-alive connections included.
type limitListener struct {
	net.Listener
	max, perClient int
	// onRefuse is called (without mu held) for each refused connection; may be nil.
	onRefuse func(total bool)

	mu   sync.Mutex // guards the fields below
	open int
	byIP map[netip.Addr]int
}

func newLimitListener(ln net.Listener, maxConns, perClient int, onRefuse func(total bool)) *limitListener {
	return &limitListener{Listener: ln, max: maxConns, perClient: perClient, onRefuse: onRefuse, byIP: make(map[netip.Addr]int)}
}

// Accept returns the next connection within the caps, closing the others.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := clientAddr(c.RemoteAddr())
		l.mu.Lock()
		total := l.open >= l.max
		ok := !total && l.byIP[ip] < l.perClient
		if ok {
			l.open++
			l.byIP[ip]++
		}
		l.mu.Unlock()
		if ok {
			return &limitConn{Conn: c, l: l, ip: ip}, nil
		}
		// Nothing was read: the kernel may answer with a reset, which is what
		// a refused client should see.
		_ = c.Close()
		if l.onRefuse != nil {
			l.onRefuse(total)
		}
	}
}

func (l *limitListener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if n := l.byIP[ip] - 1; n > 0 {
		l.byIP[ip] = n
	} else {
		delete(l.byIP, ip)
	}
}

// clientAddr is the address a connection is counted under: the remote IP
// (IPv4-mapped addresses unmapped), or the zero Addr when it has none.
func clientAddr(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// limitConn gives its slot back once, on the first Close.
type limitConn struct {
	net.Conn
	l    *limitListener
	ip   netip.Addr
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}
