package upnp

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/huin/goupnp"
	"github.com/huin/goupnp/dcps/internetgateway2"
)

// maxBodyBytes caps any response body read from a gateway (descriptions and
// SOAP answers are a few KiB).
const maxBodyBytes = 1 << 20

// wanClient is what the package calls on a WAN connection service. The
// goupnp clients for WANIPConnection:2, WANIPConnection:1 and
// WANPPPConnection:1 all satisfy it.
type wanClient interface {
	AddPortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string,
		internalPort uint16, internalClient string, enabled bool, description string, leaseSeconds uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string) error
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
	GetServiceClient() *goupnp.ServiceClient
}

var (
	_ wanClient = (*internetgateway2.WANIPConnection2)(nil)
	_ wanClient = (*internetgateway2.WANIPConnection1)(nil)
	_ wanClient = (*internetgateway2.WANPPPConnection1)(nil)
)

// wanServices lists the services we can drive, most preferred first.
var wanServices = []struct {
	name    string
	clients func(*goupnp.RootDevice, *url.URL) ([]wanClient, error)
}{
	{"WANIPConnection:2", func(r *goupnp.RootDevice, loc *url.URL) ([]wanClient, error) {
		return asWAN(internetgateway2.NewWANIPConnection2ClientsFromRootDevice(r, loc))
	}},
	{"WANIPConnection:1", func(r *goupnp.RootDevice, loc *url.URL) ([]wanClient, error) {
		return asWAN(internetgateway2.NewWANIPConnection1ClientsFromRootDevice(r, loc))
	}},
	{"WANPPPConnection:1", func(r *goupnp.RootDevice, loc *url.URL) ([]wanClient, error) {
		return asWAN(internetgateway2.NewWANPPPConnection1ClientsFromRootDevice(r, loc))
	}},
}

func asWAN[T wanClient](cs []T, err error) ([]wanClient, error) {
	if err != nil {
		return nil, err
	}
	out := make([]wanClient, len(cs))
	for i, c := range cs {
		out[i] = c
	}
	return out, nil
}

// gateway is a discovered WAN connection service.
type gateway struct {
	client       wanClient
	service      string   // e.g. "WANIPConnection:2"
	location     *url.URL // root description URL
	friendlyName string
	localAddr    netip.Addr // internal client for our mappings
}

// probe reads the root description at loc and picks the preferred WAN
// service in it.
func (m *Mapper) probe(ctx context.Context, loc *url.URL) (*gateway, error) {
	root, err := m.fetchRootDesc(ctx, loc)
	if err != nil {
		return nil, err
	}
	client, service, err := chooseService(root, loc)
	if err != nil {
		return nil, err
	}
	sc := client.GetServiceClient()
	sc.SOAPClient.HTTPClient = *m.client

	local := m.localAddr
	if !local.IsValid() {
		local, err = localAddrFor(ctx, &sc.SOAPClient.EndpointURL)
		if err != nil {
			return nil, err
		}
	}
	return &gateway{
		client:       client,
		service:      service,
		location:     loc,
		friendlyName: root.Device.FriendlyName,
		localAddr:    local,
	}, nil
}

func (m *Mapper) fetchRootDesc(ctx context.Context, loc *url.URL) (*goupnp.RootDevice, error) {
	ctx, cancel := context.WithTimeout(ctx, m.requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("fetch device description %s: %w", loc.Host, err)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fetch device description %s: no answer in time: %w", loc.Host, ctx.Err())
		}
		return nil, fmt.Errorf("fetch device description %s: %w", loc.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch device description %s: http status %s", loc.Host, resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("fetch device description %s: %w", loc.Host, err)
	}
	root, err := parseRootDesc(data, loc)
	if err != nil {
		return nil, fmt.Errorf("device description %s: %w", loc.Host, err)
	}
	return root, nil
}

// parseRootDesc decodes a UPnP root device description fetched from loc and
// resolves its relative URLs.
func parseRootDesc(data []byte, loc *url.URL) (*goupnp.RootDevice, error) {
	root := new(goupnp.RootDevice)
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.DefaultSpace = goupnp.DeviceXMLNamespace
	dec.CharsetReader = func(charset string, r io.Reader) (io.Reader, error) {
		// Gateways declare these for plain ASCII documents.
		switch strings.ToLower(charset) {
		case "utf-8", "us-ascii", "ascii", "iso-8859-1":
			return r, nil
		}
		return nil, fmt.Errorf("unsupported charset %q", charset)
	}
	if err := dec.Decode(root); err != nil {
		return nil, fmt.Errorf("bad xml: %w", err)
	}
	base := loc
	if root.URLBaseStr != "" {
		u, err := url.Parse(root.URLBaseStr)
		if err != nil {
			return nil, fmt.Errorf("bad URLBase %q: %w", root.URLBaseStr, err)
		}
		base = loc.ResolveReference(u)
	}
	root.SetURLBase(base)
	return root, nil
}

// chooseService returns a client for the most preferred WAN service in root.
// Its control URL must be plain http on the host that served the description.
func chooseService(root *goupnp.RootDevice, loc *url.URL) (wanClient, string, error) {
	var errs []error
	for _, s := range wanServices {
		clients, err := s.clients(root, loc)
		if err != nil {
			continue // not offered
		}
		for _, c := range clients {
			svc := c.GetServiceClient().Service
			if !svc.ControlURL.Ok || strings.TrimSpace(svc.ControlURL.Str) == "" {
				errs = append(errs, fmt.Errorf("%s: bad control url %q", s.name, svc.ControlURL.Str))
				continue
			}
			u := svc.ControlURL.URL
			if u.Scheme != "http" || u.Hostname() != loc.Hostname() {
				errs = append(errs, fmt.Errorf("%s: control url %s is not on %s", s.name, u.Redacted(), loc.Hostname()))
				continue
			}
			return c, s.name, nil
		}
	}
	if len(errs) == 0 {
		errs = append(errs, fmt.Errorf("device %q offers no WANIPConnection or WANPPPConnection service",
			root.Device.FriendlyName))
	}
	return nil, "", errors.Join(errs...)
}

// localAddrFor returns the local IPv4 address the system uses to reach u's
// host: a UDP "dial" picks the route and sends nothing.
func localAddrFor(ctx context.Context, u *url.URL) (netip.Addr, error) {
	port := u.Port()
	if port == "" {
		port = "80"
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp4", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("find local address towards %s: %w", u.Host, err)
	}
	defer conn.Close()
	ap, err := netip.ParseAddrPort(conn.LocalAddr().String())
	if err != nil {
		return netip.Addr{}, fmt.Errorf("find local address towards %s: %w", u.Host, err)
	}
	return ap.Addr().Unmap(), nil
}

// limitBodies caps every response body at maxBodyBytes, so a gateway that
// streams forever fails fast instead of filling memory.
type limitBodies struct{ rt http.RoundTripper }

func (l limitBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxBodyBytes}
	return resp, nil
}

var errBodyTooLarge = fmt.Errorf("gateway response larger than %d bytes", maxBodyBytes)

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Probe for one more byte: EOF now means the body fit exactly.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errBodyTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
