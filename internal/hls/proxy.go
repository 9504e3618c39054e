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
	rest, bound, bounded := strings.Cut(rest, "/")
	k, err := strconv.Atoi(rest)
	if !ok || err != nil || k < 0 || k >= len(s.inputs) || strconv.Itoa(k) != rest {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	rangeHeader := r.Header.Get("Range")
	limit, limitFrom := int64(-1), int64(0) // bytes of the body to pass on from limitFrom; -1 all
	if bounded {
		end, tail, ok := parseBound(bound)
		if !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		from, to, ok := parseByteRange(rangeHeader)
		switch {
		case !ok:
			http.Error(w, "bad range", http.StatusBadRequest)
			return
		case from >= end && from < tail:
			// Past the bound: what ffmpeg sees as the input's end.
			http.Error(w, "past the bound", http.StatusRequestedRangeNotSatisfiable)
			return
		case from < end && (to < 0 || to >= end):
			// The request upstream stays open-ended: a bounded range
			// makes the daemon ask the swarm for all of it at once, in
			// competition with the player; an open one is read ahead
			// like the player's. The body is cut at the bound here.
			limit, limitFrom = end-from, from
			rangeHeader = "bytes=" + strconv.FormatInt(from, 10) + "-"
		}
	}
	var resp *http.Response
	for {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, s.inputs[k], nil)
		if err != nil {
			http.Error(w, "bad input", http.StatusBadGateway)
			return
		}
		if rangeHeader != "" {
			req.Header.Set("Range", rangeHeader)
		}
		if v := r.Header.Get("If-Range"); v != "" {
			req.Header.Set("If-Range", v)
		}
		resp, err = m.client.Do(req)
		if err != nil {
			// The URL is in err: say only that the input failed.
			http.Error(w, "input unreachable", http.StatusBadGateway)
			return
		}
		if !inputHeld(resp) {
			break
		}
		// The task downloads nothing now (paused, disk full, too many
		// readers): these bytes come once it goes on. ffmpeg would take
		// the 503 for an error that ends its run, after closing the
		// segment it began with nothing in it, and a player would have
		// to start it again after the resume. Held here, the request is
		// only a slow input, and the run goes on by itself.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		t := time.NewTimer(m.inputRetry)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "ETag", "Last-Modified"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	if limit >= 0 {
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if resp.StatusCode != http.StatusPartialContent || !ok || start != limitFrom || start+limit > total {
			http.Error(w, "input did not answer the range", http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(start+limit-1, 10)+"/"+strconv.FormatInt(total, 10))
		w.Header().Set("Content-Length", strconv.FormatInt(limit, 10))
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	if limit >= 0 {
		_, _ = io.CopyN(w, resp.Body, limit)
		return
	}
	_, _ = io.Copy(w, resp.Body) // a player's seek cuts this short
}

// inputHeld reports an input answer that says its bytes come later: the
// daemon's 503 with Retry-After (a paused task, a full disk, too many
// readers), not the 503 of a daemon that shuts down.
func inputHeld(resp *http.Response) bool {
	return resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != ""
}

// parseBound parses the "<end>-<tail>" of a bounded input URL
// (Session.boundedInput): canonical decimals with 0 < end < tail.
func parseBound(s string) (end, tail int64, ok bool) {
	a, b, ok := strings.Cut(s, "-")
	end, err1 := strconv.ParseInt(a, 10, 64)
	tail, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || end <= 0 || tail <= end ||
		strconv.FormatInt(end, 10) != a || strconv.FormatInt(tail, 10) != b {
		return 0, 0, false
	}
	return end, tail, true
}

// parseByteRange parses the single range ffmpeg asks for: "bytes=<from>-"
// or "bytes=<from>-<to>" (to -1 when open); no header is the whole input.
func parseByteRange(h string) (from, to int64, ok bool) {
	if h == "" {
		return 0, -1, true
	}
	spec, found := strings.CutPrefix(h, "bytes=")
	a, b, dash := strings.Cut(spec, "-")
	if !found || !dash || a == "" {
		return 0, 0, false
	}
	from, err := strconv.ParseInt(a, 10, 64)
	if err != nil || from < 0 || strconv.FormatInt(from, 10) != a {
		return 0, 0, false
	}
	if b == "" {
		return from, -1, true
	}
	to, err = strconv.ParseInt(b, 10, 64)
	if err != nil || to < from || strconv.FormatInt(to, 10) != b {
		return 0, 0, false
	}
	return from, to, true
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
