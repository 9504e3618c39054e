package media

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/token"
)

func TestTokens(t *testing.T) {
	fx := newFixture(t, fixtureOptions{})
	fx.waitFiles(t)
	id := fx.task.ID()

	// The reference 404: a path that does not exist at all.
	resp, body := do(t, fx.client, http.MethodGet, fx.base+"/no/such/path")
	ref := dump(t, resp, body)
	if resp.StatusCode != http.StatusNotFound || string(body) != notFoundBody {
		t.Fatalf("GET /no/such/path = %d %q, want 404 %q", resp.StatusCode, body, notFoundBody)
	}
	resp, _ = do(t, fx.client, http.MethodHead, fx.base+"/no/such/path")
	refHead := dump(t, resp, nil)

	otherTok := mintToken(t)
	if err := fx.tokens.Grant("other-task", otherTok, token.IssuerOrigin, token.TaskScope(), time.Time{}); err != nil {
		t.Fatal(err)
	}
	served := func(t *testing.T, tok token.Token) {
		t.Helper()
		resp, body := do(t, fx.client, http.MethodGet, StreamURL(fx.base, id, tok, -1), "Range", "bytes=0-9")
		if resp.StatusCode != http.StatusPartialContent || len(body) != 10 {
			t.Fatalf("GET /stream with a good token: status %d, %d bytes; want 206, 10", resp.StatusCode, len(body))
		}
	}
	refused := func(t *testing.T, rawURL string) {
		t.Helper()
		resp, body := do(t, fx.client, http.MethodGet, rawURL, "Range", "bytes=0-9")
		if got := dump(t, resp, body); got != ref {
			t.Errorf("GET %s:\n%s\nwant the reference 404:\n%s", redact(rawURL), got, ref)
		}
		resp, body = do(t, fx.client, http.MethodHead, rawURL, "Range", "bytes=0-9")
		if got, want := dump(t, resp, nil), refHead; got != want || len(body) != 0 {
			t.Errorf("HEAD %s:\n%s\nwant the reference 404:\n%s", redact(rawURL), got, want)
		}
	}
	refusedEverywhere := func(t *testing.T, tok string) {
		t.Helper()
		q := "id=" + url.QueryEscape(id) + "&t=" + url.QueryEscape(tok)
		refused(t, fx.base+"/stream?"+q)
		refused(t, fx.base+"/playlist.m3u?"+q)
	}

	served(t, fx.tok)
	tests := []struct {
		name string
		url  string
	}{
		{"missing token", fx.base + "/stream?id=" + url.QueryEscape(id)},
		{"empty token", fx.base + "/stream?id=" + url.QueryEscape(id) + "&t="},
		{"wrong token", StreamURL(fx.base, id, mintToken(t), -1)},
		{"wrong length", StreamURL(fx.base, id, fx.tok[:20], -1)},
		{"token plus one", StreamURL(fx.base, id, fx.tok+"a", -1)},
		{"other task's token", StreamURL(fx.base, id, otherTok, -1)},
		{"unknown task", StreamURL(fx.base, "no-such-task", fx.tok, -1)},
		{"unknown task with its own token", StreamURL(fx.base, "other-task", otherTok, -1)},
		{"malformed id", fx.base + "/stream?id=a%00b&t=" + string(fx.tok)},
		{"repeated token", StreamURL(fx.base, id, fx.tok, -1) + "&t=" + string(fx.tok)},
		{"bad file", StreamURL(fx.base, id, fx.tok, -1) + "&file=x"},
		{"missing file", StreamURL(fx.base, id, fx.tok, 4242)},
		{"playlist without token", fx.base + "/playlist.m3u?id=" + url.QueryEscape(id)},
		{"playlist of unknown task", fx.base + "/playlist.m3u?id=nope&t=" + string(fx.tok)},
		// Without HLS, a well-formed /hls request gets 503 (TestHLSUnavailable);
		// a malformed one is refused like everything else.
		{"hls bad session", fx.base + "/hls/a.b/index.m3u8?t=" + string(fx.tok)},
		{"hls bad token", fx.base + "/hls/abc/index.m3u8?t=short"},
		{"hls no token", fx.base + "/hls/abc/index.m3u8"},
		{"hls bad resource", fx.base + "/hls/abc/.hidden?t=" + string(fx.tok)},
		{"post", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.url == "" {
				resp, body := do(t, fx.client, http.MethodPost, fx.streamURL(fx.tok, -1))
				if got := dump(t, resp, body); got != ref {
					t.Errorf("POST /stream:\n%s\nwant:\n%s", got, ref)
				}
				return
			}
			refused(t, tc.url)
		})
	}

	t.Run("internal token is for /stream only", func(t *testing.T) {
		itok := mintToken(t)
		if err := fx.internal.Grant(id, itok, token.IssuerOrigin, token.TaskScope(), time.Time{}); err != nil {
			t.Fatal(err)
		}
		defer fx.internal.Revoke(id)
		served(t, itok)
		refused(t, fx.base+"/playlist.m3u?id="+url.QueryEscape(id)+"&t="+string(itok))
	})

	t.Run("rotation grace", func(t *testing.T) {
		newTok := mintToken(t)
		if err := fx.tokens.Grant(id, newTok, token.IssuerOrigin, token.TaskScope(), time.Time{}); err != nil {
			t.Fatal(err)
		}
		served(t, newTok)
		served(t, fx.tok) // within grace
		fx.clock.Advance(testGrace + time.Second)
		served(t, newTok)
		refusedEverywhere(t, string(fx.tok))
		fx.tok = newTok
	})

	t.Run("expiry", func(t *testing.T) {
		tok := mintToken(t)
		if err := fx.tokens.Grant(id, tok, token.IssuerOrigin, token.TaskScope(), fx.clock.Now().Add(10*time.Minute)); err != nil {
			t.Fatal(err)
		}
		fx.clock.Advance(testGrace + time.Second) // the previous token's grace ends
		served(t, tok)
		fx.clock.Advance(10 * time.Minute)
		refusedEverywhere(t, string(tok))
		fx.tok = tok
	})

	t.Run("file-scoped internal grant opens only its file and session", func(t *testing.T) {
		itok := mintToken(t)
		file := fx.task.SelectedFile()
		if err := fx.internal.Grant(id, itok, token.IssuerInternal, token.Scope{SessionID: "sess1", File: file}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		defer fx.internal.EndSession(id, "sess1")
		own := StreamURL(fx.base, id, itok, file) + "&s=sess1"
		resp, body := do(t, fx.client, http.MethodGet, own, "Range", "bytes=0-9")
		if resp.StatusCode != http.StatusPartialContent || len(body) != 10 {
			t.Fatalf("GET /stream with the internal grant's file and session: %d, %d bytes; want 206, 10", resp.StatusCode, len(body))
		}
		refused(t, StreamURL(fx.base, id, itok, file))                      // no session
		refused(t, StreamURL(fx.base, id, itok, -1)+"&s=sess1")             // the default file: task-wide
		refused(t, StreamURL(fx.base, id, itok, fx.extra.Index)+"&s=sess1") // another file
		refused(t, StreamURL(fx.base, id, itok, file)+"&s=sess2")           // another session
		refused(t, StreamURL(fx.base, "other-task", itok, file)+"&s=sess1")
		refused(t, fx.base+"/playlist.m3u?id="+url.QueryEscape(id)+"&t="+string(itok))
		fx.internal.EndSession(id, "sess1")
		refused(t, own)
	})

	t.Run("revoked, require off: locked, old token and no token refused", func(t *testing.T) {
		fx.tokens.Revoke(id)
		refusedEverywhere(t, "")
		refusedEverywhere(t, "anything-at-all")
		refusedEverywhere(t, string(fx.tok))
		tok := mintToken(t)
		if err := fx.tokens.Grant(id, tok, token.IssuerCLI, token.TaskScope(), time.Time{}); err != nil {
			t.Fatal(err)
		}
		served(t, tok)
		refusedEverywhere(t, string(fx.tok))
		fx.tok = tok
	})

	t.Run("token-less task, require on", func(t *testing.T) {
		strict := token.New(token.Options{RequireToken: true, Now: fx.clock.Now})
		_, base, _ := startServer(t, Options{Engine: fx.leech, Tokens: strict})
		resp, body := do(t, fx.client, http.MethodGet, StreamURL(base, id, "", -1))
		if resp.StatusCode != http.StatusNotFound || string(body) != notFoundBody {
			t.Errorf("token-less GET with require on: %d %q, want 404", resp.StatusCode, body)
		}
		tok := mintToken(t)
		if err := strict.Grant(id, tok, token.IssuerOrigin, token.TaskScope(), time.Time{}); err != nil {
			t.Fatal(err)
		}
		resp, _ = do(t, fx.client, http.MethodGet, StreamURL(base, id, tok, -1), "Range", "bytes=0-0")
		if resp.StatusCode != http.StatusPartialContent {
			t.Errorf("GET with token, require on: %d, want 206", resp.StatusCode)
		}
		strict.Revoke(id)
		resp, _ = do(t, fx.client, http.MethodGet, StreamURL(base, id, tok, -1), "Range", "bytes=0-0")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET after clear, require on: %d, want 404", resp.StatusCode)
		}
	})
}
