package upnp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/huin/goupnp/soap"
)

// Defaults applied by [New] to zero fields of [Options].
const (
	DefaultLease           = time.Hour
	DefaultDiscoverTimeout = 5 * time.Second
	DefaultRequestTimeout  = 5 * time.Second
	DefaultDescription     = "torrentclaw"
	// DefaultSSDPAddr is the SSDP multicast group and port (UPnP Device
	// Architecture 1.1, section 1.1.2).
	DefaultSSDPAddr = "239.255.255.250:1900"
)

// maxLease is the longest lease IGD:2 accepts (604800 s, one week).
const maxLease = 7 * 24 * time.Hour

// UPnP error codes the package reacts to (IGD WANIPConnection service
// templates, section 2.4).
const (
	codeActionNotAuthorized = 606
	codeNoSuchEntry         = 714
	codeConflict            = 718
	codeOnlyPermanentLeases = 725
)

var (
	// ErrNoGateway means discovery ended without finding a usable Internet
	// gateway.
	ErrNoGateway = errors.New("no upnp internet gateway found")
	// ErrNotDiscovered means a call needed a gateway before Discover found one.
	ErrNotDiscovered = errors.New("no upnp gateway discovered yet")
	// ErrClosed means the Mapper was closed.
	ErrClosed = errors.New("upnp mapper closed")
	// ErrNoExternalIP means the gateway answered GetExternalIPAddress without
	// a usable address (empty, unspecified or unparsable). Gateways behind
	// another NAT often do this.
	ErrNoExternalIP = errors.New("gateway reported no usable external ip address")
	// ErrConflict matches a [FaultError] with code 718
	// (ConflictInMappingEntry): the external port is mapped to another host.
	ErrConflict = errors.New("port mapping conflicts with an existing entry")
	// ErrNotAuthorized matches a [FaultError] with code 606
	// (Action not authorized).
	ErrNotAuthorized = errors.New("gateway did not authorize the action")
)

// FaultError is a SOAP fault returned by the gateway.
type FaultError struct {
	Action      string // SOAP action, e.g. "AddPortMapping"
	Code        int    // UPnP error code, 0 when the fault carried none
	Description string // UPnP errorDescription or SOAP faultstring
}

func (e *FaultError) Error() string {
	if e.Code == 0 {
		return fmt.Sprintf("gateway refused %s: %s", e.Action, e.Description)
	}
	return fmt.Sprintf("gateway refused %s: upnp error %d %s", e.Action, e.Code, e.Description)
}

// Is lets errors.Is match the sentinels that stand for well-known codes.
func (e *FaultError) Is(target error) bool {
	switch target {
	case ErrConflict:
		return e.Code == codeConflict
	case ErrNotAuthorized:
		return e.Code == codeActionNotAuthorized
	}
	return false
}

// Options configures a [Mapper]. The zero value is usable.
type Options struct {
	// Lease is the lease requested for each mapping, in whole seconds
	// (default 1h, at least 1s, at most one week). Mappings are renewed at
	// half the lease.
	Lease time.Duration
	// DiscoverTimeout bounds Discover as a whole (default 5s).
	DiscoverTimeout time.Duration
	// RequestTimeout bounds each request to the gateway (description fetch,
	// each SOAP call) and the removal of all mappings on shutdown
	// (default 5s).
	RequestTimeout time.Duration
	// Description prefixes each mapping's description on the gateway
	// (default "torrentclaw").
	Description string
	// Logger receives lifecycle events; nil discards them.
	Logger *slog.Logger

	// SSDPAddr is where M-SEARCH requests go (default 239.255.255.250:1900).
	// Tests point it at a unicast loopback socket. An IPv4 ip:port.
	SSDPAddr string
	// RootDescURL, when set, skips SSDP and reads the root device
	// description at this http URL.
	RootDescURL string
	// LocalAddr, when valid, is the IPv4 address mappings point at (the
	// internal client) and the address SSDP requests are sent from. By
	// default it is the local address the system uses to reach the gateway.
	LocalAddr netip.Addr
}

