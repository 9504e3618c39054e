package media

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/enginetest"
	"github.com/torrentclaw/cli/internal/logtest"
)

func TestStream(t *testing.T) {
	fx := newFixture(t, fixtureOptions{})
	fx.waitFiles(t)
	movie := fx.want(t, fx.movie)
	size := int64(len(movie))
	wantETag := etag(fx.task.InfoHash(), fx.movie.Index)

	t.Run("full GET", func(t *testing.T) {
		resp, body := do(t, fx.client, http.MethodGet, fx.streamURL(fx.tok, -1))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /stream status = %d, want 200", resp.StatusCode)
		}
		if sha256.Sum256(body) != sha256.Sum256(movie) {
			t.Fatalf("GET /stream body: %d bytes, sha256 differs from the seeded file (%d bytes)", len(body), len(movie))
		}
		wantHdr := map[string]string{
			"Content-Type":           "video/mp4",
			"ETag":                   wantETag,
			"Accept-Ranges":          "bytes",
			"Content-Length":         strconv.FormatInt(size, 10),
			"Content-Disposition":    `inline; filename="movie.mp4"; filename*=UTF-8''movie.mp4`,
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "no-referrer",
			"Vary":                   "Origin",
		}
		for k, want := range wantHdr {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("GET /stream header %s = %q, want %q", k, got, want)
			}
		}
	})

	t.Run("random ranges", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 11))
		for i := range 50 {
			start := rng.Int64N(size)
			end := min(start+rng.Int64N(512<<10), size-1)
			resp, body := do(t, fx.client, http.MethodGet, fx.streamURL(fx.tok, -1), "Range", fmt.Sprintf("bytes=%d-%d", start, end))
			if resp.StatusCode != http.StatusPartialContent {
				t.Fatalf("range %d (%d-%d): status = %d, want 206", i, start, end, resp.StatusCode)
			}
			if want := fmt.Sprintf("bytes %d-%d/%d", start, end, size); resp.Header.Get("Content-Range") != want {
				t.Errorf("range %d: Content-Range = %q, want %q", i, resp.Header.Get("Content-Range"), want)
			}
			if !bytes.Equal(body, movie[start:end+1]) {
				t.Fatalf("range %d (%d-%d): body differs (%d bytes)", i, start, end, len(body))
			}
		}
	})

	t.Run("suffix and open ranges", func(t *testing.T) {
		tests := []struct {
			rng        string
			start, end int64 // inclusive
			status     int
		}{
			{"bytes=-1", size - 1, size - 1, 206},
			{"bytes=-100000", size - 100000, size - 1, 206},
			{fmt.Sprintf("bytes=-%d", size+10), 0, size - 1, 206},
			{fmt.Sprintf("bytes=%d-", size-777), size - 777, size - 1, 206},
			{"bytes=0-", 0, size - 1, 206},
			{fmt.Sprintf("bytes=0-%d", size+5000), 0, size - 1, 206},
			{"bytes=0-0,5-9", 0, size - 1, 200}, // multi-range served whole
		}
		for _, tc := range tests {
			resp, body := do(t, fx.client, http.MethodGet, fx.streamURL(fx.tok, -1), "Range", tc.rng)
			if resp.StatusCode != tc.status || !bytes.Equal(body, movie[tc.start:tc.end+1]) {
				t.Errorf("Range %q: status %d, %d bytes; want %d, bytes %d-%d", tc.rng, resp.StatusCode, len(body), tc.status, tc.start, tc.end)
			}
		}
	})

	t.Run("HEAD opens no reader", func(t *testing.T) {
		before := fx.srv.readersOpened.Load()
		resp, body := do(t, fx.client, http.MethodHead, fx.streamURL(fx.tok, -1))
		if resp.StatusCode != http.StatusOK || resp.ContentLength != size || len(body) != 0 {
			t.Errorf("HEAD /stream = %d, length %d, %d body bytes; want 200, %d, 0", resp.StatusCode, resp.ContentLength, len(body), size)
		}
		resp, _ = do(t, fx.client, http.MethodHead, fx.streamURL(fx.tok, -1), "Range", "bytes=10-19")
		if resp.StatusCode != http.StatusPartialContent || resp.ContentLength != 10 {
			t.Errorf("HEAD /stream Range = %d, length %d; want 206, 10", resp.StatusCode, resp.ContentLength)
		}
		if got := fx.srv.readersOpened.Load(); got != before {
			t.Errorf("HEAD opened %d readers, want 0", got-before)
		}
	})

	t.Run("If-Range", func(t *testing.T) {
		resp, body := do(t, fx.client, http.MethodGet, fx.streamURL(fx.tok, -1), "Range", "bytes=100-199", "If-Range", `"stale-0"`)
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, movie) {
			t.Errorf("stale If-Range: status %d, %d bytes; want 200 and the whole file", resp.StatusCode, len(body))
		}
		resp, body = do(t, fx.client, http.MethodGet, fx.streamURL(fx.tok, -1), "Range", "bytes=100-199", "If-Range", wantETag)
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, movie[100:200]) {
			t.Errorf("matching If-Range: status %d, %d bytes; want 206, bytes 100-199", resp.StatusCode, len(body))
		}
		resp, _ = do(t, fx.client, http.MethodGet, fx.streamURL(fx.tok, -1), "If-None-Match", wantETag)
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("If-None-Match: status %d, want 304", resp.StatusCode)
		}
	})

	t.Run("unsatisfiable", func(t *testing.T) {
		resp, _ := do(t, fx.client, http.MethodGet, fx.streamURL(fx.tok, -1), "Range", fmt.Sprintf("bytes=%d-", size))
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
			t.Errorf("Range past the end: status %d, want 416", resp.StatusCode)
		}
		if want := fmt.Sprintf("bytes */%d", size); resp.Header.Get("Content-Range") != want {
			t.Errorf("416 Content-Range = %q, want %q", resp.Header.Get("Content-Range"), want)
		}
	})

	t.Run("other file", func(t *testing.T) {
		extra := fx.want(t, fx.extra)
		resp, body := do(t, fx.client, http.MethodGet, fx.streamURL(fx.tok, fx.extra.Index))
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, extra) {
			t.Fatalf("GET file=%d: status %d, %d bytes; want 200 and extra.mkv", fx.extra.Index, resp.StatusCode, len(body))
		}
		if got := resp.Header.Get("Content-Type"); got != "video/x-matroska" {
			t.Errorf("extra.mkv Content-Type = %q, want video/x-matroska", got)
		}
		if got, want := resp.Header.Get("ETag"), etag(fx.task.InfoHash(), fx.extra.Index); got != want {
			t.Errorf("extra.mkv ETag = %q, want %q", got, want)
		}
		resp, _ = do(t, fx.client, http.MethodGet, fx.streamURL(fx.tok, 99))
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET file=99: status %d, want 404", resp.StatusCode)
		}
	})

	t.Run("disconnect mid-body releases the reader", func(t *testing.T) {
		base := runtime.NumGoroutine()
		for range 3 {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, fx.streamURL(fx.tok, -1), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := fx.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
				t.Fatal(err)
			}
			if n := len(fx.srv.readers); n == 0 {
				t.Error("open readers while streaming = 0, want at least 1")
			}
			resp.Body.Close() // hangs up mid-body
		}
		enginetest.WaitFor(t, 10*time.Second, "readers back to 0", func() bool { return len(fx.srv.readers) == 0 })
		fx.client.Transport.(*http.Transport).CloseIdleConnections()
		enginetest.WaitFor(t, 10*time.Second, "goroutines back to baseline", func() bool {
			return runtime.NumGoroutine() <= base+2
		})
	})
}

