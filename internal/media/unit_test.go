package media

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/token"
)

func TestParseTaskQuery(t *testing.T) {
	t.Parallel()
	tok := strings.Repeat("a", 64)
	tests := []struct {
		name      string
		raw       string
		allowFile bool
		want      taskQuery
	}{
		{"full", "id=abc&t=" + tok + "&file=3", true, taskQuery{id: "abc", tok: tok, file: 3, ok: true}},
		{"no file", "id=abc&t=" + tok, true, taskQuery{id: "abc", tok: tok, file: -1, ok: true}},
		{"no token", "id=abc", true, taskQuery{id: "abc", file: -1, ok: true}},
		{"cache buster ignored", "id=abc&_=123", true, taskQuery{id: "abc", file: -1, ok: true}},
		{"escaped id", "id=a%2Fb", true, taskQuery{id: "a/b", file: -1}},
		{"id charset", "id=A-z_0.9~:x", true, taskQuery{id: "A-z_0.9~:x", file: -1, ok: true}},
		{"max id", "id=" + strings.Repeat("x", 128), true, taskQuery{id: strings.Repeat("x", 128), file: -1, ok: true}},
		{"session", "id=a&t=" + tok + "&file=2&s=sess-1_A", true, taskQuery{id: "a", tok: tok, file: 2, session: "sess-1_A", ok: true}},
		{"empty session", "id=a&s=", true, taskQuery{id: "a", file: -1, ok: true}},
		{"bad session", "id=a&s=a.b", true, taskQuery{id: "a", file: -1}},
		{"repeated session", "id=a&s=x&s=y", true, taskQuery{id: "a", file: -1}},
		{"session not allowed", "id=a&s=x", false, taskQuery{id: "a", file: -1}},
		{"missing id", "t=" + tok, true, taskQuery{tok: tok, file: -1}},
		{"empty", "", true, taskQuery{file: -1}},
		{"repeated id", "id=a&id=b", true, taskQuery{file: -1}},
		{"repeated t", "id=a&t=x&t=y", true, taskQuery{id: "a", file: -1}},
		{"bad escape", "id=%zz", true, taskQuery{file: -1}},
		{"space in id", "id=a+b", true, taskQuery{id: "a b", file: -1}},
		{"control in id", "id=a%00b", true, taskQuery{id: "a\x00b", file: -1}},
		{"long id", "id=" + strings.Repeat("x", 129), true, taskQuery{id: strings.Repeat("x", 129), file: -1}},
		{"long token", "id=a&t=" + strings.Repeat("x", 257), true, taskQuery{id: "a", tok: strings.Repeat("x", 257), file: -1}},
		{"negative file", "id=a&file=-1", true, taskQuery{id: "a", file: -1}},
		{"huge file", "id=a&file=99999999999", true, taskQuery{id: "a", file: -1}},
		{"text file", "id=a&file=x", true, taskQuery{id: "a", file: -1}},
		{"file not allowed", "id=a&file=1", false, taskQuery{id: "a", file: -1}},
		{"repeated file", "id=a&file=1&file=2", true, taskQuery{id: "a", file: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseTaskQuery(tc.raw, tc.allowFile); got != tc.want {
				t.Errorf("parseTaskQuery(%q) = %+v, want %+v", tc.raw, got, tc.want)
			}
		})
	}
}

func TestVerifyMalformedNeverPasses(t *testing.T) {
	t.Parallel()
	// A table that serves token-less tasks would pass the dummy task: verify
	// must still fail a malformed request.
	open := token.New(token.Options{})
	if verify("x", "", token.TaskScope(), false, open) {
		t.Error("verify(malformed) = true, want false")
	}
	if !verify("x", "", token.TaskScope(), true, open) {
		t.Error("verify(token-less task, require off) = false, want true")
	}
}