// Mapping is one port forwarded by the gateway to this host.
type Mapping struct {
	Protocol     string // "TCP" or "UDP"
	InternalPort uint16 // port on this host
	ExternalPort uint16 // port on the gateway; 0 means InternalPort
	Name         string // appended to Options.Description on the gateway
}

func (m Mapping) String() string {
	return fmt.Sprintf("%s %d->%d", m.Protocol, m.ExternalPort, m.InternalPort)
}

// Status is a snapshot of the mapper for diagnostics.
type Status struct {
	// Gateway is the host:port that serves the gateway's description;
	// empty until Discover succeeds.
	Gateway string
	// Service is the WAN connection service in use, e.g. "WANIPConnection:2".
	Service string
	// FriendlyName is the gateway's self-description.
	FriendlyName string
	// LocalAddr is the internal client address mappings point at.
	LocalAddr netip.Addr
	// ExternalIP is the address the gateway last reported (zero if never).
	ExternalIP netip.Addr
	// Lease is the lease in effect; 0 means the gateway only accepts
	// permanent mappings.
	Lease time.Duration
	// Mappings are the mappings the gateway accepted and we still hold.
	Mappings []Mapping
	// LastRenewal is when every mapping was last renewed successfully.
	LastRenewal time.Time
	// LastError is the most recent failure, cleared by the next success.
	LastError string
}

// Mapper discovers the gateway and holds port mappings on it. It is safe for
// concurrent use. Call Close (or cancel Run's context) to remove the mappings.
type Mapper struct {
	lease           time.Duration // 0 after the gateway demanded permanent leases
	discoverTimeout time.Duration
	requestTimeout  time.Duration
	description     string
	ssdpAddr        netip.AddrPort
	multicast       bool     // ssdpAddr is a multicast group: send from every interface
	rootDescURL     *url.URL // nil: discover with SSDP
	localAddr       netip.Addr
	log             *slog.Logger

	transport *http.Transport
	client    *http.Client

	done      chan struct{} // closed by Close; stops Run
	closeOnce sync.Once

	// opMu serializes operations on the gateway (map, renew, remove), so a
	// renewal never re-adds a mapping that a removal is deleting.
	opMu sync.Mutex

	// mu guards the fields below; it is never held across network I/O.
	mu          sync.Mutex
	gw          *gateway
	mapped      []Mapping
	closed      bool
	permanent   bool // the gateway answered 725 OnlyPermanentLeasesSupported
	externalIP  netip.Addr
	lastRenewal time.Time
	lastErr     string
}