func TestStreamCold(t *testing.T) {
	// A rate-limited seeder: the first request arrives before the metainfo,
	// let alone any piece, and is answered as the pieces come in.
	fx := newFixture(t, fixtureOptions{uploadRate: 512 << 10, pieceLength: 64 << 10, movieBytes: 1<<20 + 333})
	if st := fx.task.Status(); st.PiecesComplete != 0 {
		t.Fatalf("task has %d pieces before the first request, want 0", st.PiecesComplete)
	}
	type result struct {
		name string
		rng  string
		resp *http.Response
		body []byte
	}
	results := make(chan result, 2) // one per request below
	for _, r := range []struct{ name, rng string }{{"tail range", "bytes=-70000"}, {"full", ""}} {
		go func() {
			var hdr []string
			if r.rng != "" {
				hdr = []string{"Range", r.rng}
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, fx.streamURL(fx.tok, -1), nil)
			for i := 0; i+1 < len(hdr); i += 2 {
				req.Header.Set(hdr[i], hdr[i+1])
			}
			resp, err := fx.client.Do(req)
			if err != nil {
				results <- result{name: r.name}
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- result{r.name, r.rng, resp, body}
		}()
	}
	fx.waitFiles(t)
	movie := fx.want(t, fx.movie)
	for range 2 {
		res := <-results
		if res.resp == nil {
			t.Fatalf("%s request failed", res.name)
		}
		want := movie
		if res.rng != "" {
			want = movie[len(movie)-70000:]
		}
		if !bytes.Equal(res.body, want) {
			t.Errorf("cold %s: status %d, %d bytes; want %d identical bytes", res.name, res.resp.StatusCode, len(res.body), len(want))
		}
	}
}

// TestStreamCutShortIsLogged: a response the engine ends early (here: the
// task is removed while the read waits for a piece) reaches the player only
// as an early EOF after its 206. The daemon's log says why, with the task,
// the file and the offset, and never the token.
func TestStreamCutShortIsLogged(t *testing.T) {
	var logs logtest.Buffer
	fx := newFixture(t, fixtureOptions{uploadRate: 4 << 10, pieceLength: 64 << 10, mod: func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}})
	fx.waitFiles(t)
	// The middle of the file: the engine fetches a file's first and last pieces as soon as
	// it has the metainfo, and the seeder sends those first. At 4 KiB/s a 64 KiB piece
	// behind them is half a minute away.
	off := fx.movie.Length/2 + 1000
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, fx.streamURL(fx.tok, -1), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	// The response's header goes out with its first byte, so the request runs beside the
	// removal: it fails either way, as a cut body or as no body at all.
	body := make(chan error, 1)
	go func() {
		resp, err := fx.client.Do(req)
		if err != nil {
			body <- err
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent {
			body <- fmt.Errorf("status %d, want 206", resp.StatusCode)
			return
		}
		_, err = io.ReadAll(resp.Body)
		body <- err
	}()
	enginetest.WaitFor(t, 30*time.Second, "the read to wait for its piece", func() bool {
		return fx.srv.readersOpened.Load() > 0
	})
	if err := fx.leech.Remove(fx.task.ID(), false); err != nil {
		t.Fatal(err)
	}
	if err := <-body; err == nil {
		t.Fatal("the body ended cleanly after the task was removed mid-read")
	}
	enginetest.WaitFor(t, 10*time.Second, "the log line", func() bool {
		return strings.Contains(logs.String(), "stream cut short")
	})
	out := logs.String()
	for _, want := range []string{"task=" + fx.task.ID(), "offset=" + strconv.FormatInt(off, 10), "removed"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, fx.tok.Reveal()) {
		t.Error("the log holds the token")
	}
}

func TestReaderCap(t *testing.T) {
	fx := newFixture(t, fixtureOptions{mod: func(o *Options) { o.MaxReaders = 2 }})
	fx.waitFiles(t)
	// Hold every reader slot, as two players would.
	fx.srv.readers <- struct{}{}
	fx.srv.readers <- struct{}{}
	resp, body := do(t, fx.client, http.MethodGet, fx.streamURL(fx.tok, -1), "Range", "bytes=0-9")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("GET over the cap: status %d, Retry-After %q; want 503, 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp.Header.Get("ETag") != "" || resp.Header.Get("Content-Disposition") != "" {
		t.Errorf("503 carries content headers: %v", resp.Header)
	}
	if !strings.Contains(string(body), "too many") {
		t.Errorf("503 body = %q, want a clear message", body)
	}
	// Authorization still comes first.
	resp, _ = do(t, fx.client, http.MethodGet, fx.streamURL("", -1))
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET over the cap without token: status %d, want 404", resp.StatusCode)
	}
	// HEAD needs no reader.
	resp, _ = do(t, fx.client, http.MethodHead, fx.streamURL(fx.tok, -1))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD over the cap: status %d, want 200", resp.StatusCode)
	}
	<-fx.srv.readers
	resp, _ = do(t, fx.client, http.MethodGet, fx.streamURL(fx.tok, -1), "Range", "bytes=0-9")
	if resp.StatusCode != http.StatusPartialContent {
		t.Errorf("GET under the cap: status %d, want 206", resp.StatusCode)
	}
	<-fx.srv.readers
}
