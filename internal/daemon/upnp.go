package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/torrentclaw/cli/internal/upnp"
)

// UPnPOptions point the daemon's UPnP mapper at a gateway of the caller's
// choosing; tests use them to reach a fake gateway on loopback. Production
// leaves every field zero: SSDP multicast discovery, mappings for the address
// the system uses to reach the gateway, and the [upnp] package's timeouts.
// They matter only when upnp.enabled is on.
type UPnPOptions struct {
	// SSDPAddr is where M-SEARCH requests go; see [upnp.Options.SSDPAddr].
	SSDPAddr string
	// RootDescURL skips SSDP; see [upnp.Options.RootDescURL].
	RootDescURL string
	// LocalAddr is the internal client mappings point at; see
	// [upnp.Options.LocalAddr].
	LocalAddr netip.Addr
	// DiscoverTimeout and RequestTimeout bound discovery and each call to
	// the gateway (zero: [upnp.DefaultDiscoverTimeout],
	// [upnp.DefaultRequestTimeout]).
	DiscoverTimeout, RequestTimeout time.Duration
}

// upnpLink maps the media and BitTorrent ports on the gateway while the
// daemon runs. Every failure is a warning: the daemon keeps serving the LAN.
type upnpLink struct {
	d *Daemon

	// mu guards m and err.
	mu  sync.Mutex
	m   *upnp.Mapper
	err error
}

func newUPnPLink(d *Daemon) *upnpLink { return &upnpLink{d: d} }

func (u *upnpLink) setErr(err error) {
	u.mu.Lock()
	u.err = err
	u.mu.Unlock()
	u.d.log.Warn("upnp unavailable; the media port is reachable on the LAN only", "err", err)
}

// run discovers the gateway, maps the ports, renews them until ctx is done
// and removes them on the way out.
func (u *upnpLink) run(ctx context.Context) {
	d := u.d
	hook := d.opts.UPnP
	m, err := upnp.New(upnp.Options{
		Lease:           d.cfg.UPnP.Lease.Std(),
		DiscoverTimeout: hook.DiscoverTimeout,
		RequestTimeout:  hook.RequestTimeout,
		Description:     "torrentclaw",
		Logger:          d.log,
		SSDPAddr:        hook.SSDPAddr,
		RootDescURL:     hook.RootDescURL,
		LocalAddr:       hook.LocalAddr,
	})
	if err != nil {
		u.setErr(err)
		return
	}
	if err := m.Discover(ctx); err != nil {
		u.setErr(err)
		_ = m.Close() // holds no mapping; releases the connection to the gateway
		return
	}
	mediaPort := d.mediaAP.Port()
	btPort := d.eng.ListenAddr().Port()
	maps := []upnp.Mapping{{Protocol: "TCP", InternalPort: mediaPort, Name: "media"}}
	if d.tlsPort != 0 {
		maps = append(maps, upnp.Mapping{Protocol: "TCP", InternalPort: uint16(d.tlsPort), Name: "media-tls"})
	}
	if btPort != 0 {
		maps = append(maps,
			upnp.Mapping{Protocol: "TCP", InternalPort: btPort, Name: "bittorrent"},
			upnp.Mapping{Protocol: "UDP", InternalPort: btPort, Name: "bittorrent"})
	}
	if err := m.Map(ctx, maps); err != nil {
		u.setErr(err)
		_ = m.Close()
		return
	}
	if _, err := m.ExternalIP(ctx); err != nil {
		d.log.Warn("upnp gateway did not report its external address", "err", err)
	}
	u.mu.Lock()
	u.m = m
	u.mu.Unlock()
	d.log.Info("upnp ports mapped", "mappings", len(maps), "external_ip", m.Status().ExternalIP.String())
	// Run removes the mappings when ctx is done; Close then retries any
	// removal that failed (each bounded by the request timeout) and releases
	// the connections to the gateway.
	if err := errors.Join(m.Run(ctx), m.Close()); err != nil {
		d.log.Warn("upnp mappings not removed", "err", err)
	}
}

func (u *upnpLink) mapper() *upnp.Mapper {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.m
}

// externalIP is the gateway's external address, invalid when unknown.
func (u *upnpLink) externalIP() netip.Addr {
	if m := u.mapper(); m != nil {
		return m.Status().ExternalIP
	}
	return netip.Addr{}
}

func (u *upnpLink) ok() bool {
	m := u.mapper()
	return m != nil && m.Status().LastError == ""
}

// summary is one line for status and doctor.
func (u *upnpLink) summary() string {
	m := u.mapper()
	if m == nil {
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.err != nil {
			return "failed: " + u.err.Error()
		}
		return "discovering"
	}
	st := m.Status()
	var maps []string
	for _, mp := range st.Mappings {
		maps = append(maps, mp.String())
	}
	s := fmt.Sprintf("mapped %s on %s (%s), external %s", strings.Join(maps, ", "), st.Gateway, st.Service, st.ExternalIP)
	if st.LastError != "" {
		s += "; last error: " + st.LastError
	}
	return s
}