// New validates opts and returns a Mapper. It starts nothing and sends
// nothing.
func New(opts Options) (*Mapper, error) {
	m := &Mapper{
		lease:           opts.Lease,
		discoverTimeout: opts.DiscoverTimeout,
		requestTimeout:  opts.RequestTimeout,
		description:     opts.Description,
		log:             opts.Logger,
		done:            make(chan struct{}),
	}
	if m.lease == 0 {
		m.lease = DefaultLease
	}
	if m.lease < time.Second || m.lease > maxLease {
		return nil, fmt.Errorf("upnp lease %v: must be between 1s and %v", opts.Lease, maxLease)
	}
	m.lease = m.lease.Truncate(time.Second)
	if m.discoverTimeout == 0 {
		m.discoverTimeout = DefaultDiscoverTimeout
	}
	if m.discoverTimeout < 0 {
		return nil, fmt.Errorf("upnp discover timeout %v: must be positive", opts.DiscoverTimeout)
	}
	if m.requestTimeout == 0 {
		m.requestTimeout = DefaultRequestTimeout
	}
	if m.requestTimeout < 0 {
		return nil, fmt.Errorf("upnp request timeout %v: must be positive", opts.RequestTimeout)
	}
	if m.description == "" {
		m.description = DefaultDescription
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.log = m.log.With("component", "upnp")

	ssdp := opts.SSDPAddr
	if ssdp == "" {
		ssdp = DefaultSSDPAddr
	}
	ap, err := netip.ParseAddrPort(ssdp)
	if err != nil || !ap.Addr().Unmap().Is4() || ap.Port() == 0 {
		return nil, fmt.Errorf("upnp ssdp address %q: want an ipv4 ip:port", opts.SSDPAddr)
	}
	m.ssdpAddr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	m.multicast = m.ssdpAddr.Addr().IsMulticast()

	if opts.RootDescURL != "" {
		u, err := url.Parse(opts.RootDescURL)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("upnp root description url %q: want an http url", opts.RootDescURL)
		}
		m.rootDescURL = u
	}
	if opts.LocalAddr.IsValid() {
		a := opts.LocalAddr.Unmap()
		if !a.Is4() || a.IsUnspecified() {
			return nil, fmt.Errorf("upnp local address %v: want a specific ipv4 address", opts.LocalAddr)
		}
		m.localAddr = a
	}

	m.transport = &http.Transport{
		Proxy:                  nil, // the gateway is on the LAN: never go through a proxy
		DialContext:            (&net.Dialer{Timeout: m.requestTimeout}).DialContext,
		MaxResponseHeaderBytes: 64 << 10,
		MaxIdleConns:           2,
		IdleConnTimeout:        30 * time.Second,
	}
	m.client = &http.Client{
		Transport: limitBodies{m.transport},
		// A gateway has no reason to redirect; following one could send us
		// to a host other than the gateway.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return m, nil
}

// Discover finds the gateway, bounded by Options.DiscoverTimeout. It prefers
// WANIPConnection:2, then WANIPConnection:1, then WANPPPConnection:1. A later
// call replaces the gateway; mappings already held are renewed on the new one.
func (m *Mapper) Discover(ctx context.Context) error {
	if m.isClosed() {
		return ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, m.discoverTimeout)
	defer cancel()

	var gw *gateway
	var err error
	if m.rootDescURL != nil {
		gw, err = m.probe(ctx, m.rootDescURL)
	} else {
		gw, err = m.search(ctx)
	}
	if err != nil {
		err = fmt.Errorf("discover upnp gateway: %w", err)
		m.setErr(err)
		return err
	}

	m.mu.Lock()
	m.gw = gw
	m.permanent = false
	m.lastErr = ""
	m.mu.Unlock()
	m.log.Info("upnp gateway found", "gateway", gw.location.Host, "service", gw.service,
		"name", gw.friendlyName, "local_addr", gw.localAddr)
	return nil
}

// Map asks the gateway to forward each mapping to this host with the
// configured lease. Accepted mappings are remembered (for renewal and removal)
// even when others fail; the error joins every failure.
func (m *Mapper) Map(ctx context.Context, mappings []Mapping) error {
	norm := make([]Mapping, 0, len(mappings))
	for _, mp := range mappings {
		n, err := normalize(mp)
		if err != nil {
			return err
		}
		norm = append(norm, n)
	}

	m.opMu.Lock()
	defer m.opMu.Unlock()
	gw, err := m.gateway()
	if err != nil {
		return err
	}
	var errs []error
	for _, mp := range norm {
		if err := m.add(ctx, gw, mp); err != nil {
			errs = append(errs, err)
			continue
		}
		m.remember(mp)
		m.log.Info("upnp port mapped", "protocol", mp.Protocol, "external_port", mp.ExternalPort,
			"internal_port", mp.InternalPort, "local_addr", gw.localAddr)
	}
	err = errors.Join(errs...)
	m.setErr(err)
	return err
}

// ExternalIP asks the gateway for its external address. It never asks anyone
// else. A gateway that has no public address itself (double NAT) answers
// with [ErrNoExternalIP].
func (m *Mapper) ExternalIP(ctx context.Context) (netip.Addr, error) {
	gw, err := m.gateway()
	if err != nil {
		return netip.Addr{}, err
	}
	var raw string
	err = m.call(ctx, "GetExternalIPAddress", func(ctx context.Context) error {
		var err error
		raw, err = gw.client.GetExternalIPAddressCtx(ctx)
		return err
	})
	if err != nil {
		err = fmt.Errorf("get external ip from %s: %w", gw.location.Host, err)
		m.setErr(err)
		return netip.Addr{}, err
	}
	addr, perr := netip.ParseAddr(strings.TrimSpace(raw))
	if perr != nil || addr.IsUnspecified() {
		err := fmt.Errorf("get external ip from %s: %w (got %q)", gw.location.Host, ErrNoExternalIP, raw)
		m.setErr(err)
		return netip.Addr{}, err
	}
	addr = addr.Unmap()
	m.mu.Lock()
	m.externalIP = addr
	m.mu.Unlock()
	return addr, nil
}

// Run renews the mappings at half the lease until ctx is done or Close is
// called, then removes them (bounded by Options.RequestTimeout, even though
// ctx is already done). Renewal failures are logged and retried sooner, never
// returned, so one flaky gateway does not stop the daemon. Run returns nil on
// a clean shutdown, or the error from removing the mappings.
func (m *Mapper) Run(ctx context.Context) error {
	interval := m.lease / 2
	retry := min(interval, max(m.lease/8, time.Second))
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			// ctx is done, but the gateway must still hear about it.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.requestTimeout)
			err := m.removeAll(rctx)
			cancel()
			return err
		case <-m.done:
			return nil // Close removed the mappings
		case <-timer.C:
			if err := m.renew(ctx); err != nil {
				if ctx.Err() != nil {
					continue // shutting down; the next iteration removes
				}
				m.log.Warn("upnp renewal failed", "err", err, "retry_in", retry)
				timer.Reset(retry)
				continue
			}
			timer.Reset(interval)
		}
	}
}

