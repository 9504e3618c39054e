package media

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/netaddr"
	"github.com/torrentclaw/cli/internal/token"
)

// handlePlaylist serves GET /playlist.m3u?id=&t=.
func (s *Server) handlePlaylist(w http.ResponseWriter, r *http.Request) {
	q := parseTaskQuery(r.URL.RawQuery, false)
	task, ok := s.authorizedTask(w, r, q, s.tokens)
	if !ok {
		return
	}
	body := renderPlaylist(s.baseURL(r), q.id, token.Token(q.tok), task.Files())
	h := w.Header()
	h.Set("Content-Type", "audio/x-mpegurl")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Disposition", `inline; filename="playlist.m3u"`)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// renderPlaylist writes an extended M3U with one entry per playable file.
func renderPlaylist(base, taskID string, tok token.Token, files []engine.File) []byte {
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n")
	for _, f := range files {
		if !f.Playable {
			continue
		}
		fmt.Fprintf(&b, "#EXTINF:-1,%s\n%s\n", playlistTitle(f.Path), StreamURL(base, taskID, tok, f.Index))
	}
	return b.Bytes()
}

// playlistTitle is a file's name on one line.
func playlistTitle(p string) string {
	return strings.Map(func(c rune) rune {
		if c == '\r' || c == '\n' {
			return ' '
		}
		return c
	}, safeFileName(path.Base(p)))
}

// StreamURL returns the /stream URL of a task's file under base
// ("http://host:port"). An empty tok is left out; fileIndex < 0 means the
// task's selected file. The result carries the token: never log it.
func StreamURL(base string, taskID string, tok token.Token, fileIndex int) string {
	var b strings.Builder
	b.WriteString(strings.TrimSuffix(base, "/"))
	b.WriteString("/stream?id=")
	b.WriteString(url.QueryEscape(taskID))
	if tok != "" {
		b.WriteString("&t=")
		b.WriteString(url.QueryEscape(tok.Reveal()))
	}
	if fileIndex >= 0 {
		b.WriteString("&file=")
		b.WriteString(strconv.Itoa(fileIndex))
	}
	return b.String()
}

// InternalStreamURL returns the /stream URL ffmpeg uses to read a task's file
// from the media listener bound to addr: loopback when addr is unspecified
// (0.0.0.0 or ::), else addr itself (a listener bound to one address is
// reachable only there).
func InternalStreamURL(addr netip.AddrPort, taskID string, tok token.Token, fileIndex int) string {
	ip := addr.Addr().Unmap()
	if !ip.IsValid() || ip.IsUnspecified() {
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	base := "http://" + netip.AddrPortFrom(ip.WithZone(""), addr.Port()).String()
	return StreamURL(base, taskID, tok, fileIndex)
}

// baseURL returns "scheme://host:port" for URLs handed back to the client.
// The request's Host is used only when it names one of the daemon's own
// addresses (PublicHosts) on a port of ours; otherwise DefaultHost, else the
// first own address that is not loopback, else the local address the request
// arrived on. An arbitrary Host header is never echoed.
func (s *Server) baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	var localHost, localPort string
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if h, p, err := net.SplitHostPort(la.String()); err == nil {
			localHost, localPort = netaddr.NormalizeHost(h), p
		}
	}
	var own []string
	if s.publicHosts != nil {
		own = s.publicHosts()
	}
	if host, port, ok := splitHost(r.Host); ok && host != "" {
		if port == "" {
			port = "80"
			if scheme == "https" {
				port = "443"
			}
		}
		for _, o := range own {
			oh, op := splitHostLoose(o)
			if oh != host {
				continue
			}
			if op == port || (op == "" && port == localPort) {
				return scheme + "://" + net.JoinHostPort(host, port)
			}
		}
	}
	def := s.defaultHost
	if def == "" {
		for _, o := range own {
			if h, _ := splitHostLoose(o); !netaddr.IsLoopbackListen(h) {
				def = o
				break
			}
		}
	}
	if def != "" {
		h, p := splitHostLoose(def)
		if p == "" {
			p = localPort
		}
		if h != "" && p != "" {
			return scheme + "://" + net.JoinHostPort(h, p)
		}
	}
	if localHost == "" {
		return scheme + "://127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(localHost, localPort)
}

// splitHost splits a Host header into a normalized host and its port ("" when
// absent). ok is false when the port is not a number.
func splitHost(hostport string) (host, port string, ok bool) {
	host, port = splitHostLoose(hostport)
	if port != "" {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", "", false
		}
	}
	return host, port, true
}

// splitHostLoose splits "host", "host:port", "[v6]" or "[v6]:port" into a
// normalized host ([netaddr.NormalizeHost]) and a port ("" when absent).
func splitHostLoose(s string) (host, port string) {
	s = strings.TrimSpace(s)
	if _, p, err := net.SplitHostPort(s); err == nil {
		port = p
	}
	return netaddr.NormalizeHost(s), port
}
