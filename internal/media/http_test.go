package media

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
	"github.com/torrentclaw/cli/internal/logtest"
	"github.com/torrentclaw/cli/internal/token"
)

func TestPlaylist(t *testing.T) {
	fx := newFixture(t, fixtureOptions{})
	fx.waitFiles(t)
	port := fmt.Sprint(fx.addr.Port())
	plURL := fx.base + "/playlist.m3u?id=" + url.QueryEscape(fx.task.ID()) + "&t=" + url.QueryEscape(string(fx.tok))

	tests := []struct {
		name, host, wantBase string
	}{
		{"own address", "", fx.base},
		{"localhost", "localhost:" + port, "http://localhost:" + port},
		{"lan address", lanHost + ":" + port, "http://" + lanHost + ":" + port},
		{"evil host", "evil.example:" + port, "http://" + lanHost + ":" + port},
		{"evil host no port", "evil.example", "http://" + lanHost + ":" + port},
		{"own host wrong port", "127.0.0.1:1", "http://" + lanHost + ":" + port},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.host != "" {
				hdr = []string{"Host", tc.host}
			}
			resp, body := do(t, fx.client, http.MethodGet, plURL, hdr...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /playlist.m3u status = %d, want 200", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != "audio/x-mpegurl" {
				t.Errorf("Content-Type = %q, want audio/x-mpegurl", got)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", got)
			}
			want := "#EXTM3U\n"
			for _, f := range fx.task.Files() {
				if f.Playable {
					want += fmt.Sprintf("#EXTINF:-1,%s\n%s\n", filepath.Base(f.Path), StreamURL(tc.wantBase, fx.task.ID(), fx.tok, f.Index))
				}
			}
			if string(body) != want {
				t.Errorf("playlist =\n%s\nwant\n%s", body, want)
			}
			if strings.Contains(string(body), "notes.nfo") || !strings.Contains(string(body), "extra.mkv") {
				t.Errorf("playlist lists the wrong files:\n%s", body)
			}
		})
	}

	// Every entry streams (through the real listener, whatever host it names).
	resp, body := do(t, fx.client, http.MethodGet, plURL)
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	n := 0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "http") {
			continue
		}
		n++
		resp, _ := do(t, fx.client, http.MethodGet, line, "Range", "bytes=0-0")
		if resp.StatusCode != http.StatusPartialContent {
			t.Errorf("GET playlist entry %d: status %d, want 206", n, resp.StatusCode)
		}
	}
	if n != 2 {
		t.Errorf("playlist has %d entries, want 2", n)
	}
}

func TestCORSAndHealth(t *testing.T) {
	fx := newFixture(t, fixtureOptions{})
	wantHealth := `{"status":"ok","version":"1.2.3-test"}` + "\n"

	t.Run("health identical for every caller", func(t *testing.T) {
		var first string
		for i, hdr := range [][]string{
			nil,
			{"Origin", testOrig},
			{"Origin", "https://evil.example"},
			{"Host", "evil.example"},
			{"X-Forwarded-For", "127.0.0.1"},
		} {
			resp, body := do(t, fx.client, http.MethodGet, fx.base+"/health?x=1", hdr...)
			if resp.StatusCode != http.StatusOK || string(body) != wantHealth {
				t.Errorf("GET /health %v = %d %q, want 200 %q", hdr, resp.StatusCode, body, wantHealth)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("GET /health Content-Type = %q", got)
			}
			resp.Header.Del("Access-Control-Allow-Origin")
			resp.Header.Del("Access-Control-Expose-Headers")
			if d := dump(t, resp, body); i == 0 {
				first = d
			} else if d != first {
				t.Errorf("GET /health %v:\n%s\nwant\n%s", hdr, d, first)
			}
		}
	})

	t.Run("allowed origin", func(t *testing.T) {
		resp, _ := do(t, fx.client, http.MethodGet, fx.base+"/health", "Origin", testOrig)
		want := map[string]string{
			"Access-Control-Allow-Origin":   testOrig,
			"Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges",
			"Vary":                          "Origin",
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("allowed origin: %s = %q, want %q", k, got, v)
			}
		}
		// A 404 carries CORS headers too: the web can tell "refused" from "unreachable".
		resp, _ = do(t, fx.client, http.MethodGet, fx.base+"/stream?id=x", "Origin", testOrig)
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Access-Control-Allow-Origin") != testOrig {
			t.Errorf("404 with allowed origin: %d, ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})

	t.Run("unmatched origin", func(t *testing.T) {
		for _, o := range []string{"https://evil.example", "null", "https://torrentclaw.com.evil.example", "http://torrentclaw.com"} {
			resp, _ := do(t, fx.client, http.MethodGet, fx.base+"/health", "Origin", o)
			for k := range resp.Header {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("origin %q got %s", o, k)
				}
			}
			if resp.Header.Get("Vary") != "Origin" {
				t.Errorf("origin %q: Vary = %q, want Origin", o, resp.Header.Get("Vary"))
			}
		}
	})

	t.Run("private network preflight", func(t *testing.T) {
		resp, body := do(t, fx.client, http.MethodOptions, fx.base+"/stream?id=x",
			"Origin", testOrig,
			"Access-Control-Request-Method", "GET",
			"Access-Control-Request-Headers", "range",
			"Access-Control-Request-Private-Network", "true")
		want := map[string]string{
			"Access-Control-Allow-Origin":          testOrig,
			"Access-Control-Allow-Methods":         "GET, HEAD, OPTIONS",
			"Access-Control-Allow-Headers":         "Range",
			"Access-Control-Allow-Private-Network": "true",
		}
		if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
			t.Errorf("preflight status = %d, want 204", resp.StatusCode)
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("preflight %s = %q, want %q", k, got, v)
			}
		}
		resp, _ = do(t, fx.client, http.MethodOptions, fx.base+"/health",
			"Origin", "https://evil.example",
			"Access-Control-Request-Method", "GET",
			"Access-Control-Request-Private-Network", "true")
		for k := range resp.Header {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("unmatched preflight got %s", k)
			}
		}
	})
}

