package media

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/engine"
	"github.com/torrentclaw/cli/internal/enginetest"
	"github.com/torrentclaw/cli/internal/token"
)

// clock is a settable clock for token expiry.
type clock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const (
	testTTL   = time.Hour
	testGrace = time.Minute
	lanHost   = "192.0.2.10" // the fixture's "LAN address" (TEST-NET-1, never reached)
	testOrig  = "https://torrentclaw.com"
)

// fixture is a seeder and a leecher engine on loopback, one streaming task on
// the leecher, and a media server in front of it.
type fixture struct {
	srv      *Server
	base     string // http://127.0.0.1:port
	addr     netip.AddrPort
	client   *http.Client
	leech    *engine.Engine
	tokens   *token.Table
	internal *token.Table
	clock    *clock
	task     *engine.Task
	tok      token.Token
	dataDir  string // the seeded directory
	movie    engine.File
	extra    engine.File
}

type fixtureOptions struct {
	uploadRate  int64 // seeder rate limit; 0 = unlimited
	pieceLength int64
	movieBytes  int64
	require     bool
	mod         func(*Options)
}

func newFixture(t testing.TB, fo fixtureOptions) *fixture {
	t.Helper()
	if fo.movieBytes == 0 {
		fo.movieBytes = 3<<20 + 12345 // not a multiple of any piece length
	}
	dir := filepath.Join(t.TempDir(), "Fixture Movie")
	enginetest.WriteRandomFile(t, dir, "movie.mp4", fo.movieBytes, 1)
	enginetest.WriteRandomFile(t, dir, "extra.mkv", 300<<10+7, 2)
	enginetest.WriteRandomFile(t, dir, "notes.nfo", 1000, 3)

	seeder := enginetest.NewSeeder(t, enginetest.SeederOptions{UploadRateBytes: fo.uploadRate, PieceLength: fo.pieceLength})
	si := seeder.Add(t, dir)
	leech := enginetest.NewEngine(t)
	task, err := leech.Add(t.Context(), engine.AddSpec{Source: si.Magnet, FileIndex: -1, Stream: true})
	if err != nil {
		t.Fatalf("Add(magnet) error = %v", err)
	}
	fx := &fixture{leech: leech, task: task, dataDir: dir, clock: newClock()}
	fx.tokens = token.New(token.Options{TTL: testTTL, Grace: testGrace, RequireToken: fo.require, Now: fx.clock.Now})
	fx.internal = token.New(token.Options{TTL: testTTL, RequireToken: true, Now: fx.clock.Now})
	fx.tok = mintToken(t)
	if err := fx.tokens.Grant(task.ID(), fx.tok, token.IssuerOrigin, token.TaskScope(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Engine:      leech,
		Tokens:      fx.tokens,
		Internal:    fx.internal,
		CORSOrigins: []string{testOrig},
		PublicHosts: func() []string { return []string{"localhost", "127.0.0.1", "::1", lanHost} },
		Version:     "1.2.3-test",
		Logger:      testLogger(t),
	}
	if fo.mod != nil {
		fo.mod(&opts)
	}
	fx.srv, fx.base, fx.addr = startServer(t, opts)
	fx.client = newClient(t)
	return fx
}

// waitFiles waits for the task's metainfo and fills movie and extra.
func (fx *fixture) waitFiles(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), enginetest.EventWait) // a hang guard
	defer cancel()
	if err := fx.task.WaitInfo(ctx); err != nil {
		t.Fatalf("WaitInfo() error = %v", err)
	}
	for _, f := range fx.task.Files() {
		switch filepath.Base(f.Path) {
		case "movie.mp4":
			fx.movie = f
		case "extra.mkv":
			fx.extra = f
		}
	}
	if fx.movie.Path == "" || fx.extra.Path == "" {
		t.Fatalf("task files = %+v, want movie.mp4 and extra.mkv", fx.task.Files())
	}
}

// want returns the seeded bytes of a file of the task.
func (fx *fixture) want(t testing.TB, f engine.File) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fx.dataDir, filepath.Base(f.Path)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (fx *fixture) streamURL(tok token.Token, file int) string {
	return StreamURL(fx.base, fx.task.ID(), tok, file)
}

func mintToken(t testing.TB) token.Token {
	t.Helper()
	tok, err := token.Mint()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func testLogger(t testing.TB) *slog.Logger {
	if tt, ok := t.(*testing.T); ok {
		return slog.New(slog.NewTextHandler(tt.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return nil
}

// startServer runs a Server from opts on a loopback listener until the test
// ends.
func startServer(t testing.TB, opts Options) (*Server, string, netip.AddrPort) {
	t.Helper()
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1) // buffered: the goroutine never waits for the cleanup
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve() error = %v", err)
		}
	})
	addr := netip.MustParseAddrPort(ln.Addr().String())
	return srv, "http://" + addr.String(), addr
}

func newClient(t testing.TB) *http.Client {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

const requestTimeout = 90 * time.Second

// do sends a request with optional headers and returns the response with its
// body read.
func do(t testing.TB, c *http.Client, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	// Bounded, so a stalled transfer fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, redact(url), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, redact(url), err)
	}
	return resp, body
}

// redact cuts the query (with its token) off a URL for test messages.
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}

// dump is the full response minus Date, for byte-for-byte comparisons. A nil
// body dumps the head only (for HEAD responses).
func dump(t testing.TB, resp *http.Response, body []byte) string {
	t.Helper()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	b, err := httputil.DumpResponse(resp, body != nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "Date: ") {
			out = append(out, sc.Text())
		}
	}
	return strings.Join(out, "\n")
}
