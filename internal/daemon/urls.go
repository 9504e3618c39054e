package daemon

import (
	"net"
	"net/netip"
	"net/url"
	"strconv"

	"github.com/torrentclaw/cli/internal/media"
	"github.com/torrentclaw/cli/internal/netaddr"
	"github.com/torrentclaw/cli/internal/token"
)

// bases are the media listener's base URLs ("http://host:port") per
// network; empty when unknown.
type bases struct {
	LAN, TS, Pub string
}

// baseURLs returns the base URLs for scheme on port. The LAN entry is the
// listen address when it is specific, else the default-route address (or
// loopback when there is none), so a URL the daemon prints always works on
// this machine.
func (d *Daemon) baseURLs(scheme string, port int) bases {
	var b bases
	if port <= 0 {
		return b
	}
	a := d.addresses()
	listen := netaddr.NormalizeHost(d.cfg.Stream.Listen)
	ip, err := netip.ParseAddr(listen)
	specific := err == nil && !ip.IsUnspecified()
	switch {
	case specific:
		b.LAN = netaddr.BaseURL(scheme, ip, port)
	case err != nil && listen != "":
		b.LAN = scheme + "://" + net.JoinHostPort(listen, strconv.Itoa(port))
	case a.LAN.IsValid():
		b.LAN = netaddr.BaseURL(scheme, a.LAN, port)
	default:
		b.LAN = netaddr.BaseURL(scheme, netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)
	}
	if !specific && err == nil && a.Tailscale.IsValid() {
		b.TS = netaddr.BaseURL(scheme, a.Tailscale, port)
	}
	if h := d.cfg.Stream.PublicHost; h != "" {
		if _, _, err := net.SplitHostPort(h); err == nil && scheme == "http" {
			b.Pub = scheme + "://" + h
		} else {
			b.Pub = scheme + "://" + net.JoinHostPort(netaddr.NormalizeHost(h), strconv.Itoa(port))
		}
	} else if d.upnp != nil {
		if ext := d.upnp.externalIP(); ext.IsValid() {
			b.Pub = netaddr.BaseURL(scheme, ext, port)
		}
	}
	return b
}

// mediaBase is the one base URL the CLI prints: the LAN one.
func (d *Daemon) mediaBase() string {
	return d.baseURLs("http", int(d.mediaAP.Port())).LAN
}

// streamURL is media.StreamURL, or "" for an unknown base.
func streamURL(base, taskID string, tok token.Token, fileIndex int) string {
	if base == "" {
		return ""
	}
	return media.StreamURL(base, taskID, tok, fileIndex)
}

// playlistURL is base + "/playlist.m3u?id=…&t=…".
func playlistURL(base, taskID string, tok token.Token) string {
	u := base + "/playlist.m3u?id=" + url.QueryEscape(taskID)
	if tok != "" {
		u += "&t=" + url.QueryEscape(tok.Reveal())
	}
	return u
}

// hlsURL is base + "/hls/<session>/master.m3u8?t=…".
func hlsURL(base, sessionID string, tok token.Token) string {
	u := base + "/hls/" + url.PathEscape(sessionID) + "/master.m3u8"
	if tok != "" {
		u += "?t=" + url.QueryEscape(tok.Reveal())
	}
	return u
}

// all lists the known base URLs, LAN first.
func (b bases) all() []string {
	var out []string
	for _, u := range []string{b.LAN, b.TS, b.Pub} {
		if u != "" {
			out = append(out, u)
		}
	}
	return out
}

// originOf returns "scheme://host[:port]" of a URL, or "".
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