func TestOversizedHeader(t *testing.T) {
	fx := newFixture(t, fixtureOptions{})
	conn, err := net.Dial("tcp", fx.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	big := strings.Repeat("a", 40<<10)
	go func() {
		// The server may answer and close before reading it all.
		_, _ = fmt.Fprintf(conn, "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", big)
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("oversized header: status %d, want 431", resp.StatusCode)
	}
	// A header just under the cap is fine.
	resp, _ = do(t, fx.client, http.MethodGet, fx.base+"/health", "X-Ok", strings.Repeat("a", 12<<10))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("12 KiB header: status %d, want 200", resp.StatusCode)
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	serial1 := writeCert(t, certFile, keyFile)
	fx := newFixture(t, fixtureOptions{mod: func(o *Options) { o.TLSCertFile, o.TLSKeyFile = certFile, keyFile }})
	fx.srv.certs.interval = 0
	fx.waitFiles(t)
	movie := fx.want(t, fx.movie)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1) // buffered: the goroutine never waits for the cleanup
	go func() { done <- fx.srv.ServeTLS(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeTLS() error = %v", err)
		}
	})
	tlsBase := "https://" + ln.Addr().String()
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	get := func(t *testing.T, rng string) (*http.Response, []byte) {
		t.Helper()
		return do(t, client, http.MethodGet, StreamURL(tlsBase, fx.task.ID(), fx.tok, -1), "Range", rng)
	}
	resp, body := get(t, "bytes=1000-300000")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, movie[1000:300001]) {
		t.Fatalf("TLS range: status %d, %d bytes; want 206 and identical bytes", resp.StatusCode, len(body))
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("TLS state = %+v, want TLS 1.2+", resp.TLS)
	}
	if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(serial1) != 0 {
		t.Errorf("served serial = %v, want %v", got, serial1)
	}

	// HTTP/2 is negotiated and serves the same bytes.
	h2 := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	defer h2.CloseIdleConnections()
	resp, body = do(t, &http.Client{Transport: h2}, http.MethodGet, StreamURL(tlsBase, fx.task.ID(), fx.tok, -1), "Range", "bytes=-500000")
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, movie[len(movie)-500000:]) {
		t.Errorf("HTTP/2 range: %s %d, %d bytes; want HTTP/2 206 and identical bytes", resp.Proto, resp.StatusCode, len(body))
	}

	// TLS 1.1 is refused.
	old := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}
	if c, err := tls.Dial("tcp", ln.Addr().String(), old); err == nil {
		c.Close()
		t.Error("TLS 1.1 handshake succeeded, want failure")
	}

	serial2 := writeCert(t, certFile, keyFile)
	resp, _ = get(t, "bytes=0-9")
	if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(serial2) != 0 {
		t.Errorf("after replacing the files, served serial = %v, want %v", got, serial2)
	}

	// A bad replacement keeps the last good certificate.
	writeAtomic(t, keyFile, []byte("garbage"))
	resp, _ = get(t, "bytes=0-9")
	if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(serial2) != 0 || resp.StatusCode != http.StatusPartialContent {
		t.Errorf("after a bad key, served serial = %v (status %d), want %v", got, resp.StatusCode, serial2)
	}
	if _, _, err := fx.srv.CertInfo(); err != nil {
		t.Errorf("CertInfo() after a bad replacement = %v, want the last good certificate", err)
	}

	// The plain listener is unaffected.
	resp, _ = do(t, fx.client, http.MethodGet, fx.streamURL(fx.tok, -1), "Range", "bytes=0-9")
	if resp.StatusCode != http.StatusPartialContent {
		t.Errorf("plain HTTP during TLS trouble: status %d, want 206", resp.StatusCode)
	}

	t.Run("bad files at start", func(t *testing.T) {
		for _, tc := range []struct {
			name      string
			cert, key string
			wantInErr string
		}{
			{name: "missing", cert: filepath.Join(dir, "nope.pem"), key: keyFile, wantInErr: "nope.pem"},
			{name: "garbage key", cert: certFile, key: keyFile, wantInErr: "key.pem"},
		} {
			srv, err := New(Options{Engine: fx.leech, Tokens: token.New(token.Options{}), TLSCertFile: tc.cert, TLSKeyFile: tc.key})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			err = srv.ServeTLS(t.Context(), ln)
			ln.Close()
			if err == nil || !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("%s: ServeTLS() = %v, want an error naming %s", tc.name, err, tc.wantInErr)
			}
		}
		srv, err := New(Options{Engine: fx.leech, Tokens: token.New(token.Options{})})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.ServeTLS(t.Context(), ln); !errors.Is(err, ErrNoTLS) {
			t.Errorf("ServeTLS without files = %v, want ErrNoTLS", err)
		}
		if _, _, err := srv.CertInfo(); !errors.Is(err, ErrNoTLS) {
			t.Errorf("CertInfo without files = %v, want ErrNoTLS", err)
		}
	})
}