// Close removes every mapping (bounded by Options.RequestTimeout), stops Run
// and releases connections. Later calls to Discover and Map fail with
// [ErrClosed]; a second Close retries removals that failed.
func (m *Mapper) Close() error {
	m.closeOnce.Do(func() { close(m.done) })
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	// Close takes no context (io.Closer); the timeout is what bounds it.
	ctx, cancel := context.WithTimeout(context.Background(), m.requestTimeout)
	defer cancel()
	err := m.removeAll(ctx)
	m.transport.CloseIdleConnections()
	return err
}

// Mapped returns the mappings the gateway accepted and that have not been
// removed.
func (m *Mapper) Mapped() []Mapping {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.mapped)
}

// Status returns a snapshot for diagnostics.
func (m *Mapper) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{
		ExternalIP:  m.externalIP,
		Lease:       m.lease,
		Mappings:    slices.Clone(m.mapped),
		LastRenewal: m.lastRenewal,
		LastError:   m.lastErr,
	}
	if m.permanent {
		s.Lease = 0
	}
	if m.gw != nil {
		s.Gateway = m.gw.location.Host
		s.Service = m.gw.service
		s.FriendlyName = m.gw.friendlyName
		s.LocalAddr = m.gw.localAddr
	}
	return s
}

// renew re-adds every mapping, which refreshes its lease (and restores it if
// the gateway rebooted).
func (m *Mapper) renew(ctx context.Context) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	gw, err := m.gateway()
	if err != nil {
		return err
	}
	var errs []error
	for _, mp := range m.Mapped() {
		if err := m.add(ctx, gw, mp); err != nil {
			errs = append(errs, err)
		}
	}
	err = errors.Join(errs...)
	m.mu.Lock()
	if err == nil {
		m.lastRenewal = time.Now()
		m.lastErr = ""
	} else {
		m.lastErr = err.Error()
	}
	m.mu.Unlock()
	if err == nil {
		m.log.Debug("upnp mappings renewed", "count", len(m.Mapped()))
	}
	return err
}

// removeAll deletes every mapping we hold. Mappings the gateway no longer
// knows count as removed; the others stay listed so a later call can retry.
func (m *Mapper) removeAll(ctx context.Context) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	gw, held := m.gw, slices.Clone(m.mapped)
	m.mu.Unlock()
	if gw == nil || len(held) == 0 {
		return nil
	}
	var errs []error
	var kept []Mapping
	for _, mp := range held {
		err := m.call(ctx, "DeletePortMapping", func(ctx context.Context) error {
			return gw.client.DeletePortMappingCtx(ctx, "", mp.ExternalPort, mp.Protocol)
		})
		var fe *FaultError
		if err != nil && !(errors.As(err, &fe) && fe.Code == codeNoSuchEntry) {
			errs = append(errs, fmt.Errorf("delete port mapping %v on %s: %w", mp, gw.location.Host, err))
			kept = append(kept, mp)
		}
	}
	m.mu.Lock()
	m.mapped = kept
	m.mu.Unlock()
	err := errors.Join(errs...)
	m.setErr(err)
	m.log.Info("upnp mappings removed", "count", len(held)-len(kept), "failed", len(kept))
	return err
}

