package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/torrentclaw/cli/internal/engine"
)

// TestUnavailableRange pauses a task before it has everything: a range that starts in a
// missing piece answers 503 with Retry-After and no 206 header, a verified range still 206.
func TestUnavailableRange(t *testing.T) {
	fx := newFixture(t, fixtureOptions{uploadRate: 256 << 10, pieceLength: 64 << 10})
	fx.waitFiles(t)
	if err := fx.leech.Pause(fx.task.ID()); err != nil {
		t.Fatal(err)
	}
	// A piece whose blocks were all in before the pause may still be hashed after it and
	// become available under the test: then the answer is a 206 (right, for that byte) that
	// breaks off at the next missing piece. Take the missing offset furthest from the
	// download front, and look again (a bounded number of times) if it was filled meanwhile.
	var resp *http.Response
	var body []byte
	for try := 0; ; try++ {
		missing := lastPausedOffset(fx)
		if missing < 0 {
			t.Fatal("every piece of the movie arrived before the pause; want some missing")
		}
		var ok bool
		resp, body, ok = tryGet(t, fx.client, fx.streamURL(fx.tok, fx.movie.Index), fmt.Sprintf("bytes=%d-", missing))
		if ok || try == 5 {
			break
		}
		t.Logf("the piece at %d was completed after the pause; another offset", missing)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET of a missing range of a paused task: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp.Header.Get("Content-Range") != "" || resp.Header.Get("ETag") != "" {
		t.Errorf("503 carries content headers: %v", resp.Header)
	}
	if !strings.Contains(string(body), "paused") {
		t.Errorf("503 body = %q, want a clear message", body)
	}
	// A verified byte (the head and tail are fetched first) still streams.
	for off := int64(0); off < fx.movie.Length; off += 64 << 10 {
		if fx.task.Unavailable(fx.movie.Index, off) == nil {
			resp, _ := do(t, fx.client, http.MethodGet, fx.streamURL(fx.tok, fx.movie.Index), "Range", fmt.Sprintf("bytes=%d-%d", off, off))
			if resp.StatusCode != http.StatusPartialContent {
				t.Errorf("GET of a verified byte of a paused task: %d, want 206", resp.StatusCode)
			}
			break
		}
	}
}

// lastPausedOffset returns the last 64 KiB offset of the fixture's movie that is missing
// because the task is paused, or -1.
func lastPausedOffset(fx *fixture) int64 {
	missing := int64(-1)
	for off := int64(0); off < fx.movie.Length; off += 64 << 10 {
		if err := fx.task.Unavailable(fx.movie.Index, off); errors.Is(err, engine.ErrPaused) {
			missing = off
		}
	}
	return missing
}

// tryGet GETs url with a Range header. ok is false when the answer was a 206 whose body
// broke off (the range became available between the check and the request, see
// TestUnavailableRange); any other failure fails the test.
func tryGet(t *testing.T, c *http.Client, url, rng string) (*http.Response, []byte, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Range", rng)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", redact(url), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		if resp.StatusCode == http.StatusPartialContent {
			return resp, body, false
		}
		t.Fatalf("GET %s: read body: %v", redact(url), err)
	}
	return resp, body, resp.StatusCode != http.StatusPartialContent
}

// TestDiskFullAnswers503 checks the mapping of a storage failure: 503 with Retry-After.
func TestDiskFullAnswers503(t *testing.T) {
	s := &Server{log: testLogger(t)}
	if s.log == nil {
		t.Fatal("no logger")
	}
	for _, err := range []error{engine.ErrDiskFull, engine.ErrWrite} {
		w := httptest.NewRecorder()
		s.writeError(w, httptest.NewRequest(http.MethodGet, "/stream", nil), fmt.Errorf("read: %w", err))
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("writeError(%v) = %d, Retry-After %q; want 503 with Retry-After", err, w.Code, w.Header().Get("Retry-After"))
		}
	}
}
