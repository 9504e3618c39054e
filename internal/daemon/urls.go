package daemon

import (
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

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

// streamURL is base + "/stream?id=…&t=…[&file=N]".
func streamURL(base, taskID string, tok token.Token, fileIndex int) string {
	if base == "" {
		return ""
	}
	q := url.Values{"id": {taskID}}
	if tok != "" {
		q.Set("t", tok.Reveal())
	}
	if fileIndex >= 0 {
		q.Set("file", strconv.Itoa(fileIndex))
	}
	return base + "/stream?" + encodeOrdered(q, "id", "t", "file")
}

// playlistURL is base + "/playlist.m3u?id=…&t=…".
func playlistURL(base, taskID string, tok token.Token) string {
	q := url.Values{"id": {taskID}}
	if tok != "" {
		q.Set("t", tok.Reveal())
	}
	return base + "/playlist.m3u?" + encodeOrdered(q, "id", "t")
}

// hlsURL is base + "/hls/<session>/master.m3u8?t=…".
func hlsURL(base, sessionID string, tok token.Token) string {
	u := base + "/hls/" + url.PathEscape(sessionID) + "/master.m3u8"
	if tok != "" {
		u += "?t=" + url.QueryEscape(tok.Reveal())
	}
	return u
}

// encodeOrdered encodes q with keys in the given order, for readable URLs.
func encodeOrdered(q url.Values, keys ...string) string {
	var sb strings.Builder
	for _, k := range keys {
		v := q.Get(k)
		if v == "" {
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte('&')
		}
		sb.WriteString(url.QueryEscape(k) + "=" + url.QueryEscape(v))
	}
	return sb.String()
}

// originOf returns "scheme://host[:port]" of a URL, or "".
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