func TestContentType(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"a/Movie.MP4":  "video/mp4",
		"x.mkv":        "video/x-matroska",
		"x.webm":       "video/webm",
		"x.ts":         "video/mp2t",
		"x.avi":        "video/x-msvideo",
		"x.nfo":        "application/octet-stream",
		"noext":        "application/octet-stream",
		"x.mkv.exe":    "application/octet-stream",
		"dir.mp4/file": "application/octet-stream",
	}
	for in, want := range tests {
		if got := contentType(in); got != want {
			t.Errorf("contentType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestContentDisposition(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"Movie (2020)/Movie.mkv", `inline; filename="Movie.mkv"; filename*=UTF-8''Movie.mkv`},
		{"a/b c.mp4", `inline; filename="b c.mp4"; filename*=UTF-8''b%20c.mp4`},
		{`evil"name.mp4`, `inline; filename="evilname.mp4"; filename*=UTF-8''evilname.mp4`},
		{"dir\\..\\win.mp4", `inline; filename="win.mp4"; filename*=UTF-8''win.mp4`},
		{"../../etc/passwd", `inline; filename="passwd"; filename*=UTF-8''passwd`},
		{"line\r\nbreak.mp4", `inline; filename="line  break.mp4"; filename*=UTF-8''line%20%20break.mp4`},
		{"tab\there.mp4", `inline; filename="tab here.mp4"; filename*=UTF-8''tab%20here.mp4`},
		{"Amélie.mkv", `inline; filename="Am_lie.mkv"; filename*=UTF-8''Am%C3%A9lie.mkv`},
		{"bidi\u202etxt.mp4", `inline; filename="biditxt.mp4"; filename*=UTF-8''biditxt.mp4`},
		{"..hidden.mp4", `inline; filename="hidden.mp4"; filename*=UTF-8''hidden.mp4`},
		{"bad\xffutf8.mp4", `inline; filename="bad_utf8.mp4"; filename*=UTF-8''bad_utf8.mp4`},
		{"", `inline; filename="video"; filename*=UTF-8''video`},
		{"dir/", `inline; filename="video"; filename*=UTF-8''video`},
		{"a;b=c%.mp4", `inline; filename="a;b=c%.mp4"; filename*=UTF-8''a%3Bb%3Dc%25.mp4`},
	}
	for _, tc := range tests {
		if got := contentDisposition(tc.in); got != tc.want {
			t.Errorf("contentDisposition(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	long := strings.Repeat("é", 300) + ".mkv"
	if got := safeFileName(long); len(got) > maxFileNameBytes {
		t.Errorf("safeFileName(long) has %d bytes, want <= %d", len(got), maxFileNameBytes)
	}
}

func TestNormalizeOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "https://torrentclaw.com", want: "https://torrentclaw.com"},
		{in: "https://TorrentClaw.com/", want: "https://torrentclaw.com"},
		{in: "HTTPS://torrentclaw.com:443", want: "https://torrentclaw.com"},
		{in: "http://localhost:3000", want: "http://localhost:3000"},
		{in: "http://[::1]:3000", want: "http://[::1]:3000"},
		{in: "http://[::1]", want: "http://[::1]"},
		{in: "null", wantErr: true},
		{in: "*", wantErr: true},
		{in: "ftp://x.com", wantErr: true},
		{in: "https://x.com/path", wantErr: true},
		{in: "https://user@x.com", wantErr: true},
		{in: "https://x.com?q", wantErr: true},
		{in: "https://", wantErr: true},
	}
	for _, tc := range tests {
		got, err := normalizeOrigin(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("normalizeOrigin(%q) = %q, %v; want %q, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestStreamURL(t *testing.T) {
	t.Parallel()
	tok := token.Token("tok+en/=")
	tests := []struct {
		base, id string
		tok      token.Token
		file     int
		want     string
	}{
		{"http://1.2.3.4:11818", "abc", tok, 2, "http://1.2.3.4:11818/stream?id=abc&t=tok%2Ben%2F%3D&file=2"},
		{"http://h/", "a b", "", -1, "http://h/stream?id=a+b"},
	}
	for _, tc := range tests {
		if got := StreamURL(tc.base, tc.id, tc.tok, tc.file); got != tc.want {
			t.Errorf("StreamURL(%q, %q, tok, %d) = %q, want %q", tc.base, tc.id, tc.file, got, tc.want)
		}
	}
	addrs := []struct {
		addr netip.AddrPort
		want string
	}{
		{netip.MustParseAddrPort("0.0.0.0:11818"), "http://127.0.0.1:11818/stream?id=x&file=0"},
		{netip.MustParseAddrPort("[::]:11818"), "http://127.0.0.1:11818/stream?id=x&file=0"},
		{netip.MustParseAddrPort("127.0.0.1:5"), "http://127.0.0.1:5/stream?id=x&file=0"},
		{netip.MustParseAddrPort("[::1]:5"), "http://[::1]:5/stream?id=x&file=0"},
		{netip.MustParseAddrPort("192.168.1.2:5"), "http://192.168.1.2:5/stream?id=x&file=0"},
	}
	for _, tc := range addrs {
		if got := InternalStreamURL(tc.addr, "x", "", 0); got != tc.want {
			t.Errorf("InternalStreamURL(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestBaseURL(t *testing.T) {
	t.Parallel()
	own := []string{"localhost", "127.0.0.1", "::1", "192.168.1.5", "100.64.0.7", "media.example.com:443"}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 11818}
	tests := []struct {
		name, host, defHost, want string
		own                       []string
	}{
		{name: "lan", host: "192.168.1.5:11818", own: own, want: "http://192.168.1.5:11818"},
		{name: "tailscale", host: "100.64.0.7:11818", own: own, want: "http://100.64.0.7:11818"},
		{name: "loopback v6", host: "[::1]:11818", own: own, want: "http://[::1]:11818"},
		{name: "case and dot", host: "LOCALHOST.:11818", own: own, want: "http://localhost:11818"},
		{name: "public with port", host: "media.example.com:443", own: own, want: "http://media.example.com:443"},
		{name: "evil host", host: "evil.example:11818", own: own, want: "http://192.168.1.5:11818"},
		{name: "own host wrong port", host: "192.168.1.5:80", own: own, want: "http://192.168.1.5:11818"},
		{name: "own host no port", host: "192.168.1.5", own: own, want: "http://192.168.1.5:11818"},
		{name: "garbage", host: "a:b:c", own: own, want: "http://192.168.1.5:11818"},
		{name: "default host", host: "evil.example", defHost: "10.0.0.1", own: own, want: "http://10.0.0.1:11818"},
		{name: "default host port", host: "evil.example", defHost: "10.0.0.1:99", own: own, want: "http://10.0.0.1:99"},
		{name: "nothing known", host: "evil.example", want: "http://127.0.0.1:11818"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{defaultHost: tc.defHost, publicHosts: func() []string { return tc.own }}
			r := httptest.NewRequest(http.MethodGet, "/playlist.m3u", nil)
			r.Host = tc.host
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.Addr(local)))
			if got := s.baseURL(r); got != tc.want {
				t.Errorf("baseURL(Host %q) = %q, want %q", tc.host, got, tc.want)
			}
		})
	}
}

func TestSizeOnly(t *testing.T) {
	t.Parallel()
	s := &sizeOnly{size: 100}
	if n, err := s.Seek(0, io.SeekEnd); n != 100 || err != nil {
		t.Errorf("Seek(0, end) = %d, %v; want 100, nil", n, err)
	}
	if n, err := s.Seek(-10, io.SeekCurrent); n != 90 || err != nil {
		t.Errorf("Seek(-10, cur) = %d, %v; want 90, nil", n, err)
	}
	if _, err := s.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek(-1, start) succeeded, want error")
	}
	if _, err := s.Read(make([]byte, 1)); !errors.Is(err, errNoContent) {
		t.Errorf("Read = %v, want errNoContent", err)
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	tokens := token.New(token.Options{})
	eng := noEngine{}
	tests := []struct {
		name string
		opts Options
	}{
		{"no engine", Options{Tokens: tokens}},
		{"no tokens", Options{Engine: eng}},
		{"internal token-less", Options{Engine: eng, Tokens: tokens, Internal: token.New(token.Options{})}},
		{"bad origin", Options{Engine: eng, Tokens: tokens, CORSOrigins: []string{"*"}}},
		{"negative readers", Options{Engine: eng, Tokens: tokens, MaxReaders: -1}},
		{"cert without key", Options{Engine: eng, Tokens: tokens, TLSCertFile: "x"}},
	}
	for _, tc := range tests {
		if _, err := New(tc.opts); err == nil {
			t.Errorf("New(%s) succeeded, want error", tc.name)
		}
	}
}

// writeCert writes a fresh self-signed certificate and key for 127.0.0.1 to
// certFile and keyFile (replacing them atomically) and returns its serial.
func writeCert(t testing.TB, certFile, keyFile string) *big.Int {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "torrentclaw test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	writeAtomic(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return serial
}

func writeAtomic(t testing.TB, name string, data []byte) {
	t.Helper()
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, name); err != nil {
		t.Fatal(err)
	}
}

func TestCertReloader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	s, err := New(Options{Engine: noEngine{}, Tokens: token.New(token.Options{}), TLSCertFile: certFile, TLSKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	s.certs.interval = 0

	if _, _, err := s.CertInfo(); err == nil {
		t.Fatal("CertInfo with missing files succeeded, want error")
	}
	serial1 := writeCert(t, certFile, keyFile)
	notAfter, names, err := s.CertInfo()
	if err != nil {
		t.Fatalf("CertInfo() error = %v", err)
	}
	if time.Until(notAfter) < time.Hour || strings.Join(names, ",") != "localhost,127.0.0.1" {
		t.Errorf("CertInfo() = %v, %v; want ~24h, [localhost 127.0.0.1]", notAfter, names)
	}
	c, err := s.certs.getCertificate(nil)
	if err != nil || c.Leaf.SerialNumber.Cmp(serial1) != 0 {
		t.Fatalf("getCertificate = serial %v, %v; want %v", c.Leaf.SerialNumber, err, serial1)
	}

	serial2 := writeCert(t, certFile, keyFile)
	c, err = s.certs.getCertificate(nil)
	if err != nil || c.Leaf.SerialNumber.Cmp(serial2) != 0 {
		t.Fatalf("after replacement getCertificate = serial %v, %v; want %v", c.Leaf.SerialNumber, err, serial2)
	}

	// A bad replacement keeps the last good certificate.
	writeAtomic(t, certFile, []byte("not a certificate"))
	c, err = s.certs.getCertificate(nil)
	if err != nil || c.Leaf.SerialNumber.Cmp(serial2) != 0 {
		t.Fatalf("after bad replacement getCertificate = serial %v, %v; want %v", c.Leaf.SerialNumber, err, serial2)
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	c, err = s.certs.getCertificate(nil)
	if err != nil || c.Leaf.SerialNumber.Cmp(serial2) != 0 {
		t.Fatalf("after key removal getCertificate = serial %v, %v; want %v", c.Leaf.SerialNumber, err, serial2)
	}
	// A fresh load of bad files is an error naming the files.
	if err := s.certs.load(); err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("load() = %v, want an error about the key", err)
	}
}

// noEngine knows no task. It stands in for the engine where no request may
// reach it (constructor checks, unauthorized requests).
type noEngine struct{}

func (noEngine) Task(string) (*engine.Task, error) { return nil, engine.ErrNotFound }

// TestSameHost: only a request straight from this host (loopback, or from
// the address it arrived on) with no proxy header may be given local paths.
func TestSameHost(t *testing.T) {
	for _, tc := range []struct {
		name, remote, local string
		header              string
		want                bool
	}{
		{"loopback v4", "127.0.0.1:5000", "127.0.0.1:11818", "", true},
		{"loopback v6", "[::1]:5000", "[::1]:11818", "", true},
		{"own LAN address", "192.168.1.20:5000", "192.168.1.20:11818", "", true},
		{"LAN peer", "192.168.1.21:5000", "192.168.1.20:11818", "", false},
		{"tailnet peer", "100.100.1.2:5000", "100.64.0.1:11818", "", false},
		{"loopback via proxy", "127.0.0.1:5000", "127.0.0.1:11818", "X-Forwarded-For", false},
		{"loopback via Forwarded", "127.0.0.1:5000", "127.0.0.1:11818", "Forwarded", false},
		{"loopback via Via", "127.0.0.1:5000", "127.0.0.1:11818", "Via", false},
		{"malformed remote", "nonsense", "127.0.0.1:11818", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/playlist.m3u", nil)
			r.RemoteAddr = tc.remote
			local, err := net.ResolveTCPAddr("tcp", tc.local)
			if err != nil {
				t.Fatal(err)
			}
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.Addr(local)))
			if tc.header != "" {
				r.Header.Set(tc.header, "x")
			}
			if got := sameHost(r); got != tc.want {
				t.Errorf("sameHost(remote %s, local %s, header %q) = %v, want %v", tc.remote, tc.local, tc.header, got, tc.want)
			}
		})
	}
}