// add sends one AddPortMapping. A gateway that only takes permanent leases
// (725) gets lease 0 from then on; Close still removes those mappings.
func (m *Mapper) add(ctx context.Context, gw *gateway, mp Mapping) error {
	desc := m.description
	if mp.Name != "" {
		desc += " " + mp.Name
	}
	m.mu.Lock()
	lease := uint32(m.lease / time.Second)
	if m.permanent {
		lease = 0
	}
	m.mu.Unlock()
	do := func(lease uint32) error {
		return m.call(ctx, "AddPortMapping", func(ctx context.Context) error {
			return gw.client.AddPortMappingCtx(ctx, "", mp.ExternalPort, mp.Protocol, mp.InternalPort,
				gw.localAddr.String(), true, desc, lease)
		})
	}
	err := do(lease)
	var fe *FaultError
	if errors.As(err, &fe) && fe.Code == codeOnlyPermanentLeases && lease != 0 {
		m.log.Info("upnp gateway accepts only permanent mappings", "gateway", gw.location.Host)
		m.mu.Lock()
		m.permanent = true
		m.mu.Unlock()
		err = do(0)
	}
	if err != nil {
		return fmt.Errorf("add port mapping %v to %v on %s: %w", mp, gw.localAddr, gw.location.Host, err)
	}
	return nil
}

// call runs one SOAP action bounded by the request timeout and turns what
// goupnp returns into errors callers can inspect: a *FaultError for SOAP
// faults, a wrapped context error when the gateway did not answer in time.
func (m *Mapper) call(ctx context.Context, action string, f func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, m.requestTimeout)
	defer cancel()
	err := f(cctx)
	if err == nil {
		return nil
	}
	var sf *soap.SOAPFaultError
	if errors.As(err, &sf) {
		fe := &FaultError{Action: action, Code: sf.Detail.UPnPError.Errorcode,
			Description: strings.TrimSpace(sf.Detail.UPnPError.ErrorDescription)}
		if fe.Description == "" {
			fe.Description = strings.TrimSpace(sf.FaultString)
		}
		return fe
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", action, context.Cause(ctx))
	}
	if cctx.Err() != nil {
		return fmt.Errorf("%s: gateway did not answer within %v: %w", action, m.requestTimeout, cctx.Err())
	}
	// goupnp formats transport and XML errors with %v; keep its text.
	return fmt.Errorf("%s: %w", action, err)
}

func (m *Mapper) gateway() (*gateway, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if m.gw == nil {
		return nil, ErrNotDiscovered
	}
	return m.gw, nil
}

func (m *Mapper) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// remember records mp, replacing an entry for the same external port.
func (m *Mapper) remember(mp Mapping) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mapped = slices.DeleteFunc(m.mapped, func(o Mapping) bool {
		return o.Protocol == mp.Protocol && o.ExternalPort == mp.ExternalPort
	})
	m.mapped = append(m.mapped, mp)
}

func (m *Mapper) setErr(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		m.lastErr = ""
		return
	}
	m.lastErr = err.Error()
}

func normalize(mp Mapping) (Mapping, error) {
	mp.Protocol = strings.ToUpper(mp.Protocol)
	if mp.Protocol != "TCP" && mp.Protocol != "UDP" {
		return mp, fmt.Errorf("upnp mapping %q: protocol %q is not TCP or UDP", mp.Name, mp.Protocol)
	}
	if mp.InternalPort == 0 {
		return mp, fmt.Errorf("upnp mapping %q: internal port is 0", mp.Name)
	}
	if mp.ExternalPort == 0 {
		mp.ExternalPort = mp.InternalPort
	}
	return mp, nil
}
