package media

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// BenchmarkRangeRequest fetches 256 KiB ranges at random offsets through the
// media listener from a complete loopback torrent.
func BenchmarkRangeRequest(b *testing.B) {
	const n = 256 << 10
	fx := newFixture(b, fixtureOptions{movieBytes: 16 << 20})
	fx.waitFiles(b)
	url := fx.streamURL(fx.tok, -1)
	// Download everything first: measure the server, not the swarm.
	resp, body := do(b, fx.client, http.MethodGet, url)
	if resp.StatusCode != http.StatusOK || int64(len(body)) != fx.movie.Length {
		b.Fatalf("warm-up GET = %d, %d bytes", resp.StatusCode, len(body))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 32<<10)
	b.SetBytes(n)
	b.ReportAllocs()
	var ttfb time.Duration
	ops := 0
	for b.Loop() {
		off := rng.Int64N(fx.movie.Length - n)
		req, err := http.NewRequestWithContext(b.Context(), http.MethodGet, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
		start := time.Now()
		resp, err := fx.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		ttfb += time.Since(start)
		got, err := io.CopyBuffer(io.Discard, resp.Body, buf)
		resp.Body.Close()
		if err != nil || got != n || resp.StatusCode != http.StatusPartialContent {
			b.Fatalf("range: status %d, %d bytes, %v", resp.StatusCode, got, err)
		}
		ops++
	}
	b.ReportMetric(float64(ttfb.Microseconds())/1000/float64(ops), "ttfb-ms/op")
}

// BenchmarkPlaylist renders /playlist.m3u for a task through the handler.
func BenchmarkPlaylist(b *testing.B) {
	fx := newFixture(b, fixtureOptions{movieBytes: 64 << 10})
	fx.waitFiles(b)
	target := "/playlist.m3u?id=" + url.QueryEscape(fx.task.ID()) + "&t=" + url.QueryEscape(string(fx.tok))
	h := fx.srv.Handler()
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.Host = "evil.example:11818"
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("GET /playlist.m3u = %d", w.Code)
		}
	}
}