// TestRenderPlaylistSubFile: a local sidecar path rides on its own entry as
// VLC's sub-file option, before the URL.
func TestRenderPlaylistSubFile(t *testing.T) {
	files := []engine.File{
		{Index: 0, Path: "Show/E1.mkv", Playable: true},
		{Index: 1, Path: "Show/E1.en.srt"},
		{Index: 2, Path: "Show/E2.mkv", Playable: true},
	}
	got := string(renderPlaylist("http://127.0.0.1:1", "task", "tok", files, map[int]string{0: "/dl/Show/E1.en.srt"}))
	want := "#EXTM3U\n" +
		"#EXTINF:-1,E1.mkv\n#EXTVLCOPT:sub-file=/dl/Show/E1.en.srt\nhttp://127.0.0.1:1/stream?id=task&t=tok&file=0\n" +
		"#EXTINF:-1,E2.mkv\nhttp://127.0.0.1:1/stream?id=task&t=tok&file=2\n"
	if got != want {
		t.Errorf("renderPlaylist() =\n%s\nwant\n%s", got, want)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"gzip"}, true},
		{[]string{"GZIP"}, true},
		{[]string{"gzip, deflate, br"}, true},
		{[]string{"deflate", "gzip"}, true},
		{[]string{"br;q=1.0, gzip;q=0.8, *;q=0.1"}, true},
		{[]string{"x-gzip"}, true},
		{[]string{"*"}, true},
		{[]string{"identity"}, false},
		{[]string{"deflate, br"}, false},
		{[]string{"gzip;q=0"}, false},
		{[]string{"gzip;q=0.000"}, false},
		{[]string{"gzip;q=0, *"}, false}, // gzip named and refused: * does not bring it back
		{[]string{"*;q=0"}, false},
		{[]string{"gzip;q=abc"}, false},
		{[]string{"gzip;q=2"}, false},
		{[]string{"gzipped"}, false},
		{[]string{" gzip ; q=0.5 "}, true},
	} {
		if got := acceptsGzip(tc.values); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.values, got, tc.want)
		}
	}
}
