package upnp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"
)

// searchTargets are the SSDP search targets sent in each round. Gateways must
// answer a search for their device type or for any service they embed; some
// answer only one of these, so ask for all.
var searchTargets = []string{
	"urn:schemas-upnp-org:device:InternetGatewayDevice:2",
	"urn:schemas-upnp-org:device:InternetGatewayDevice:1",
	"urn:schemas-upnp-org:service:WANIPConnection:2",
	"urn:schemas-upnp-org:service:WANIPConnection:1",
	"urn:schemas-upnp-org:service:WANPPPConnection:1",
}

// searchRounds and searchInterval: UDP may drop a datagram, so M-SEARCH is
// sent up to searchRounds times, searchInterval apart, until a gateway is
// found or the discovery deadline passes.
const (
	searchRounds   = 3
	searchInterval = time.Second
	// searchMX is the MX header: devices spread their answers over this
	// many seconds. The minimum, so that answers arrive soon.
	searchMX = 1
)

// search sends M-SEARCH requests and probes each distinct gateway that
// answers, returning the first usable one.
func (m *Mapper) search(ctx context.Context) (*gateway, error) {
	conns, err := m.searchConns()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	replies := make(chan *url.URL) // description locations from search responses
	var sendErr error              // written by the sender goroutine, read after wg.Wait
	var wg sync.WaitGroup
	defer func() {
		cancel()
		for _, c := range conns {
			c.Close() // unblocks readers
		}
		wg.Wait()
	}()

	wg.Go(func() { sendErr = m.sendSearches(ctx, conns) })
	for _, c := range conns {
		wg.Go(func() { m.readReplies(ctx, c, replies) })
	}

	seen := make(map[string]bool)
	var errs []error
	for {
		select {
		case <-ctx.Done():
			if err := ctx.Err(); !errors.Is(err, context.DeadlineExceeded) {
				return nil, err // the caller gave up
			}
			cancel()
			wg.Wait() // sendErr is safe to read from here on
			switch {
			case len(errs) > 0:
				return nil, fmt.Errorf("%w within %v: %d device(s) answered, none usable; last: %w",
					ErrNoGateway, m.discoverTimeout, len(errs), errs[len(errs)-1])
			case sendErr != nil:
				return nil, fmt.Errorf("%w within %v: %w", ErrNoGateway, m.discoverTimeout, sendErr)
			}
			return nil, fmt.Errorf("%w within %v", ErrNoGateway, m.discoverTimeout)
		case loc := <-replies:
			key := loc.String()
			if seen[key] {
				continue
			}
			seen[key] = true
			gw, err := m.probe(ctx, loc)
			if err != nil {
				m.log.Debug("upnp device skipped", "location", loc.Host, "err", err)
				errs = append(errs, err)
				continue
			}
			return gw, nil
		}
	}
}

// searchConns opens the sockets M-SEARCH is sent from. For the multicast
// group that is one socket per IPv4 address of every multicast-capable
// interface (binding the source address makes Linux send through that
// interface), so a gateway on any LAN hears us. For a unicast target (tests)
// or a configured LocalAddr it is one socket.
func (m *Mapper) searchConns() ([]*net.UDPConn, error) {
	var locals []netip.Addr
	switch {
	case m.localAddr.IsValid():
		locals = []netip.Addr{m.localAddr}
	case m.multicast:
		locals = multicastAddrs()
	}
	if len(locals) == 0 {
		locals = []netip.Addr{netip.IPv4Unspecified()}
	}
	var conns []*net.UDPConn
	var errs []error
	for _, a := range locals {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0)))
		if err != nil {
			errs = append(errs, fmt.Errorf("open ssdp socket on %v: %w", a, err))
			continue
		}
		conns = append(conns, c)
	}
	if len(conns) == 0 {
		return nil, errors.Join(errs...)
	}
	return conns, nil
}

// multicastAddrs lists the IPv4 addresses of up, multicast-capable,
// non-loopback interfaces.
func multicastAddrs() []netip.Addr {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagMulticast == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Unmap().Is4() {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}

// sendSearches sends every search target from every socket, searchRounds
// times. It returns an error only if no datagram could be sent at all.
func (m *Mapper) sendSearches(ctx context.Context, conns []*net.UDPConn) error {
	dst := net.UDPAddrFromAddrPort(m.ssdpAddr)
	var lastErr error
	sent := 0
	ticker := time.NewTicker(searchInterval)
	defer ticker.Stop()
	for round := 0; round < searchRounds; round++ {
		if round > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-ticker.C:
			}
		}
		for _, c := range conns {
			for _, st := range searchTargets {
				if ctx.Err() != nil {
					return nil // a gateway answered, or time is up
				}
				if _, err := c.WriteToUDP(searchRequest(m.ssdpAddr, st), dst); err != nil {
					lastErr = err
					continue
				}
				sent++
			}
		}
	}
	if sent == 0 && lastErr != nil {
		return fmt.Errorf("send ssdp search to %v: %w", m.ssdpAddr, lastErr)
	}
	return nil
}

// readReplies reads search responses from c until ctx is done or c closes.
func (m *Mapper) readReplies(ctx context.Context, c *net.UDPConn, out chan<- *url.URL) {
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 4096)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // deadline set on cancel, or socket closed
		}
		loc, err := parseSSDPResponse(buf[:n])
		if err != nil {
			m.log.Debug("upnp ssdp reply ignored", "remote_addr", from, "err", err)
			continue
		}
		src := from.Addr().Unmap()
		if err := checkLocation(loc, src); err != nil {
			m.log.Debug("upnp ssdp reply ignored", "remote_addr", from, "err", err)
			continue
		}
		select {
		case out <- loc:
		case <-ctx.Done():
			return
		}
	}
}

func searchRequest(host netip.AddrPort, st string) []byte {
	// Header names are written exactly as UPnP Device Architecture 1.1
	// shows them; some devices match them case-sensitively.
	return fmt.Appendf(nil, "M-SEARCH * HTTP/1.1\r\nHOST: %s\r\nMAN: \"ssdp:discover\"\r\nMX: %d\r\nST: %s\r\n\r\n",
		host, searchMX, st)
}

// parseSSDPResponse parses one M-SEARCH response datagram and returns its
// LOCATION, which must be an absolute http URL.
func parseSSDPResponse(b []byte) (*url.URL, error) {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
	if err != nil {
		return nil, fmt.Errorf("bad ssdp response: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ssdp response status %q", resp.Status)
	}
	raw := resp.Header.Get("Location")
	if raw == "" {
		return nil, errors.New("ssdp response without location")
	}
	loc, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("ssdp location: %w", err)
	}
	if loc.Scheme != "http" || loc.Host == "" || loc.User != nil {
		return nil, fmt.Errorf("ssdp location %q: want an http url", raw)
	}
	return loc, nil
}

// checkLocation accepts a description URL only on the host that answered
// the search, so a LAN device cannot make us fetch from (and later POST to)
// an arbitrary address.
func checkLocation(loc *url.URL, from netip.Addr) error {
	host, err := netip.ParseAddr(loc.Hostname())
	if err != nil {
		return fmt.Errorf("ssdp location host %q is not an ip address", loc.Hostname())
	}
	if host.Unmap() != from {
		return fmt.Errorf("ssdp location host %v differs from responder %v", host, from)
	}
	return nil
}