func TestServeShutdown(t *testing.T) {
	fx := newFixture(t, fixtureOptions{mod: func(o *Options) { o.ShutdownGrace = 200 * time.Millisecond }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1) // buffered: Serve's result is read once
	go func() { done <- fx.srv.Serve(ctx, ln) }()
	// A stream the client does not read holds a request open.
	fx.waitFiles(t)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, StreamURL("http://"+ln.Addr().String(), fx.task.ID(), fx.tok, -1), nil)
	resp, err := fx.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve() after cancel = %v, want nil", err)
		}
	case <-time.After(2 * time.Minute): // a hang guard, generous for a loaded machine
		t.Fatal("Serve did not return after cancel")
	}
	_, _ = io.Copy(io.Discard, resp.Body) // cut short by Close
}

func TestStalledClientIsCutOff(t *testing.T) {
	fx := newFixture(t, fixtureOptions{movieBytes: 24 << 20, mod: func(o *Options) { o.WriteStallTimeout = 300 * time.Millisecond }})
	fx.waitFiles(t)
	conn, err := net.Dial("tcp", fx.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.(*net.TCPConn).SetReadBuffer(4 << 10); err != nil {
		t.Fatal(err)
	}
	target := strings.TrimPrefix(fx.streamURL(fx.tok, -1), fx.base)
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", target); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("status line = %q, %v", line, err)
	}
	// The client reads nothing more: once the socket buffers are full, the
	// write deadline cuts it off and the reader is released.
	enginetest.WaitFor(t, 30*time.Second, "stalled reader released", func() bool { return len(fx.srv.readers) == 0 })
}

func TestAccessLog(t *testing.T) {
	t.Parallel()
	var logs logtest.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tokens := token.New(token.Options{})
	srv, err := New(Options{Engine: noEngine{}, Tokens: tokens, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	tok := "secret0123456789secret0123456789secret0123456789"
	for _, target := range []string{
		"/stream?id=task-abc&t=" + tok,
		"/playlist.m3u?id=task-abc&t=" + tok,
		"/hls/sess-abc/index.m3u8?t=" + tok,
	} {
		srv.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, target, nil))
	}
	out := logs.String()
	for _, want := range []string{`route="GET /stream"`, `route="GET /playlist.m3u"`, `route="GET /hls/{session}/{resource}"`, "status=404", "bytes=19", "remote_addr=", "dur_ms="} {
		if !strings.Contains(out, want) {
			t.Errorf("access log lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{tok, "task-abc", "sess-abc", "?", "&t"} {
		if strings.Contains(out, secret) {
			t.Errorf("access log contains %q:\n%s", secret, out)
		}
	}
}

// TestAccessLogClientClosed: a request the client gives up on before any answer (here a
// /stream of a magnet whose metainfo never comes) is logged with status 499, not as a 200
// with no bytes, which read as a served empty answer.
func TestAccessLogClientClosed(t *testing.T) {
	var logs logtest.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fx := newFixture(t, fixtureOptions{require: true, mod: func(o *Options) { o.Logger = logger }})
	task, err := fx.leech.Add(t.Context(), engine.AddSpec{Source: "magnet:?xt=urn:btih:" + strings.Repeat("6b", 20), FileIndex: -1, Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	tok := mintToken(t)
	if err := fx.tokens.Grant(task.ID(), tok, token.IssuerOrigin, token.TaskScope(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	wrote := make(chan struct{})
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) }})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, StreamURL(fx.base, task.ID(), tok, -1), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := fx.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	// Once sent, the server reads it and runs the handler, which waits for the metainfo
	// until it sees the connection close.
	<-wrote
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the cancelled request got an answer")
	}
	line := ""
	enginetest.WaitFor(t, enginetest.EventWait, "the access log line", func() bool {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, `msg="http request"`) && strings.Contains(l, `route="GET /stream"`) {
				line = l
				return true
			}
		}
		return false
	})
	if !strings.Contains(line, "status=499") || !strings.Contains(line, "bytes=0") {
		t.Errorf("access log of a request cancelled before its answer: %s; want status=499", line)
	}
}
