package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/hls"
	"github.com/torrentclaw/cli/internal/netaddr"
	"github.com/torrentclaw/cli/internal/token"
)

// handlePlaylist serves GET /playlist.m3u?id=&t=. A player on this host (see
// [sameHost]) also gets, per video, its first sidecar subtitle file as a local
// path VLC can load ([localSidecars]); anyone else gets the plain list.
func (s *Server) handlePlaylist(w http.ResponseWriter, r *http.Request) {
	q := parseTaskQuery(r.URL.RawQuery, false)
	task, ok := s.authorizedTask(w, r, q, s.tokens)
	if !ok {
		return
	}
	files := task.Files()
	var subs map[int]string
	if sameHost(r) {
		subs = s.localSidecars(r.Context(), task, files)
	}
	body := renderPlaylist(s.baseURL(r), q.id, token.Token(q.tok), files, subs)
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
// subs maps a file index to the local path of its subtitle file, given to
// VLC as "#EXTVLCOPT:sub-file=" (a path VLC opens itself; it refuses
// input-slave from a playlist and reads sub-file only as a local path).
func renderPlaylist(base, taskID string, tok token.Token, files []engine.File, subs map[int]string) []byte {
	var b bytes.Buffer
	b.WriteString("#EXTM3U\n")
	for _, f := range files {
		if !f.Playable {
			continue
		}
		fmt.Fprintf(&b, "#EXTINF:-1,%s\n", playlistTitle(f.Path))
		if p, ok := subs[f.Index]; ok {
			fmt.Fprintf(&b, "#EXTVLCOPT:sub-file=%s\n", p)
		}
		fmt.Fprintf(&b, "%s\n", StreamURL(base, taskID, tok, f.Index))
	}
	return b.Bytes()
}

// Bounds of the sidecar subtitles /playlist.m3u hands to a local player.
const (
	// sidecarWait bounds how long a playlist request waits for its sidecars'
	// pieces (fetched at top priority meanwhile); one not verified by then is
	// left out of that answer.
	sidecarWait = 10 * time.Second
	// maxSidecarBytes: a subtitle file is small; a bigger "sidecar" is not
	// worth holding the playlist for.
	maxSidecarBytes = 8 << 20
)

// proxyHeaders are request headers a reverse proxy or tunnel adds; a request
// carrying one is not treated as local whatever its address.
var proxyHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "Via"}

// sameHost reports whether r came straight from a program on this host: from
// a loopback address or from the very address it arrived on (a player given
// the LAN URL by `stream --open vlc` connects from the LAN address), with no
// header a proxy adds. It decides only whether a local file path may appear
// in the answer — never authorization, which every request passes first. A
// same-host proxy that adds none of proxyHeaders makes its clients look local:
// they would see the sidecar's path (never other bytes; the file it names is
// served by /stream to the same token anyway).
func sameHost(r *http.Request) bool {
	for _, h := range proxyHeaders {
		if _, ok := r.Header[h]; ok {
			return false
		}
	}
	ra, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	remote := ra.Addr().Unmap().WithZone("")
	if remote.IsLoopback() {
		return true
	}
	la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lap, err := netip.ParseAddrPort(la.String())
	return err == nil && lap.Addr().Unmap().WithZone("") == remote
}

// localSidecars returns, per playable file with sidecar subtitles (see
// [hls.FindSidecars]), the absolute local path of the first one whose bytes
// are all verified: each is read through the engine (which fetches its
// pieces at top priority and returns only verified bytes) before its path is
// named, within one shared [sidecarWait]. VLC takes one sub-file per entry.
func (s *Server) localSidecars(ctx context.Context, task *engine.Task, files []engine.File) map[int]string {
	ctx, cancel := context.WithTimeout(ctx, sidecarWait)
	defer cancel()
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	var out map[int]string
	for _, f := range files {
		if !f.Playable {
			continue
		}
		for _, sc := range hls.FindSidecars(f.Path, paths) {
			p, err := verifiedLocalPath(ctx, task, files[sc.Index])
			if err != nil {
				s.log.Debug("playlist sidecar left out", "file", sc.Index, "err", err)
				continue
			}
			if out == nil {
				out = make(map[int]string)
			}
			out[f.Index] = p
			break
		}
	}
	return out
}

// verifiedLocalPath reads file f of task to its end through the engine and
// returns its local path once every byte has been verified.
func verifiedLocalPath(ctx context.Context, task *engine.Task, f engine.File) (string, error) {
	if f.Length > maxSidecarBytes {
		return "", fmt.Errorf("sidecar of %d bytes: over %d", f.Length, maxSidecarBytes)
	}
	p, err := task.LocalPath(f.Index)
	if err != nil {
		return "", err
	}
	if strings.ContainsAny(p, "\r\n") {
		return "", errors.New("sidecar path has a line break")
	}
	rd, err := task.OpenFile(ctx, f.Index)
	if err != nil {
		return "", err
	}
	n, err := io.Copy(io.Discard, rd)
	if cerr := rd.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("read sidecar: %w", err)
	}
	if n != f.Length {
		return "", fmt.Errorf("read sidecar: %d of %d bytes", n, f.Length)
	}
	return p, nil
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
