package media

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/torrentclaw/cli/internal/token"
)

const fuzzToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fuzzServer knows one token (for "task1") and no task, so no request can
// get past authorization to any bytes.
func fuzzServer(f *testing.F) (*Server, *httptest.ResponseRecorder) {
	tokens := token.New(token.Options{RequireToken: true})
	if err := tokens.Grant("task1", fuzzToken, token.IssuerOrigin, token.TaskScope(), time.Time{}); err != nil {
		f.Fatal(err)
	}
	srv, err := New(Options{Engine: noEngine{}, Tokens: tokens, CORSOrigins: []string{testOrig}})
	if err != nil {
		f.Fatal(err)
	}
	ref := httptest.NewRecorder()
	srv.ServeHTTP(ref, httptest.NewRequest(http.MethodGet, "/no/such/path", nil))
	if ref.Code != http.StatusNotFound {
		f.Fatalf("reference 404 status = %d", ref.Code)
	}
	return srv, ref
}

func sameResponse(a, b *httptest.ResponseRecorder) bool {
	return a.Code == b.Code && reflect.DeepEqual(a.Header(), b.Header()) && a.Body.String() == b.Body.String()
}

// hlsWellFormed reports whether a request to an HLS URL would get 503 from a
// daemon without HLS: a valid session ID and a token-shaped t.
func hlsWellFormed(u *url.URL) bool {
	rest, ok := strings.CutPrefix(u.Path, "/hls/")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	tok, okTok := hlsToken(u.RawQuery)
	return len(parts) == 2 && validSessionShape(parts[0]) && validResource(parts[1]) && okTok && token.Valid(tok)
}

func validSessionShape(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

var fuzzSeeds = []string{
	"/stream?id=task1&t=" + fuzzToken,
	"/stream?id=task1&t=" + fuzzToken + "&file=0",
	"/stream?id=task1",
	"/stream?id=%00&t=x",
	"/stream?id=a&id=b",
	"/playlist.m3u?id=task1&t=" + fuzzToken,
	"/hls/abc/index.m3u8?t=" + fuzzToken,
	"/hls/abc/index.m3u8",
	"/hls/a.b/seg-00000.ts?t=x",
	"/hls/abc/../../etc/passwd",
	"/health",
	"/health/",
	"//stream?id=task1",
	"/stream/../health",
	"/%2e%2e/stream",
	"/STREAM?id=task1",
	"*",
	"/",
	"/./stream?id=task1",
	"/a/../stream?id=task1",
	"/%2Fstream?id=task1",
	"/stream%2F?id=task1",
	"/hls//index.m3u8",
	"/stream/",
}

func FuzzRequestPath(f *testing.F) {
	srv, ref := fuzzServer(f)
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		raw := "GET " + target + " HTTP/1.1\r\nHost: media\r\nOrigin: " + testOrig + "\r\n\r\n"
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
		if err != nil {
			return // net/http would have answered 400 before any handler
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		switch {
		case w.Code == http.StatusNotFound:
			// The reference was made without Origin: compare without CORS.
			w.Header().Del("Access-Control-Allow-Origin")
			w.Header().Del("Access-Control-Expose-Headers")
			if !sameResponse(w, ref) {
				t.Errorf("GET %q: 404 differs from the reference: %v %q", target, w.Header(), w.Body)
			}
		case w.Code == http.StatusOK && r.URL.Path == "/health":
		case w.Code == http.StatusServiceUnavailable && hlsWellFormed(r.URL):
		default:
			// A redirect above all: ServeMux cleaning a path would copy the
			// query, token included, into Location.
			t.Errorf("GET %q = %d %q, want the reference 404", target, w.Code, w.Body)
		}
	})
}

func FuzzQuery(f *testing.F) {
	srv, ref := fuzzServer(f)
	for _, s := range fuzzSeeds {
		if _, q, ok := strings.Cut(s, "?"); ok {
			f.Add(q)
		}
	}
	f.Add("t=" + fuzzToken + "&t=" + fuzzToken)
	f.Add("id=task1&t=" + fuzzToken + "&file=-1")
	f.Add("id=task1;t=x")
	f.Add("%")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		for _, path := range []string{"/stream", "/playlist.m3u", "/hls/abc/index.m3u8"} {
			r := httptest.NewRequest(http.MethodGet, path, nil)
			r.URL.RawQuery = rawQuery
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			if w.Code == http.StatusServiceUnavailable && hlsWellFormed(r.URL) {
				continue // no HLS on this daemon, said only to well-formed requests
			}
			if !sameResponse(w, ref) {
				t.Errorf("GET %s?%q = %d %v %q, want the reference 404", path, rawQuery, w.Code, w.Header(), w.Body)
			}
		}
	})
}

// FuzzAcceptsGzip: any Accept-Encoding value is parsed without a panic, and
// gzip is only ever chosen for a header that names it (or *).
func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"gzip", "gzip, deflate, br", "gzip;q=0", "*;q=0.5", "br;q=1.0, gzip;q=0.8", ";;,=q", "gzip;q=1e-400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if acceptsGzip([]string{v}) {
			l := strings.ToLower(v)
			if !strings.Contains(l, "gzip") && !strings.Contains(l, "*") {
				t.Errorf("acceptsGzip(%q) = true without gzip or *", v)
			}
		}
	})
}

// FuzzPlayerName: any query gives no player name or a short one of letters, digits and
// '-' (the page's names pass as they are).
func FuzzPlayerName(f *testing.F) {
	for _, s := range []string{"t=abc&p=0123456789abcdef", "p=", "p=a%2Fb", "p=" + strings.Repeat("a", 33), "p=%zz", "p=x&p=y", "t=%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		p := playerName(q)
		if len(p) > 32 {
			t.Errorf("playerName(%q) = %q, longer than 32", q, p)
		}
		for _, c := range p {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				t.Fatalf("playerName(%q) = %q", q, p)
			}
		}
	})
}

func TestPlayerName(t *testing.T) {
	for q, want := range map[string]string{
		"t=abc&p=0123456789abcdef":     "0123456789abcdef",
		"p=tab-2":                      "tab-2",
		"t=abc":                        "",
		"p=a%2Fb":                      "",
		"p=" + strings.Repeat("a", 33): "",
		"p=%zz":                        "",
	} {
		if got := playerName(q); got != want {
			t.Errorf("playerName(%q) = %q, want %q", q, got, want)
		}
	}
}
