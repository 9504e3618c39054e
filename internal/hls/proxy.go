package hls

// The input proxy keeps tokens out of ffmpeg's arguments. A process's
// command line is readable by every local user (/proc/<pid>/cmdline), and
// the input URL carries a stream token. So ffmpeg and ffprobe get a URL
// that names only the session and input ("http://input.invalid/<session>/0")
// and an http_proxy environment variable pointing at this proxy on
// loopback, with the session's secret as proxy credentials
// (http://<session>:<secret>@127.0.0.1:<port>). A process's environment is
// readable only by its own user. ffmpeg's HTTP client (Debian's ffmpeg 5.1
// included) sends proxy requests in absolute form and answers the proxy's
// 407 with Basic credentials from that URL; the proxy checks them
// (constant-time), and forwards GET/HEAD with Range to the session's real
// input URL. A session's secret is valid for its own inputs only and dies
// with the session.

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// proxyHost is the host of the URLs ffmpeg is given; .invalid never
// resolves, so a misrouted request goes nowhere.
const proxyHost = "input.invalid"

// inputProxy is the Manager's loopback proxy, started with the first
// session that runs ffmpeg or ffprobe.
type inputProxy struct {
	mu   sync.Mutex // guards the fields below
	addr string     // "127.0.0.1:port" once started
	srv  *http.Server
	done chan struct{} // closed when Serve returned
	err  error         // a failed start, returned to every caller
}

func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("mint input secret: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// proxyAddr starts the proxy on first use and returns its address.
func (m *Manager) proxyAddr() (string, error) {
	p := &m.proxy
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.addr != "" || p.err != nil {
		return p.addr, p.err
	}
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return "", ErrClosed
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("hls input proxy: %w", err)
	}
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(m.serveInput),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		// Its errors are ffmpeg hanging up on a seek: not worth a line.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.addr, p.done = ln.Addr().String(), make(chan struct{})
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(ln) // ends with ErrServerClosed on closeProxy
	}()
	return p.addr, nil
}

// closeProxy stops the proxy and waits for it.
func (m *Manager) closeProxy() error {
	p := &m.proxy
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv == nil {
		p.err = ErrClosed
		return nil
	}
	err := p.srv.Close()
	<-p.done
	p.srv, p.addr, p.err = nil, "", ErrClosed
	return err
}

// ffInput is the URL ffmpeg is given for input k of the session.
func (s *Session) ffInput(k int) string {
	return "http://" + proxyHost + "/" + s.id + "/" + strconv.Itoa(k)
}

// procEnv is the environment of the session's ffmpeg and ffprobe: ours
// without proxy settings, plus the input proxy with the session's
// credentials.
func (s *Session) procEnv() ([]string, error) {
	addr, err := s.m.proxyAddr()
	if err != nil {
		return nil, err
	}
	env := make([]string, 0, 32)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "no_proxy", "all_proxy":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "http_proxy=http://"+s.id+":"+s.secret+"@"+addr), nil
}

// redact removes the inputs' URLs and the secret from ffmpeg output.
func (s *Session) redact(out string) string {
	for _, in := range s.inputs {
		out = redact(out, in)
	}
	return strings.TrimSpace(strings.ReplaceAll(out, s.secret, "<redacted>"))
}

// serveInput is the proxy's handler.
func (m *Manager) serveInput(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	user, pass, ok := proxyCredentials(r.Header.Get("Proxy-Authorization"))
	if !ok {
		w.Header().Set("Proxy-Authenticate", `Basic realm="torrentclaw-hls"`)
		http.Error(w, "proxy authentication required", http.StatusProxyAuthRequired)
		return
	}
	var secret string
	s, err := m.Get(user)
	if err == nil {
		secret = s.secret
	}
	// Hash both sides so the comparison costs the same for any input.
	a, b := sha256.Sum256([]byte(pass)), sha256.Sum256([]byte(secret))
	if s == nil || subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/"+s.id+"/")
	k, err := strconv.Atoi(rest)
	if !ok || err != nil || k < 0 || k >= len(s.inputs) || strconv.Itoa(k) != rest {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, s.inputs[k], nil)
	if err != nil {
		http.Error(w, "bad input", http.StatusBadGateway)
		return
	}
	for _, h := range []string{"Range", "If-Range"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := m.client.Do(req)
	if err != nil {
		// The URL is in err: say only that the input failed.
		http.Error(w, "input unreachable", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Last-Modified"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method != http.MethodHead {
		_, _ = io.Copy(w, resp.Body) // a player's seek cuts this short
	}
}

// proxyCredentials decodes "Basic base64(user:pass)".
func proxyCredentials(h string) (user, pass string, ok bool) {
	enc, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return "", "", false
	}
	user, pass, ok = strings.Cut(string(raw), ":")
	return user, pass, ok && ValidSessionID(user)
}
