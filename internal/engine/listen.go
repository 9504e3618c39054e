package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/anacrolix/torrent"
)

// The BitTorrent TCP listeners.
//
// The torrent library binds its own TCP listeners and hands what they accept straight to its
// handshake, so a connection a peer opens to us would never pass through withQuickAck
// (quickack.go): every block a libtorrent peer sends on it would wait for our delayed ACK,
// and in real swarms, and whenever `seed` serves a leecher, many peers dial us.
//
// So the engine binds the TCP sockets itself, as the library would (one per address family,
// tcp4 and an IPv6-only tcp6 on the same host and port, TCP keep-alive off; a family whose
// address cannot be bound here is left out), turns the library's TCP listening off
// (ClientConfig.DisableTCP affects listening only) and registers its listeners with
// Client.AddListener. The library runs its usual accept loop on them, with its checks
// (accept rate limiting, blocked and bad addresses, IPv4/IPv6 switches) unchanged; it only
// sees connections already wrapped. The listeners are also the TCP dialers, as the library's
// own TCP sockets are.
//
// The uTP (and DHT) socket stays the library's, on the same port number: TCP is bound first
// (a free port when Options.ListenPort is 0, like the library) and the library is started on
// that port. The port the library announces to trackers and peers (Client.LocalPort) is the
// first listener's, which both agree on. The library does not close listeners added this
// way: the engine closes them after the client (closeClient), so that the library's accept
// loop sees a closed client and ends.

// listenRetries bounds the attempts to find a port free for TCP and UDP when the port is 0.
const listenRetries = 10

// tcpListener is a BitTorrent TCP listener whose accepted connections acknowledge at once,
// and the dialer of outgoing TCP peer connections of the same address family.
type tcpListener struct {
	*net.TCPListener
	network string // "tcp4" or "tcp6"
	dialer  net.Dialer
}

var (
	_ torrent.Listener = (*tcpListener)(nil)
	_ torrent.Dialer   = (*tcpListener)(nil)
)

// Accept implements torrent.Listener.
func (l *tcpListener) Accept() (net.Conn, error) {
	c, err := l.TCPListener.AcceptTCP()
	if err != nil {
		return nil, err
	}
	return withQuickAck(c), nil
}

// Dial implements torrent.Dialer. Like the library's TCP dialer it closes connections
// without lingering; the peer dialer (peers.go) puts them in quick-ack mode.
func (l *tcpListener) Dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := l.dialer.DialContext(ctx, l.network, addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return c, nil
}

// DialerNetwork implements torrent.Dialer.
func (l *tcpListener) DialerNetwork() string { return l.network }

// startClient binds the TCP listeners on opts.ListenHost and opts.ListenPort, starts the
// torrent client with cfg on the same port (for uTP and DHT) and registers the listeners
// with it. When the port is 0 and the port found is taken for another family or for UDP,
// it tries other ports.
func (e *Engine) startClient(cfg *torrent.ClientConfig) error {
	cfg.DisableTCP = true // listening on TCP is ours (see above)
	for attempt := 1; ; attempt++ {
		lns, err := listenTCP(e.opts.ListenHost, !cfg.DisableIPv4, !cfg.DisableIPv6, e.opts.ListenPort)
		if err == nil {
			cfg.ListenPort = lns[0].Addr().(*net.TCPAddr).Port
			var cl *torrent.Client
			if cl, err = torrent.NewClient(cfg); err == nil {
				e.cl, e.tcp = cl, lns
				for _, l := range lns {
					cl.AddListener(l)
				}
				return nil
			}
			closeListeners(lns)
		}
		if e.opts.ListenPort == 0 && errors.Is(err, syscall.EADDRINUSE) && attempt < listenRetries {
			continue
		}
		return err
	}
}

// closeClient closes the torrent client, then the TCP listeners it accepted on.
func (e *Engine) closeClient() error {
	errs := e.cl.Close()
	closeListeners(e.tcp)
	return errors.Join(errs...)
}

func closeListeners(lns []*tcpListener) {
	for _, l := range lns {
		_ = l.Close() // a listener has nothing to flush; a failure leaves nothing to undo
	}
}

// listenTCP binds a TCP listener on host:port for each wanted address family, in order, all
// on the port of the first (a free one when port is 0). It skips a family whose address
// cannot be assigned here, as the library does, and fails when none is left.
func listenTCP(host string, ipv4, ipv6 bool, port int) ([]*tcpListener, error) {
	var networks []string
	if ipv4 {
		networks = append(networks, "tcp4")
	}
	if ipv6 {
		networks = append(networks, "tcp6")
	}
	lc := net.ListenConfig{KeepAlive: -1} // BitTorrent has its own keep-alives
	var lns []*tcpListener
	var skipped error
	for _, network := range networks {
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		ln, err := lc.Listen(context.Background(), network, addr)
		if err != nil {
			if addrNotAvailable(err) {
				skipped = err
				continue
			}
			closeListeners(lns)
			return nil, err // names the network and address
		}
		l := &tcpListener{
			TCPListener: ln.(*net.TCPListener),
			network:     network,
			// No fallback between families: each listener dials its own.
			dialer: net.Dialer{FallbackDelay: -1, KeepAlive: -1},
		}
		lns = append(lns, l)
		port = l.Addr().(*net.TCPAddr).Port
	}
	if len(lns) == 0 {
		if skipped == nil {
			return nil, errors.New("listen on tcp: no address family enabled")
		}
		return nil, fmt.Errorf("listen on tcp: %w", skipped)
	}
	return lns, nil
}

// addrNotAvailable reports whether err is the bind error for an address this host does not
// have (an IPv6 wildcard without IPv6, say): the library leaves such a network out.
func addrNotAvailable(err error) bool {
	var se *os.SyscallError
	return errors.As(err, &se) && se.Syscall == "bind" && errors.Is(err, syscall.EADDRNOTAVAIL)
}
